"""An optional loss term: the network's next-symbol probabilities, calibrated against the HMM's filter.

Why it exists (docs/method.md §3.1): the networks that fail the verdict (``fully3``, ``cyclic4``)
fail it on the log-likelihood gap with pooled frequencies and transitions close to the HMM's; the
error lies in *which contexts* the next symbol is mispredicted, which no pooled statistic sees.

The HMM's forward filter turns any symbol sequence into beliefs. With β_t the prior belief over
hidden states before symbol t (β_1 = π, β_{t+1} ∝ (β_t ∘ E x_t) A, E the (S, K) emission matrix,
x_t one-hot), the HMM predicts symbol t with probabilities β_t E. A process emits the HMM's sequence
distribution exactly when, for every t, P(x_t | x_{<t}) = β_t E. Averaged over the pasts that share
a belief,

    E[ p_t | β_t ] = β_t E,                                    (calibration)

p_t (K,) the network's output probabilities at step t (whose sample is x_t). Calibration is enough
to close the log-likelihood gap in expectation: under it the beliefs of the network's sequences
follow the same Markov chain as the HMM's (β_{t+1} is a function of β_t and x_t), so they have the
HMM's distribution at every t, and so does the expected log-probability E[log (β_t E) · x_t].

The condition is enforced on a partition of the belief simplex into cells (k-means centroids of the
HMM's own beliefs, fitted once on the target set, so cells are fine where beliefs lie). For cell j
and symbol k, O_jk = Σ_{t: β_t ∈ j} p_tk is the network's expected count and E_jk = Σ (β_t E)_k the
HMM's prediction for the same steps; with N the number of steps,

    penalty = λ Σ_jk (O_jk − E_jk)² / (N (O_jk + E_jk)),

the bigram penalty's triangular discrimination (``hmmrnn._bigram``) applied to counts. The errors
that decide the log-likelihood gap sit in rare cells, and this weighting already lets them dominate:
measured on a ``fully3`` network (gap 0.037 nats/step, BENCHMARKS.md "Session 10"), the cells right
after a single changed symbol hold about 1 % of the steps each and are off by 0.07–0.11 in
probability, and they make 94 % of the term. Beliefs are computed from the samples without gradient
(they only say which cell a step falls in); the gradient reaches the logits through p_t. The target
set is used only to place the cells: the HMM's own predictions carry no sampling noise.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from ._likelihood import prior_beliefs
from .hmm import HMM

__all__ = ["CalibrationPenalty"]

#: Cells of the belief simplex (k-means centroids).
CELLS = 32
#: Target beliefs the centroids are fitted on (a fixed, evenly spaced subsample).
FIT_POINTS = 20_000


class CalibrationPenalty:
    """λ Σ_jk (O_jk − E_jk)² / (N (O_jk + E_jk)) over belief cells j and symbols k (module docstring).

    Parameters
    ----------
    hmm : the HMM whose filter is used, with the start distribution that matches the windows (its
        stationary version for windows cut from a long run).
    targets : (n, T K) flattened one-hot target sequences drawn from ``hmm``: they place the cells.
    weight : λ.
    seed : seed of the k-means fit.
    """

    def __init__(self, hmm: HMM, targets: torch.Tensor, weight: float, seed: int = 0) -> None:
        dtype, device = targets.dtype, targets.device
        self.start = torch.tensor(hmm.start, dtype=dtype, device=device)  # (S,)
        self.transition = torch.tensor(hmm.transition, dtype=dtype, device=device)  # (S, S)
        self.emission = torch.tensor(hmm.emission, dtype=dtype, device=device)  # (S, K)
        self.n_outputs = hmm.n_outputs
        self.weight = weight
        beliefs = self.beliefs(targets.reshape(targets.shape[0], -1, self.n_outputs)).reshape(-1, len(self.start))
        points = beliefs[torch.linspace(0, len(beliefs) - 1, min(FIT_POINTS, len(beliefs))).long()].cpu().numpy()
        cells = min(CELLS, len(np.unique(points.round(6), axis=0)))
        fit = KMeans(n_clusters=cells, n_init=3, random_state=seed).fit(points.astype(np.float64))
        self.centroids = torch.tensor(fit.cluster_centers_, dtype=dtype, device=device)  # (C, S)

    def beliefs(self, onehot: torch.Tensor) -> torch.Tensor:
        """Prior beliefs (B, T, S) of the symbols onehot (B, T, K), without gradient."""
        with torch.no_grad():
            return prior_beliefs(onehot.detach() @ self.emission.T, self.start, self.transition)

    def counts(self, samples: torch.Tensor, probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(O, E), each (C, K): the network's expected symbol counts and the HMM's predicted counts per
        belief cell, for samples and probabilities (B, T, K)."""
        beliefs = self.beliefs(samples).reshape(-1, len(self.start))  # (B T, S)
        cell = torch.cdist(beliefs, self.centroids).argmin(dim=1)  # (B T,)
        members = torch.nn.functional.one_hot(cell, len(self.centroids)).to(probabilities.dtype)  # (B T, C)
        return members.T @ probabilities.reshape(-1, self.n_outputs), members.T @ (beliefs @ self.emission)

    def __call__(self, samples: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
        """Penalty of a batch: samples (B, T, K) straight-through one-hot, probabilities (B, T, K) the
        distributions they were drawn from; a scalar tensor."""
        observed, predicted = self.counts(samples, probabilities)
        total = observed + predicted
        terms = torch.where(total > 0, (observed - predicted) ** 2 / total.clamp_min(1e-12), 0.0)
        return self.weight * terms.sum() / (samples.shape[0] * samples.shape[1])
