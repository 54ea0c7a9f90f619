"""The ``hmmrnn`` command line: a thin layer over the Python API."""

from __future__ import annotations

import enum
import functools
import inspect
import sys
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import typer

from ._signals import stop_signals_interrupt
from ._threads import set_threads
from .errors import HmmrnnError, Interrupted
from .evaluation import Horizons, Thresholds
from .analysis import ANALYSES
from .presets import RECIPES

_TH, _HZ = Thresholds(), Horizons()  # the defaults shown in --help come from the dataclasses


def _choices(name: str, values) -> type[enum.Enum]:
    """An option type that allows only ``values``: typer turns an Enum annotation into click's choice
    check and lists the values in --help (the command reads ``.value``)."""
    return enum.Enum(name, [(v, v) for v in values], type=str)


_RecipeName = _choices("RecipeName", RECIPES)


def _threads_option():
    return typer.Option(None, "--threads", min=1, help="Threads for torch and numba's kernels alike [all cores].")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Train noise-driven RNNs to emulate hidden Markov models, then reverse-engineer them.")


def _with_training_options(command: Callable) -> Callable:
    """Give a command every training setting of ``hmmrnn.config.training_options`` as an option
    (default None: the preset's and the recipe's value), collected into its ``settings`` argument
    (only those given). Help, flags, types and allowed values all come from the config fields."""
    from .config import training_options

    options = training_options()
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "settings"]
    added = []
    for option in options:
        decls = [f"{option.flag}/--no-{option.flag[2:]}"] if option.type is bool else [option.flag]
        info = typer.Option(None, *decls, help=f"{option.help} [{option.default_text}]")
        kind = _choices(option.name, option.choices) if option.choices else option.type
        added.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                       annotation=Optional[kind]))

    @functools.wraps(command)
    def with_settings(**kwargs):
        settings = {o.name: kwargs.pop(o.name) for o in options}
        settings = {k: v.value if isinstance(v, enum.Enum) else v for k, v in settings.items() if v is not None}
        return command(settings=settings, **kwargs)

    with_settings.__signature__ = inspect.Signature(own + added)
    with_settings.__annotations__ = {p.name: p.annotation for p in own + added}
    return with_settings


