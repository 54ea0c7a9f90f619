"""Which units make the jumps: kick neurons, the populations that feed them, and the causal test
(docs/method.md §5.10–5.12). Everything is discovered from the model; no index is hard-coded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import Result, fit_pca, generator, resolve, simulate

__all__ = ["KickNeurons", "kick_neurons", "kick_scores", "Connectivity", "connectivity", "Ablation", "ablation",
           "switch_events", "switch_rates", "transition_rates"]


def switch_events(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(t, from, to) for every t ≥ 1 with labels[t] ≠ labels[t − 1] in a 1-D label sequence.

    Parameters
    ----------
    labels : (L,) integer labels.

    Returns
    -------
    A list of (t, from, to).
    """
    t = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return [(int(i), int(labels[i - 1]), int(labels[i])) for i in t]


@torch.no_grad()
def _orbit_with_preactivations(model, steps: int, seed: int, warmup: int = 100):
    """A noisy orbit from h_0 = 0 after ``warmup`` steps: states (L, H), pre-activations
    W_rec h_{t−1} + W_in x_t (L, H) and argmax labels (L,)."""
    states, noise = simulate(model, warmup + steps, seed=seed, return_noise=True)
    states, noise = states[0], noise[0]
    previous = torch.cat([torch.zeros(1, model.hidden), states[:-1]])
    pre = model.preactivation(previous, noise)
    states, pre = states[warmup:], pre[warmup:]
    return states, pre, model.readout(states).argmax(-1).numpy()


# --------------------------------------------------------------------------- kick neurons (§5.10)


def kick_scores(firing: np.ndarray, labels: np.ndarray, window: int):
    """The kick-neuron criterion on a recorded orbit (see ``kick_neurons``).

    Parameters
    ----------
    firing : (L, H) bool, unit i's pre-activation u_t > 0 at step t.
    labels : (L,) argmax labels ℓ_t of the states those pre-activations produced.

    Returns
    -------
    scores : {"a->b": (H,)};  counts : {(a, b): switches};  p_before : {(a, b): (H,)};
    p_elsewhere : {a: (H,)} per source label a
    """
    length = len(labels)
    events = switch_events(labels)
    # fired[t, i]: unit i fired at some step of the window ending at t, [t − window + 1, t]
    # (truncated at the start of the orbit), from cumulative firing counts.
    counts_so_far = np.vstack([np.zeros((1, firing.shape[1]), dtype=np.int64), np.cumsum(firing, axis=0)])
    ends = np.arange(length)
    fired = counts_so_far[ends + 1] > counts_so_far[np.maximum(ends + 1 - window, 0)]
    near_switch = np.zeros(length + window, dtype=bool)
    for t, _, _ in events:  # background windows may touch neither a switch window [t − window, t − 1] nor t
        near_switch[max(0, t - window): t + window] = True
    quiet = ~near_switch[:length]
    quiet[: window - 1] = False  # full windows only; a quiet window lies inside one dwell, so its label is labels[end]
    ends_of: dict[tuple[int, int], list[int]] = {}
    for t, a, b in events:
        if t >= 1:
            ends_of.setdefault((a, b), []).append(t - 1)
    counts = {key: len(ts) for key, ts in ends_of.items()}
    p_before = {key: fired[ts].mean(0) for key, ts in ends_of.items()}
    p_elsewhere = {}
    for a in sorted({a for a, _ in ends_of}):
        dwelling = quiet & (labels == a)
        p_elsewhere[a] = fired[dwelling].mean(0) if dwelling.any() else np.zeros(firing.shape[1])
    scores = {}
    for key in ends_of:
        others = [p for other, p in p_before.items() if other != key]
        background = p_elsewhere[key[0]]
        rival = np.maximum(background, np.max(others, axis=0)) if others else background
        scores[f"{key[0]}->{key[1]}"] = p_before[key] - rival
    return scores, counts, p_before, p_elsewhere


