"""Reverse engineering of trained networks: each analysis is ``analysis(run_or_model, ..., seed=...) -> Result``.

A Result is a dataclass of numbers and arrays with ``save(path)`` (JSON) and ``summary()`` (one
line). ``ANALYSES`` holds one registration per analysis (``register``: its function, its
figure, what it shows, what it builds on); ``analyze`` runs a selection on a run folder and writes
``analysis/<name>.json`` and ``analysis/<name>.png|pdf``. A new analysis is one module plus one
``register`` call. The method behind each: docs/method.md §5.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from .. import plots
from ..errors import HmmrnnError, NothingFound
from ..runs import ANALYSIS_DIR
from ._common import Result
from ._evolution import TrainingEvolution, training_evolution, transition_rate
from ._fixed_points import (FixedPoints, JacobianSpectra, classify, critical_pairs, fixed_points, jacobian_spectra,
                           mobius)
from ._neurons import (Ablation, Connectivity, KickNeurons, ablation, connectivity, kick_neurons, switch_events,
                      switch_rates, transition_rates)
from ._perturb import (GainSweep, NoiseDrift, Resonance, expected_second_order, gain_sweep, noise_drift,
                      stochastic_resonance)
from ._transitions import NoiseSensitivity, TransitionPoints, transition_points, noise_sensitivity
from ._regions import GROUPS, Residency, SubspaceResidency, residency, rollout_residency, subspace_residency
from ._geometry import (InputFreeDynamics, LatentGeometry, OutputPairSubspaces, ReadoutAlignment, VarianceContours,
                       input_free, latent_geometry, output_pairs, readout_alignment,
                       variance_contours)

__all__ = ["Result", "LatentGeometry", "latent_geometry", "InputFreeDynamics", "input_free",
           "FixedPoints", "fixed_points", "classify", "mobius", "VarianceContours", "variance_contours",
           "OutputPairSubspaces", "output_pairs", "ReadoutAlignment", "readout_alignment",
           "JacobianSpectra", "jacobian_spectra", "Residency", "residency", "rollout_residency", "GROUPS",
           "SubspaceResidency", "subspace_residency",
           "KickNeurons", "kick_neurons", "Connectivity", "connectivity", "Ablation", "ablation", "switch_events",
           "transition_rates", "switch_rates", "Resonance", "stochastic_resonance", "NoiseDrift", "noise_drift",
           "expected_second_order", "TransitionPoints", "transition_points", "NoiseSensitivity",
           "noise_sensitivity", "GainSweep", "gain_sweep", "critical_pairs", "TrainingEvolution",
           "training_evolution", "transition_rate", "Analysis", "ANALYSES", "register", "analyze", "progress_line",
           "ANALYSIS_DIR"]



@dataclass(frozen=True)
class Analysis:
    """One registered analysis: everything ``hmmrnn analyze`` and the report need to know about it.

    name : how ``--only``, ``analysis/<name>.json`` and the report call it.
    compute : ``compute(run, *, seed, **settings) -> Result``.
    figure : ``figure(result) -> matplotlib Figure``.
    reading : what the analysis shows, in plain words (the report prints the numbers found below it).
    builds_on : keyword of ``compute`` → the earlier analysis whose result it takes (kick groups,
        transition points); an analysis whose input found nothing finds nothing either.

    An analysis that finds nothing of its kind raises ``NothingFound``; that is a
    finding, stored and reported with its reason.
    """

    name: str
    compute: Callable[..., Result]
    figure: Callable[[Result], Any]
    reading: str
    builds_on: dict[str, str] = field(default_factory=dict)


ANALYSES: dict[str, Analysis] = {}
"""Every analysis ``hmmrnn analyze`` knows, by name, in the order it runs them."""


def register(compute: Callable[..., Result], *, figure: Callable[[Result], Any], reading: str,
             builds_on: dict[str, str] | None = None, name: str | None = None) -> Analysis:
    """Add an analysis to ``ANALYSES``, named ``name`` (default: the function's name), after those
    registered before it, whose results it may take through ``builds_on``; returns its entry.

    Parameters
    ----------
    compute : ``compute(run, *, seed, **settings) -> Result``; raises ``NothingFound``
        when there is nothing of its kind.
    figure : ``figure(result) -> matplotlib Figure``.
    reading : one plain sentence on what the analysis shows (the report prints it).
    builds_on : keyword of ``compute`` → name of an earlier analysis whose result it takes.
    name : registry name (default ``compute.__name__``).

    Returns
    -------
    The ``Analysis`` entry.
    """
    entry = Analysis(name or compute.__name__, compute, figure, reading, dict(builds_on or {}))
    parameters = inspect.signature(compute).parameters
    if entry.name in ANALYSES:
        raise ValueError(f"analysis {entry.name!r} is already registered")
    if "seed" not in parameters:
        raise ValueError(f"analysis {entry.name!r} must take a seed")
    for keyword, source in entry.builds_on.items():
        if source not in ANALYSES or keyword not in parameters:
            raise ValueError(f"analysis {entry.name!r} builds on {source!r} through {keyword!r}: register "
                             f"{source!r} first and give {entry.name} a {keyword!r} argument")
    ANALYSES[entry.name] = entry
    return entry


register(latent_geometry, figure=plots.plot_latent_geometry,
         reading="How the hidden states spread: the share of variance in the leading principal components and how "
                 "well the angle in the PC1-PC2 plane predicts the output.")
register(input_free, figure=plots.plot_input_free,
         reading="What the network does with the noise switched off: whether every starting state converges, and to "
                 "what.")
register(fixed_points, figure=plots.plot_fixed_points,
         reading="Points the noise-free map leaves in place (or nearly: slow points), their stability, and whether "
                 "the origin attracts.")
register(variance_contours, figure=plots.plot_variance_contours,
         reading="Where the orbit lives at different input-noise scales; with no biases the clouds must be exact "
                 "rescalings of each other.")
register(output_pairs, figure=plots.plot_output_pairs,
         reading="For three outputs: whether each pair of outputs reuses the two-output motif in its own subspace.")
register(readout_alignment, figure=plots.plot_readout_alignment,
         reading="How much the readout vectors lie in the plane where the activity varies most.")
register(jacobian_spectra, figure=plots.plot_jacobian_spectra,
         reading="Local stability along the orbit: unstable directions and near-unit-circle rotations of the "
                 "Jacobian.")
register(residency, figure=plots.plot_residency,
         reading="How long the output stays put when the network is released from each state: clusters (long), kick "
                 "zones (short) and transitions (immediate).")
register(subspace_residency, figure=plots.plot_subspace_residency,
         reading="The residency decomposition inside each output-pair subspace (three outputs).")
register(kick_neurons, figure=plots.plot_kick_neurons,
         reading="The few units whose input turns positive just before each kind of switch and rarely otherwise.")
register(connectivity, figure=plots.plot_connectivity, builds_on={"kicks": "kick_neurons"},
         reading="The populations that feed the kick units with opposite signs, and their weights.")
register(ablation, figure=plots.plot_ablation, builds_on={"kicks": "kick_neurons"},
         reading="The causal test: silencing the kick units of a direction against silencing as many random units.")
register(gain_sweep, figure=plots.plot_gain_sweep, builds_on={"kicks": "kick_neurons"},
         reading="Switch rates and critical eigenvalue pairs as the gain of the kick units, of their noise inputs and "
                 "of a control set changes.")
register(transition_points, figure=plots.plot_transition_points,
         reading="A point inside a cluster and the entry of a deterministic transition on a recorded orbit.")
register(noise_sensitivity, figure=plots.plot_noise_sensitivity, builds_on={"points": "transition_points"},
         reading="How far trajectories from those two points spread under replayed, mixed and fresh noise.")
register(noise_drift, figure=plots.plot_noise_drift,
         reading="The average second-order effect of the noise on the state (E[delta2]): the drift that noise alone "
                 "adds.")
register(stochastic_resonance, figure=plots.plot_stochastic_resonance,
         reading="Emulation quality and switch rate as the test-time noise is scaled.")
register(training_evolution, figure=plots.plot_training_evolution,
         reading="How the mechanism appeared during training: switch rate, Jacobian fractions and the bifurcation "
                 "epoch across checkpoints (for a model fine-tuned from a network trained on another HMM, from the "
                 "checkpoint it started from on).")


def progress_line(name: str, result: Result | None, seconds: float, why_not: str | None) -> str:
    """The one line ``hmmrnn analyze`` and ``hmmrnn demo`` print per analysis (the arguments of
    ``analyze``'s ``report`` callback): its summary, or why it found nothing.

    Parameters
    ----------
    name : the analysis.
    result : its result, or None when it found nothing.
    seconds : how long it took.
    why_not : why it found nothing (None otherwise).

    Returns
    -------
    One line of text.
    """
    return f"{name} ({seconds:.1f} s): {result.summary() if result is not None else 'nothing found: ' + str(why_not)}"


def analyze(run_dir: str | Path, *, only: list[str] | None = None, seed: int = 0, figures: bool = True,
            progress: bool = True, report: Callable[[str, Result, float], None] | None = None,
            settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Result]:
    """Run analyses on a run folder, writing ``analysis/<name>.json`` and figures.

    Parameters
    ----------
    run_dir : the run folder.
    seed : seed of every analysis.
    figures : also save each figure (PNG and PDF).
    progress : show a progress bar.
    only : names from ``ANALYSES`` (default: all).
    settings : per analysis name, keyword arguments for it (e.g. ``{"residency": {"n_states": 1000}}``).
    report : called after each analysis with (name, result, seconds, why_not), e.g. to print its
        summary; for an analysis that found nothing to report (no usable transition), result is None
        and why_not says why, and no JSON is written for it.

    Returns
    -------
    {name: Result} of the analyses that found something.
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
    from ..runs import check_run_files, load_run, write_json

    run = load_run(run_dir)
    check_run_files(run.path)
    out = Path(run_dir) / ANALYSIS_DIR
    results: dict[str, Result] = {}
    why_nothing: dict[str, str] = {}  # analyses of this call that found nothing, and why
    for name in tqdm(names, desc="analyses", unit="analysis", disable=not progress):
        started = time.perf_counter()
        entry = ANALYSES[name]
        reuse = {keyword: results[source] for keyword, source in entry.builds_on.items() if source in results}
        empty = [source for source in entry.builds_on.values() if source in why_nothing]
        try:
            if empty:
                raise NothingFound(f"builds on {empty[0]}, which found nothing ({why_nothing[empty[0]]})")
            result = entry.compute(run, seed=seed, **reuse, **(settings or {}).get(name, {}))
        except NothingFound as exc:  # a finding, not a failure: stored with its reason
            why_nothing[name] = str(exc)
            write_json(out / f"{name}.json", {"name": name, "nothing_found": str(exc),
                                             "summary": f"nothing found: {exc}"})
            (out / f"{name}.png").unlink(missing_ok=True)
            (out / f"{name}.pdf").unlink(missing_ok=True)
            if report is not None:
                report(name, None, time.perf_counter() - started, str(exc))
            continue
        result.save(out / f"{name}.json")
        if figures:
            plots.save_figure(entry.figure(result), out / name)
        results[name] = result
        if report is not None:
            report(name, result, time.perf_counter() - started, None)
    return results
