"""A cluster point and a transition point on a recorded trajectory, and how noise moves the network
from each (docs/method.md §5.14–5.15)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import Result, fit_pca, generator, resolve, simulate
from ._neurons import switch_events
from ._regions import rollout_residency

__all__ = ["TransitionPoints", "transition_points", "NoiseSensitivity", "noise_sensitivity"]


@dataclass
class TransitionPoints(Result):
    """A recorded trajectory with the chosen switch at ``switch_time``, the entry of its deterministic
    transition ``transition_time`` and a point inside the preceding cluster ``cluster_time``.

    probe_times : (P,) recorded times probed, latest first; probe_residency, probe_switched : (P,)
        mean first-switch time and fraction of rollouts that switched, from each probed state
    """

    name = "transition_points"
    not_saved = ("states", "noise")
    steps: int
    seed: int
    switch_time: int
    previous_switch_time: int
    transition_time: int
    cluster_time: int
    direction: str
    probe_times: np.ndarray
    probe_residency: np.ndarray
    probe_switched: np.ndarray
    states: np.ndarray
    noise: np.ndarray
    labels: np.ndarray
    track_pc: np.ndarray

    def summary(self) -> str:
        return (f"switch {self.direction} at t = {self.switch_time} after a dwell of "
                f"{self.switch_time - self.previous_switch_time} steps; deterministic transition from "
                f"t = {self.transition_time} ({self.switch_time - self.transition_time} steps before), cluster "
                f"point t = {self.cluster_time}")


def candidate_switches(events: list[tuple[int, int, int]], skip_switches: int, min_time: int,
                       to_label: int | None = None) -> list[tuple[int, int, int, int]]:
    """The switches a transition search may use: (t, t_prev, from, to) for every switch (t, from, to) of
    ``events`` (``switch_events``) after the first ``skip_switches``, with t >
    ``min_time`` (and into ``to_label`` if given); t_prev is the time of the switch before it, so the
    preceding dwell is t − t_prev. (Before 2026-12-02 one more switch was skipped than said here.)
    """
    paired = [(t, previous[0], a, b) for previous, (t, a, b) in zip(events, events[1:])]  # from events[1]
    kept = paired[max(skip_switches - 1, 0):]  # events[skip_switches:]: the first has no predecessor anyway
    return [c for c in kept if c[0] > min_time and (to_label is None or c[3] == to_label)]


def transition_points(run_or_model: Any, *, steps: int = 2000, warmup: int = 20, skip_switches: int = 3,
                      min_time: int = 200, to_label: int | None = None, tau: float = 0.5, back: int = 100,
                      after: int = 5, trials: int = 100, horizon: int = 25, fast: float = 3.0,
                      cluster_residency: float = 9.0, seed: int = 0) -> TransitionPoints:
    """docs/method.md §5.14 made terminating: record ``steps`` noisy steps; among the switches after the first
    ``skip_switches`` and after ``min_time`` (optionally only those into ``to_label``), take the one
    with the longest preceding dwell; probe every recorded state from ``after`` steps past the switch
    back to the cluster point tc = ⌊τ t_switch + (1 − τ) t_prev⌋ (at most ``back`` steps before) with
    ``trials`` noisy rollouts of at most ``horizon`` steps.

    The transition point is the earliest probed state before the switch from which every rollout
    switches within fewer than ``fast`` steps; the cluster condition asks that some probed state
    before it has mean first-switch time ≥ ``cluster_residency`` and not every rollout switching.
    Where either is missing (or there is no usable switch) a ``NothingFound`` says so; the
    reference re-drew the rollouts in an unbounded loop instead.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the recorded run.
    warmup : noisy steps from a small random state before it.
    skip_switches, min_time, to_label : which switches qualify.
    tau : where the cluster point lies between the previous switch (0) and this one (1).
    back, after : how far before and after the switch states are probed.
    trials, horizon : rollouts per probed state and their longest length.
    fast, cluster_residency : the thresholds above.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``TransitionPoints``: the switch, transition and cluster times, the probed times and their
    mean first-switch times.
    """
    model, _ = resolve(run_or_model)
    h0 = 0.1 * (2 * torch.rand(1, model.hidden, generator=generator(stream(seed, "transition_points", "start"))) - 1)
    warm = simulate(model, warmup, h0=h0, seed=stream(seed, "transition_points", "warmup"))[0, -1:] if warmup else h0
    states, noise = simulate(model, steps, h0=warm, seed=stream(seed, "transition_points", "orbit"), return_noise=True)
    states = torch.cat([warm, states[0]])  # states[t] for t = 0..steps; noise row t produced state t
    noise = torch.cat([torch.zeros(1, model.noise_dim), noise[0]])
    labels = model.readout(states).argmax(-1).numpy()
    events = switch_events(labels)
    candidates = candidate_switches(events, skip_switches, min_time, to_label)
    if not candidates:
        raise NothingFound(f"no usable transition: {len(events)} label switches in {steps} steps, none after the "
                          f"first {skip_switches} and after step {min_time}"
                          + (f" into output {to_label}" if to_label is not None else ""))
    switch, previous, a, b = max(candidates, key=lambda c: (c[0] - c[1], -c[0]))
    cluster = max(int(np.floor(tau * switch + (1 - tau) * previous)), switch - back)
    times = np.arange(min(switch + after, steps), cluster - 1, -1)
    residency, _, switched = rollout_residency(model, states[torch.from_numpy(times)], n_samples=trials,
                                               max_steps=horizon,
                                               seed=stream(seed, "transition_points", "probes"))
    before = times < switch
    quick = before & (residency < fast) & (switched == 1.0)
    if not quick.any():
        raise NothingFound(f"no deterministic transition before the switch at t = {switch}: no probed state switches "
                          f"within {fast:g} steps in all {trials} rollouts")
    transition = int(times[quick].min())
    slow = (times < transition) & (residency >= cluster_residency) & (switched < 1.0)
    if not slow.any():
        raise NothingFound(f"no cluster point before the transition at t = {transition}: no probed state dwells "
                          f"{cluster_residency:g} steps or more")
    return TransitionPoints(steps, seed, switch, previous, transition, cluster, f"{a}->{b}", times, residency,
                            switched, states.numpy(), noise.numpy(), labels,
                            fit_pca(states.numpy(), 2).project(states.numpy()))


@dataclass
class NoiseSensitivity(Result):
    """Spread of trajectories started at the cluster and at the transition point under replayed (γ = 0),
    mixed and fresh (γ = 1) noise.

    curves : per (location, γ) {"location", "gamma", "trace" (horizon + 1,), "distance" (horizon + 1,),
        "trajectories" (shown, horizon + 1, 2) in PC1–2}
    """

    name = "noise_sensitivity"
    gammas: list[float]
    horizon: int
    n_trajectories: int
    variance_preserving: bool
    seed: int
    cluster_time: int
    transition_time: int
    curves: list[dict[str, Any]]
    track_pc: np.ndarray
    labels: np.ndarray

    def summary(self) -> str:
        at_end = {(c["location"], c["gamma"]): c["trace"][-1] for c in self.curves}
        parts = [f"gamma {g:g}: cluster {at_end[('cluster', g)]:.1f} vs transition {at_end[('transition', g)]:.1f}"
                 for g in self.gammas]
        return f"trace of covariance after {self.horizon} steps - " + "; ".join(parts)


def noise_sensitivity(run_or_model: Any, *, points: TransitionPoints | None = None,
                      gammas: tuple[float, ...] = (0.0, 0.5, 1.0), horizon: int = 5, n_trajectories: int = 100,
                      variance_preserving: bool = False, shown: int = 30, seed: int = 0) -> NoiseSensitivity:
    """docs/method.md §5.15: from the cluster and the transition point of ``transition_points``, run
    ``n_trajectories`` trajectories of ``horizon`` steps with input

        x_t = (1 − γ) n_{idx+t} + γ ξ_t          (the reference's mixture, std √((1−γ)² + γ²)), or
        x_t = √(1 − γ) n_{idx+t} + √γ ξ_t        (``variance_preserving``: std 1),

    with n the recorded noise — n_{idx+t} for t = 1.. is the noise that followed the state at idx (the
    reference replayed the row that had produced it) — and ξ fresh. Reports, over time, the trace of
    the across-trajectory covariance (ddof 1) and the mean distance to the across-trajectory mean.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    points : a ``TransitionPoints`` result (default: ``transition_points`` with ``seed``).
    gammas : mixing weights γ of fresh noise.
    horizon : steps per trajectory.
    n_trajectories : trajectories per point and γ.
    variance_preserving : use the unit-variance mixture.
    shown : trajectories kept for the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``NoiseSensitivity``: per point and γ the covariance trace and mean spread over time
    (horizon + 1,).
    """
    model, _ = resolve(run_or_model)
    points = points if points is not None else transition_points(model, seed=seed)
    states, noise = torch.from_numpy(points.states), torch.from_numpy(points.noise)
    extra = torch.randn(horizon + 1, model.noise_dim, generator=generator(stream(seed, "noise_sensitivity", "extra")))
    recorded = torch.cat([noise, extra])
    basis = fit_pca(points.states, 2)  # the same basis as points.track_pc
    gen = generator(stream(seed, "noise_sensitivity", "fresh"))
    curves = []
    for location, idx in (("cluster", points.cluster_time), ("transition", points.transition_time)):
        for gamma in gammas:
            a, b = (np.sqrt(1 - gamma), np.sqrt(gamma)) if variance_preserving else (1 - gamma, gamma)
            h = states[idx].repeat(n_trajectories, 1)
            x = a * recorded[idx + 1: idx + horizon + 1] + b * torch.randn(n_trajectories, horizon, model.noise_dim,
                                                                              generator=gen)
            with torch.no_grad():
                path = torch.cat([h[:, None], model.rollout(x, h)], dim=1)  # (n, horizon + 1, H)
            centred = path - path.mean(0, keepdim=True)
            trace = (centred ** 2).sum(0).sum(-1) / max(n_trajectories - 1, 1)
            distance = centred.norm(dim=-1).mean(0)
            curves.append({"location": location, "gamma": float(gamma), "trace": trace.numpy(),
                           "distance": distance.numpy(),
                           "trajectories": basis.project(path[:shown].reshape(-1, model.hidden).numpy())
                           .reshape(min(shown, n_trajectories), horizon + 1, 2)})
    return NoiseSensitivity(list(map(float, gammas)), horizon, n_trajectories, variance_preserving, seed,
                            points.cluster_time, points.transition_time, curves, points.track_pc, points.labels)
