"""Noise as a control parameter: the stochastic-resonance sweep (SPEC §8.7) and the expected
second-order noise drift (SPEC §7.12)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._common import Result, generator, resolve, simulate

__all__ = ["Resonance", "stochastic_resonance", "NoiseDrift", "noise_drift", "expected_second_order"]

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
    for each s, ``n`` sequences of the run's T are judged by :func:`hmmrnn.compare` (no EM re-fit)
    against the run's HMM, with the same HMM reference sets for every s. Also the mean number of
    output changes per step, sampled and argmax."""
    from ..evaluation import compare
    from ..runs import Run, load_run

    run = load_run(run_or_model) if not isinstance(run_or_model, Run) else run_or_model
    model, hmm = resolve(run)
    length = seq_len or run.config.train.seq_len
    rows = []
    for s in scales:
        symbols, _, logits = model.generate(n, length, seed=seed, noise_scale=s, keep_states=True)
        sampled = symbols.numpy()
        argmax = logits.argmax(-1).numpy()
        verdict = compare(hmm, sampled, seed=seed, refit=False)
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
    """SPEC §7.12 (the v2 recursion, as a defined statistic): per trial, jitter h0 by
    (2 N(0, 1) − 1) h_eps per unit, take t0 − 1 noisy steps to h, follow the noise-free trajectory
    s_0 = h, s_k = relu(W_rec s_{k−1}), D_k = diag(1[s_k > 0]), draw ω_k ~ N(0, σ² I_d) and run

        δ1_0 = W_in ω_0,  δ1_k = W_rec D_{k−1} δ1_{k−1} + W_in ω_k,
        δ2 ← W_rec D_u δ2 + ½ W_rec (δ1_u² ⊙ 1[s_u > 0]),  u = 0..tf−1 (δ2 starts at 0).

    Returns the trial means of δ2 and of δ1_0, both (H,). Trials run as one batch.
    """
    gen = generator(seed)
    w_rec, w_in = model.w_rec.detach(), model.w_in.detach()
    with torch.no_grad():
        h = h0.reshape(1, -1) + (2 * torch.randn(trials, model.hidden, generator=gen) - 1) * h_eps
        for _ in range(t0 - 1):
            h = model.step(h, sigma * torch.randn(trials, model.input, generator=gen))
        s = [h]
        for _ in range(tf - 1):
            s.append(torch.relu(s[-1] @ w_rec.T))
        omega = sigma * torch.randn(tf, trials, model.input, generator=gen)
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
    """E[δ2] (the systematic drift that rectified input noise induces, SPEC §7.12) at orbit states.

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
    """:func:`expected_second_order` at ``n_points`` states spread along a noisy orbit."""
    model, _ = resolve(run_or_model)
    orbit = simulate(model, 100 + 20 * n_points, seed=seed)[0, 100::20]
    drifts = np.stack([expected_second_order(model, h, trials=trials, seed=seed + i)[0] for i, h in enumerate(orbit)])
    labels = model.readout(orbit).argmax(-1).numpy()
    return NoiseDrift(n_points, trials, seed, drifts, np.linalg.norm(drifts, axis=1), labels)
