"""An optional loss term: the distribution of the number of symbol changes per window.

Why it exists (docs/method.md §3.1; measured with ``benchmarks/window_dispersion.py``): the networks
that fail the verdict last (``fully3``, ``cyclic4``) match the HMM's pooled statistics — symbol
frequencies, transitions, the mean number of changes per window — while their windows differ from
one another more than the HMM's do. A ``fully3`` network of the default recipe at epoch 1000, 40,000
stationary windows of T = 30: 17.0 % of its windows hold no change against the HMM's 12.6 %, and
the number of changes has standard deviation 2.06 against 1.79 at the same mean 2.50. Its switching
rate wanders, so calm windows and busy windows are both too common; the HMM windows of the middle
then find their partners farther away and the paired matched distance fails. No pooled statistic
sees a spread across windows.

With o_1..o_T a window and c = #{t ≥ 2 : o_t ≠ o_{t−1}}, the term compares the model's distribution
of c with the HMM's,

    penalty = λ Σ_n (q_n − p_n)² / (q_n + p_n),

the triangular discrimination of ``hmmrnn._bigram``, n = 0..T−1. Both sides are exact given their
inputs, with no counting:

* the HMM's p_n by a forward pass over (hidden state z, last symbol k, changes so far n):
  α_1(z, k, 0) = π_z E_zk and
  α_t(z′, k′, n) = E_z′k′ Σ_z A_zz′ [α_{t−1}(z, k′, n) + Σ_{k ≠ k′} α_{t−1}(z, k, n − 1)];
* the network's q_n as the batch mean of P(c = n | h_1..h_T). Its symbols do not feed back into the
  network, so given the hidden trajectory they are independent draws from p_t = softmax(W_out h_t),
  and the same pass without the hidden state gives the conditional distribution:
  β_1(k, 0) = p_1k, β_t(k′, n) = p_tk′ [β_{t−1}(k′, n) + Σ_{k ≠ k′} β_{t−1}(k, n − 1)].

The gradient reaches the logits through the probabilities p_t, as the bigram term's does with
``bigram_on = "probabilities"``. Cost: T steps of a (B, K, T) update, less than the rollout.
"""

from __future__ import annotations

import numpy as np
import torch

from ._bigram import _discrimination
from .hmm import HMM

__all__ = ["ChangeCountPenalty", "RunAgePenalty", "RunPassagePenalty", "change_count_distribution",
           "hmm_change_count_distribution", "hmm_run_age_changes", "hmm_run_passages", "run_age_changes",
           "run_passages"]

#: Run ages told apart by the run-age penalty: 1..MAX_AGE − 1, and MAX_AGE for every longer run.
MAX_AGE = 10
#: Run lengths told apart by the passage penalty (longer runs pooled): long enough for the runs of
#: ``cyclic4``'s B states (mean length 20), whose memory is what the term is for.
PASSAGE_MAX_AGE = 30


def change_count_distribution(probabilities: torch.Tensor) -> torch.Tensor:
    """P(c = n | p) per window, for symbols drawn independently from each step's probabilities.

    Parameters
    ----------
    probabilities : (B, T, K) the distribution of each step's symbol.

    Returns
    -------
    (B, T): entry [b, n] the probability that window b's sampled symbols change n times.
    """
    batch, length, _ = probabilities.shape
    alpha = probabilities.new_zeros(batch, probabilities.shape[2], length)  # (B, K, n)
    alpha[:, :, 0] = probabilities[:, 0]
    for t in range(1, length):
        changed = alpha.sum(dim=1, keepdim=True) - alpha  # mass whose last symbol is not k′, (B, K, n)
        alpha = probabilities[:, t, :, None] * (alpha + torch.nn.functional.pad(changed[:, :, :-1], (1, 0)))
    return alpha.sum(dim=1)