@dataclass
class KickNeurons(Result):
    """Per switch direction a→b: the units whose pre-activation is positive just before such switches
    and rarely elsewhere.

    directions : per direction {"from", "to", "events", "units" (chosen, best first), "scores"
        (their scores), "p_before" (their firing fractions before the switches), "p_elsewhere"}
    scores : {"a->b": (H,) score of every unit}
    """

    name = "kick_neurons"
    steps: int
    window: int
    per_group: int
    min_score: float
    min_events: int
    seed: int
    directions: list[dict[str, Any]]
    scores: dict[str, np.ndarray]
    pc: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    preactivations: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def summary(self) -> str:
        if not self.directions:
            return f"no switch direction with >= {self.min_events} events in {self.steps} steps"
        parts = [f"{d['from']}->{d['to']} ({d['events']} switches): units {d['units']} "
                 f"(score {', '.join(f'{s:.2f}' for s in d['scores'])})" for d in self.directions]
        return "kick neurons: " + "; ".join(parts)

    def group(self, source: int, target: int) -> list[int]:
        """The chosen units for switches source → target (empty if none)."""
        for d in self.directions:
            if (d["from"], d["to"]) == (source, target):
                return list(d["units"])
        return []


def kick_neurons(run_or_model: Any, *, steps: int = 30_000, window: int = 5, per_group: int = 3,
                 min_score: float = 0.2, min_events: int = 10, shown: int = 1000, seed: int = 0) -> KickNeurons:
    """Discover kick neurons: a deterministic criterion (the reference picked them by hand).

    On a noisy orbit of ``steps`` steps with argmax labels ℓ_t, a switch a→b at t is ℓ_{t−1} = a,
    ℓ_t = b. Its window is the ``window`` pre-activations u_{t−window..t−1} before it (u_t = W_rec
    h_{t−1} + W_in x_t is the drive that produces h_t; u_t itself, which produces the first state
    with the new label, belongs to the switch, not to what precedes it: the units of the new
    cluster fire there). Unit i *fires in* a window if u_i > 0 at one of its steps. For unit i and
    direction D:

        p_D(i)  = fraction of D's switches whose window unit i fires in,
        p_0(i)  = the same fraction over the windows of the same length inside a dwell in a (touching
                  no switch window and no switch step),
        score_D(i) = p_D(i) − max(p_0(i), max_{D' ≠ D} p_D'(i)),

    i.e. how much more often the unit fires just before D than while the network simply stays in a,
    or before the other directions. Conditioning the background on the source label keeps out the
    units of a's own cluster, which fire before every a→b switch only because they fire throughout a. Counting per window rather than per step scores a unit that fires once, one
    step before every switch, as 1 (per step it would score 1 / ``window``), and compares it with
    background windows of the same length. Directions with at least ``min_events`` switches get the ``per_group`` best
    units whose score exceeds ``min_score`` (fewer if fewer pass; ties broken by index).

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the noisy orbit.
    window : pre-activation steps before each switch.
    per_group : most units kept per direction.
    min_score : smallest score of a kept unit.
    min_events : fewest switches of a direction that is scored.
    shown : orbit steps kept for the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``KickNeurons``: per direction its units, scores and firing fractions; every unit's score
    (H,) per direction.
    """
    model, _ = resolve(run_or_model)
    states, pre, labels = _orbit_with_preactivations(model, steps, stream(seed, "kick_neurons", "orbit"))
    scores, counts, p_before, p_elsewhere = kick_scores((pre > 0).numpy(), labels, window)
    directions = []
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        if counts[key] < min_events:
            continue
        score = scores[f"{key[0]}->{key[1]}"]
        order = np.lexsort((np.arange(model.hidden), -score))
        chosen = [int(i) for i in order[:per_group] if score[i] > min_score]
        directions.append({"from": key[0], "to": key[1], "events": counts[key], "units": chosen,
                           "scores": [float(score[i]) for i in chosen],
                           "p_before": [float(p_before[key][i]) for i in chosen],
                           "p_elsewhere": [float(p_elsewhere[key[0]][i]) for i in chosen]})
    head = slice(0, shown)
    kicks = sorted({u for d in directions for u in d["units"]})
    basis = fit_pca(states.numpy(), 2)
    return KickNeurons(steps, window, per_group, min_score, min_events, seed, directions, scores,
                       basis.project(states[head].numpy()), pre[head][:, kicks].numpy().T if kicks else
                       np.zeros((0, len(labels[head]))), labels[head])


