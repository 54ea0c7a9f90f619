"""``hmmrnn reproduce``: the paper's figure set on trained networks, our numbers next to the paper's.

For every model (the zoo's by default, or given run folders, each copied into ``OUT/models/`` so that
nothing is written into a user's run) the analyses behind the paper's figures run and one page is
written, ``OUT/reproduction.md`` and ``OUT/reproduction.html`` (figures embedded), with

* per preset, each quantity the paper reports next to ours, and whether they agree under a rule
  stated on the page before any number (``AGREEMENT``);
* per claim of the paper (docs/method.md §6), reproduced / partly / not / not tested, with the numbers
  that decide it;
* what we measure beyond the paper: the verdict at every horizon and the log-likelihood gap.

The paper's numbers (``PAPER``) were read from the authors' committed figures and file names;
the bifurcation epochs and converged switch rates come with the authors' own mapping of figure files
to models, which is inferred from epoch ranges (docs/method.md §6 says which).
"""

from __future__ import annotations

import base64
import csv
import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .analysis import analyze, progress_line
from .errors import HmmrnnError, RunDirError
from .runs import (ANALYSIS_DIR, CONFIG_FILE, LOCK_FILE, METRICS_FILE, atomic_write_bytes, atomic_write_text,
                   load_run, prepare_run_dir, read_json, run_lock, write_json)
from .zoo import ZOO_DIR, _copy_entry, list_models

__all__ = ["reproduce", "PAPER", "AGREEMENT", "CLAIMS", "GRID_TRENDS", "QUICK_SETTINGS"]

PAGE_MARKDOWN, PAGE_HTML, MODELS_DIR, FIGURES_DIR = "reproduction.md", "reproduction.html", "models", "figures"
_MARKER = ".hmmrnn-reproduction"  # an output folder this command made, which it may write again
_STOPPED_FILE = "reproduction.json"  # per model copy: why its analyses stopped early (null: they did not)

#: The analyses a reproduction runs (the paper's figures), in the registry's order.
FIGURE_SET = ("latent_geometry", "input_free", "fixed_points", "output_pairs", "readout_alignment", "residency",
              "kick_neurons", "connectivity", "ablation", "gain_sweep", "training_evolution")

#: Small settings for ``--quick`` (a CI test on a small model): every analysis runs, none is precise.
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    "latent_geometry": dict(steps=2000, shown=200),
    "input_free": dict(n_initial=10, steps=50, pca_steps=2000),
    "fixed_points": dict(n_initial=16, iterations=100, orbit_steps=2000, shown=200),
    "output_pairs": dict(steps=3000, contour_steps=500),
    "readout_alignment": dict(steps=500),
    "residency": dict(n_states=100, n_samples=4, max_steps=20),
    "kick_neurons": dict(steps=2000, min_events=3, shown=200),
    "connectivity": dict(activity_steps=50),
    "ablation": dict(n_random=2, chains=4, steps=200),
    "gain_sweep": dict(gains=(0.0, 1.0, 2.0), steps=100),
    "training_evolution": dict(steps=200, trials=3, shown=100)}


@dataclass(frozen=True)
class PaperTargets:
    """What the paper reports for one preset (None: not reported). Ranges are (low, high)."""

    pc1_percent: tuple[float, float]
    pc2_percent: tuple[float, float]
    readout_projection: float | None = None
    bifurcation_epoch: tuple[float, float] | None = None
    converged_switch_rate: tuple[float, float] | None = None
    pair_pc1_percent: dict[str, float] = field(default_factory=dict)


#: The paper's numbers per preset, read from the authors' committed figures (H = 150, d = 100; PCA on
#: 30,000 noisy steps; readout projection on the PC1–PC2 plane from 5,000 steps, mean over outputs 0 and
#: 2 and over 3 seeds; bifurcation epoch and converged switch rate from their training-dynamics figures).
PAPER: dict[str, PaperTargets] = {
    "linear2": PaperTargets((56.3, 56.3), (13.6, 13.6), 0.51, (60, 60), (0.047, 0.047)),
    "linear3": PaperTargets((52.8, 53.9), (16.0, 16.5), 0.32, (50, 50), (0.11, 0.11)),
    "linear4": PaperTargets((48.3, 49.0), (17.1, 17.5), 0.265, (100, 100), (0.10, 0.12)),
    "linear5": PaperTargets((44.9, 44.9), (15.4, 15.4), 0.27, (330, 350), (0.08, 0.08)),
    "fully3": PaperTargets((53.6, 53.6), (26.7, 26.7), None, (110, 110), (0.107, 0.107),
                           {"0-1": 77.6, "0-2": 80.3, "1-2": 85.6}),
    "cyclic4": PaperTargets((42.8, 42.8), (27.6, 27.6), None, (100, 100), (0.088, 0.088),
                            {"0-1": 70.7, "0-2": 64.0, "1-2": 69.5}),
}
#: The paper's largest residency times over its models (with rollouts capped at 60 steps).
PAPER_MAX_RESIDENCY = (31.0, 56.0)

