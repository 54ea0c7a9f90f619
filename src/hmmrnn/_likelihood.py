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

__all__ = ["LikelihoodPenalty", "prior_beliefs"]


def prior_beliefs(emitted: torch.Tensor, start: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """The HMM's forward filter: its prior belief over states before each symbol, (B, T, S).

    emitted (B, T, S) holds P(x_t | state) = E x_t for one-hot symbols x_t and emission matrix E;
    start (S,), transition A (S, S). β_1 = start, β_{t+1} = normalise(β_t ∘ e_t) A, and the scaled
    forward algorithm's normaliser is c_t = β_t · e_t, so log P(x) = Σ_t log c_t. A symbol no state
    the belief allows can emit (all products 0) leaves the belief at the prior propagated by A, so
    impossible symbols do not produce NaNs. Differentiable in ``emitted``."""
    belief = start.expand(emitted.shape[0], -1)
    beliefs = []
    for t in range(emitted.shape[1]):
        beliefs.append(belief)
        posterior = belief * emitted[:, t]
        total = posterior.sum(dim=1, keepdim=True)
        posterior = torch.where(total > 0, posterior / total.clamp_min(1e-30), belief)
        belief = posterior @ transition
    return torch.stack(beliefs, dim=1)


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

        log P(x) = Σ_t log c_t with c_t = β_t · e_t, β_t the filter's prior belief (``prior_beliefs``)
        and e_t = E x_t (S,)."""
        onehot = outputs.reshape(outputs.shape[0], -1, self.n_outputs)
        emitted = onehot @ self.emission.T  # (B, T, S): P(x_t | state)
        scales = (prior_beliefs(emitted, self.start, self.transition) * emitted).sum(dim=2)  # (B, T): c_t
        return torch.log(scales).mean(dim=1)

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        """Penalty of a batch of flattened model outputs (B, T K); a scalar tensor."""
        values = torch.sort(self.per_step(outputs)).values
        levels = (torch.arange(len(values), dtype=values.dtype, device=values.device) + 0.5) / len(values)
        quantiles = torch.quantile(self.target, levels.to(self.target.dtype))
        return self.weight * ((values - quantiles) ** 2).mean()