# --------------------------------------------------------------------------- connectivity (§5.11)


@dataclass
class Connectivity(Result):
    """Two kick groups, the two populations projecting onto them with opposite signs, their weights
    and their mean activities over time.

    groups : [[...], [...]] kick units of the two most frequent switch directions
    populations : [[...], [...]] population 1 (g1 < 0: inhibits group 1, excites group 2) and 2
    block_means : mean weight from each population onto each group, {"pop1->group1": ...}
    kick_kick, kick_population, population_population : the ordered weight blocks
    activity : {"group1", "group2", "pop1", "pop2": (T,) mean activity}, labels (T,)
    """

    name = "connectivity"
    directions: list[str]
    groups: list[list[int]]
    populations: list[list[int]]
    block_means: dict[str, float]
    kick_kick: np.ndarray
    kick_population: np.ndarray
    population_population: np.ndarray
    activity: dict[str, np.ndarray]
    labels: np.ndarray
    seed: int

    def summary(self) -> str:
        b = self.block_means
        return (f"groups {self.groups[0]} ({self.directions[0]}) / {self.groups[1]} ({self.directions[1]}); "
                f"populations of {len(self.populations[0])} and {len(self.populations[1])} units; mean weight "
                f"pop1->group1 {b['pop1->group1']:+.3f}, pop1->group2 {b['pop1->group2']:+.3f}, "
                f"pop2->group1 {b['pop2->group1']:+.3f}, pop2->group2 {b['pop2->group2']:+.3f}")


