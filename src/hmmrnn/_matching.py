"""Matched Euclidean distance between two sets of symbol sequences (docs/method.md §4.1).

Both sets are uniform empirical measures of one-hot sequences in R^{T K}. An entropic OT plan
with the *unsquared* Euclidean cost C_ij = ‖x_i − y_j‖ and ε = 0.1 is found by log-domain
Sinkhorn; then every sequence j of the second set is matched to the row i* = argmax_i π_ij
(many-to-one) and the score is ‖x_{i*} − y_j‖.

Why our own solver: for one-hot sequences ‖x_i − y_j‖ = sqrt(2 m_ij), where m_ij is the number of
time steps at which the two sequences differ, an integer in [0, T]. The kernel exp(−C_ij/ε)
therefore takes only T + 1 values, and the log-sum-exp of a row,

    LSE_j (g_j − C_ij) / ε = log Σ_m exp(−c_m / ε) · W_i[m],   W_i[m] = Σ_{j: m_ij = m} exp(g_j / ε),

needs one histogram pass over the row (an add per pair) and T + 1 exponentials, instead of an
exponential per pair. The mismatch counts are stored once as uint8 (N² bytes, 0.9 GB at N = 30,000),
not as a dense float cost matrix (3.6 GB each, several alive at once in the reference code, or in
GeomLoss's tensorized backend; its online backend needs KeOps and an exponential per pair per
iteration). Measured in ``benchmarks/bench_matching.py``.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import numpy as np
from numba import njit, prange

_F = TypeVar("_F", bound=Callable)


def keeps_torch_threads(function: _F) -> _F:
    """Restore torch's intra-op thread count after ``function``.

    Numba's OpenMP threading layer calls omp_set_num_threads(NUMBA_NUM_THREADS) when it first
    launches, which silently resets ``torch.set_num_threads`` (measured: 1 -> 2 on this 2-core
    machine), so every entry point that runs parallel numba kernels is wrapped in this.
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        import torch

        threads = torch.get_num_threads()
        try:
            return function(*args, **kwargs)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    return wrapper  # type: ignore[return-value]

__all__ = ["mismatch_counts", "matched_distances", "MatchingResult"]


def mismatch_counts(first: np.ndarray, second: np.ndarray, n_outputs: int, block: int = 2048) -> np.ndarray:
    """m_ij = number of time steps where sequence i of ``first`` and j of ``second`` differ.

    Parameters
    ----------
    first : (N1, T) int symbols; second : (N2, T) int symbols.

    Returns
    -------
    (N1, N2) uint8 (uint16 when T > 255).
    """
    import torch

    length = first.shape[1]
    dtype = np.uint8 if length <= 255 else np.uint16
    # matches_ij = <onehot(x_i), onehot(y_j)>, an exact integer in float32 for T < 2^24
    x = torch.nn.functional.one_hot(torch.as_tensor(first), n_outputs).reshape(len(first), -1).float()
    y = torch.nn.functional.one_hot(torch.as_tensor(second), n_outputs).reshape(len(second), -1).float()
    out = np.empty((len(first), len(second)), dtype=dtype)
    for start in range(0, len(first), block):
        matches = x[start: start + block] @ y.T
        out[start: start + block] = (length - matches).round_().numpy().astype(dtype)
    return out


@njit(parallel=True, cache=True)
def _soft_min(counts: np.ndarray, log_kernel: np.ndarray, potential: np.ndarray) -> np.ndarray:  # pragma: no cover
    """out_i = LSE_j (potential_j + log_kernel[counts_ij]) over the columns j of ``counts``."""
    n_rows, n_cols = counts.shape
    shift = potential.max()
    weights = np.exp(potential - shift)
    n_values = log_kernel.shape[0]
    out = np.empty(n_rows)
    for i in prange(n_rows):
        hist = np.zeros(n_values)
        row = counts[i]
        for j in range(n_cols):
            hist[row[j]] += weights[j]
        top = -np.inf
        for m in range(n_values):
            if hist[m] > 0.0 and log_kernel[m] > top:
                top = log_kernel[m]
        total = 0.0
        for m in range(n_values):
            if hist[m] > 0.0:
                total += np.exp(log_kernel[m] - top) * hist[m]
        out[i] = shift + top + np.log(total)
    return out


@njit(parallel=True, cache=True)
def _match_columns(counts_t: np.ndarray, cost: np.ndarray, potential: np.ndarray) -> np.ndarray:  # pragma: no cover
    """For each column j: argmax_i (potential_i − cost[counts_t[j, i]]), from the transposed counts."""
    n_cols, n_rows = counts_t.shape
    best = np.empty(n_cols, dtype=np.int64)
    for j in prange(n_cols):
        row = counts_t[j]
        top = -np.inf
        arg = 0
        for i in range(n_rows):
            value = potential[i] - cost[row[i]]
            if value > top:
                top = value
                arg = i
        best[j] = arg
    return best


class MatchingResult:
    """Per-sequence matched distances of the second set (N2,), the matched row of each, the same for
    every sequence of the first set (``row_distances``, (N1,), from the same plan), and solver
    diagnostics (``overrelaxation``: the ω the solve ended with)."""

    def __init__(self, distances: np.ndarray, matches: np.ndarray, iterations: int, converged: bool,
                 change: float, row_distances: np.ndarray, overrelaxation: float) -> None:
        self.distances = distances
        self.row_distances = row_distances
        self.matches = matches
        self.iterations = iterations
        self.converged = converged
        self.change = change
        self.overrelaxation = overrelaxation