#: When our number and the paper's agree; fixed before any comparison was made, never tuned to a row.
AGREEMENT = {
    "PC1 / PC2 share": "within 5 percentage points of the paper's value (or range)",
    "readout projection": "within 0.05 of the paper's mean projection",
    "max residency": "inside the paper's range 31–56 steps",
    "bifurcation epoch": "within a factor 1.5 of the paper's epoch",
    "converged switch rate": "within 25 % of the paper's rate",
    "output-pair PC1 share": "within 10 percentage points for every pair",
}

#: The paper's claims (docs/method.md §6), each with the rule that decides it on one model.
CLAIMS = {
    "emulation": "The network's emissions match the HMM's (paper: matched distance at the HMM-vs-HMM baseline, "
                 "transition-matrix errors ≤ 0.01). Reproduced: our verdict says yes at every horizon; partly: "
                 "the training window passes and a longer horizon does not.",
    "single fixed point": "Without input every state falls to one fixed point; the noise sustains the orbit. "
                          "Reproduced: every input-free start converges to one point and no other attracting "
                          "fixed point is found.",
    "three zones": "The orbit splits into clusters, kick zones and transitions by residency time. Reproduced: "
                   "all three groups hold states; partly: two of them.",
    "kick neurons": "A few units trigger each switch direction and are causal, fed push-pull by two integrating "
                    "populations. Reproduced: kick units for at least two directions; silencing them lowers "
                    "their direction's switch rate by 10 % or more and below the rates with as many random "
                    "units silenced (their mean minus two standard deviations); and the populations excite "
                    "one kick group while inhibiting the other. Partly: some of these.",
    "bifurcation": "During training complex Jacobian eigenvalues appear near the unit circle and the switch rate "
                   "drops to its converged value. Reproduced: a bifurcation epoch is found and the converged "
                   "rate is at most half the first checkpoint's (the paper: from 0.6–0.8 to 0.05–0.11); partly: "
                   "one of the two.",
    "compositional reuse": "For three outputs that are not a chain, each output pair reuses the two-output motif "
                           "in its own low-dimensional subspace. Reproduced: every pair's PC1 share is at least "
                           "60 % (the paper's 64–86 %).",
}


#: The paper's trends over its linear-chain grid (M = 2–5 × H × d, judged at T = 100), each with the rule that
#: decides it on a sweep's summary; fixed before the grid was run. 0.1 is the verdict's resolution of the
#: matched distance (docs/method.md §4).
GRID_TRENDS = {
    "d = 1 worst": "For every M and H, the matched distance at d = 1 is the largest of the noise dimensions "
                   "run. Reproduced: for every (M, H); partly: for some.",
    "d ≥ 10 at the baseline": "For d ≥ 10 the matched distance is at or below the HMM-vs-HMM baseline: "
                              "distance − baseline ≤ 0.1. Reproduced: every such cell; partly: at least half.",
    "H matters little": "For each M and d ≥ 10, the cells' distance − baseline differ by at most 0.1 across H. "
                        "Reproduced: every (M, d); partly: at least half.",
}


