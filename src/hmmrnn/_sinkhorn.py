"""The paper's training loss, computed for one-hot sequences: GeomLoss's debiased Sinkhorn divergence.

S_ε(α, β) = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β) between uniform measures on B RNN sequences x_i
and B' HMM sequences y_j in R^{T K}, cost C = ½‖x − y‖², ε = blur². The algorithm is GeomLoss's
(``SamplesLoss("sinkhorn", p=2, blur=0.2)``, legacy tensorized loop) step for step: the same
ε-scaling schedule (from diameter² down to blur² by factors scaling²), the same symmetric averaged
updates of the four dual potentials, and a last extrapolation at ε = blur² whose envelope-theorem
gradient is the only one taken.

What is different is how each soft-min is computed. For one-hot sequences ½‖x_i − y_j‖² is the
number m_ij of steps where the two sequences differ, an integer in [0, T], so

    softmin_i = −ε log Σ_j exp(h_j − m_ij/ε) = −ε log Σ_m exp(−m/ε) · Σ_{j: m_ij = m} exp(h_j)

is a histogram pass over uint8 counts plus T + 1 exponentials per row (the kernel shared with the
matched-distance metric), instead of an exponential per pair over a dense float matrix allocated
afresh at every call. The target–target problem OT_ε(β, β) does not depend on the model: it is
solved once per target batch and reused (it is exactly the same computation). The gradient,
∂S/∂x_i = a_i (Σ_j Q_ij x_j − Σ_j P_ij y_j) with P, Q the last extrapolation's soft-max weights
of the x–y and x–x problems, is formed directly (two matrix products) instead of by autograd
through N² matrices. Agreement with GeomLoss (value and gradient) is a test; the speed is in
``benchmarks/bench_epoch.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

from ._matching import _soft_min, keeps_torch_threads, mismatch_counts


@njit(parallel=True, cache=True)
def _plan_rows(counts: np.ndarray, log_kernel: np.ndarray, potential: np.ndarray,
               row_lse: np.ndarray) -> np.ndarray:  # pragma: no cover
    """P_ij = exp(potential_j + log_kernel[counts_ij] − row_lse_i) as col_j · row_i[counts_ij].

    col_j = exp(potential_j − max potential) ≤ 1 and row_i[m] = exp(max potential + log_kernel[m] −
    row_lse_i): T + 1 exponentials per row instead of one per pair. row_i[m] is capped at e^700; a
    capped factor only meets columns whose col_j underflowed to 0, whose P_ij is 0 either way.
    """
    n_rows, n_cols = counts.shape
    top = potential.max()
    col_weight = np.exp(potential - top)
    out = np.empty((n_rows, n_cols), dtype=np.float32)
    for i in prange(n_rows):
        row_factor = np.exp(np.minimum(top + log_kernel - row_lse[i], 700.0))
        row = counts[i]
        for j in range(n_cols):
            out[i, j] = col_weight[j] * row_factor[row[j]]
    return out


def _epsilon_schedule(diameter: float, blur: float, scaling: float) -> list[float]:
    """GeomLoss's schedule for p = 2: diameter², then exp(e) for e from 2 log diameter down to
    2 log blur in steps of 2 log scaling, then blur². A diameter below the blur (two clouds of one
    and the same point, e.g. the two halves of a model batch that emits one sequence only) counts
    as the blur: the schedule is then blur² alone."""
    diameter = max(diameter, blur)
    steps = np.arange(2 * np.log(diameter), 2 * np.log(blur), 2 * np.log(scaling))
    return [diameter**2] + [float(np.exp(e)) for e in steps] + [blur**2]


def _diameter(x_symbols: np.ndarray, y_symbols: np.ndarray, n_outputs: int) -> float:
    """Norm of the bounding box of both one-hot clouds: sqrt(number of coordinates that vary)."""
    length = x_symbols.shape[1]
    present = np.zeros((length, n_outputs), dtype=bool)
    absent = np.zeros((length, n_outputs), dtype=bool)
    for symbols in (x_symbols, y_symbols):
        onehot = np.zeros((symbols.shape[0], length, n_outputs), dtype=bool)
        np.put_along_axis(onehot, symbols[..., None], True, axis=2)
        present |= onehot.any(axis=0)
        absent |= ~onehot.all(axis=0)
    return math.sqrt(float((present & absent).sum()))


def _softmin(eps: float, counts: np.ndarray, h: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """GeomLoss's softmin for mismatch counts: −ε LSE_j (h_j − m_ij / ε), and the LSE itself."""
    lse = _soft_min(counts, -np.arange(length + 1) / eps, h)
    return -eps * lse, lse