#: Iterations without a new smallest Sinkhorn step after which an over-relaxed solve is taken to
#: oscillate (plain Sinkhorn's step shrinks steadily).
_STALL = 25


@keeps_torch_threads
def matched_distances(first: np.ndarray, second: np.ndarray, n_outputs: int, *, epsilon: float = 0.1,
                      max_iter: int = 1000, tol: float = 2e-5, overrelaxation: float = 1.7) -> MatchingResult:
    """Entropic-OT matched Euclidean distances between two sets of symbol sequences.

    Log-domain Sinkhorn between uniform weights, potentials starting at 0 (docs/method.md §4.1):
    the Sinkhorn step S_f(g)_i = ε log a_i − ε LSE_j (g_j − C_ij)/ε, then S_g(f) likewise with the
    new f. The reference stops when Σ|Δf| + Σ|Δg| < 0.1, a criterion that tightens with N; we stop
    when the *mean* size of the Sinkhorn step, mean|S_f(g) − f| + mean|S_g(f) − g| < ``tol``, whose
    default equals the reference's at N = 5,000 (where its published baselines were computed).

    Over-relaxed after a first plain step from 0 (whose size is of order the cost): f ← f + ω (S_f(g) −
    f), then g ← g + ω (S_g(f) − g), which has the same fixed point (ω = 1 is plain Sinkhorn). At
    ε = 0.1 plain Sinkhorn contracts slowly (about 0.994 per iteration late on for ``fully3``); ω = 1.7
    needs 2.5–5.5× fewer iterations for every preset (846 → 196 for ``fully3`` at N = 5,000, T = 30;
    BENCHMARKS.md, session 22) and gives the same matches but for near-ties (≤ 0.08 % of sequences).
    Should a relaxed run oscillate instead (its step has not shrunk below its smallest for ``_STALL``
    iterations; measured at ω = 1.9 for ``fully3`` at N = 5,000, and at ω = 1.7 when the first step
    is relaxed too), it goes back to the potentials of its smallest step and goes on with ω halfway
    to 1.

    Parameters
    ----------
    first : (N1, T) int symbols; second : (N2, T) int symbols.

    Returns
    -------
    MatchingResult with ``distances`` (N2,): ‖x_{i*(j)} − y_j‖ with i*(j) = argmax_i π_ij, and
    ``row_distances`` (N1,): ‖x_i − y_{j*(i)}‖ with j*(i) = argmax_j π_ij (the same plan read by rows).
    """
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != second.shape[1]:
        raise ValueError(f"need two (N, T) arrays of equal T, got {first.shape} and {second.shape}")
    if not 0.0 < overrelaxation < 2.0:
        raise ValueError(f"overrelaxation must lie in (0, 2), got {overrelaxation}")
    counts = mismatch_counts(first, second, n_outputs)
    counts_t = np.ascontiguousarray(counts.T)
    cost = np.sqrt(2.0 * np.arange(first.shape[1] + 1))  # C for each mismatch count
    log_kernel = -cost / epsilon
    n1, n2 = counts.shape
    # The reference adds 1e-8 inside log(a); with N1 != N2 that unbalances the two masses and the
    # potentials then drift by a constant forever (the plan's shape, hence the matching, is unchanged).
    log_a, log_b = np.log(1.0 / n1), np.log(1.0 / n2)
    omega = overrelaxation
    f, g = np.zeros(n1), np.zeros(n2)
    # the smallest Sinkhorn step so far, the potentials it was taken from and its iteration
    best_change, best_f, best_g, best_iteration = np.inf, f, g, 0
    converged, change, iterations = False, np.inf, 0
    for iterations in range(1, max_iter + 1):
        weight = omega if iterations > 1 else 1.0
        f_step = epsilon * (log_a - _soft_min(counts, log_kernel, g / epsilon))
        f_new = f + weight * (f_step - f)
        g_step = epsilon * (log_b - _soft_min(counts_t, log_kernel, f_new / epsilon))
        change = float(np.abs(f_step - f).mean() + np.abs(g_step - g).mean())
        if change < best_change:
            best_change, best_f, best_g, best_iteration = change, f, g, iterations
        elif omega > 1.0 and iterations - best_iteration >= _STALL:
            # stuck in an oscillation: back to the best potentials with ω halfway to 1
            omega, f, g = 1.0 + (omega - 1.0) / 2, best_f, best_g
            best_change, best_iteration = np.inf, iterations
            continue
        f, g = f_new, g + weight * (g_step - g)
        if change < tol:
            converged = True
            break
    # π_ij ∝ exp((f_i + g_j − C_ij) / ε): a column's largest entry maximises f_i − C_ij, a row's g_j − C_ij
    matches = _match_columns(counts_t, cost, f)
    distances = cost[counts_t[np.arange(n2), matches]]
    row_matches = _match_columns(counts, cost, g)
    row_distances = cost[counts[np.arange(n1), row_matches]]
    return MatchingResult(distances, matches, iterations, converged, change, row_distances, omega)
