"""Where the network dwells and where it jumps: residency times along the orbit (docs/method.md §5.8)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import Result, argmax_labels, fit_pca, generator, resolve, simulate

__all__ = ["Residency", "residency", "rollout_residency", "SubspaceResidency", "subspace_residency", "GROUPS"]

GROUPS = ("transition", "kick zone", "cluster")
"""The residency groups, coded 0, 1, 2 in ``Residency.groups`` (−1: no group)."""


@torch.no_grad()
def rollout_residency(model, states: torch.Tensor, *, n_samples: int, max_steps: int, seed: int,
                      noise_scale: float = 1.0, block: int = 8,
                      count_switch_step: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residency time and logit sign changes of noisy rollouts from each state, all in parallel.

    From every state h (with o* = argmax W_out h and ℓ₀ its logit) ``n_samples`` independent noisy
    rollouts step until the argmax label differs from o* or ``max_steps`` steps are taken. The
    residency time of a rollout is the number of steps taken (1 if the first step switches). Along
    the rollout the increments ℓ_t − ℓ_{t−1} of the o*-logit are tracked: a change of sign between
    successive non-zero increments counts; the first increment (from ℓ₀) never counts; a zero
    increment is not counted but resets the remembered sign, so the next non-zero one counts
    (docs/method.md §5.8). As in the paper's code, the increment into the step that switches is not
    looked at (the rollout stops before it); ``count_switch_step=True`` counts it too (this package's
    definition before 2026-12-02: +0.13 sign changes per state on the zoo's ``linear3``, residency
    times unchanged; BENCHMARKS.md).

    All n × n_samples rollouts advance together through the rollout engine, ``block`` steps at a
    time; rollouts that finished are dropped between blocks, so the matrix products follow the
    surviving ones. Per block one (n · n_samples, block, d) array of noise is drawn from the seeded
    generator and rollout r uses row r, so each rollout's noise does not depend on which others are
    still alive.

    Parameters
    ----------
    states : (n, H)
    model : a ``NoiseRNN``.
    n_samples : rollouts per state.
    max_steps : longest rollout.
    seed : seed of the rollouts' noise.
    noise_scale : scale of the input noise.
    block : steps per batch of the engine.
    count_switch_step : also count the switching step's sign change.

    Returns
    -------
    residency : (n,) mean residency time over the rollouts; sign_changes : (n,) mean sign changes;
    switched : (n,) fraction of rollouts that switched (did not run out of ``max_steps`` unchanged).
    """
    n = states.shape[0]
    gen = generator(seed)
    h = states.repeat_interleave(n_samples, dim=0)
    owner = torch.arange(n).repeat_interleave(n_samples)
    target = model.readout(states).argmax(-1).repeat_interleave(n_samples)
    last_logit = model.readout(h).gather(1, target[:, None])[:, 0]
    last_sign = torch.zeros(len(h))
    changes = torch.zeros(len(h))
    total_time = torch.zeros(n)
    total_changes = torch.zeros(n)
    total_switched = torch.zeros(n)
    alive = torch.arange(len(h))
    done_steps = 0
    while done_steps < max_steps and len(alive):
        # ``block`` steps of every live rollout through the engine, then the bookkeeping of each step
        length = min(block, max_steps - done_steps)
        x = torch.randn(n * n_samples, length, model.noise_dim, generator=gen)[alive] * noise_scale
        hidden = model.rollout(x, h)
        logits = model.readout(hidden)  # (A, L, K)
        logit = logits.gather(2, target[alive][:, None, None].expand(-1, length, 1))[..., 0]  # (A, L)
        sign = torch.sign(torch.diff(torch.cat([last_logit[:, None], logit], dim=1), dim=1))
        previous = torch.cat([last_sign[:, None], sign[:, :-1]], dim=1)
        step_numbers = torch.arange(done_steps + 1, done_steps + length + 1)
        counted = ((sign != 0) & (sign != previous) & (step_numbers > 1)).float()  # the first never counts
        running = changes[:, None] + torch.cumsum(counted, dim=1)
        switched = logits.argmax(-1) != target[alive][:, None]
        ends = switched | (step_numbers == max_steps)
        done = ends.any(dim=1)
        if done.any():
            first = ends[done].float().argmax(dim=1)  # the step of each finished rollout, within the block
            finished = owner[alive[done]]
            total_time.index_add_(0, finished, step_numbers[first].float())
            counted_at_end = running[done].gather(1, first[:, None])[:, 0]
            if not count_switch_step:  # the switching step's own increment is left out
                counted_at_end = counted_at_end - (counted[done] * switched[done]).gather(1, first[:, None])[:, 0]
            total_changes.index_add_(0, finished, counted_at_end)
            total_switched.index_add_(0, finished, switched[done].gather(1, first[:, None])[:, 0].float())
        keep = ~done
        alive, h, last_logit, last_sign, changes = (alive[keep], hidden[keep, -1], logit[keep, -1], sign[keep, -1],
                                                    running[keep, -1])
        done_steps += length
    return ((total_time / n_samples).numpy(), (total_changes / n_samples).numpy(),
            (total_switched / n_samples).numpy())


