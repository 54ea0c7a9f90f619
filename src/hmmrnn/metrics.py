"""Emission statistics of symbol sequences (docs/method.md §4) and the stronger tests beyond the paper.

Every function takes an (N, T) integer array of symbols in [0, K) and works on whole arrays.
"""

from __future__ import annotations

import numpy as np

from ._matching import MatchingResult, matched_distances
from .hmm import check_symbols

__all__ = [
    "output_frequencies",
    "volatility",
    "transition_counts",
    "transition_matrix",
    "dwell_times",
    "dwell_distribution",
    "ngram_distribution",
    "total_variation",
    "matched_distances",
    "MatchingResult",
]


def output_frequencies(obs: np.ndarray, n_outputs: int) -> np.ndarray:
    """Fraction of time steps with each symbol, per sequence. (N, T) -> (N, K)."""
    obs = check_symbols(obs, n_outputs)
    counts = np.zeros((obs.shape[0], n_outputs))
    np.add.at(counts, (np.repeat(np.arange(obs.shape[0]), obs.shape[1]), obs.ravel()), 1)
    return counts / obs.shape[1]


def volatility(obs: np.ndarray) -> np.ndarray:
    """Number of steps whose symbol differs from the previous one (T − 1 comparisons). (N, T) -> (N,)."""
    obs = np.asarray(obs)
    return (obs[:, 1:] != obs[:, :-1]).sum(axis=1)


def transition_counts(obs: np.ndarray, n_outputs: int) -> np.ndarray:
    """Counts of consecutive pairs (o_{t−1} = k, o_t = l) over all sequences. (K, K)."""
    obs = check_symbols(obs, n_outputs)
    codes = obs[:, :-1] * n_outputs + obs[:, 1:]
    return np.bincount(codes.ravel(), minlength=n_outputs**2).reshape(n_outputs, n_outputs).astype(float)


def transition_matrix(obs: np.ndarray, n_outputs: int) -> np.ndarray:
    """Empirical P(o_t = l | o_{t−1} = k). (K, K); a symbol that is never followed by anything
    (never occurs before the last step) gets a row of NaN rather than a division by zero."""
    counts = transition_counts(obs, n_outputs)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def dwell_times(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of constant symbol within each sequence, and the symbol of each run.

    A run cut by the start or end of a sequence counts with its observed length (both sets
    compared always have the same T, so the censoring is the same on both sides).

    Returns
    -------
    lengths : (R,) int, symbols : (R,) int, over all runs of all sequences.
    """
    obs = np.asarray(obs)
    n, length = obs.shape
    starts_mask = np.ones_like(obs, dtype=bool)
    starts_mask[:, 1:] = obs[:, 1:] != obs[:, :-1]
    starts = np.flatnonzero(starts_mask.ravel())
    lengths = np.diff(np.append(starts, n * length))
    return lengths, obs.ravel()[starts]


def dwell_distribution(obs: np.ndarray, n_outputs: int) -> np.ndarray:
    """P(run length = L | symbol k) for L = 1..T. (K, T); rows of symbols never seen are NaN."""
    obs = check_symbols(obs, n_outputs)
    lengths, symbols = dwell_times(obs)
    hist = np.zeros((n_outputs, obs.shape[1]))
    np.add.at(hist, (symbols, lengths - 1), 1)
    totals = hist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hist / totals, np.nan)


def ngram_distribution(obs: np.ndarray, n_outputs: int, n: int) -> np.ndarray:
    """Distribution of the K^n words of n consecutive symbols, over all windows inside sequences.

    Returns
    -------
    (K ** n,) probabilities, word (s_1, ..., s_n) at index Σ s_k K^(n−k).
    """
    obs = check_symbols(obs, n_outputs)
    if not 1 <= n <= obs.shape[1]:
        raise ValueError(f"n-gram order must lie in [1, T={obs.shape[1]}], got {n}")
    codes = np.zeros((obs.shape[0], obs.shape[1] - n + 1), dtype=np.int64)
    for k in range(n):
        codes = codes * n_outputs + obs[:, k: obs.shape[1] - n + 1 + k]
    counts = np.bincount(codes.ravel(), minlength=n_outputs**n).astype(float)
    return counts / counts.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """½ Σ |p − q| for two distributions on the same support (NaN entries count as 0)."""
    return 0.5 * float(np.abs(np.nan_to_num(p) - np.nan_to_num(q)).sum())
