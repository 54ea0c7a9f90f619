"""How the mechanism appears during training, from a run's checkpoints (docs/method.md §5.18)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import Result, fit_pca, generator
from ._neurons import switch_events
from ._fixed_points import critical_pairs
from ._perturb import expected_second_order

__all__ = ["TrainingEvolution", "training_evolution", "transition_rate"]


def transition_rate(labels: np.ndarray) -> tuple[float, float]:
    """Mean of 1/dwell over the dwells between consecutive label switches, and the mean dwell
    (docs/method.md §5.18). With fewer than two switches: rate 0 and dwell = the sequence length.

    Parameters
    ----------
    labels : (L,) integer labels.

    Returns
    -------
    (rate, mean dwell).
    """
    times = [t for t, _, _ in switch_events(labels)]
    if len(times) < 2:
        return 0.0, float(len(labels))
    dwells = np.diff(times)
    return float(np.mean(1.0 / dwells)), float(np.mean(dwells))


@dataclass
class TrainingEvolution(Result):
    """Per checkpoint epoch: transition rate, fractions of orbit states whose Jacobian has an unstable
    eigenvalue / a near-unit-circle complex pair, ‖E[δ2]‖, and the orbit in its own PC1–2 plane.

    epochs, transition_rate, mean_dwell, unstable_fraction, complex_fraction, drift_norm : (E,)
    drift : (E, H) E[δ2] per unit; pcs : (E, shown, 2); labels : (E, shown)
    bifurcation_epoch : first epoch where the complex fraction jumps by more than ``jump``; None if never
    started_from : for a model fine-tuned from a network trained on other HMMs (``lineage.json``), those
        stages ("fully3, epochs 1-620"), whose checkpoints are left out; "" otherwise
    """

    name = "training_evolution"
    steps: int
    jump: float
    seed: int
    epochs: list[int]
    transition_rate: np.ndarray
    mean_dwell: np.ndarray
    unstable_fraction: np.ndarray
    complex_fraction: np.ndarray
    drift_norm: np.ndarray
    drift: np.ndarray
    pcs: np.ndarray
    labels: np.ndarray
    bifurcation_epoch: int | None
    converged_rate: float
    started_from: str = ""

    def summary(self) -> str:
        bif = f"epoch {self.bifurcation_epoch}" if self.bifurcation_epoch is not None else "none found"
        start = f" (started from a network trained on {self.started_from})" if self.started_from else ""
        return (f"{len(self.epochs)} checkpoints (epochs {self.epochs[0]}-{self.epochs[-1]}){start}: bifurcation {bif}; "
                f"transition rate {self.transition_rate[0]:.3f} -> {self.converged_rate:.3f} (mean of the last "
                f"{min(6, len(self.epochs))}); complex fraction max {self.complex_fraction.max():.2f}")


def bifurcation_epoch(epochs: list[int], complex_fraction: np.ndarray, jump: float) -> int | None:
    """The first epoch whose critical-pair fraction exceeds the previous checkpoint's by more than
    ``jump`` (docs/method.md §5.18); None if none does."""
    jumps = np.flatnonzero(np.diff(np.asarray(complex_fraction, dtype=float)) > jump)
    return int(epochs[jumps[0] + 1]) if len(jumps) else None


def training_evolution(run_or_path: Any, *, steps: int = 2000, warmup: int = 10, eigen_every: int = 10,
                       trials: int = 20, jump: float = 0.02, shown: int = 500, seed: int = 0,
                       all_stages: bool = False) -> TrainingEvolution:
    """docs/method.md §5.18 from ``checkpoints/epoch_*.safetensors`` (``hmmrnn train --checkpoint-every K``).

    Every epoch's network runs the same noise: ``warmup`` steps from the same small random state,
    then ``steps`` steps with argmax labels. Jacobians diag(1[W_rec h_t + W_in x_{t+1} > 0]) W_rec
    at every ``eigen_every``-th step give the fraction of states with some |λ| > 1 and with a
    critical complex pair; E[δ2] (``expected_second_order``) at the post-warm-up state. The
    bifurcation epoch is the first checkpoint whose complex fraction exceeds the previous one's by
    more than ``jump``; the converged rate is the mean over the last 6 checkpoints. (The reference
    carried the state over from one epoch to the next; each epoch here starts from the same state,
    so the epochs can be analysed in any order.)

    A model fine-tuned from a network trained on another HMM (its ``lineage.json`` names each
    stage's preset) is followed from the last checkpoint before its own stages on: what appeared
    while it learnt another HMM is not evidence about this one. ``all_stages`` keeps every checkpoint.

    Parameters
    ----------
    run_or_path : a ``Run`` or a run folder with checkpoints.
    steps : noisy steps per epoch.
    warmup : steps before them.
    eigen_every : take the Jacobian at every k-th step.
    trials : trials of ``expected_second_order``.
    jump : the complex-fraction jump that marks the bifurcation.
    shown : steps kept per epoch for the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).
    all_stages : also follow the stages trained on other HMMs.

    Returns
    -------
    ``TrainingEvolution``: per checkpoint epoch the switch rate, mean dwell, unstable and
    complex fractions, E[δ2] (epochs, H); the bifurcation epoch and the converged rate.
    """
    from ..runs import Run, checkpoint_paths, judged_weights, load_run, load_tensors, model_from_weights, own_stages_start

    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    checkpoints = checkpoint_paths(run.path)
    first_own, earlier = own_stages_start(run.path)
    started_from = ""
    if earlier and not all_stages:
        # the starting network: the last checkpoint before the run's own stages
        start = max((epoch for epoch, _ in checkpoints if epoch < first_own), default=first_own)
        checkpoints = [(epoch, path) for epoch, path in checkpoints if epoch >= start]
        presets = ", ".join(dict.fromkeys(str(stage.get("preset")) for stage in earlier))
        started_from = f"{presets}, epochs {earlier[0]['epochs'][0]}-{earlier[-1]['epochs'][1]}"
    if len(checkpoints) < 2:
        raise NothingFound(f"{run.path} has {len(checkpoints)} checkpoint(s); training evolution needs at least 2 "
                          f"(train with --checkpoint-every K)")
    hidden, inputs = run.config.model.hidden, run.config.model.noise_dim
    gen = generator(stream(seed, "training_evolution", "noise"))
    h_start = 0.1 * (2 * torch.randn(hidden, generator=gen) - 1)
    noise = torch.randn(warmup + steps, inputs, generator=gen)
    rows: dict[str, list] = {k: [] for k in ("rate", "dwell", "unstable", "complex", "drift", "pcs", "labels")}
    epochs = []
    for epoch, path in checkpoints:
        tensors, _ = load_tensors(path)
        model = model_from_weights(run.config.model, judged_weights(tensors), str(path))
        model.requires_grad_(False)
        with torch.no_grad():
            trajectory = model.rollout(noise[None], h_start[None])[0]
            post = trajectory[warmup:]
            labels = model.readout(post).argmax(-1).numpy()
            idx = torch.arange(0, steps - 1, eigen_every)
            eig = torch.linalg.eigvals(model.jacobian(post[idx], noise[warmup + idx + 1])).numpy()
        finite = np.isfinite(post.numpy()).all()
        rate, dwell = transition_rate(labels)
        drift, _ = expected_second_order(model, trajectory[warmup - 1], trials=trials, seed=stream(seed, "training_evolution", "drift", epoch))
        rows["rate"].append(rate)
        rows["dwell"].append(dwell)
        rows["unstable"].append(float((np.abs(eig) > 1).any(-1).mean()))
        rows["complex"].append(float((critical_pairs(eig, im_floor=0.05) > 0).mean()))
        rows["drift"].append(drift)
        rows["pcs"].append(fit_pca(post.numpy()[:shown], 2).project(post.numpy()[:shown]) if finite
                           else np.full((min(shown, steps), 2), np.nan))
        rows["labels"].append(labels[:shown])
        epochs.append(epoch)
    complex_fraction = np.array(rows["complex"])
    bifurcation = bifurcation_epoch(epochs, complex_fraction, jump)
    rate = np.array(rows["rate"])
    drift = np.stack(rows["drift"])
    return TrainingEvolution(steps, jump, seed, epochs, rate, np.array(rows["dwell"]), np.array(rows["unstable"]),
                             complex_fraction, np.linalg.norm(drift, axis=1), drift, np.stack(rows["pcs"]),
                             np.stack(rows["labels"]), bifurcation, float(rate[-6:].mean()), started_from)
