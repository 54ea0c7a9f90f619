"""An optional loss term: the distribution of the emitted sequences' log-likelihood under the HMM.

Why it exists (measured, BENCHMARKS.md "Stationary emulators"): the Sinkhorn divergence and the
pooled n-gram penalty can both be near their floor while the network's sequences are still less
likely under the HMM than the HMM's own (``cyclic4``: gap 0.054 nats/step after 500 epochs, with
frequencies and transitions within their allowances). The verdict's log-likelihood check sees it; a
loss on pooled statistics does not, because the error lies in which symbol follows a long run of
another (the ring's hidden direction). The per-step log-likelihood of a sequence,

    ℓ(x) = log P_HMM(x_1, …, x_T) / T,

is a statistic of the whole sequence that the HMM itself defines, so its distribution is matched
directly: with ℓ_(1) ≤ … ≤ ℓ_(B) the sorted values of a batch and q_i the target set's quantiles at
(i − ½)/B,

    penalty = λ · (1/B) Σ_i (ℓ_(i) − q_i)²,

the squared 1-D Wasserstein-2 distance between the two empirical distributions. ℓ is computed by the
scaled forward algorithm on the straight-through one-hot samples, so the forward pass is the exact
log-likelihood of the emitted sequence and the gradient reaches the logits through the Gumbel-softmax
relaxation. Emission probabilities are floored at ``floor`` (rows renormalised) so that a sequence the
HMM cannot emit has a large but finite cost with a gradient, and the target quantiles use the same
floored HMM.
"""

from __future__ import annotations

import torch

from .hmm import HMM

__all__ = ["LikelihoodPenalty"]


class LikelihoodPenalty:
    """λ W₂²(ℓ of a batch, ℓ of the target set), ℓ the per-step HMM log-likelihood of a sequence.

    Parameters
    ----------
    hmm : the HMM whose likelihood is used, with the start distribution that matches the windows
        (its stationary version for windows cut from a long run).
    targets : (n, T K) flattened one-hot target sequences drawn from ``hmm``.
    weight : λ.
    floor : smallest emission probability used in the likelihood.
    """

    def __init__(self, hmm: HMM, targets: torch.Tensor, weight: float, floor: float = 1e-4) -> None:
        emission = torch.tensor(hmm.emission, dtype=targets.dtype).clamp_min(floor)
        self.emission = (emission / emission.sum(dim=1, keepdim=True)).to(targets.device)  # (S, K)
        self.transition = torch.tensor(hmm.transition, dtype=targets.dtype, device=targets.device)  # (S, S)
        self.start = torch.tensor(hmm.start, dtype=targets.dtype, device=targets.device)  # (S,)
        self.n_outputs = hmm.n_outputs
        self.weight = weight
        self.target = torch.sort(self.per_step(targets)).values

    def per_step(self, outputs: torch.Tensor) -> torch.Tensor:
        """ℓ of each sequence: outputs (B, T K) flattened one-hot → (B,) log P(x) / T.

        α̂_1 ∝ π ∘ e_1, α̂_t ∝ (α̂_{t−1} A) ∘ e_t with e_t = B x_t (S,), each normalised by its sum c_t;
        log P(x) = Σ_t log c_t."""
        onehot = outputs.reshape(outputs.shape[0], -1, self.n_outputs)
        emitted = onehot @ self.emission.T  # (B, T, S): P(x_t | state)
        alpha = self.start * emitted[:, 0]
        scale = alpha.sum(dim=1)
        total = torch.log(scale)
        alpha = alpha / scale[:, None]
        for t in range(1, onehot.shape[1]):
            alpha = (alpha @ self.transition) * emitted[:, t]
            scale = alpha.sum(dim=1)
            total = total + torch.log(scale)
            alpha = alpha / scale[:, None]
        return total / onehot.shape[1]

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        """Penalty of a batch of flattened model outputs (B, T K); a scalar tensor."""
        values = torch.sort(self.per_step(outputs)).values
        levels = (torch.arange(len(values), dtype=values.dtype, device=values.device) + 0.5) / len(values)
        quantiles = torch.quantile(self.target, levels.to(self.target.dtype))
        return self.weight * ((values - quantiles) ** 2).mean()