def reproduce(runs: list[str | Path] | None = None, out: str | Path = "reproduction", *, quick: bool = False,
              page_only: bool = False, grid: str | Path | None = None, seed: int = 0, progress: bool = True,
              say: Callable[[str], None] = print) -> Path:
    """Run the paper's figure set on ``runs`` (default: every zoo model) and write the comparison page,
    ``out/reproduction.md`` with its figures in ``out/figures/`` and the same page with the figures
    embedded, ``out/reproduction.html``.

    Parameters
    ----------
    runs : run folders; each is copied (weights, config, history, metrics, checkpoints) into
        ``out/models/<folder name>`` and analysed there, so nothing is written into it.
    out : the output folder: new, empty, or written by an earlier ``reproduce``.
    quick : small analysis settings (``QUICK_SETTINGS``), for a smoke test; the numbers are not
        precise.
    page_only : rebuild the page from the analyses an earlier reproduction left in ``out/models``,
        running none (after a change of the page or its rules).
    grid : a sweep folder (``hmmrnn sweep``) over the paper's linear-chain grid: its summary becomes
        the page's grid table, its figures are copied beside the page and ``GRID_TRENDS`` are judged.
    seed : seed of every analysis.
    progress : show a progress bar per model.
    say : receives one line per step.

    Returns
    -------
    The path of ``out/reproduction.md`` (``reproduction.html`` lies beside it).
    """
    out = Path(out)
    sources = [Path(r) for r in runs] if runs else [ZOO_DIR / e["name"] for e in list_models()]
    for source in sources:
        if not (source / CONFIG_FILE).is_file():
            raise RunDirError(f"not a run folder (no config.json): {source}")
    grid_rows = _read_grid(Path(grid)) if grid is not None else None
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise HmmrnnError(f"two runs share a folder name ({', '.join(sorted(names))}); give folders with distinct "
                          "names")
    with run_lock(out, create=True):
        if any(p.name not in (LOCK_FILE, _MARKER) for p in out.iterdir()) and not (out / _MARKER).exists():
            raise RunDirError(f"output folder already exists and is not an earlier reproduction: {out}")
        (out / _MARKER).touch()
        started = time.perf_counter()
        models = []
        for source in sources:
            target = out / MODELS_DIR / source.name
            if page_only:
                if not (target / _STOPPED_FILE).is_file():
                    raise RunDirError(f"no earlier analyses of {source.name} in {target}; run without --page-only")
                models.append(_model_numbers(target, read_json(target / _STOPPED_FILE)["stopped"]))
                continue
            with run_lock(target, create=True):
                prepare_run_dir(target, force=True)
                _copy_entry(source, target)
            say(f"{source.name}: analysing a copy in {target}")
            settings = QUICK_SETTINGS if quick else None
            try:
                analyze(target, only=list(FIGURE_SET), seed=seed, progress=progress, settings=settings,
                        report=lambda *line, n=source.name: say(f"  {n}: {progress_line(*line)}"))
                stopped = None
            except HmmrnnError as exc:  # e.g. a diverging network: a finding about this model, not the end
                stopped = str(exc)
                say(f"  {source.name}: analyses stopped: {stopped}")
            write_json(target / _STOPPED_FILE, {"stopped": stopped})
            models.append(_model_numbers(target, stopped))
        page = _page(models, quick, None if page_only else time.perf_counter() - started, out)
        if grid_rows is not None:
            _grid_section(page, Path(grid), grid_rows, out)
        atomic_write_text(out / PAGE_MARKDOWN, page.markdown())
        atomic_write_text(out / PAGE_HTML, page.html(out))
        say(f"wrote {out / PAGE_MARKDOWN} and {out / PAGE_HTML} in {time.perf_counter() - started:.0f} s")
        return out / PAGE_MARKDOWN


# --------------------------------------------------------------------------- numbers of one model


def _model_numbers(run_dir: Path, stopped: str | None = None) -> dict[str, Any]:
    """Everything the page says about one analysed model, as plain numbers; ``stopped``: why its
    analyses stopped early (those not run are marked with it)."""
    run = load_run(run_dir)
    results = {}
    for name in FIGURE_SET:
        path = run_dir / ANALYSIS_DIR / f"{name}.json"
        results[name] = read_json(path) if path.exists() else {"nothing_found": stopped or "not run"}
    metrics = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else None
    return {"name": run_dir.name, "preset": run.config.preset, "epochs": len(run.history),
            "recipe": run.config.train.recipe, "path": run_dir, "results": results, "metrics": metrics,
            "stopped": stopped}


def _found(result: dict[str, Any]) -> bool:
    return "nothing_found" not in result


def _pc_shares(model: dict[str, Any]) -> tuple[float, float] | None:
    geometry = model["results"]["latent_geometry"]
    if not _found(geometry):
        return None
    ratio = geometry["explained_variance_ratio"]
    return 100 * ratio[0], 100 * ratio[1]


