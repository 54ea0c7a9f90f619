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

    penalty = λ · mean_{sequences, t} min_z ‖p_t − E_z‖²,

zero for such a network, positive for every step in transit or with an over-confident readout. It
is an inductive bias, not a property every exact emulator has (a network may also hold a mixture of
rows): it prefers the one whose states are the HMM's.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["EmissionRowPenalty"]


class EmissionRowPenalty:
    """λ · mean over sequences and steps of min_z ‖p_t − E_z‖² (module docstring).

    Parameters
    ----------
    emission : (S, K) the HMM's emission matrix; its rows are the targets.
    weight : λ.
    """

    def __init__(self, emission: np.ndarray, weight: float) -> None:
        self.rows = torch.tensor(np.array(emission, dtype=np.float64))
        self.weight = weight

    def __call__(self, probabilities: torch.Tensor) -> torch.Tensor:
        """probabilities : (B, T, K) the network's output probabilities softmax(W_out h_t).
        Returns the scalar penalty."""
        rows = self.rows.to(device=probabilities.device, dtype=probabilities.dtype)
        distance = ((probabilities.unsqueeze(-2) - rows) ** 2).sum(dim=-1)  # (B, T, S)
        return self.weight * distance.min(dim=-1).values.mean()