def hmm_change_count_distribution(hmm: HMM, length: int) -> np.ndarray:
    """(T,) exact P(c = n), n = 0..T−1, for windows of ``length`` steps of ``hmm`` from its start
    distribution (the module docstring's forward pass over state, last symbol and count; float64)."""
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    transition = np.asarray(hmm.transition, dtype=np.float64)  # (S, S)
    emission = np.asarray(hmm.emission, dtype=np.float64)  # (S, K)
    alpha = np.zeros((len(transition), emission.shape[1], length))  # (S, K, n)
    alpha[:, :, 0] = np.asarray(hmm.start, dtype=np.float64)[:, None] * emission
    for _ in range(1, length):
        changed = alpha.sum(axis=1, keepdims=True) - alpha
        changed = np.concatenate([np.zeros_like(changed[:, :, :1]), changed[:, :, :-1]], axis=2)
        alpha = np.einsum("zkn,zy->ykn", alpha + changed, transition) * emission[:, :, None]
    return alpha.sum(axis=(0, 1))


class _DiscriminationPenalty:
    """λ Σ (q − p)² / (q + p) between a statistic q of a batch's output probabilities (``statistic``)
    and the HMM's exact value p of it (``target``, float64)."""

    def __init__(self, target: np.ndarray, weight: float) -> None:
        self.target = torch.from_numpy(target)
        self.weight = weight

    def statistic(self, probabilities: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, probabilities: torch.Tensor) -> torch.Tensor:
        """probabilities : (B, T, K) softmax(W_out h_t) of a batch. Returns the scalar penalty."""
        target = self.target.to(dtype=probabilities.dtype, device=probabilities.device)
        return self.weight * _discrimination(self.statistic(probabilities), target)


class ChangeCountPenalty(_DiscriminationPenalty):
    """λ Σ_n (q_n − p_n)² / (q_n + p_n) between the batch's and the HMM's distributions of the number
    of symbol changes per window (module docstring).

    Parameters
    ----------
    hmm : the HMM, with the start distribution that matches the windows (its stationary version for
        windows cut from a long run).
    length : T, the window length.
    weight : λ.
    """

    def __init__(self, hmm: HMM, length: int, weight: float) -> None:
        super().__init__(hmm_change_count_distribution(hmm, length), weight)

    def statistic(self, probabilities: torch.Tensor) -> torch.Tensor:
        return change_count_distribution(probabilities).mean(dim=0)


def run_age_changes(probabilities: torch.Tensor, max_age: int = MAX_AGE) -> torch.Tensor:
    """Expected frequency of (run age a at step t, whether o_t+1 ≠ o_t), pooled over the batch's
    windows and their T − 1 steps, for symbols drawn independently from each step's probabilities.

    The run age of step t is the number of steps its symbol has lasted inside the window (1 at a
    change or at the window's first step), capped at ``max_age``. A forward pass over (symbol, age):
    β_1(k, 1) = p_1k; the symbol stays with p_t+1,k (age + 1) or changes to k′ with p_t+1,k′ (age 1).

    Parameters
    ----------
    probabilities : (B, T, K), T ≥ 2.

    Returns
    -------
    (max_age, 2): [a − 1, 0] the frequency of age a followed by the same symbol, [a − 1, 1] by another.
    """
    batch, length, _ = probabilities.shape
    beta = probabilities.new_zeros(batch, probabilities.shape[2], max_age)  # (B, K, age)
    beta[:, :, 0] = probabilities[:, 0]
    same, changed = probabilities.new_zeros(max_age), probabilities.new_zeros(max_age)
    for t in range(1, length):
        following = probabilities[:, t, :, None]  # (B, K, 1)
        stays = beta * following
        same = same + stays.sum(dim=(0, 1))
        changed = changed + (beta * (1 - following)).sum(dim=(0, 1))
        older = torch.cat([stays.new_zeros(batch, stays.shape[1], 1), stays[:, :, :-2],
                           stays[:, :, -2:].sum(dim=2, keepdim=True)], dim=2)
        others = beta.sum(dim=(1, 2))[:, None] - beta.sum(dim=2)  # mass on a symbol other than k′, (B, K)
        beta = older + torch.nn.functional.pad((following[:, :, 0] * others)[:, :, None], (0, max_age - 1))
    return torch.stack([same, changed], dim=1) / (batch * (length - 1))