@app.command()
@_with_training_options
def train(
    settings: dict,
    preset: Optional[str] = typer.Option(None, help="Preset name (see `hmmrnn presets`); sets the HMM and the "
                                         "paper's training settings."),
    hmm: Optional[Path] = typer.Option(None, help="JSON/TOML file with a custom HMM (replaces the preset's HMM; "
                                       "without --preset the linear3 training settings apply)."),
    recipe: _RecipeName = typer.Option("fast", help="fast: paper loss + n-gram penalty, carried windows, verdict every "
                               "10 epochs, stop when it emulates; paper: the paper's recipe unchanged. The "
                               "options below win."),
    hidden: Optional[int] = typer.Option(None, help="Hidden units H [preset: 150]."),
    noise_dim: Optional[int] = typer.Option(None, "--noise-dim", help="Noise input dimension d [preset: 100]."),
    seed: Optional[int] = typer.Option(None, help="Seed of data, initialisation and noise [0]."),
    out: Optional[Path] = typer.Option(None, help="Run folder [runs/<preset>-h<H>-d<d>-s<seed>]."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder from its last checkpoint "
                                          "(only --epochs may change)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    no_evaluate: bool = typer.Option(False, "--no-evaluate", help="Skip `hmmrnn evaluate` at the end."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Train a NoiseRNN whose sampled outputs match the HMM's emission statistics.

    Writes config.json, model.safetensors (best by validation), final.safetensors, history.csv,
    status.json, checkpoints/ and figures/ into the run folder, then evaluates the model
    (metrics.json, verdict) unless --no-evaluate.
    """
    from .config import make_config
    from .hmm import HMM
    from .runs import run_lock
    from .training import default_run_dir, final_evaluation, train_config
    from .training import resume as resume_run

    set_threads(threads)
    recipe = recipe.value

    if resume is not None:
        given = dict(settings, preset=preset, hmm=hmm, recipe=recipe if recipe != "fast" else None, hidden=hidden,
                     noise_dim=noise_dim, seed=seed, out=out, force=force or None)
        changed = ["--" + name.replace("_", "-") for name, value in given.items()
                   if value is not None and name != "epochs"]
        if changed:
            raise HmmrnnError(f"--resume continues a run with its saved settings (only --epochs may change); "
                              f"drop {', '.join(changed)}")
        folder = resume  # run_lock below says so if it does not exist
    else:
        if preset is None and hmm is None:
            raise HmmrnnError("give --preset NAME or --hmm FILE (see `hmmrnn presets`)")
        config = make_config(preset, recipe=recipe, hmm=HMM.from_file(hmm) if hmm else None, hidden=hidden,
                             noise_dim=noise_dim, seed=seed, **settings)
        folder = out if out is not None else default_run_dir(config)
    with run_lock(folder, create=resume is None):  # one writer for training and the evaluation after it
        if resume is not None:
            run = resume_run(resume, epochs=settings.get("epochs"), progress=not quiet, evaluate=False)
        else:
            run = train_config(config, folder, force=force, progress=not quiet, evaluate=False)
        best = run.status.get("best_val_loss")
        typer.echo(f"{run.path}: {run.status.get('epoch')} epochs, best validation loss "
                   f"{best:.4f} at epoch {run.status.get('best_epoch')}" if best is not None else f"{run.path}: done")
        if not no_evaluate:
            eval_n = run.config.train.eval_n
            typer.echo(f"evaluating {run.path} (N = {eval_n}, T = {run.config.train.seq_len}) ...")
            _report(final_evaluation(run), run)


def _report(result, run) -> None:
    typer.echo(result.summary())
    typer.echo(f"wrote {run.path / 'metrics.json'} and figures/evaluation_*.png")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run folder written by `hmmrnn train`."),
    n: int = typer.Option(5000, "--n", help="Sequences generated from the RNN (and from the HMM per set)."),
    seq_len: Optional[int] = typer.Option(None, help="Sequence length T [the run's training T]."),
    seed: int = typer.Option(0, help="Seed of the RNN noise and the HMM samples."),
    semantics: str = typer.Option("training", help="training: outputs from h_1..h_T; reference: the "
                                  "authors' generator (uniform first symbol, T-1 steps)."),
    weights: str = typer.Option("best", help="best (model.safetensors) or final (final.safetensors)."),
    no_matching: bool = typer.Option(False, "--no-matching", help="Skip the matched distance (O(N^2))."),
    matching_block: Optional[int] = typer.Option(None, help="Match within blocks of this many sequences and pool "
                                                 "them: the mean distance of N = block, a smaller standard "
                                                 "error, O(N * block) [all N at once]."),
    no_refit: bool = typer.Option(False, "--no-refit", help="Skip the EM re-fit of an HMM to the RNN outputs."),
    frequency_tolerance: float = typer.Option(_TH.frequency_tolerance, help="Irrelevant |diff| of a symbol's mean "
                                              "frequency; a check fails when |diff| > tolerance + z*se."),
    transition_tolerance: float = typer.Option(_TH.transition_tolerance, help="Irrelevant |diff| of an output "
                                               "transition probability P(o_t | o_t-1)."),
    volatility_tolerance: float = typer.Option(_TH.volatility_tolerance, help="Irrelevant relative diff of the "
                                               "symbol changes per sequence."),
    loglik_tolerance: float = typer.Option(_TH.loglik_tolerance, help="Irrelevant gap of the log-likelihood under "
                                           "the HMM, nats per step."),
    distance_tolerance: float = typer.Option(_TH.distance_tolerance, help="Irrelevant excess of the matched "
                                             "distance over its HMM-vs-HMM baseline."),
    alpha: float = typer.Option(_TH.alpha, help="Family-wise probability that an exact emulator fails a check "
                                "(sets z by Bonferroni over all tested quantities)."),
    max_growth: float = typer.Option(_TH.max_growth, help="Boundedness: late / early median |h| of the long run."),
    windows: str = typer.Option(",".join(map(str, _HZ.windows)), help="Stationary window lengths judged besides "
                                "the run's T (comma-separated)."),
    horizon: int = typer.Option(_HZ.length, help="Steps of the long run (longer when the windows need it)."),
    chains: int = typer.Option(_HZ.chains, help="Chains of the long run, from h0 = 0."),
    burn_in: int = typer.Option(_HZ.burn_in, help="Steps of each chain before windows are cut."),
    no_long_run: bool = typer.Option(False, "--no-long-run", help="Judge the training window only (the paper's "
                                     "check): no boundedness, no stationary windows."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Judge whether the trained RNN's outputs are statistically indistinguishable from its HMM.

    Writes metrics.json and figures/evaluation_*.png|pdf into the run folder and prints a summary
    table with the verdict (emulates: yes | no | inconclusive) for the training window, the long
    run's boundedness and each stationary window, every number next to its HMM-vs-HMM baseline.
    """
    from .evaluation import evaluate as evaluate_run
    from .runs import load_run

    set_threads(threads)
    if n < 2:
        raise HmmrnnError(f"--n must be at least 2, got {n}")
    if semantics not in ("training", "reference"):
        raise HmmrnnError(f"--semantics must be training or reference, got {semantics!r}")
    thresholds = Thresholds(frequency_tolerance=frequency_tolerance, transition_tolerance=transition_tolerance,
                            volatility_tolerance=volatility_tolerance, loglik_tolerance=loglik_tolerance,
                            distance_tolerance=distance_tolerance, alpha=alpha, max_growth=max_growth)
    horizons = Horizons(_int_list(windows, "--windows") or (), chains, horizon, burn_in, not no_long_run)
    if seq_len is not None and seq_len < 2:
        raise HmmrnnError(f"--seq-len must be at least 2, got {seq_len}")
    if matching_block is not None and not 2 <= matching_block <= n:
        raise HmmrnnError(f"--matching-block must be between 2 and --n ({n}), got {matching_block}")
    run = load_run(run_dir, weights=weights)
    _report(evaluate_run(run, n=n, seq_len=seq_len, seed=seed, thresholds=thresholds, horizons=horizons,
                         semantics=semantics, matching=not no_matching, matching_block=matching_block,
                         refit=not no_refit), run)


@app.command()
def analyze(
    run_dir: Path = typer.Argument(..., help="Run folder written by `hmmrnn train`."),
    only: Optional[str] = typer.Option(None, help="Comma-separated analyses to run [all, in this order]: "
                                       + ", ".join(ANALYSES) + "."),
    seed: int = typer.Option(0, help="Seed of every simulation and sample."),
    no_figures: bool = typer.Option(False, "--no-figures", help="Write the JSON results only."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Reverse-engineer a trained network: state-space geometry and fixed points, the slow and fast
    regions, kick neurons and their wiring, ablations and gain sweeps, noise, training evolution.

    Writes analysis/<name>.json and analysis/<name>.png|pdf into the run folder and prints one line
    per analysis with its key numbers; an analysis that finds nothing of its kind says why.
    """
    from .analysis import analyze as run_analyses
    from .analysis import progress_line

    set_threads(threads)

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None

    run_analyses(run_dir, only=names, seed=seed, figures=not no_figures, progress=not quiet,
                 report=lambda *line: typer.echo(progress_line(*line)))
    typer.echo(f"wrote {run_dir / 'analysis'}")


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise HmmrnnError(f"{option} takes comma-separated integers, got {text!r}") from None


@app.command()
@_with_training_options
def sweep(
    settings: dict,
    out: Path = typer.Option(..., help="Sweep folder: cells/<cell>/ run folders, sweep_summary.csv, figures/."),
    spec: Optional[Path] = typer.Option(None, help="JSON/TOML sweep spec (presets, hidden, noise_dim, seeds, recipe, "
                                        "overrides, eval_n, eval_seq_len) instead of the options below."),
    presets: Optional[str] = typer.Option(None, help="Comma-separated presets, e.g. linear2,linear3."),
    hidden: Optional[str] = typer.Option(None, help="Comma-separated hidden sizes [150]."),
    noise_dim: Optional[str] = typer.Option(None, "--noise-dim", help="Comma-separated noise dimensions d [100]."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds [0]."),
    recipe: Optional[_RecipeName] = typer.Option(None, help="Training recipe of every cell [fast]."),
    eval_seq_len: Optional[int] = typer.Option(None, help="T of each cell's final evaluation [the cell's T; the "
                                               "paper's linear-chain grid used 100]."),
    backend: str = typer.Option("local", help="local (process pool on this machine) or ray (Ray tasks)."),
    workers: Optional[int] = typer.Option(None, help="local: cells at a time [CPU count / threads]."),
    threads: Optional[int] = typer.Option(None, min=1, help="Threads per cell, torch's and numba's [1 with several "
                                          "workers]."),
    address: Optional[str] = typer.Option(None, help="ray: address of a running cluster (e.g. auto or "
                                          "ray://host:10001); without it a local Ray instance is started."),
    gpus_per_cell: float = typer.Option(0.0, help="ray: GPUs requested per cell (use with --device cuda)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated shell patterns of cell names: run only the "
                                       "unfinished cells that match, e.g. 'linear3-*,linear4-h50-*'."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train and evaluate a grid of cells (preset x hidden x noise_dim x seed), each an ordinary run folder.

    Every training option of `hmmrnn train` applies to every cell; --eval-n is also the N of each
    cell's final evaluation. Re-running the same command skips finished cells, resumes unfinished
    ones from their checkpoints and retries failed ones. Writes sweep_summary.csv and the grid
    figures; prints one line per cell.
    """
    from .sweep import SweepSpec, run_sweep

    overrides = dict(settings)
    recipe = recipe.value if recipe is not None else None
    grid = {k: v for k, v in dict(presets=tuple(p.strip() for p in presets.split(",") if p.strip()) if presets
                                  else None, hidden=_int_list(hidden, "--hidden"), noise_dim=_int_list(noise_dim, "--noise-dim"),
                                  seeds=_int_list(seeds, "--seeds"), recipe=recipe, eval_n=settings.get("eval_n"),
                                  eval_seq_len=eval_seq_len).items() if v is not None}
    if spec is not None:
        if grid or overrides:
            raise HmmrnnError("give either --spec FILE or the grid options, not both")
        sweep_spec = SweepSpec.from_file(spec)
    else:
        if "presets" not in grid:
            raise HmmrnnError("give --presets (comma-separated) or --spec FILE")
        sweep_spec = SweepSpec(**grid, overrides=overrides)

    def report(record) -> None:
        if record["status"] == "done":
            verdict = "emulates" if record.get("emulates") else "does not emulate"
            distance = record.get("metrics", {}).get("matched_distance")
            typer.echo(f"{record['cell']}: {verdict}, {record.get('epochs')} epochs"
                       + (f", matched distance {distance:.3f}" if distance is not None else ""))
        else:
            typer.echo(f"{record['cell']}: {record['status']}: {record.get('error', '')}")

    patterns = tuple(p.strip() for p in only.split(",") if p.strip()) if only else ()
    records = run_sweep(sweep_spec, out, backend=backend, workers=workers, threads=threads, address=address,
                        gpus_per_cell=gpus_per_cell, only=patterns, progress=not quiet, report=report)
    done = sum(r["status"] == "done" for r in records)
    typer.echo(f"{done}/{len(records)} cells finished; wrote {out / 'sweep_summary.csv'} and {out / 'figures'}")
    selected = {c.name for c in sweep_spec.cells(only=patterns)}
    failed = sum(r["status"] != "done" and r["cell"] in selected for r in records)
    if failed:
        raise HmmrnnError(f"{failed} of {len(selected)} cells failed (see above); re-run the same "
                          "command to retry them")


@app.command("sweep-report")
def sweep_report_command(
    sweep_dir: Path = typer.Argument(..., help="Sweep folder written by `hmmrnn sweep`."),
) -> None:
    """Rebuild sweep_summary.csv and the grid figures from the cells on disk."""
    from .sweep import sweep_report

    path = sweep_report(sweep_dir)
    typer.echo(f"wrote {path} and {sweep_dir / 'figures'}")


@app.command("import-pth")
def import_pth_command(
    file: Path = typer.Argument(..., help="A reference checkpoint: a PyTorch state dict with rnn.weight_ih_l0, "
                                "rnn.weight_hh_l0 and fc.weight."),
    preset: Optional[str] = typer.Option(None, help="Preset whose HMM the network was trained on."),
    hmm: Optional[Path] = typer.Option(None, help="JSON/TOML file with the HMM instead of a preset."),
    out: Optional[Path] = typer.Option(None, help="Run folder to create [runs/<file stem>-imported]."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
) -> None:
    """Turn a checkpoint of the authors' reference code into a run folder that evaluate and analyze read.

    Loads it with torch.load(weights_only=True): a file that would run code when unpickled is refused.
    """
    from .hmm import HMM
    from .interop import import_pth

    if (preset is None) == (hmm is None):
        raise HmmrnnError("give exactly one of --preset NAME or --hmm FILE")
    run = import_pth(file, preset=preset, hmm=HMM.from_file(hmm) if hmm else None, out=out, force=force)
    m = run.config.model
    typer.echo(f"imported {file} as {run.path} (H = {m.hidden}, d = {m.noise_dim}, K = {m.n_outputs}, HMM {run.hmm.name})")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Run folder written by `hmmrnn train` (or import-pth)."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write [RUN_DIR/report.html]."),
) -> None:
    """Write one self-contained HTML page: the HMM, training, evaluation and every analysis on disk,
    with the figures embedded and a plain-language reading of each analysis."""
    from .report import write_report

    path = write_report(run_dir, out)
    typer.echo(f"wrote {path}")


zoo_app = typer.Typer(no_args_is_help=True, help="Pretrained models shipped with the package (one per preset).")
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def zoo_list() -> None:
    """List the packaged models: name, preset, sizes, seed, epochs and verdict."""
    from .zoo import list_models

    for entry in list_models():
        stages = f" in {entry['stages']} stages (lineage.json)" if entry["stages"] > 1 else ""
        typer.echo(f"{entry['name']}: preset {entry['preset']}, H = {entry['hidden']}, d = {entry['noise_dim']}, "
                   f"T = {entry['seq_len']}, seed {entry['seed']}, recipe {entry['recipe']}, {entry['epochs']} epochs"
                   f"{stages}, "
                   f"emulates: {'yes' if entry['emulates'] else 'no'}")


@zoo_app.command("get")
def zoo_get(
    name: str = typer.Argument(..., help="Zoo model (see `hmmrnn zoo list`)."),
    out: Path = typer.Option(..., help="Run folder to create."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
) -> None:
    """Copy a packaged model into a normal run folder (config, weights, history, metrics)."""
    from .zoo import get

    run = get(name, out, force=force)
    typer.echo(f"wrote {run.path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder to create."),
    model: str = typer.Option("linear3", help="Zoo model to take apart (see `hmmrnn zoo list`)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Take a pretrained model apart in one go: evaluation, every analysis and report.html (a few
    minutes on a 2-core CPU)."""
    from .demo import demo as run_demo

    set_threads(threads)

    run_demo(out, model=model, force=force, progress=not quiet, say=typer.echo)


@app.command()
def reproduce(
    runs: Optional[List[Path]] = typer.Option(None, "--runs", help="Run folders to analyse (repeatable); default: "
                                                                  "every zoo model."),
    out: Path = typer.Option(Path("reproduction"), help="Output folder (new, empty, or an earlier reproduction)."),
    quick: bool = typer.Option(False, "--quick", help="Small analysis settings: a smoke test, not precise numbers."),
    page_only: bool = typer.Option(False, "--page-only", help="Rebuild the page from the analyses already in "
                                                             "OUT/models, running none."),
    grid: Optional[Path] = typer.Option(None, help="A finished `hmmrnn sweep` folder over the linear-chain grid: "
                                                   "adds the grid table, its trends and figures to the page."),
    seed: int = typer.Option(0, help="Seed of every analysis."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    threads: Optional[int] = _threads_option(),
) -> None:
    """Run the paper's figure set on the zoo models (or given runs) and write reproduction.md and
    reproduction.html: our numbers next to the paper's, and each claim reproduced, partly or not.
    The run folders are copied into OUT/models; nothing is written into them."""
    from .reproduce import reproduce as run_reproduce

    set_threads(threads)
    run_reproduce(runs or None, out, quick=quick, page_only=page_only, grid=grid, seed=seed, progress=not quiet,
                  say=typer.echo)


@app.command()
def presets() -> None:
    """List the built-in presets with their matrices and training settings, and the training recipes."""
    from .presets import PRESETS, RECIPES

    with np.printoptions(precision=4, suppress=True, linewidth=120):
        for p in PRESETS.values():
            hmm = p.hmm
            typer.echo(f"{p.name}: {p.summary}")
            typer.echo(f"  M={hmm.n_states} states, K={hmm.n_outputs} outputs, T={p.seq_len}, epochs={p.epochs}, "
                       f"grad_clip={p.grad_clip}, batch={p.batch_size}, lr={p.lr}, num_seq={p.num_seq}, "
                       f"H={p.hidden}, d={p.noise_dim}")
            typer.echo("  transition:\n" + _indent(np.array2string(hmm.transition), 4))
            typer.echo("  emission:\n" + _indent(np.array2string(hmm.emission), 4))
            typer.echo("")
    typer.echo("training recipes (--recipe):")
    for r in RECIPES.values():
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        typer.echo(f"  {r.name}: {r.summary}" + (f" ({settings})" if settings else ""))


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 1."""
    try:
        with stop_signals_interrupt(sigint=False):  # `kill` ends a command as Ctrl-C does
            code = app(standalone_mode=False)
    except typer.TyperException as exc:  # the parser's own checks (types, unknown options)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `hmmrnn` or `hmmrnn zoo` alone: show the help
            exc.show()
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:  # Ctrl-C outside training
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except HmmrnnError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(130 if isinstance(exc, Interrupted) else 1)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:  # disk full, permissions, a path that is not what it should be
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    if code == 130:  # typer turns a KeyboardInterrupt (Ctrl-C, or SIGTERM) into a silent exit 130
        typer.echo("error: interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())