def _max_residency(model: dict[str, Any]) -> float | None:
    result = model["results"]["residency"]
    return float(np.max(result["residency"])) if _found(result) else None


def _pair_shares(model: dict[str, Any]) -> dict[str, float]:
    result = model["results"]["output_pairs"]
    if not _found(result):
        return {}
    return {f"{p['pair'][0]}-{p['pair'][1]}": 100 * p["explained_variance_ratio"][0]
            for p in result["pairs"] if p["n_states"] > 0}


# --------------------------------------------------------------------------- comparisons


def _within(value: float | None, low: float, high: float, slack: float) -> str:
    if value is None:
        return "not measured"
    return "agrees" if low - slack <= value <= high + slack else "differs"


def _range_text(low: float, high: float, fmt: str) -> str:
    return format(low, fmt) if low == high else f"{format(low, fmt)}–{format(high, fmt)}"


def _quantity_rows(model: dict[str, Any]) -> list[list[str]]:
    """[quantity, ours, paper, agreement] rows of one model."""
    target = PAPER.get(model["preset"] or "")
    results = model["results"]
    rows: list[list[str]] = []
    shares = _pc_shares(model)
    if target is not None:
        ours = "—" if shares is None else f"{shares[0]:.1f} / {shares[1]:.1f} %"
        agree = ("not measured" if shares is None else
                 "agrees" if _within(shares[0], *target.pc1_percent, 5) == _within(shares[1], *target.pc2_percent,
                                                                                    5) == "agrees" else "differs")
        rows.append(["PC1 / PC2 share", ours, f"{_range_text(*target.pc1_percent, '.1f')} / "
                     f"{_range_text(*target.pc2_percent, '.1f')} %", agree])
        if target.readout_projection is not None:
            readout = results["readout_alignment"]
            value = readout["mean_projection"] if _found(readout) else None
            rows.append(["readout projection on PC1–PC2", "—" if value is None else f"{value:.3f}",
                         f"{target.readout_projection:.3f}",
                         _within(value, target.readout_projection, target.readout_projection, 0.05)])
    longest = _max_residency(model)
    rows.append(["max residency (steps)", "—" if longest is None else f"{longest:.1f}",
                 f"{_range_text(*PAPER_MAX_RESIDENCY, '.0f')} (over all models)",
                 _within(longest, *PAPER_MAX_RESIDENCY, 0)])
    evolution = results["training_evolution"]
    if target is not None and target.bifurcation_epoch is not None:
        epoch = evolution.get("bifurcation_epoch") if _found(evolution) else None
        low, high = target.bifurcation_epoch
        inherited = evolution.get("started_from") if _found(evolution) else ""
        ours = ("—" if epoch is None else str(epoch)) + (f" (from epoch {evolution['epochs'][0]}; it started from "
                                                         f"a network trained on {inherited})" if inherited else "")
        rows.append(["bifurcation epoch", ours, _range_text(low, high, ".0f"),
                     "not found" if epoch is None else _within(epoch, low / 1.5, high * 1.5, 0)])
    if target is not None and target.converged_switch_rate is not None:
        rate = evolution.get("converged_rate") if _found(evolution) else None
        low, high = target.converged_switch_rate
        rows.append(["converged switch rate (per step)", "—" if rate is None else f"{rate:.3f}",
                     _range_text(low, high, ".3f"), _within(rate, 0.75 * low, 1.25 * high, 0)])
    if target is not None and target.pair_pc1_percent:
        pairs = _pair_shares(model)
        ours = ", ".join(f"{k}: {v:.1f}" for k, v in pairs.items()) or "—"
        paper = ", ".join(f"{k}: {v:.1f}" for k, v in target.pair_pc1_percent.items())
        agree = ("not measured" if not pairs else "agrees" if all(
            abs(pairs.get(k, -100.0) - v) <= 10 for k, v in target.pair_pc1_percent.items()) else "differs")
        rows.append(["output-pair PC1 share (%)", ours, paper, agree])
    sweep = results["gain_sweep"]
    if _found(sweep):
        kick = [r for r in sweep["rows"] if r["manipulation"] == "kick" and r["direction"] == sweep["rows"][0][
            "direction"]]
        ends = [r for r in kick if np.isfinite(r["critical_mean"])]
        if len(ends) >= 2:
            rows.append([f"critical pairs, kick gain {ends[0]['gain']:g} → {ends[-1]['gain']:g}",
                         f"{ends[0]['critical_mean']:.1f} → {ends[-1]['critical_mean']:.1f}",
                         "≈2–5 → ≈8–10 (μ 0 → 1.8)",
                         "agrees" if ends[-1]["critical_mean"] > ends[0]["critical_mean"] else "differs"])
    return rows


