"""An optional loss term: each step's output probabilities held to the HMM's emission rows.

Why it exists (docs/method.md §3.1; measured with ``benchmarks/volatility_sources.py``): the HMM draws
each symbol independently from its state's emission row E_z, so its emission noise is independent
from step to step. The trained ``fully3`` networks do not use the output sampling for that noise: in
a settled state their largest output probability is 0.993–0.995 (the HMM's row: 0.98), and the noise
symbols come from short excursions of the hidden state towards another state's region instead, 15 %
of all steps in transit against none in the HMM. Excursions last more than one step, so the
network's noise symbols come in runs and its sequences switch symbols too often (volatility
+2–5 %), while the pooled frequencies, transitions and even the calibration against the HMM's
filter can stay close.

An emulator in the HMM's own terms holds, at each step, the output probabilities of one hidden
state: p_t = E_z for some z. The penalty asks for that,

    penalty = λ · mean_{sequences, t} min_z KL(E_z ‖ p_t),   KL(E_z ‖ p) = Σ_k E_zk log(E_zk / p_k),

zero for such a network, positive for every step in transit or with an over-confident readout. Its
gradient with respect to the logits is p_t − E_z*, z* the nearest row: it does not vanish where the
softmax saturates. (A squared distance ‖p_t − E_z‖² was tried first: at p_t = (0.997, 0.0015,
0.0015) against the row (0.98, 0.01, 0.01) its gradient on the logits is 1.5e-4 against the KL's
0.017, so an over-confident settled output was left alone while transit steps were charged, and in
a fine-tune at λ = 100,000 the settled outputs grew *more* confident, 0.996–0.998;
BENCHMARKS.md, "Session 11".) It is an inductive bias, not a property every exact emulator has (a
network may also hold a mixture of rows): it prefers the one whose states are the HMM's.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["EmissionRowPenalty"]


class EmissionRowPenalty:
    """λ · mean over sequences and steps of min_z KL(E_z ‖ p_t) (module docstring).

    Parameters
    ----------
    emission : (S, K) the HMM's emission matrix; its rows are the targets (zeros allowed: 0 log 0 = 0).
    weight : λ.
    """

    def __init__(self, emission: np.ndarray, weight: float) -> None:
        self.rows = torch.tensor(np.array(emission, dtype=np.float64))
        self.row_entropy = torch.special.xlogy(self.rows, self.rows).sum(dim=-1)  # Σ_k E_zk log E_zk, (S,)
        self.weight = weight

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """logits : (B, T, K) the network's logits W_out h_t (p_t = softmax). Returns the scalar penalty."""
        like = {"device": logits.device, "dtype": logits.dtype}
        log_p = torch.log_softmax(logits, dim=-1)
        divergence = self.row_entropy.to(**like) - log_p @ self.rows.to(**like).T  # KL(E_z ‖ p_t), (B, T, S)
        return self.weight * divergence.min(dim=-1).values.mean()