def hmm_run_age_changes(hmm: HMM, length: int, max_age: int = MAX_AGE) -> np.ndarray:
    """(max_age, 2): ``run_age_changes``' frequencies for windows of ``length`` steps of ``hmm`` from
    its start distribution, exactly: the same forward pass over (hidden state, symbol, age), with
    P(o_t+1 = k | z_t = z) = (A E)_zk. Float64."""
    if length < 2:
        raise ValueError(f"window length must be >= 2, got {length}")
    transition = np.asarray(hmm.transition, dtype=np.float64)  # (S, S)
    emission = np.asarray(hmm.emission, dtype=np.float64)  # (S, K)
    following = transition @ emission  # (S, K): P(o_t+1 = k | z_t)
    alpha = np.zeros((len(transition), emission.shape[1], max_age))  # (S, K, age)
    alpha[:, :, 0] = np.asarray(hmm.start, dtype=np.float64)[:, None] * emission
    table = np.zeros((max_age, 2))
    for _ in range(1, length):
        table[:, 0] += np.einsum("zka,zk->a", alpha, following)
        table[:, 1] += np.einsum("zka,zk->a", alpha, 1 - following)
        moved = np.einsum("zka,zy->yka", alpha, transition)  # state advanced, symbol not yet drawn
        stays = moved * emission[:, :, None]
        older = np.concatenate([np.zeros_like(stays[:, :, :1]), stays[:, :, :-2],
                                stays[:, :, -2:].sum(axis=2, keepdims=True)], axis=2)
        others = moved.sum(axis=(1, 2))[:, None] - moved.sum(axis=2)  # (S, K)
        alpha = older
        alpha[:, :, 0] += emission * others
    return table / (length - 1)


class RunAgePenalty(_DiscriminationPenalty):
    """λ Σ_a,c (q_ac − p_ac)² / (q_ac + p_ac) between the batch's and the HMM's frequencies of
    (run age a, change c) (``run_age_changes``): whether a symbol changes as often at every age of its
    run as the HMM's does. The networks whose windows are too unlike one another change too often
    right after a change and too rarely late in a run (``fully3`` at epoch 350 of the default recipe:
    0.31 / 0.13 / 0.087 at ages 1 / 2 / 3 and 0.057 past 6, the HMM 0.27 / 0.073 / 0.069 and 0.069;
    BENCHMARKS.md, session 23), which the change count sees only summed over a window.

    Parameters
    ----------
    hmm : the HMM, with the start distribution that matches the windows.
    length : T, the window length (≥ 2).
    weight : λ.
    max_age : ages told apart (longer runs pooled).
    """

    def __init__(self, hmm: HMM, length: int, weight: float, max_age: int = MAX_AGE) -> None:
        super().__init__(hmm_run_age_changes(hmm, length, max_age), weight)
        self.max_age = max_age

    def statistic(self, probabilities: torch.Tensor) -> torch.Tensor:
        return run_age_changes(probabilities, self.max_age)


def run_passages(probabilities: torch.Tensor, max_age: int = PASSAGE_MAX_AGE) -> torch.Tensor:
    """Expected frequency of each *passage*: a run of symbol b lasting exactly a steps, entered from
    symbol x and left to symbol y (x, y ≠ b), pooled over the batch's windows and divided by B (T − 1),
    for symbols drawn independently from each step's probabilities. Runs longer than ``max_age`` are
    pooled at ``max_age``; the window's first run (no x inside the window) is not counted.

    A forward pass over (entry symbol x, run symbol b, age a): a run that stays gains an age with
    p_t+1,b; one that ends is counted in (x, b, a, y) with p_t+1,y and starts a run (b, y, 1). The
    window's first run, of unknown entry, is carried separately (its symbol only).

    Parameters
    ----------
    probabilities : (B, T, K), T ≥ 2.
    max_age : ≥ 2.

    Returns
    -------
    (K, K, max_age, K): [x, b, a − 1, y] (zero where x = b or y = b).
    """
    if max_age < 2:
        raise ValueError(f"max_age must be >= 2, got {max_age}")
    batch, length, n = probabilities.shape
    first = probabilities[:, 0]  # (B, K): the window's first run, by its symbol
    beta = probabilities.new_zeros(batch, n, n, max_age)  # (B, x, b, age)
    table = probabilities.new_zeros(n, n, max_age, n)
    other = 1 - torch.eye(n, dtype=probabilities.dtype, device=probabilities.device)  # (b, y): y ≠ b
    for t in range(1, length):
        following = probabilities[:, t]  # (B, K)
        ends = following[:, None, :] * other  # (B, b, y)
        table = table + torch.einsum("nxba,nby->xbay", beta, ends)
        started = torch.einsum("nxba,nby->nby", beta, ends) + first[:, :, None] * ends  # (B, b → x', y → b')
        stays = beta * following[:, None, :, None]
        beta = torch.cat([started[..., None], stays[..., :-2], stays[..., -2:].sum(dim=-1, keepdim=True)], dim=-1)
        first = first * following
    return table / (batch * (length - 1))