@dataclass
class Residency(Result):
    """Residency-time decomposition of the orbit into transitions, kick zones and clusters.

    residency, sign_changes : (n,) means over rollouts per recorded state
    unstable_counts : (n,) eigenvalues of diag(1[W_rec h > 0]) W_rec with |λ| > 1 (input-free)
    confidence : (n,) max softmax probability of the readout
    groups : (n,) 0 transition (RT < 2), 1 kick zone (2 ≤ RT ≤ 8), 2 cluster (RT > 8 and confidence
        > 0.8), −1 none
    pc, labels : (n, 2), (n,) PC1–2 coordinates and argmax outputs of the states
    group_summary : per group: fraction of states, mean RT, mean sign changes, mean unstable count
    """

    name = "residency"
    n_states: int
    n_samples: int
    max_steps: int
    seed: int
    thresholds: dict[str, float]
    residency: np.ndarray
    sign_changes: np.ndarray
    unstable_counts: np.ndarray
    confidence: np.ndarray
    groups: np.ndarray
    pc: np.ndarray
    labels: np.ndarray
    explained_variance_ratio: np.ndarray
    group_summary: dict[str, dict[str, float]]

    def summary(self) -> str:
        parts = [f"{g} {100 * s['fraction']:.0f}% (RT {s['mean_residency']:.1f}, unstable "
                 f"{s['mean_unstable']:.2f})" for g, s in self.group_summary.items()]
        return f"residency of {self.n_states} orbit states: max RT {self.residency.max():.0f}; " + ", ".join(parts)


def _decompose(model, states: torch.Tensor, *, n_samples: int, max_steps: int, transition_below: float,
               kick_up_to: float, cluster_confidence: float, seed: int, count_switch_step: bool) -> dict[str, Any]:
    """Residency time, sign changes, unstable counts, confidence, groups and per-group summary of
    ``states`` (n, H) — the part of docs/method.md §5.8 that the global and the subspace versions share."""
    rt, sc, _ = rollout_residency(model, states, n_samples=n_samples, max_steps=max_steps, seed=seed,
                                  count_switch_step=count_switch_step)
    with torch.no_grad():
        eig = torch.linalg.eigvals(model.jacobian(states)).numpy()
        confidence = torch.softmax(model.readout(states), -1).max(-1).values.numpy()
    unstable = (np.abs(eig) > 1).sum(1)
    groups = np.full(len(states), -1)
    groups[rt < transition_below] = 0
    groups[(rt >= transition_below) & (rt <= kick_up_to)] = 1
    groups[(rt > kick_up_to) & (confidence > cluster_confidence)] = 2

    def mean(values: np.ndarray, code: int) -> float:
        return float(values[groups == code].mean()) if (groups == code).any() else float("nan")

    summary = {name: {"fraction": float((groups == code).mean()) if len(groups) else 0.0,
                      "mean_residency": mean(rt, code), "mean_sign_changes": mean(sc, code),
                      "mean_unstable": mean(unstable, code)}
               for code, name in enumerate(GROUPS)}
    return {"residency": rt, "sign_changes": sc, "unstable_counts": unstable, "confidence": confidence,
            "groups": groups, "group_summary": summary}


def residency(run_or_model: Any, *, n_states: int = 5000, warmup: int = 20, n_samples: int = 20, max_steps: int = 60,
              transition_below: float = 2.0, kick_up_to: float = 8.0, cluster_confidence: float = 0.8,
              count_switch_step: bool = False, seed: int = 0) -> Residency:
    """docs/method.md §5.8: ``n_states`` consecutive noisy states after ``warmup`` steps from h_0 = 0, the
    residency time and sign changes of ``n_samples`` rollouts from each (``rollout_residency``),
    the unstable-eigenvalue count of the input-free Jacobian at each, and the three groups with the
    paper's thresholds (transition RT < 2, kick zone 2 ≤ RT ≤ 8, cluster RT > 8 with readout
    confidence > 0.8). ``count_switch_step``: see ``rollout_residency``.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    n_states : consecutive orbit states analysed.
    warmup : noisy steps from h_0 = 0 before the first.
    n_samples : rollouts per state.
    max_steps : longest rollout.
    transition_below, kick_up_to, cluster_confidence : the group thresholds above.
    count_switch_step : also count the switching step's sign change (``rollout_residency``).
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``Residency``: residency, sign changes, unstable counts, confidence and group (n_states,),
    PC1–2 coordinates (n_states, 2) and the per-group summary.
    """
    model, _ = resolve(run_or_model)
    states = simulate(model, warmup + n_states, seed=stream(seed, "residency", "orbit"))[0, warmup:]
    thresholds = {"transition_below": transition_below, "kick_up_to": kick_up_to,
                  "cluster_confidence": cluster_confidence}
    parts = _decompose(model, states, n_samples=n_samples, max_steps=max_steps, seed=stream(seed, "residency", "rollouts"),
                       count_switch_step=count_switch_step, **thresholds)
    basis = fit_pca(states.numpy(), 2)
    return Residency(n_states, n_samples, max_steps, seed, thresholds, parts["residency"], parts["sign_changes"],
                     parts["unstable_counts"], parts["confidence"], parts["groups"], basis.project(states.numpy()),
                     argmax_labels(model, states), basis.explained_variance_ratio, parts["group_summary"])