def _claim_outcomes(model: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Per claim (``CLAIMS``): (outcome, the numbers that decide it) on one model."""
    r = model["results"]
    outcomes: dict[str, tuple[str, str]] = {}

    metrics = model["metrics"]
    if metrics is None:
        outcomes["emulation"] = ("not tested", "no metrics.json (never evaluated)")
    else:
        windows = metrics.get("windows", {})
        first = next(iter(windows), None)
        failed = [c for c in metrics.get("checks", []) if c.get("status") == "fail"]
        gap = ", ".join(f"{w}: {v['log_likelihood']['gap']:+.4f}" for w, v in windows.items() if "log_likelihood" in v)
        text = f"verdict {metrics.get('verdict')}; log-likelihood gap per window {gap or '—'}"
        if failed:
            text += "; failing: " + ", ".join(f"{c['name']} ({c.get('window') or 'long run'})" for c in failed)
        if metrics.get("emulates"):
            outcomes["emulation"] = ("reproduced", text)
        elif first is not None and not any(c.get("window") == first for c in failed):
            outcomes["emulation"] = ("partly", text)
        else:
            outcomes["emulation"] = ("not", text)

    free, points = r["input_free"], r["fixed_points"]
    if _found(free) and _found(points):
        others = [p for p in points["points"] if p["kind"] in ("fixed point", "fixed ray")
                  and (p["stability"].startswith("stable") or p["stability"] == "attracting ray")]
        origin = points.get("origin") or {}
        single = bool(free["converged"]) and not others
        outcomes["single fixed point"] = ("reproduced" if single else "not",
                                          f"input-free starts converge: {bool(free['converged'])} (spread "
                                          f"{free['final_spread']:.2g}); origin attracts: "
                                          f"{origin.get('attracting')}; other attracting points: {len(others)}")
    else:
        outcomes["single fixed point"] = ("not tested", free.get("nothing_found") or points.get("nothing_found"))

    residency = r["residency"]
    if _found(residency):
        fractions = {k: v["fraction"] for k, v in residency["group_summary"].items()}
        held = sum(f > 0 for f in fractions.values())
        outcomes["three zones"] = ({3: "reproduced", 2: "partly"}.get(held, "not"),
                                   ", ".join(f"{k} {100 * f:.1f} %" for k, f in fractions.items()))
    else:
        outcomes["three zones"] = ("not tested", residency["nothing_found"])

    kicks, ablation, connectivity = r["kick_neurons"], r["ablation"], r["connectivity"]
    parts, passed = [], 0
    directions = [d for d in kicks.get("directions", []) if d.get("units")] if _found(kicks) else []
    parts.append(f"kick units for {len(directions)} direction(s)")
    passed += len(directions) >= 2
    if _found(ablation) and ablation["per_direction"]:
        # causal: silencing the kick units slows the switches by 10 % or more, and more than silencing
        # random units does (below their mean by two standard deviations)
        causal = [d["ratio_kick"] <= 0.9 and d["kick_ablated"] < d["random_mean"] - 2 * d["random_std"]
                  for d in ablation["per_direction"]]
        parts.append("silencing: " + ", ".join(f"{d['direction']} ×{d['ratio_kick']:.2f} (random ×"
                                               f"{d['ratio_random']:.2f})" for d in ablation["per_direction"]))
        passed += all(causal)
    else:
        parts.append("no ablation (no kick units)")
    if _found(connectivity):
        b = connectivity["block_means"]
        push_pull = b["pop1->group1"] < 0 < b["pop1->group2"] and b["pop2->group2"] < 0 < b["pop2->group1"]
        parts.append("population→group blocks " + ", ".join(f"{k} {v:+.3f}" for k, v in b.items()))
        passed += push_pull
    else:
        parts.append("no populations (" + connectivity["nothing_found"] + ")")
    outcomes["kick neurons"] = ({3: "reproduced", 0: "not"}.get(passed, "partly"), "; ".join(parts))

    evolution = r["training_evolution"]
    if _found(evolution):
        rates = evolution["transition_rate"]
        epoch = evolution["bifurcation_epoch"]
        dropped = len(rates) > 1 and evolution["converged_rate"] <= 0.5 * rates[0]
        outcomes["bifurcation"] = ("reproduced" if epoch is not None and dropped else
                                   "partly" if epoch is not None or dropped else "not",
                                   f"bifurcation epoch {epoch}; switch rate {rates[0]:.3f} at epoch "
                                   f"{evolution['epochs'][0]} → converged {evolution['converged_rate']:.3f}"
                                   + (f" (it started from a network trained on {evolution['started_from']}, whose "
                                      "stages are left out)" if evolution.get("started_from") else ""))
    else:
        outcomes["bifurcation"] = ("not tested", evolution["nothing_found"])

    if model["preset"] in ("fully3", "cyclic4"):
        pairs = _pair_shares(model)
        outcomes["compositional reuse"] = (("reproduced" if pairs and all(v >= 60 for v in pairs.values()) and
                                            len(pairs) == 3 else "partly" if pairs else "not"),
                                           ", ".join(f"pair {k}: PC1 {v:.1f} %" for k, v in pairs.items())
                                           or "no pair holds the labels long enough")
    return outcomes


def _trend_rows(models: list[dict[str, Any]]) -> list[list[str]]:
    """Across the linear chains: PC1 share and readout projection fall with M (the paper's trends)."""
    chain = sorted((m for m in models if (m["preset"] or "").startswith("linear")), key=lambda m: m["preset"])
    if len(chain) < 2:
        return []
    rows = []
    shares = [(m["preset"], _pc_shares(m)) for m in chain]
    values = [s[0] for _, s in shares if s is not None]
    if len(values) == len(chain):
        falling = all(a > b for a, b in zip(values, values[1:]))
        rows.append(["PC1 share falls with M", ", ".join(f"{p} {s[0]:.1f}" for p, s in shares),
                     "56.3, 53.4, 48.7, 44.9", "reproduced" if falling else "not"])
    projections = [m["results"]["readout_alignment"].get("mean_projection") for m in chain]
    if all(p is not None for p in projections):
        falling = all(a > b for a, b in zip(projections, projections[1:]))
        rows.append(["readout projection falls with M", ", ".join(f"{m['preset']} {p:.3f}"
                                                                 for m, p in zip(chain, projections)),
                     "0.51, 0.32, 0.265, 0.27", "reproduced" if falling else "not"])
    return rows


# --------------------------------------------------------------------------- the grid


def _read_grid(sweep_dir: Path) -> list[dict[str, Any]]:
    """The finished cells of a sweep's ``sweep_summary.csv`` (numbers parsed; empty fields None)."""
    from .sweep import SUMMARY_FILE

    path = sweep_dir / SUMMARY_FILE
    if not path.is_file():
        raise RunDirError(f"not a finished sweep (no {SUMMARY_FILE}): {sweep_dir}")
    rows = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = dict(raw)
            for key in ("hidden", "noise_dim", "seed", "epochs"):
                row[key] = int(raw[key]) if raw.get(key) else None
            for key in ("matched_distance", "baseline_distance", "transition_max_abs_diff", "loglik_gap"):
                row[key] = float(raw[key]) if raw.get(key) else None
            rows.append(row)
    return rows


def _grid_trends(rows: list[dict[str, Any]]) -> list[list[str]]:
    """[trend, the numbers, outcome] rows for ``GRID_TRENDS`` over the cells with a matched distance
    (the mean over seeds per (preset, H, d))."""
    cells: dict[tuple[str, int, int], list[float]] = {}
    for r in rows:
        if r["matched_distance"] is not None and r["baseline_distance"] is not None:
            cells.setdefault((r["preset"], r["hidden"], r["noise_dim"]), []).append(
                r["matched_distance"] - r["baseline_distance"])
    excess = {key: float(np.mean(values)) for key, values in cells.items()}

    def outcome(passed: list[bool], half_is_partly: bool) -> str:
        if not passed:
            return "not tested"
        if all(passed):
            return "reproduced"
        return "partly" if (sum(passed) >= len(passed) / 2 if half_is_partly else any(passed)) else "not"

    trends = []
    worst = {}
    for preset, hidden in sorted({(p, h) for p, h, _ in excess}):
        by_d = {d: v for (p, h, d), v in excess.items() if (p, h) == (preset, hidden)}
        if 1 in by_d and len(by_d) > 1:
            worst[(preset, hidden)] = max(by_d, key=by_d.get) == 1
    trends.append(["d = 1 worst", ", ".join(f"{p} H={h}: {'yes' if w else 'no'}" for (p, h), w in worst.items())
                   or "—", outcome(list(worst.values()), False)])
    wide = {key: v for key, v in excess.items() if key[2] >= 10}
    trends.append(["d ≥ 10 at the baseline", f"{sum(v <= 0.1 for v in wide.values())} of {len(wide)} cells; "
                   f"distance − baseline {min(wide.values(), default=float('nan')):+.3f} to "
                   f"{max(wide.values(), default=float('nan')):+.3f}", outcome([v <= 0.1 for v in wide.values()], True)])
    spreads = {}
    for preset, d in sorted({(p, d) for p, _, d in wide}):
        values = [v for (p, _, dd), v in wide.items() if (p, dd) == (preset, d)]
        if len(values) > 1:
            spreads[(preset, d)] = max(values) - min(values)
    trends.append(["H matters little", ", ".join(f"{p} d={d}: {s:.3f}" for (p, d), s in spreads.items()) or "—",
                   outcome([s <= 0.1 for s in spreads.values()], True)])
    return trends


def _grid_section(page: "_Page", sweep_dir: Path, rows: list[dict[str, Any]], root: Path) -> None:
    """The grid table (one row per cell), the trends and the sweep's figures, appended to ``page``."""
    page.add("h2", "The linear-chain grid")
    n = {r["n"] for r in rows if r.get("n")}
    lengths = {r["seq_len"] for r in rows if r.get("seq_len")}
    page.add("p", f"{len(rows)} cells of `hmmrnn sweep` ({sweep_dir.name}), evaluated on N = "
                  f"{', '.join(sorted(n)) or '—'} sequences of T = {', '.join(sorted(lengths)) or '—'}. The paper "
                  "ran M = 2–5 × H ∈ {50, 150, 200} × d ∈ {1, 10, 100, 200} × 3 seeds (docs/sweeps.md gives the "
                  "command for the whole grid). Matched distances are means over the candidate's sequences; "
                  "'baseline' is HMM samples against HMM samples.")
    page.add("table", (["trend", "the numbers", "outcome"], _grid_trends(rows)))
    page.add("table", (["trend", "what decides it"], [[k, v] for k, v in GRID_TRENDS.items()]))
    table = []
    for r in sorted(rows, key=lambda r: (r["preset"], r["hidden"] or 0, r["noise_dim"] or 0, r["seed"] or 0)):
        distance, baseline = r["matched_distance"], r["baseline_distance"]
        table.append([r["preset"], r["hidden"], r["noise_dim"], r["seed"], r["status"], r.get("verdict") or "—",
                      r["epochs"], _number(distance), _number(baseline),
                      "—" if distance is None or baseline is None else f"{distance - baseline:+.3f}",
                      _number(r["transition_max_abs_diff"]),
                      "—" if r["loglik_gap"] is None else f"{r['loglik_gap']:+.4f}"])
    page.add("table", (["preset", "H", "d", "seed", "status", "verdict", "epochs", "matched distance", "baseline",
                        "distance − baseline", "transition max |Δ|", "log-likelihood gap"], table))
    for figure in sorted((sweep_dir / "figures").glob("*.png")):
        _add_figure(page, figure, f"grid_{figure.name}", f"grid: {figure.stem}", root)


def _add_figure(page: "_Page", figure: Path, name: str, caption: str, root: Path) -> None:
    """Copy ``figure`` to ``root/figures/name`` (beside the page, so that the page and its figures can
    be kept without the models or the sweep) and add it to ``page``."""
    copy = root / FIGURES_DIR / name
    copy.parent.mkdir(exist_ok=True)
    atomic_write_bytes(copy, figure.read_bytes())
    page.add("figure", (copy, caption, root))


# --------------------------------------------------------------------------- the page


@dataclass
class _Page:
    """The page as a list of blocks, rendered to Markdown or HTML: (kind, content)."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, content: Any) -> None:
        self.blocks.append((kind, content))

    def markdown(self) -> str:
        lines: list[str] = []
        for kind, content in self.blocks:
            if kind in ("h1", "h2", "h3"):
                lines += ["#" * int(kind[1]) + " " + content, ""]
            elif kind == "p":
                lines += [content, ""]
            elif kind == "table":
                header, rows = content
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
                lines.append("")
            elif kind == "figure":
                path, caption, root = content
                lines += [f"![{caption}]({path.relative_to(root).as_posix()})", ""]
        return "\n".join(lines)

    def html(self, root: Path) -> str:
        parts = []
        for kind, content in self.blocks:
            if kind in ("h1", "h2", "h3"):
                parts.append(f"<{kind}>{html.escape(content)}</{kind}>")
            elif kind == "p":
                parts.append(f"<p>{html.escape(content)}</p>")
            elif kind == "table":
                header, rows = content
                head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                               for row in rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif kind == "figure":
                path, caption, _ = content
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}"
                 "th{background:#f4f4f4}img{max-width:100%}")
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>hmmrnn reproduction</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _page(models: list[dict[str, Any]], quick: bool, seconds: float | None, root: Path) -> _Page:
    page = _Page()
    page.add("h1", "Reproducing the paper with hmmrnn")
    page.add("p", "Generated by `hmmrnn reproduce`" + (" --quick (small analysis settings: the numbers are "
                                                      "not precise)" if quick else "") +
             f" on {len(models)} model(s)" + (f" in {seconds:.0f} s" if seconds is not None else
                                              " (the page rebuilt from the analyses on disk)") +
             ". Each model's analyses lie under "
             f"`{MODELS_DIR}/<model>/analysis/`. The paper's numbers were read from the authors' committed "
             "figures (docs/method.md §6).")
    page.add("h2", "When a number agrees")
    page.add("table", (["quantity", "rule"], [[k, v] for k, v in AGREEMENT.items()]))
    page.add("h2", "The paper's claims")
    outcomes = [_claim_outcomes(model) for model in models]
    claim_rows = [[claim, model["name"], *found[claim]]
                  for claim in CLAIMS for model, found in zip(models, outcomes) if claim in found]
    page.add("table", (["claim", "model", "outcome", "numbers"], claim_rows))
    page.add("table", (["claim", "what decides it"], [[k, v] for k, v in CLAIMS.items()]))
    trends = _trend_rows(models)
    if trends:
        page.add("h3", "Trends across the linear chains")
        page.add("table", (["trend", "ours", "paper", "outcome"], trends))
    page.add("h2", "Per model: our numbers next to the paper's")
    for model in models:
        page.add("h3", f"{model['name']} (preset {model['preset']}, recipe {model['recipe']}, "
                       f"{model['epochs']} epochs)")
        if model["preset"] not in PAPER:
            page.add("p", "No paper numbers for this HMM; our numbers only.")
        if model["stopped"]:
            page.add("p", f"The analyses stopped: {model['stopped']}.")
        page.add("table", (["quantity", "ours", "paper", "agreement"], _quantity_rows(model)))
        shown = ("latent_geometry", "residency", "gain_sweep", "training_evolution") + (
            ("output_pairs",) if model["preset"] in ("fully3", "cyclic4") else ())
        for name in shown:
            figure = model["path"] / ANALYSIS_DIR / f"{name}.png"
            if figure.exists():
                _add_figure(page, figure, f"{model['name']}_{name}.png", f"{model['name']}: {name}", root)
    page.add("h2", "Beyond the paper: every horizon")
    page.add("p", "The paper judged its networks on windows of the training length from h0 = 0. Our verdict "
                  "also judges windows cut from late in long chains at T = 100 and 300 (docs/method.md §4); "
                  "the log-likelihood gap (nats per step, HMM log-likelihood of HMM samples minus that of the "
                  "network's) is a check the paper's metrics do not make.")
    rows = []
    for model in models:
        windows = (model["metrics"] or {}).get("windows", {})
        for window, values in windows.items():
            checks = values.get("checks", [])
            statuses = {c.get("status") for c in checks}
            rows.append([model["name"], window, "fail" if "fail" in statuses else "undecided" if "undecided" in
                         statuses else "pass" if checks else "—",
                         f"{values.get('log_likelihood', {}).get('gap', float('nan')):+.4f}",
                         _number(values.get("matched_distance", {}).get("candidate", {}).get("mean"))])
    page.add("table", (["model", "window", "checks", "log-likelihood gap", "matched distance"], rows))
    return page


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