def hmm_run_passages(hmm: HMM, length: int, max_age: int = PASSAGE_MAX_AGE) -> np.ndarray:
    """(K, K, max_age, K): ``run_passages``' frequencies for windows of ``length`` steps of ``hmm``
    from its start distribution, exactly: the same forward pass with the hidden state z carried
    along (moved by A, then the next symbol drawn from E_z). Float64."""
    if length < 2:
        raise ValueError(f"window length must be >= 2, got {length}")
    if max_age < 2:
        raise ValueError(f"max_age must be >= 2, got {max_age}")
    transition = np.asarray(hmm.transition, dtype=np.float64)  # (S, S)
    emission = np.asarray(hmm.emission, dtype=np.float64)  # (S, K)
    n = emission.shape[1]
    other = 1 - np.eye(n)
    first = np.asarray(hmm.start, dtype=np.float64)[:, None] * emission  # (S, K)
    alpha = np.zeros((len(transition), n, n, max_age))  # (S, x, b, age)
    table = np.zeros((n, n, max_age, n))
    for _ in range(1, length):
        moved = np.einsum("zxba,zw->wxba", alpha, transition)
        moved_first = transition.T @ first  # (S, K)
        ends = emission[:, None, :] * other  # (S, b, y)
        table += np.einsum("zxba,zby->xbay", moved, ends)
        started = np.einsum("zxba,zby->zby", moved, ends) + moved_first[:, :, None] * ends
        stays = moved * emission[:, None, :, None]
        alpha = np.concatenate([started[..., None], stays[..., :-2], stays[..., -2:].sum(axis=-1, keepdims=True)],
                               axis=-1)
        first = moved_first * emission
    return table / (length - 1)


class RunPassagePenalty(_DiscriminationPenalty):
    """λ Σ (q − p)² / (q + p) over the passages (x, b, a, y) of ``run_passages``: which symbol a run
    of each length is left to, given the one it was entered from. In ``cyclic4`` the two B states
    differ only in their noise (A or C) and in where their runs lead; a network whose B region forgets
    which B state it holds makes A … B^a … C passages (two noise symbols of different kinds around a
    run of B) more often the longer the run: 11 / 17 / 23 / 29 % of the pairs of one-step noise
    symbols 1–2 / 3–7 / 8–19 / 20–59 steps apart differ in kind, the HMM's 7–8 % at every gap
    (BENCHMARKS.md, session 25). No term on runs alone (change counts, run ages) sees the symbols on
    either side.

    Parameters
    ----------
    hmm : the HMM, with the start distribution that matches the windows.
    length : T, the window length (≥ 2).
    weight : λ.
    max_age : run lengths told apart (longer runs pooled).
    """

    def __init__(self, hmm: HMM, length: int, weight: float, max_age: int = PASSAGE_MAX_AGE) -> None:
        super().__init__(hmm_run_passages(hmm, length, max_age), weight)
        self.max_age = max_age

    def statistic(self, probabilities: torch.Tensor) -> torch.Tensor:
        return run_passages(probabilities, self.max_age)
