"""Sweeps: a grid of runs (preset × hidden × noise_dim × seed), each an ordinary run folder, trained and
evaluated on this machine (a process pool) or on a Ray cluster (docs/method.md §2.2, §4.2).

Layout of a sweep folder::

    sweep.json                  the spec (a re-run must ask for the same sweep)
    cells/<preset>-h<H>-d<d>-s<seed>/
        ...                     a normal run folder (config, weights, history, checkpoints, metrics.json)
        sweep_cell.json         the cell's record, written last: the cell is finished once it exists
        sweep_worker.json       which process and host ran (or runs) the cell
    sweep_summary.csv           one row per cell
    figures/                    the paper's grid figures (``hmmrnn.plots.sweep``)

Re-running the same sweep skips finished cells, resumes unfinished ones from their last checkpoint
and retries failed ones; a finished cell is never trained again or overwritten. A cell that fails
(bad settings, diverging training, a killed worker) is recorded with its error and does not stop the
others.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import multiprocessing
import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ._textfiles import loads_settings
from .config import OLD_NAMES, SETTINGS, make_config, renamed_keys
from .errors import ConfigError, HmmrnnError, Interrupted
from .presets import PRESETS, RECIPES
from ._signals import stop_signals_interrupt
from ._threads import set_threads
from .runs import LOCK_FILE, atomic_write_text, checkpoint_paths, json_ready, read_history, read_json, run_lock, write_json

__all__ = ["SweepSpec", "Cell", "run_sweep", "sweep_report", "run_cell", "CELL_FILE", "SUMMARY_FILE"]

SPEC_FILE = "sweep.json"
CELLS_DIR = "cells"
CELL_FILE = "sweep_cell.json"
WORKER_FILE = "sweep_worker.json"
SUMMARY_FILE = "sweep_summary.csv"

#: make_config settings that a sweep sets per cell and therefore may not appear among its overrides
_PER_CELL = ("hidden", "noise_dim", "seed")


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    preset: str
    hidden: int
    noise_dim: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.preset}-h{self.hidden}-d{self.noise_dim}-s{self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    """The grid and how each cell is trained and evaluated.

    presets, hidden, noise_dim, seeds : the grid (their product, in that order).
    recipe : training recipe of every cell (``hmmrnn.RECIPES``).
    overrides : further ``hmmrnn.make_config`` keywords for every cell (``epochs``, ``lr``, ...).
    eval_n : sequences of the final evaluation; eval_seq_len : its T (None: the cell's training T;
        the paper's linear-chain grid used 100 for every model, docs/method.md §4.2).
    """

    presets: tuple[str, ...]
    hidden: tuple[int, ...] = (150,)
    noise_dim: tuple[int, ...] = (100,)
    seeds: tuple[int, ...] = (0,)
    recipe: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    eval_n: int = 5000
    eval_seq_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("presets", "hidden", "noise_dim", "seeds"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if not values:
                raise ConfigError(f"sweep needs at least one value for {name}")
            if len(set(values)) != len(values):
                raise ConfigError(f"repeated value in {name}: {list(values)}")
        unknown = [p for p in self.presets if p not in PRESETS]
        if unknown:
            raise ConfigError(f"unknown preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}")
        bad = [v for v in self.hidden + self.noise_dim if not isinstance(v, int) or v < 1]
        bad += [v for v in self.seeds if not isinstance(v, int) or v < 0]
        if bad:
            raise ConfigError(f"sizes must be positive integers and seeds non-negative integers, got {bad}")
        allowed = set(SETTINGS) - set(_PER_CELL)
        wrong = sorted(set(self.overrides) - allowed)
        if wrong:
            raise ConfigError(f"not a training setting a sweep can override: {', '.join(wrong)} "
                              f"(allowed: {', '.join(sorted(allowed))})")
        if self.eval_n < 2 or (self.eval_seq_len is not None and self.eval_seq_len < 2):
            raise ConfigError("eval_n and eval_seq_len must be at least 2")
        for cell in self.cells():  # every cell's settings must make a valid config before anything runs
            make_config(cell.preset, recipe=self.recipe, hidden=cell.hidden, noise_dim=cell.noise_dim, seed=cell.seed,
                        **self.overrides)

    def cells(self, only: Sequence[str] = ()) -> list[Cell]:
        """Every cell, presets outermost, seeds innermost; with ``only`` (shell-style patterns of cell
        names, ``"linear3-*"``) those matching one of them, and each pattern must match a cell."""
        cells = [Cell(*c) for c in itertools.product(self.presets, self.hidden, self.noise_dim, self.seeds)]
        for pattern in only:
            if not any(fnmatch.fnmatchcase(c.name, pattern) for c in cells):
                raise ConfigError(f"--only {pattern!r} matches no cell of this sweep (cells are named like "
                                  f"{cells[0].name})")
        return [c for c in cells if not only or any(fnmatch.fnmatchcase(c.name, p) for p in only)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        """Inverse of ``to_dict``; every key and type is checked, with errors in the spec's terms."""
        if not isinstance(data, dict):
            raise ConfigError(f"a sweep spec is a table/object of settings, got {type(data).__name__}")
        data = renamed_keys(data, OLD_NAMES)  # specs of earlier versions
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown sweep spec key(s) {unknown}; known keys: {', '.join(known)}")
        if "presets" not in data:
            raise ConfigError("a sweep spec needs presets, e.g. presets = [\"linear2\", \"linear3\"]")
        kinds = {"presets": str, "hidden": int, "noise_dim": int, "seeds": int}
        labels = {str: "preset names", int: "integers"}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in kinds:
                if not isinstance(value, list) or not all(isinstance(v, kinds[key]) and not isinstance(v, bool)
                                                          for v in value):
                    raise ConfigError(f"sweep spec {key} must be a list of {labels[kinds[key]]}, got {value!r}")
                value = tuple(value)
            elif key == "overrides" and not isinstance(value, dict):
                raise ConfigError(f"sweep spec overrides must be a table/object of settings, got {value!r}")
            elif key == "recipe" and not isinstance(value, str):
                raise ConfigError(f"sweep spec recipe must be a name, got {value!r}")
            elif key in ("eval_n", "eval_seq_len") and not (isinstance(value, int) or (value is None and key ==
                                                                                      "eval_seq_len")):
                raise ConfigError(f"sweep spec {key} must be an integer, got {value!r}")
            values[key] = value
        try:
            return cls(**values)
        except TypeError as exc:  # an override of the wrong type reaching make_config
            raise ConfigError(f"bad sweep spec overrides: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "SweepSpec":
        """Read a JSON or TOML sweep spec: the ``SweepSpec`` fields, with training overrides
        under ``overrides`` (TOML: an ``[overrides]`` table)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"sweep spec not found: {path}") from None
        try:
            data = loads_settings(text, path.suffix)
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                              f"{exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a sweep spec is a table of settings")
        return cls.from_dict(data)


# --------------------------------------------------------------------------- one cell


def run_cell(sweep_dir: str | Path, spec: dict[str, Any], cell: Cell, threads: int = 1) -> dict[str, Any]:
    """Train (or resume) and evaluate one cell; return and write its record. Never raises for a
    failure of the cell itself: the record says ``"status": "failed"`` with the error.

    Runs in a worker process (local pool or Ray task), so it takes the spec as a plain dict.
    """
    spec_obj = SweepSpec.from_dict(spec)
    cell_dir = Path(sweep_dir) / CELLS_DIR / cell.name
    record_path = cell_dir / CELL_FILE
    if record_path.exists():
        previous = read_json(record_path)
        if previous.get("status") == "done":
            return previous
    set_threads(threads)  # torch and numba: a worker uses its share of the cores, no more
    with stop_signals_interrupt(), run_lock(cell_dir, create=True):
        return _run_locked_cell(cell_dir, spec_obj, cell, threads)


def _run_locked_cell(cell_dir: Path, spec_obj: "SweepSpec", cell: Cell, threads: int) -> dict[str, Any]:
    from .training import final_evaluation, resume, train

    record_path = cell_dir / CELL_FILE
    write_json(cell_dir / WORKER_FILE, {"pid": os.getpid(), "host": socket.gethostname(), "threads": threads,
                                        "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    started = time.perf_counter()
    record: dict[str, Any] = {"cell": cell.name, **asdict(cell), "recipe": spec_obj.recipe}
    try:
        if (cell_dir / "config.json").exists() and checkpoint_paths(cell_dir):
            run = resume(cell_dir, progress=False, evaluate=False)
            record["resumed"] = True
        else:  # nothing to resume (or killed before its first checkpoint): start the cell afresh
            run = train(cell.preset, recipe=spec_obj.recipe, out=cell_dir, force=True, progress=False,
                        evaluate=False, hidden=cell.hidden, noise_dim=cell.noise_dim, seed=cell.seed, **spec_obj.overrides)
        evaluation = final_evaluation(run, n=spec_obj.eval_n, seq_len=spec_obj.eval_seq_len, figures=False)
        record.update(status="done", **_run_facts(cell_dir), emulates=evaluation.emulates,
                      verdict=evaluation.verdict, metrics=_headline_metrics(evaluation))
    except Interrupted as exc:  # stopped by the sweep (Ctrl-C, kill): resumable, not failed
        record.update(status="interrupted", error=str(exc))
    except Exception as exc:  # a failing cell is reported, never allowed to stop the sweep
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    record["seconds_this_session"] = round(time.perf_counter() - started, 2)
    record = json_ready(record)
    write_json(record_path, record)
    return record


def _run_facts(cell_dir: Path) -> dict[str, Any]:
    """Epochs, losses, training time and attempts from the run folder (correct across resumes)."""
    history = read_history(cell_dir / "history.csv")
    status = read_json(cell_dir / "status.json")
    attempts_file = cell_dir / "attempts.json"
    validated = [row["val_loss"] for row in history if row.get("val_loss") is not None]
    return {"epochs": history[-1]["epoch"] if history else 0,
            "final_train_loss": history[-1]["train_loss"] if history else None,
            "final_val_loss": validated[-1] if validated else None,
            "best_val_loss": status.get("best_val_loss"), "emulating_epoch": status.get("emulating_epoch"),
            "train_seconds": round(sum(row["seconds"] for row in history), 2),
            "attempts": 1 + (len(read_json(attempts_file)) if attempts_file.exists() else 0)}


def _headline_metrics(evaluation: Any) -> dict[str, Any]:
    """The scalar evaluation metrics a summary row holds (everything else stays in metrics.json): those
    of the training window, the long run's growth and the longest stationary window's likelihood gap."""
    metrics = evaluation.metrics
    longest = evaluation.windows[-1].metrics if len(evaluation.windows) > 1 else None
    out = {"n": metrics["n"], "seq_len": metrics["seq_len"],
           "growth": evaluation.long_run["growth"] if evaluation.long_run else None,
           "long_loglik_gap": longest["log_likelihood"]["gap"] if longest else None,
           "frequency_max_abs_diff": metrics["frequencies"]["max_abs_diff"],
           "volatility_relative_diff": metrics["volatility"]["relative_diff"],
           "transition_max_abs_diff": metrics["transition_matrix"]["max_abs_diff"],
           "loglik_gap": metrics["log_likelihood"]["gap"]}
    if "matched_distance" in metrics:
        d = metrics["matched_distance"]
        out.update(matched_distance=d["candidate"]["mean"], matched_distance_std=d["candidate"]["std"],
                   baseline_distance=d["baseline"]["mean"], baseline_distance_std=d["baseline"]["std"])
    if "refit" in metrics:
        out.update(refit_transition_max_abs_error=metrics["refit"]["transition_max_abs_error"],
                   refit_emission_max_abs_error=metrics["refit"]["emission_max_abs_error"])
    return out


# --------------------------------------------------------------------------- the sweep


def run_sweep(spec: SweepSpec, out: str | Path, *, backend: str = "local", workers: int | None = None,
              threads: int | None = None, address: str | None = None, gpus_per_cell: float = 0.0,
              only: Sequence[str] = (), progress: bool = True,
              report: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every unfinished cell of ``spec`` into the sweep folder ``out`` and write the summary and figures.

    Parameters
    ----------
    backend : ``"local"`` (a process pool on this machine) or ``"ray"`` (Ray tasks; ``address``
        connects to a running cluster, otherwise a local one is started and stopped again).
    workers : cells at a time (local: default the CPU count divided by ``threads``; ray: unused,
        the cluster's resources decide).
    threads : threads per cell, torch's and numba's (default: local 1 when several workers share the machine; ray 1).
    gpus_per_cell : Ray GPU request per cell (cells then train on ``cuda`` only if the overrides say so).
    only : shell-style patterns of cell names (``"linear3-*"``): run only the unfinished cells that match
        one (the summary still lists every cell); each pattern must match a cell of the spec.
    report : called with each cell's record as it finishes.

    Returns
    -------
    The records of every cell, in grid order.
    """
    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend {backend!r}; choose local or ray")
    out = Path(out)
    selected = spec.cells(only)
    with run_lock(out, create=True):  # one sweep process per folder; each cell is locked by its worker
        _claim(out, spec)
        todo = [c for c in selected if not _finished(out, c)]
        cpus = os.cpu_count() or 1
        if backend == "local":
            threads = threads or (1 if (workers or cpus) > 1 else cpus)
            workers = workers or max(1, cpus // threads)
            _run_local(out, spec, todo, workers, threads, progress, report)
        else:
            _run_ray(out, spec, todo, threads or 1, address, gpus_per_cell, progress, report)
        sweep_report(out)
        return [_record(out, c) for c in spec.cells()]


def _claim(out: Path, spec: SweepSpec) -> None:
    """Create the sweep folder, or check that an existing one holds the same sweep."""
    path = out / SPEC_FILE
    if path.exists():
        existing = read_json(path)
        if existing != spec.to_dict():
            raise HmmrnnError(f"{out} holds a different sweep ({path}); use another --out or the same settings")
        return
    if out.exists() and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise HmmrnnError(f"{out} exists and is not a sweep folder; choose an empty or new folder")
    (out / CELLS_DIR).mkdir(parents=True, exist_ok=True)
    write_json(path, spec.to_dict())


def _finished(out: Path, cell: Cell) -> bool:
    path = out / CELLS_DIR / cell.name / CELL_FILE
    return path.exists() and read_json(path).get("status") == "done"


def _record(out: Path, cell: Cell) -> dict[str, Any]:
    path = out / CELLS_DIR / cell.name / CELL_FILE
    if path.exists():
        return renamed_keys(read_json(path), OLD_NAMES)
    return {"cell": cell.name, **asdict(cell), "status": "not run"}


def _failed(out: Path, cell: Cell, spec: SweepSpec, error: str) -> dict[str, Any]:
    """Record a cell whose worker died without writing a record itself."""
    record = {"cell": cell.name, **asdict(cell), "recipe": spec.recipe, "status": "failed", "error": error}
    (out / CELLS_DIR / cell.name).mkdir(parents=True, exist_ok=True)
    write_json(out / CELLS_DIR / cell.name / CELL_FILE, record)
    return record


def _stop_workers() -> None:
    """Stop the running cells: each worker gets SIGTERM (which :func:`run_cell` turns into an
    interrupt, leaving its cell resumable) and is waited for."""
    workers = multiprocessing.active_children()  # the pool's processes are this process's only children
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=120)


def _progress_bar(total: int, progress: bool, backend: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"sweep ({backend})", unit="cell", disable=not progress, dynamic_ncols=True)


def _run_local(out: Path, spec: SweepSpec, cells: list[Cell], workers: int, threads: int, progress: bool,
               report: Callable | None) -> None:
    """A process pool, one fresh process per cell (``max_tasks_per_child=1``: each cell starts with
    clean memory and its own thread settings), fed one cell per free worker so that no cell waits in
    the pool's queue. If a worker dies (killed, out of memory), the pool breaks: the cells that were
    running go to a fresh pool once; a cell whose worker dies a second time is recorded as failed.
    Ctrl-C or SIGTERM to this process stops the running workers too (their cells stay resumable),
    starts no further cell, and raises ``KeyboardInterrupt``."""
    context = multiprocessing.get_context("spawn")
    deaths: dict[Cell, int] = {}
    pending = list(cells)
    with _progress_bar(len(cells), progress, "local") as bar:
        while pending:
            broken: list[Cell] = []
            with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                     max_tasks_per_child=1) as pool:
                running: dict[Future, Cell] = {}
                try:
                    with stop_signals_interrupt():
                        while pending or running:
                            while pending and len(running) < workers and not broken:
                                try:
                                    future = pool.submit(run_cell, str(out), spec.to_dict(), pending[0], threads)
                                except BrokenProcessPool:  # a worker died; its future says so below
                                    break
                                running[future] = pending.pop(0)
                            if not running:  # the pool broke before anything ran: the cells wait for a fresh one
                                break
                            finished, _ = wait(running, return_when=FIRST_COMPLETED)
                            for future in finished:
                                cell = running.pop(future)
                                try:
                                    record = future.result()
                                except BrokenProcessPool:
                                    broken.append(cell)
                                    continue
                                except Exception as exc:  # pickling or start-up errors: the cell's, not the sweep's
                                    record = _failed(out, cell, spec, f"{type(exc).__name__}: {exc}")
                                bar.update(1)
                                if report is not None:
                                    report(record)
                            if broken and not running:
                                break
                except KeyboardInterrupt:
                    _stop_workers()
                    raise
            for cell in broken:
                if _finished(out, cell):  # it finished just before the pool broke
                    bar.update(1)
                    continue
                deaths[cell] = deaths.get(cell, 0) + 1
                if deaths[cell] >= 2:
                    record = _failed(out, cell, spec, "worker process died twice (killed or out of memory)")
                    bar.update(1)
                    if report is not None:
                        report(record)
                else:
                    pending.insert(0, cell)


def _run_ray(out: Path, spec: SweepSpec, cells: list[Cell], threads: int, address: str | None,
             gpus_per_cell: float, progress: bool, report: Callable | None) -> None:
    """One Ray task per cell asking for ``threads`` CPUs (and ``gpus_per_cell`` GPUs); Ray schedules
    them on the cluster and re-runs a task once if its worker dies. With a cluster, ``out`` must be
    on a file system every node sees."""
    try:
        import ray
    except ImportError:
        raise HmmrnnError("the ray backend needs Ray: pip install 'hmmrnn[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": os.cpu_count() or 1}))
    try:
        task = ray.remote(num_cpus=threads, num_gpus=gpus_per_cell, max_retries=1)(run_cell)
        refs = {task.remote(str(out.resolve()), spec.to_dict(), cell, threads): cell for cell in cells}
        with _progress_bar(len(cells), progress, "ray") as bar:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                cell = refs[done[0]]
                try:
                    record = ray.get(done[0])
                except Exception as exc:  # the task's worker died twice, or Ray lost it
                    record = _failed(out, cell, spec, f"{type(exc).__name__}: {exc}")
                bar.update(1)
                if report is not None:
                    report(record)
    finally:
        if started_here:
            ray.shutdown()