def connectivity(run_or_model: Any, *, kicks: KickNeurons | None = None, population_size: int | None = None,
                 populations: str = "sign", activity_steps: int = 300, seed: int = 0) -> Connectivity:
    """docs/method.md §5.11 with discovered groups: g1[j] = mean_i∈G1 W_rec[i, j] (from unit j onto group 1),
    g2 likewise; the ``population_size`` units with the most negative g1·g2 (default ⌊0.47 H⌋, 70 of
    150 as in the paper) form the two integrating populations. ``populations="sign"`` (default): only
    non-kick units with g1·g2 < 0, split by the sign of g1 (population 1 inhibits group 1 and excites
    group 2). ``populations="paper"``: the paper's code, the units with the smallest g1·g2 whatever
    their sign or kind, ordered by g1 and split into halves by position; kick units can enter a
    population, and a half can hold units of both signs (docs/method.md §5.11 says why the default
    differs). Mean activities of groups and populations along ``activity_steps`` noisy steps.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    kicks : a ``KickNeurons`` result (default: ``kick_neurons`` with ``seed``).
    population_size : units in the two populations together.
    populations : ``"sign"`` or ``"paper"``, as above.
    activity_steps : length of the noisy run for the mean activities.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``Connectivity``: the two kick groups and populations (unit lists), the mean weights of
    the population→group blocks, the weight blocks and the mean activities (activity_steps,).
    """
    if populations not in ("sign", "paper"):
        raise ValueError(f"populations must be 'sign' or 'paper', got {populations!r}")
    model, _ = resolve(run_or_model)
    kicks = kicks if kicks is not None else kick_neurons(model, seed=seed)
    usable = [d for d in kicks.directions if d["units"]]
    if len(usable) < 2:
        raise NothingFound(f"connectivity needs two switch directions with kick neurons, {len(usable)} found")
    g1_units, g2_units = usable[0]["units"], usable[1]["units"]
    w = model.w_rec.detach().numpy()
    g1, g2 = w[g1_units].mean(0), w[g2_units].mean(0)
    kick_set = set(g1_units) | set(g2_units)
    size = population_size if population_size is not None else int(0.47 * model.hidden)
    product = g1 * g2
    if populations == "sign":
        candidates = [j for j in np.argsort(product, kind="stable") if j not in kick_set and product[j] < 0][:size]
        ordered = sorted(candidates, key=lambda j: g1[j])
        pop1 = [int(j) for j in ordered if g1[j] < 0]
        pop2 = [int(j) for j in ordered if g1[j] >= 0]
    else:
        ordered = [int(j) for j in sorted(np.argsort(product, kind="stable")[:size], key=lambda j: g1[j])]
        pop1, pop2 = ordered[: len(ordered) // 2], ordered[len(ordered) // 2:]
    kick_order, pop_order = g1_units + g2_units, pop1 + pop2

    def mean_block(rows, cols) -> float:
        return float(w[np.ix_(rows, cols)].mean()) if rows and cols else float("nan")

    blocks = {"pop1->group1": mean_block(g1_units, pop1), "pop1->group2": mean_block(g2_units, pop1),
              "pop2->group1": mean_block(g1_units, pop2), "pop2->group2": mean_block(g2_units, pop2)}
    h0 = 0.1 * (2 * torch.randn(1, model.hidden, generator=generator(stream(seed, "connectivity", "start"))) - 1)
    states = simulate(model, activity_steps, h0=h0, seed=stream(seed, "connectivity", "noise"))[0].numpy()
    activity = {"group1": states[:, g1_units].mean(1), "group2": states[:, g2_units].mean(1),
                "pop1": states[:, pop1].mean(1) if pop1 else np.zeros(activity_steps),
                "pop2": states[:, pop2].mean(1) if pop2 else np.zeros(activity_steps)}
    labels = model.readout(torch.from_numpy(states)).argmax(-1).numpy()
    return Connectivity([f"{d['from']}->{d['to']}" for d in usable[:2]], [g1_units, g2_units], [pop1, pop2], blocks,
                        w[np.ix_(kick_order, kick_order)], w[np.ix_(kick_order, pop_order)],
                        w[np.ix_(pop_order, pop_order)], activity, labels, seed)


# --------------------------------------------------------------------------- causal test (§5.12)


def switch_rates(labels: np.ndarray, n_labels: int) -> dict[str, float]:
    """Switches a→b per 1000 steps spent with label a, for every direction "a->b" that occurs.

    The hazard 1000 · #{t: ℓ_t = a, ℓ_{t+1} = b} / #{t: ℓ_t = a, t + 1 < L}, pooled over rows.
    Per step in the source label rather than per step overall: silencing the trigger of a→b makes a
    chain stay longer in a, which per overall step would hide part of the effect.

    Parameters
    ----------
    labels : (L,) or (chains, L) integer labels in [0, n_labels).
    n_labels : number of labels.

    Returns
    -------
    {"a->b": switches per 1000 steps with label a}.
    """
    labels = np.atleast_2d(labels)
    pairs = np.zeros((n_labels, n_labels))
    np.add.at(pairs, (labels[:, :-1].ravel(), labels[:, 1:].ravel()), 1)
    time_in = pairs.sum(1)
    return {f"{a}->{b}": 1000 * pairs[a, b] / time_in[a]
            for a in range(n_labels) for b in range(n_labels) if a != b and pairs[a, b] > 0}


@torch.no_grad()
def transition_rates(model, *, silenced: list[int] = (), chains: int = 64, steps: int = 2000, warmup: int = 100,
                     seed: int = 0) -> dict[str, float]:
    """``switch_rates`` of the argmax labels of ``chains`` parallel noisy chains of ``steps`` steps
    after ``warmup``, with the ``silenced`` units held at 0 (recurrent and input gain 0). The noise is
    the same for every choice of ``silenced``.

    Parameters
    ----------
    model : a ``NoiseRNN``.
    silenced : units held at 0.
    chains : parallel chains.
    steps : steps per chain after the warm-up.
    warmup : steps discarded first.
    seed : seed of the noise (the same for every ``silenced``).

    Returns
    -------
    {"a->b": switches per 1000 steps with label a}.
    """
    return _rates_when_silenced(model, [list(silenced)], chains=chains, steps=steps, warmup=warmup, seed=seed)[0]


@torch.no_grad()
def _rates_when_silenced(model, groups: list[list[int]], *, chains: int, steps: int, warmup: int = 100,
                         seed: int = 0, block: int = 200) -> list[dict[str, float]]:
    """``transition_rates`` for every group of silenced units at once: all groups × chains run as
    one batch of the rollout engine (one gain vector per chain, the same noise for every group),
    ``block`` steps at a time, keeping only the labels."""
    gains = torch.ones(len(groups), model.hidden)
    for row, units in zip(gains, groups):
        row[list(units)] = 0.0
    gains = gains.repeat_interleave(chains, dim=0)  # (groups · chains, H)
    noise = torch.randn(chains, warmup + steps, model.noise_dim, generator=generator(seed))
    h = torch.zeros(len(gains), model.hidden)
    labels = []
    for start in range(0, warmup + steps, block):
        x = noise[:, start: start + block].repeat(len(groups), 1, 1)
        hidden = model.rollout(x, h, recurrent_gain=gains, input_gain=gains)
        labels.append(model.readout(hidden).argmax(-1))
        h = hidden[:, -1]
    labels = torch.cat(labels, dim=1)[:, warmup:].reshape(len(groups), chains, steps).numpy()
    return [switch_rates(group_labels, model.n_outputs) for group_labels in labels]


@dataclass
class Ablation(Result):
    """Transition rates (switches a→b per 1000 steps with label a) with the kick group of each direction silenced,
    against the intact network and against random groups of the same size.

    per_direction : per direction {"direction", "kick_units", "intact", "kick_ablated",
        "random_ablated" (list over random groups), "random_mean", "random_std", "ratio_kick",
        "ratio_random"}
    """

    name = "ablation"
    n_random: int
    chains: int
    steps: int
    seed: int
    intact: dict[str, float]
    per_direction: list[dict[str, Any]]

    def summary(self) -> str:
        if not self.per_direction:
            return "no direction with kick neurons to ablate"
        parts = [f"{d['direction']}: intact {d['intact']:.2f}, kick units silenced {d['kick_ablated']:.2f} "
                 f"(x{d['ratio_kick']:.2f}), {len(d['kick_units'])} random units {d['random_mean']:.2f} "
                 f"(x{d['ratio_random']:.2f})" for d in self.per_direction]
        return "switches per 1000 steps in the source label - " + "; ".join(parts)


def ablation(run_or_model: Any, *, kicks: KickNeurons | None = None, n_random: int = 10, chains: int = 64,
             steps: int = 2000, seed: int = 0) -> Ablation:
    """The causal test the paper implies: silence the kick group of a switch direction and compare its
    transition rate with the intact network and with ``n_random`` random groups of the same size
    (drawn, seeded, from the non-kick units). Same noise for every condition.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    kicks : a ``KickNeurons`` result (default: ``kick_neurons`` with ``seed``).
    n_random : random groups per direction.
    chains : parallel noisy chains per condition.
    steps : steps per chain.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``Ablation``: intact rates and, per direction, the rates with its kick group and with each
    random group silenced, and their ratios to the intact rate.
    """
    model, _ = resolve(run_or_model)
    kicks = kicks if kicks is not None else kick_neurons(model, seed=seed)
    all_kicks = sorted({u for d in kicks.directions for u in d["units"]})
    others = np.array([u for u in range(model.hidden) if u not in all_kicks])
    rng = np.random.default_rng(stream(seed, "ablation", "random_groups"))
    directions = [d for d in kicks.directions if d["units"]]
    # every condition in one batch: intact, then per direction its kick group and n_random random groups
    groups = [[]] + [group for d in directions for group in
                     [d["units"]] + [rng.choice(others, len(d["units"]), replace=False).tolist() for _ in range(n_random)]]
    rates = _rates_when_silenced(model, groups, chains=chains, steps=steps, seed=stream(seed, "ablation", "noise"))
    intact = rates[0]
    per_direction = []
    for i, d in enumerate(directions):
        key = f"{d['from']}->{d['to']}"
        base = intact.get(key, 0.0)
        ablated = rates[1 + i * (1 + n_random)].get(key, 0.0)
        random_rates = [r.get(key, 0.0) for r in rates[2 + i * (1 + n_random): 1 + (i + 1) * (1 + n_random)]]
        mean = float(np.mean(random_rates))
        per_direction.append({"direction": key, "kick_units": d["units"], "intact": base, "kick_ablated": ablated,
                              "random_ablated": random_rates, "random_mean": mean,
                              "random_std": float(np.std(random_rates)),
                              "ratio_kick": ablated / base if base else float("nan"),
                              "ratio_random": mean / base if base else float("nan")})
    return Ablation(n_random, chains, steps, seed, intact, per_direction)
