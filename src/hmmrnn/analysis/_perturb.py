"""Noise as a control parameter: the stochastic-resonance sweep (docs/method.md §5.17) and the expected
second-order noise drift (docs/method.md §5.16)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import Result, generator, resolve, simulate
from ._fixed_points import critical_pairs

__all__ = ["Resonance", "stochastic_resonance", "NoiseDrift", "noise_drift", "expected_second_order", "GainSweep",
           "gain_sweep", "presynaptic_partners"]

HOMOGENEITY_NOTE = (
    "The network has no biases, so scaling the input noise by s scales every hidden state and logit "
    "by s (positive homogeneity): the argmax readout, and hence the deterministic switching "
    "structure, is the same at every s; only the sampled outputs change, as if drawn from "
    "softmax(s z) - s acts as an inverse temperature on the readout. A resonance peak here is "
    "therefore a property of the sampled emission, not of the hidden dynamics.")


@dataclass
class Resonance(Result):
    """Verdict metrics and transition rate of the sampled outputs as a function of the noise scale.

    rows : per scale {"scale", "emulates", "transition_max_abs_diff", "frequency_max_abs_diff",
        "volatility_relative_diff", "loglik_gap", "matched_distance", "baseline_distance",
        "changes_per_step" (sampled), "argmax_changes_per_step"}
    """

    name = "stochastic_resonance"
    n: int
    seq_len: int
    seed: int
    rows: list[dict[str, Any]]
    best_scale: float
    note: str = HOMOGENEITY_NOTE

    def summary(self) -> str:
        ok = [r["scale"] for r in self.rows if r["emulates"]]
        return (f"noise scales {[r['scale'] for r in self.rows]}: emulates at {ok or 'none'}; lowest log-likelihood "
                f"gap at scale {self.best_scale:g}; argmax switching is scale-invariant (positive homogeneity)")


def stochastic_resonance(run_or_model: Any, *, scales: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                         n: int = 2000, seq_len: int | None = None, seed: int = 0) -> Resonance:
    """Emulation quality versus test-time noise scale s (x_t ~ N(0, s² I)), using sampled outputs:
    for each s, ``n`` sequences of the run's T are judged by ``hmmrnn.compare`` (no EM re-fit)
    against the run's HMM, with the same HMM reference sets for every s. Also the mean number of
    output changes per step, sampled and argmax.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    scales : test-time noise scales s.
    n : sequences judged per scale.
    seq_len : their length (default: the run's T).
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``Resonance``: per scale the verdict's numbers and the switch rates; the best scale.
    """
    from ..evaluation import compare
    from ..runs import Run, load_run

    run = load_run(run_or_model) if not isinstance(run_or_model, Run) else run_or_model
    model, hmm = resolve(run)
    length = seq_len or run.config.train.seq_len
    rows = []
    for s in scales:
        symbols, _, logits = model.generate(n, length, seed=stream(seed, "stochastic_resonance", "network"),
                                            noise_scale=s, keep_states=True)
        sampled = symbols.numpy()
        argmax = logits.argmax(-1).numpy()
        verdict = compare(hmm, sampled, seed=stream(seed, "stochastic_resonance", "hmm"), refit=False)
        m = verdict.metrics
        rows.append({"scale": float(s), "emulates": bool(verdict.emulates),
                     "transition_max_abs_diff": m["transition_matrix"]["max_abs_diff"],
                     "frequency_max_abs_diff": m["frequencies"]["max_abs_diff"],
                     "volatility_relative_diff": m["volatility"]["relative_diff"],
                     "loglik_gap": m["log_likelihood"]["gap"],
                     "matched_distance": m["matched_distance"]["candidate"]["mean"],
                     "baseline_distance": m["matched_distance"]["baseline"]["mean"],
                     "changes_per_step": float((sampled[:, 1:] != sampled[:, :-1]).mean()),
                     "argmax_changes_per_step": float((argmax[:, 1:] != argmax[:, :-1]).mean())})
    best = min(rows, key=lambda r: abs(r["loglik_gap"]))["scale"]
    return Resonance(n, length, seed, rows, best)


def expected_second_order(model, h0: torch.Tensor, *, trials: int = 20, t0: int = 10, tf: int = 10,
                          sigma: float = 1.0, h_eps: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """docs/method.md §5.16 (the v2 recursion, as a defined statistic): per trial, jitter h0 by
    (2 N(0, 1) − 1) h_eps per unit, take t0 − 1 noisy steps to h, follow the noise-free trajectory
    s_0 = h, s_k = relu(W_rec s_{k−1}), D_k = diag(1[s_k > 0]), draw ω_k ~ N(0, σ² I_d) and run

        δ1_0 = W_in ω_0,  δ1_k = W_rec D_{k−1} δ1_{k−1} + W_in ω_k,
        δ2 ← W_rec D_u δ2 + ½ W_rec (δ1_u² ⊙ 1[s_u > 0]),  u = 0..tf−1 (δ2 starts at 0).

    Returns the trial means of δ2 and of δ1_0, both (H,). Trials run as one batch.

    Parameters
    ----------
    model : a ``NoiseRNN``.
    h0 : (H,) the state to start from.
    trials : independent trials.
    t0 : noisy steps before the expansion point.
    tf : steps of the recursion.
    sigma : noise scale σ.
    h_eps : size of the jitter of h0.
    seed : seed of the jitter and the noise.

    Returns
    -------
    (E[δ2], E[δ1_0]), each (H,).
    """
    gen = generator(seed)
    w_rec, w_in = model.w_rec.detach(), model.w_in.detach()
    with torch.no_grad():
        h = h0.reshape(1, -1) + (2 * torch.randn(trials, model.hidden, generator=gen) - 1) * h_eps
        if t0 > 1:
            h = model.rollout(sigma * torch.randn(trials, t0 - 1, model.noise_dim, generator=gen), h)[:, -1]
        s = [h, *model.rollout(None, h, steps=tf - 1).unbind(1)] if tf > 1 else [h]
        omega = sigma * torch.randn(tf, trials, model.noise_dim, generator=gen)
        delta1 = [omega[0] @ w_in.T]
        for k in range(1, tf):
            delta1.append((delta1[-1] * (s[k - 1] > 0)) @ w_rec.T + omega[k] @ w_in.T)
        delta2 = torch.zeros(trials, model.hidden)
        for u in range(tf):
            active = (s[u] > 0).float()
            delta2 = (delta2 * active) @ w_rec.T + 0.5 * (delta1[u] ** 2 * active) @ w_rec.T
    return delta2.mean(0).numpy(), delta1[0].mean(0).numpy()


@dataclass
class NoiseDrift(Result):
    """E[δ2] (the systematic drift that rectified input noise induces, docs/method.md §5.16) at orbit states.

    drift : (n_points, H) E[δ2] at each start; norm : (n_points,) its Euclidean norm;
    labels : (n_points,) argmax outputs of the starts
    """

    name = "noise_drift"
    n_points: int
    trials: int
    seed: int
    drift: np.ndarray
    norm: np.ndarray
    labels: np.ndarray

    def summary(self) -> str:
        return (f"second-order noise drift |E[delta2]| at {self.n_points} orbit states: median "
                f"{np.median(self.norm):.3f}, max {self.norm.max():.3f}")


def noise_drift(run_or_model: Any, *, n_points: int = 50, trials: int = 20, seed: int = 0) -> NoiseDrift:
    """``expected_second_order`` at ``n_points`` states spread along a noisy orbit.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    n_points : orbit states.
    trials : trials of ``expected_second_order`` per state.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``NoiseDrift``: E[δ2] (n_points, H), its norm (n_points,) and the states' labels.
    """
    model, _ = resolve(run_or_model)
    orbit = simulate(model, 100 + 20 * n_points, seed=stream(seed, "noise_drift", "orbit"))[0, 100::20]
    drifts = np.stack([expected_second_order(model, h, trials=trials,
                                                 seed=stream(seed, "noise_drift", "point", i))[0] for i, h in enumerate(orbit)])
    labels = model.readout(orbit).argmax(-1).numpy()
    return NoiseDrift(n_points, trials, seed, drifts, np.linalg.norm(drifts, axis=1), labels)


# --------------------------------------------------------------------------- gain manipulations (§5.13)


def presynaptic_partners(w_rec: np.ndarray, units: list[int], top_k: int) -> set[int]:
    """Union over ``units`` of the ``top_k`` units with the largest weights onto each (row i of W_rec)."""
    partners: set[int] = set()
    for i in units:
        partners.update(int(j) for j in np.argsort(-w_rec[i], kind="stable")[:top_k])
    return partners


@dataclass
class GainSweep(Result):
    """Transition rate and critical complex pairs around switches as per-unit gains change.

    rows : per (direction, manipulation, μ) {"direction", "manipulation", "gain", "units" (count),
        "rate" (switches of that direction per 1000 steps with its source label, ``switch_rates``),
        "critical_mean", "critical_std"}
    manipulations: "kick" (recurrent gain μ on the direction's kick units), "noise projection"
    (input gain μ on their top presynaptic partners), "control" (input gain μ on units that are no
    kick unit's top partner)
    """

    name = "gain_sweep"
    gains: list[float]
    steps: int
    window: int
    seed: int
    unit_sets: dict[str, list[int]]
    rows: list[dict[str, Any]]

    def summary(self) -> str:
        parts = []
        for key in self.unit_sets:
            direction, manipulation = key.split(" / ")
            sel = [r for r in self.rows if r["direction"] == direction and r["manipulation"] == manipulation]
            at = {r["gain"]: r["rate"] for r in sel}
            parts.append(f"{key}: rate {at.get(0.0, float('nan')):.1f} (gain 0) / {at.get(1.0, float('nan')):.1f} "
                         f"(1) / {at.get(max(at), float('nan')):.1f} ({max(at):g})")
        return "switches per 1000 steps in the source label - " + "; ".join(parts)


def gain_sweep(run_or_model: Any, *, kicks=None, gains: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5,
                                                                         1.75, 2.0),
               steps: int = 2000, window: int = 15, top_k: int | None = None, control_k: int | None = None,
               spectra: bool = True, max_switches: int = 20, seed: int = 0) -> GainSweep:
    """docs/method.md §5.13 with discovered units. For the first two switch directions with kick units
    and each manipulation and gain μ, one noisy run of ``steps`` steps (the same noise for every μ)
    with h ← relu(g_rec ⊙ W_rec h + g_in ⊙ W_in x); the rate of that direction's switches, and with
    ``spectra`` the mean ± sd over its first ``max_switches`` switches of the critical pairs
    (``critical_pairs``) pooled over the Jacobians diag(relu′) diag(g_rec) W_rec in
    [switch − window, switch + window) (eigenvalues are the cost: 2 · window per switch).
    ``top_k`` partners per kick unit default to ⌊0.4 H⌋ (60 of 150, the paper's), ``control_k`` to
    ⌊0.23 H⌋ (35 of 150).

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    kicks : a ``KickNeurons`` result (default: ``kick_neurons`` with ``seed``).
    gains : the values of μ.
    steps : length of each noisy run.
    window : half-width of the Jacobian window around each switch.
    top_k, control_k : partners per kick unit, as above.
    spectra : compute the critical pairs (the costly part).
    max_switches : switches whose windows are pooled at most.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``GainSweep``: one row per (direction, manipulation, μ) with the switch rate and the
    critical pairs' mean and sd.
    """
    from ._neurons import kick_neurons, switch_events, switch_rates

    model, _ = resolve(run_or_model)
    kicks = kicks if kicks is not None else kick_neurons(model, seed=seed)
    usable = [d for d in kicks.directions if d["units"]][:2]
    if not usable:
        raise NothingFound("the gain sweep needs kick units, and no switch direction has one")
    w = model.w_rec.detach().numpy()
    all_kicks = sorted({u for d in kicks.directions for u in d["units"]})
    top_k = top_k if top_k is not None else int(0.4 * model.hidden)
    control_k = control_k if control_k is not None else int(0.23 * model.hidden)
    near = presynaptic_partners(w, all_kicks, control_k)
    noise = torch.randn(steps, model.noise_dim, generator=generator(stream(seed, "gain_sweep", "noise")))
    h0 = 0.1 * (2 * torch.rand(model.hidden, generator=generator(stream(seed, "gain_sweep", "start"))) - 1)
    unit_sets, rows = {}, []
    for d in usable:
        direction = f"{d['from']}->{d['to']}"
        sets = {"kick": ("recurrent", d["units"]),
                "noise projection": ("input", sorted(presynaptic_partners(w, d["units"], top_k) - set(all_kicks))),
                "control": ("input", sorted(set(range(model.hidden)) - near - set(all_kicks)))}
        for manipulation, (where, units) in sets.items():
            unit_sets[f"{direction} / {manipulation}"] = units
            # every gain as one batch of the rollout engine: one chain per gain, the same noise
            gain_rows = torch.ones(len(gains), model.hidden)
            gain_rows[:, units] = torch.tensor([float(mu) for mu in gains])[:, None]
            batch_options = {"recurrent_gain" if where == "recurrent" else "input_gain": gain_rows}
            with torch.no_grad():
                runs = model.rollout(noise.expand(len(gains), -1, -1), h0.expand(len(gains), -1), **batch_options)
                trajectories = torch.cat([h0.expand(len(gains), 1, -1), runs], dim=1)  # h_0..h_T per gain
            for mu, trajectory, gain in zip(gains, trajectories, gain_rows):
                options = {"recurrent_gain": gain} if where == "recurrent" else {"input_gain": gain}
                labels = model.readout(trajectory).argmax(-1).numpy()
                switches = [t for t, a, b in switch_events(labels) if (a, b) == (d["from"], d["to"])]
                row = {"direction": direction, "manipulation": manipulation, "gain": float(mu), "units": len(units),
                       "rate": switch_rates(labels, model.n_outputs).get(direction, 0.0),
                       "critical_mean": float("nan"), "critical_std": float("nan")}
                if spectra and switches:
                    probed = switches[:max_switches]
                    needed = sorted({t for s in probed for t in range(max(0, s - window), min(steps, s + window))})
                    with torch.no_grad():
                        jac = model.jacobian(trajectory[needed], noise[needed], **options)
                    counts = np.zeros(steps)
                    counts[needed] = critical_pairs(torch.linalg.eigvals(jac).numpy())
                    per_switch = [counts[max(0, s - window): min(steps, s + window)].sum() for s in probed]
                    row["critical_mean"], row["critical_std"] = float(np.mean(per_switch)), float(np.std(per_switch))
                rows.append(row)
    return GainSweep(list(map(float, gains)), steps, window, seed, unit_sets, rows)