# --------------------------------------------------------------------------- summary and figures

_SUMMARY_COLUMNS = ("cell", "preset", "hidden", "noise_dim", "seed", "recipe", "status", "emulates", "verdict", "epochs",
                    "emulating_epoch", "final_train_loss", "final_val_loss", "best_val_loss", "train_seconds",
                    "attempts", "n", "seq_len", "frequency_max_abs_diff", "volatility_relative_diff",
                    "transition_max_abs_diff", "loglik_gap", "growth", "long_loglik_gap", "matched_distance", "matched_distance_std",
                    "baseline_distance", "baseline_distance_std", "refit_transition_max_abs_error",
                    "refit_emission_max_abs_error", "error")


def sweep_report(out: str | Path) -> Path:
    """(Re)build ``sweep_summary.csv`` and the figures from what is on disk; returns the CSV path.

    The same files on disk give byte-identical CSV and figures.
    """
    out = Path(out)
    if not (out / SPEC_FILE).exists():
        raise HmmrnnError(f"not a sweep folder (no {SPEC_FILE}): {out}")
    with run_lock(out):
        return _write_sweep_report(out)


def _write_sweep_report(out: Path) -> Path:
    from .plots import save_figure
    from .plots.sweep import sweep_figures

    spec = SweepSpec.from_dict(read_json(out / SPEC_FILE))
    records = [_record(out, c) for c in spec.cells()]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = {**r, **r.get("metrics", {})}
        writer.writerow({k: _csv_value(row.get(k)) for k in _SUMMARY_COLUMNS})
    atomic_write_text(out / SUMMARY_FILE, buffer.getvalue())
    matrices = {r["cell"]: _transition_matrices(out / CELLS_DIR / r["cell"]) for r in records
                if r["status"] == "done"}
    for name, figure in sweep_figures(spec, records, matrices).items():
        save_figure(figure, out / "figures" / name)
    return out / SUMMARY_FILE


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _transition_matrices(cell_dir: Path) -> dict[str, np.ndarray] | None:
    path = cell_dir / "metrics.json"
    if not path.exists():
        return None
    t = read_json(path)["transition_matrix"]
    return {"hmm": np.array(t["hmm"], dtype=float), "candidate": np.array(t["candidate"], dtype=float)}
