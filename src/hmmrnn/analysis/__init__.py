"""Reverse engineering of trained networks: each analysis is ``analysis(run_or_model, ..., seed=...) -> Result``.

A Result is a dataclass of numbers and arrays with ``save(path)`` (JSON) and ``summary()`` (one
line); its figure comes from the matching function in :mod:`hmmrnn.plots`. :func:`analyze` runs a
selection on a run folder and writes ``analysis/<name>.json`` and ``analysis/<name>.png|pdf``.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from ..errors import HmmrnnError
from ..runs import ANALYSIS_DIR
from ._common import Result
from .evolution import TrainingEvolution, training_evolution, transition_rate
from .fixed_points import (FixedPoints, JacobianSpectra, classify, critical_pairs, find_fixed_points, jacobian_spectra,
                           mobius)
from .neurons import (Ablation, Connectivity, KickNeurons, ablation, connectivity, kick_neurons, switch_events,
                      switch_rates, transition_rates)
from .perturb import (GainSweep, NoiseDrift, Resonance, expected_second_order, gain_sweep, noise_drift,
                      stochastic_resonance)
from .transitions import NoiseSensitivity, TransitionPoints, locate_transition, noise_sensitivity
from .regions import GROUPS, Residency, SubspaceResidency, residency, rollout_residency, subspace_residency
from .geometry import (InputFreeDynamics, LatentGeometry, OutputPairSubspaces, ReadoutAlignment, VarianceContours,
                       input_free_dynamics, latent_geometry, output_pair_subspaces, readout_alignment,
                       variance_contours)

__all__ = ["Result", "LatentGeometry", "latent_geometry", "InputFreeDynamics", "input_free_dynamics",
           "FixedPoints", "find_fixed_points", "classify", "mobius", "VarianceContours", "variance_contours",
           "OutputPairSubspaces", "output_pair_subspaces", "ReadoutAlignment", "readout_alignment",
           "JacobianSpectra", "jacobian_spectra", "Residency", "residency", "rollout_residency", "GROUPS",
           "SubspaceResidency", "subspace_residency",
           "KickNeurons", "kick_neurons", "Connectivity", "connectivity", "Ablation", "ablation", "switch_events",
           "transition_rates", "switch_rates", "Resonance", "stochastic_resonance", "NoiseDrift", "noise_drift",
           "expected_second_order", "TransitionPoints", "locate_transition", "NoiseSensitivity",
           "noise_sensitivity", "GainSweep", "gain_sweep", "critical_pairs", "TrainingEvolution",
           "training_evolution", "transition_rate", "ANALYSES", "analyze", "ANALYSIS_DIR"]



@dataclass(frozen=True)
class _Entry:
    compute: Callable[..., Result]
    plot: str  # name of the figure function in hmmrnn.plots


#: Every analysis ``hmmrnn analyze`` knows, by name, in the order it runs them.
ANALYSES: dict[str, _Entry] = {
    "latent_geometry": _Entry(latent_geometry, "plot_latent_geometry"),
    "input_free": _Entry(input_free_dynamics, "plot_input_free"),
    "fixed_points": _Entry(find_fixed_points, "plot_fixed_points"),
    "variance_contours": _Entry(variance_contours, "plot_variance_contours"),
    "output_pairs": _Entry(output_pair_subspaces, "plot_output_pairs"),
    "readout_alignment": _Entry(readout_alignment, "plot_readout_alignment"),
    "jacobian_spectra": _Entry(jacobian_spectra, "plot_jacobian_spectra"),
    "residency": _Entry(residency, "plot_residency"),
    "subspace_residency": _Entry(subspace_residency, "plot_subspace_residency"),
    "kick_neurons": _Entry(kick_neurons, "plot_kick_neurons"),
    "connectivity": _Entry(connectivity, "plot_connectivity"),
    "ablation": _Entry(ablation, "plot_ablation"),
    "gain_sweep": _Entry(gain_sweep, "plot_gain_sweep"),
    "transition_points": _Entry(locate_transition, "plot_transition_points"),
    "noise_sensitivity": _Entry(noise_sensitivity, "plot_noise_sensitivity"),
    "noise_drift": _Entry(noise_drift, "plot_noise_drift"),
    "stochastic_resonance": _Entry(stochastic_resonance, "plot_stochastic_resonance"),
    "training_evolution": _Entry(training_evolution, "plot_training_evolution"),
}


#: keyword argument of an analysis -> the earlier analysis whose result it takes
_REUSED = {"kicks": "kick_neurons", "points": "transition_points"}
#: analyses that end with a HmmrnnError when the network has nothing of the kind (no usable transition)
_MAY_FIND_NOTHING = ("transition_points", "noise_sensitivity", "training_evolution")


def analyze(run_dir: str | Path, *, only: list[str] | None = None, seed: int = 0, figures: bool = True,
            progress: bool = True, report: Callable[[str, Result, float], None] | None = None,
            settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Result]:
    """Run analyses on a run folder, writing ``analysis/<name>.json`` and figures.

    Parameters
    ----------
    only : names from :data:`ANALYSES` (default: all).
    settings : per analysis name, keyword arguments for it (e.g. ``{"residency": {"n_states": 1000}}``).
    report : called after each analysis with (name, result, seconds, why_not), e.g. to print its
        summary; for an analysis that found nothing to report (no usable transition), result is None
        and why_not says why, and no JSON is written for it.
    """
    from ..runs import run_lock

    names = list(ANALYSES) if not only else list(only)
    unknown = [n for n in names + list(settings or {}) if n not in ANALYSES]
    if unknown:
        raise HmmrnnError(f"unknown analysis {', '.join(unknown)}; choose from {', '.join(ANALYSES)}")
    with run_lock(run_dir):  # one writer per run folder
        return _analyze(run_dir, names, seed, figures, progress, report, settings)


def _analyze(run_dir: str | Path, names: list[str], seed: int, figures: bool, progress: bool,
             report: Callable | None, settings: dict | None) -> dict[str, Result]:
    from .. import plots
    from ..runs import check_run_files, load_run

    run = load_run(run_dir)
    check_run_files(run.path)
    out = Path(run_dir) / ANALYSIS_DIR
    results: dict[str, Result] = {}
    for name in tqdm(names, desc="analyses", unit="analysis", disable=not progress):
        started = time.perf_counter()
        compute = ANALYSES[name].compute
        parameters = inspect.signature(compute).parameters
        # later analyses build on earlier ones: kick groups, transition points
        reuse = {arg: results[source] for arg, source in _REUSED.items() if source in results and arg in parameters}
        try:
            result = compute(run, seed=seed, **reuse, **(settings or {}).get(name, {}))
        except HmmrnnError as exc:
            if name not in _MAY_FIND_NOTHING:
                raise
            # nothing to report is a finding, not a failure: say so and go on with the others
            (out / f"{name}.json").unlink(missing_ok=True)
            if report is not None:
                report(name, None, time.perf_counter() - started, str(exc))
            continue
        result.save(out / f"{name}.json")
        if figures:
            plots.save_figure(getattr(plots, ANALYSES[name].plot)(result), out / name)
        results[name] = result
        if report is not None:
            report(name, result, time.perf_counter() - started, None)
    return results