def _self_term(counts: np.ndarray, schedule: list[float], length: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The symmetric problem OT_ε(μ, μ): GeomLoss's averaged updates over the schedule, then the last
    extrapolation at ε = blur². Returns its potential (n,), and the log-weights h (n,) and row LSEs
    (n,) of that extrapolation, from which ``_plan_rows`` forms the soft-max weights."""
    log_weight = np.log(1.0 / counts.shape[0])
    potential = _softmin(schedule[0], counts, np.full(counts.shape[0], log_weight), length)[0]
    for eps in schedule:
        potential = 0.5 * (potential + _softmin(eps, counts, log_weight + potential / eps, length)[0])
    h = log_weight + potential / schedule[-1]
    term, lse = _softmin(schedule[-1], counts, h, length)
    return term, h, lse


def _side_gradient(log_kernel: np.ndarray, self_problem: tuple, own: torch.Tensor, cross_problem: tuple,
                   other: torch.Tensor) -> torch.Tensor:
    """∂S/∂(own side) = (Q own − P other) / n_own, (n_own, T K): Q and P the soft-max weights of the last
    extrapolation of the own–own and own–other problems, each given as (counts, h, row LSE)."""
    plan_self = torch.from_numpy(_plan_rows(self_problem[0], log_kernel, *self_problem[1:]))
    plan_cross = torch.from_numpy(_plan_rows(cross_problem[0], log_kernel, *cross_problem[1:]))
    return (plan_self @ own - plan_cross @ other) / len(own)


class OneHotSinkhornDivergence:
    """Debiased Sinkhorn divergence between batches of one-hot sequences (see the module docstring).

    Parameters
    ----------
    n_outputs : K.
    blur : ε = blur² (the paper: 0.2).
    scaling : ε-scaling factor of GeomLoss (default 0.5).

    cache_targets : keep the target–target problem of each target batch (training reuses a few target
        batches every epoch); off where the "targets" are fresh samples every call.

    Call with ``x``: (B, T K) model outputs whose values are one-hot (straight-through samples) and
    ``y``: (B', T K) one-hot targets. Returns a scalar tensor whose gradient flows to each argument
    that requires one: S is symmetric, so ∂S/∂y_j = b_j (Σ_k Q'_jk y_k − Σ_i P'_ji x_i) with P', Q'
    the last extrapolation's soft-max weights of the y–x and y–y problems (two model batches compared
    with each other, e.g. the split estimator's halves).
    """

    def __init__(self, n_outputs: int, blur: float = 0.2, scaling: float = 0.5, cache_targets: bool = True) -> None:
        self.n_outputs, self.blur, self.scaling, self.cache_targets = n_outputs, blur, scaling, cache_targets
        self._target_cache: dict[tuple, tuple] = {}

    def _symbols(self, onehot: torch.Tensor) -> np.ndarray:
        return onehot.detach().reshape(onehot.shape[0], -1, self.n_outputs).argmax(-1).cpu().numpy()

    def _target_term(self, y: torch.Tensor, y_symbols: np.ndarray, schedule: list[float]) -> np.ndarray:
        """The y–y potential after the last extrapolation, solved once per target batch and schedule."""
        key = (y.data_ptr(), tuple(y.shape), tuple(y.stride()), y._version, tuple(schedule))
        if key in self._target_cache:
            return self._target_cache[key]
        term = _self_term(mismatch_counts(y_symbols, y_symbols, self.n_outputs), schedule, y_symbols.shape[1])[0]
        if self.cache_targets:
            if len(self._target_cache) >= 64:  # training uses a few entries per target batch
                self._target_cache.pop(next(iter(self._target_cache)))
            self._target_cache[key] = term
        return term

    @keeps_torch_threads
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_symbols, y_symbols = self._symbols(x), self._symbols(y)
        length = x_symbols.shape[1]
        schedule = _epsilon_schedule(_diameter(x_symbols, y_symbols, self.n_outputs), self.blur, self.scaling)
        grads = torch.is_grad_enabled() and x.requires_grad, torch.is_grad_enabled() and y.requires_grad
        counts_xy = mismatch_counts(x_symbols, y_symbols, self.n_outputs)
        counts_yx = np.ascontiguousarray(counts_xy.T)
        counts_xx = mismatch_counts(x_symbols, x_symbols, self.n_outputs)
        if grads[1]:  # a model batch on the y side: its y–y problem changes with every call
            counts_yy = mismatch_counts(y_symbols, y_symbols, self.n_outputs)
            g_bb, h_yy, lse_yy = _self_term(counts_yy, schedule, length)
        else:
            g_bb = self._target_term(y, y_symbols, schedule)
        n, m = counts_xy.shape
        a_log, b_log = np.log(1.0 / n), np.log(1.0 / m)

        eps0 = schedule[0]
        g_ab = _softmin(eps0, counts_yx, np.full(n, a_log), length)[0]
        f_ba = _softmin(eps0, counts_xy, np.full(m, b_log), length)[0]
        for eps in schedule:
            ft_ba = _softmin(eps, counts_xy, b_log + g_ab / eps, length)[0]
            gt_ab = _softmin(eps, counts_yx, a_log + f_ba / eps, length)[0]
            f_ba, g_ab = 0.5 * (f_ba + ft_ba), 0.5 * (g_ab + gt_ab)
        f_aa, h_xx, lse_xx = _self_term(counts_xx, schedule, length)  # independent of the x-y updates
        eps = schedule[-1]
        h_xy, h_yx = b_log + g_ab / eps, a_log + f_ba / eps
        f_ba, lse_xy = _softmin(eps, counts_xy, h_xy, length)
        g_ab, lse_yx = _softmin(eps, counts_yx, h_yx, length)
        value = torch.as_tensor((f_ba - f_aa).mean() + (g_ab - g_bb).mean(), dtype=x.dtype, device=x.device)
        if not any(grads):
            return value
        log_kernel = -np.arange(length + 1) / eps
        x_hard = torch.nn.functional.one_hot(torch.from_numpy(x_symbols), self.n_outputs).reshape(n, -1).float()
        y_hard = torch.nn.functional.one_hot(torch.from_numpy(y_symbols), self.n_outputs).reshape(m, -1).float()

        grad_x = grad_y = None
        if grads[0]:
            grad_x = _side_gradient(log_kernel, (counts_xx, h_xx, lse_xx), x_hard, (counts_xy, h_xy, lse_xy), y_hard)
        if grads[1]:
            grad_y = _side_gradient(log_kernel, (counts_yy, h_yy, lse_yy), y_hard, (counts_yx, h_yx, lse_yx), x_hard)
        return _WithGradient.apply(x, y, value, *(None if g is None else g.to(device=x.device, dtype=x.dtype)
                                                  for g in (grad_x, grad_y)))


class SplitBatchDivergence:
    """The divergence between a model batch and a target batch, estimated without the finite-batch
    preference for less diverse output (docs/method.md §3.1).

    With x split into halves x₁, x₂ and y into y₁, y₂ (alternate rows),

        L(x, y) = ½ [S(x₁, y₁) + S(x₂, y₂)] − ½ S(x₁, x₂) − ½ S(y₁, y₂).

    Every term compares two independent samples of the same size, so when the model emits the target
    distribution E[L] = 0 exactly, whatever the batch size. The plain estimate S(x, y) is not
    centred that way: on finite batches it is lower for a model whose output is less diverse than
    the target's (measured on ``fully3``, B = 4096, T = 30: the HMM's own windows 1.758, the same
    windows with half the emission noise 1.616, ``benchmarks/sinkhorn_noise_bias.py``), so training
    on it sheds noise symbols and makes sequences too predictable. The term −½ S(x₁, x₂), the
    divergence between two independent halves of the model's own batch, rewards diversity by exactly
    the amount the first term's bias penalises it in the limit ε → ∞, where S is an MMD and L its
    unbiased estimate; at ε = 0.04 its value was measured (BENCHMARKS.md, "Session 11"). The gradient
    of S(x₁, x₂) reaches both halves (one solve gives both sides' gradients).

    Parameters
    ----------
    divergence : S with the target side cached (training's target batches).
    between_samples : S for two model halves (no target cache: fresh samples every call).

    Call with x (B, T K) and y (B', T K), B, B' >= 4; smaller batches fall back to S(x, y).
    """

    def __init__(self, divergence, between_samples) -> None:
        self.divergence, self.between_samples = divergence, between_samples
        self._target_terms: dict[tuple, float] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 4 or y.shape[0] < 4:
            return self.divergence(x, y)
        x1, x2, y1, y2 = x[0::2], x[1::2], y[0::2], y[1::2]
        cross = 0.5 * (self.divergence(x1, y1) + self.divergence(x2, y2))
        return cross - 0.5 * self.between_samples(x1, x2) - 0.5 * self._target_term(y1, y2)

    def _target_term(self, y1: torch.Tensor, y2: torch.Tensor) -> float:
        """S(y₁, y₂), a constant of each target batch: computed once per batch."""
        key = (y1.data_ptr(), tuple(y1.shape), y1._version)
        if key not in self._target_terms:
            if len(self._target_terms) >= 64:
                self._target_terms.pop(next(iter(self._target_terms)))
            with torch.no_grad():
                self._target_terms[key] = float(self.divergence(y1, y2))
        return self._target_terms[key]


class _WithGradient(torch.autograd.Function):
    """Returns a precomputed value whose gradients with respect to ``x`` and ``y`` are precomputed
    tensors (None: that argument gets none)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, value: torch.Tensor, grad_x: torch.Tensor | None,
                grad_y: torch.Tensor | None) -> torch.Tensor:
        ctx.grads = grad_x, grad_y
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_x, grad_y = ctx.grads
        return (None if grad_x is None else grad_output * grad_x,
                None if grad_y is None else grad_output * grad_y, None, None, None)