@dataclass
class SubspaceResidency(Result):
    """The residency decomposition inside each output-pair subspace of a 3-output model (docs/method.md §5.8,
    subspace version).

    pairs : per output pair {"pair", "n_states" (kept), "explained_variance_ratio" (sub-PCA, 3),
        "times" (n,) steps of the run, "pc" (n, 2) sub-PC1 and sub-PC3, "labels", "residency", "sign_changes", "unstable_counts",
        "groups", "group_summary"} — arrays as in ``Residency``
    """

    name = "subspace_residency"
    steps: int
    min_run: int
    max_states: int
    n_samples: int
    max_steps: int
    seed: int
    thresholds: dict[str, float]
    pairs: list[dict[str, Any]]

    def summary(self) -> str:
        parts = []
        for p in self.pairs:
            name = f"{p['pair'][0]}{p['pair'][1]}"
            if not p["n_states"]:
                parts.append(f"{name}: no run longer than {self.min_run} steps")
                continue
            groups = ", ".join(f"{g} {100 * s['fraction']:.0f}%" for g, s in p["group_summary"].items())
            parts.append(f"{name}: {p['n_states']} states, max RT {np.max(p['residency']):.0f}; {groups}")
        return "residency in output-pair subspaces - " + "; ".join(parts)


def subspace_residency(run_or_model: Any, *, steps: int = 50_000, min_run: int = 200, max_states: int = 3000,
                       n_samples: int = 20, max_steps: int = 60, transition_below: float = 2.0,
                       kick_up_to: float = 8.0, cluster_confidence: float = 0.8, count_switch_step: bool = False,
                       seed: int = 0) -> SubspaceResidency:
    """docs/method.md §5.8, subspace version (the reference used it on the cyclic model): one noisy run of
    ``steps`` steps from h_0 = 0, global PCA (4 components); for each output pair the states of the
    contiguous runs longer than ``min_run`` steps whose argmax labels stay in the pair, a second PCA
    (3 components) of their global coordinates, and the residency decomposition of those states
    (``residency``'s rollouts, counts and groups). A residency rollout ends when the label leaves
    the state's own label, as in the global version. The reference computed every kept state; here at
    most ``max_states`` per pair, evenly spaced in time (all when fewer).

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the noisy run.
    min_run : shortest contiguous in-pair run kept.
    max_states : states analysed per pair at most.
    n_samples, max_steps, transition_below, kick_up_to, cluster_confidence, count_switch_step : as in
        ``residency``.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``SubspaceResidency``: per output pair the kept times, their sub-PC1/PC3 coordinates
    (n, 2) and the ``residency`` numbers of those states.
    """
    from ._geometry import contiguous_runs

    model, _ = resolve(run_or_model)
    thresholds = {"transition_below": transition_below, "kick_up_to": kick_up_to,
                  "cluster_confidence": cluster_confidence}
    settings = (steps, min_run, max_states, n_samples, max_steps, seed, thresholds)
    if model.n_outputs != 3:
        raise NothingFound(f"output-pair subspaces need 3 outputs, the model has {model.n_outputs}")
    states = simulate(model, steps, seed=stream(seed, "subspace_residency", "orbit"))[0]
    labels = argmax_labels(model, states)
    coords = fit_pca(states.numpy(), 4).project(states.numpy())
    pairs = []
    for pair in itertools.combinations(range(3), 2):
        kept = np.concatenate([np.arange(start, start + length)
                               for start, length in contiguous_runs(np.isin(labels, pair)) if length > min_run]
                              + [np.zeros(0, dtype=int)])
        entry: dict[str, Any] = {"pair": list(pair), "n_states": 0}
        if len(kept) < 10:
            pairs.append(entry)
            continue
        sub = fit_pca(coords[kept], 3)
        chosen = kept[np.linspace(0, len(kept) - 1, min(max_states, len(kept))).round().astype(int)]
        parts = _decompose(model, states[chosen], n_samples=n_samples, max_steps=max_steps,
                           seed=stream(seed, "subspace_residency", "rollouts", *pair),
                           count_switch_step=count_switch_step, **thresholds)
        pairs.append({**entry, "n_states": len(chosen), "explained_variance_ratio": sub.explained_variance_ratio,
                      "times": chosen, "pc": sub.project(coords[chosen])[:, [0, 2]], "labels": labels[chosen],
                      **parts})
    if not any(p["n_states"] for p in pairs):
        raise NothingFound(f"no output pair holds the labels for more than {min_run} steps in a row in {steps} steps")
    return SubspaceResidency(*settings, pairs=pairs)
