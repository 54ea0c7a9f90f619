"""The matched Euclidean distance (``hmmrnn._matching``): a dense literal solver, brute-force mismatch
counts and the paper's HMM-vs-HMM baselines (docs/method.md §4.1–4.2)."""

from __future__ import annotations

import numpy as np
import pytest

from hmmrnn import metrics as M
from hmmrnn import preset
from hmmrnn._matching import mismatch_counts


def _reference_sinkhorn_matching(x: np.ndarray, y: np.ndarray, k: int, eps: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The reference SinkhornSolver, dense and literal (docs/method.md §4.1), run to tight convergence."""
    from scipy.special import logsumexp

    fx = np.eye(k)[x].reshape(len(x), -1)
    fy = np.eye(k)[y].reshape(len(y), -1)
    cost = np.sqrt(((fx[:, None, :] - fy[None, :, :]) ** 2).sum(-1))
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    u, v = np.zeros(len(x)), np.zeros(len(y))
    for _ in range(5000):
        u_prev, v_prev = u, v
        u = eps * (np.log(a + 1e-8) - logsumexp((-cost + u[:, None] + v[None, :]) / eps, axis=1)) + u
        v = eps * (np.log(b + 1e-8) - logsumexp((-cost + u[:, None] + v[None, :]) / eps, axis=0)) + v
        if np.abs(u - u_prev).sum() + np.abs(v - v_prev).sum() < 1e-10:
            break
    plan = np.exp((-cost + u[:, None] + v[None, :]) / eps)
    rows, columns = plan.argmax(axis=0), plan.argmax(axis=1)
    return cost[rows, np.arange(len(y))], cost[np.arange(len(x)), columns]


def test_matching_equals_dense_reference_solver():
    """Column matches (each y_j to the row of its largest plan entry, the paper's) and row matches
    (each x_i to its largest column) equal those of the dense plan."""
    hmm = preset("linear3").hmm
    x, _ = hmm.sample(80, 12, seed=1)
    y, _ = hmm.sample(70, 12, seed=2)
    ours = M.matched_distances(x, y, 3, tol=1e-12, max_iter=5000)
    assert ours.converged
    by_column, by_row = _reference_sinkhorn_matching(x, y, 3)
    np.testing.assert_allclose(ours.distances, by_column, atol=1e-12)
    np.testing.assert_allclose(ours.row_distances, by_row, atol=1e-12)


def test_matching_identical_sets_gives_zero():
    x, _ = preset("linear2").hmm.sample(200, 20, seed=3)
    result = M.matched_distances(x, x.copy(), 3)
    assert result.distances.max() == 0.0 and result.row_distances.max() == 0.0


def test_mismatch_counts_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 3, (7, 11)), rng.integers(0, 3, (5, 11))
    expected = np.array([[np.sum(a != b) for b in y] for a in x])
    np.testing.assert_array_equal(mismatch_counts(x, y, 3), expected)


@pytest.mark.slow
@pytest.mark.parametrize("name, baseline", [("linear2", 4.551), ("linear3", 7.285), ("linear4", 7.513),
                                            ("linear5", 7.519)])
def test_matching_reproduces_paper_baselines(name, baseline):
    """docs/method.md §4.2: HMM-vs-HMM matched distance at N = 5000, T = 100 within ±0.03."""
    hmm = preset(name).hmm
    x, _ = hmm.sample(5000, 100, seed=11)
    y, _ = hmm.sample(5000, 100, seed=12)
    result = M.matched_distances(x, y, 3)
    assert result.converged
    assert result.distances.mean() == pytest.approx(baseline, abs=0.03)


@pytest.mark.parametrize("name, length", [("fully3", 30), ("cyclic4", 40), ("linear2", 100)])
def test_overrelaxed_sinkhorn_reaches_the_plain_fixed_point_in_fewer_iterations(name, length):
    """ω = 1.7 (the default) and plain Sinkhorn (ω = 1) converge to one plan: the same matches
    when both are run tight, at a fraction of the iterations."""
    hmm = preset(name).hmm
    x, _ = hmm.sample(400, length, seed=5)
    y, _ = hmm.sample(300, length, seed=6)
    plain = M.matched_distances(x, y, hmm.n_outputs, overrelaxation=1.0, tol=1e-7, max_iter=20_000)
    relaxed = M.matched_distances(x, y, hmm.n_outputs, tol=1e-7, max_iter=20_000)
    assert plain.converged and relaxed.converged
    np.testing.assert_array_equal(relaxed.matches, plain.matches)
    np.testing.assert_array_equal(relaxed.row_distances, plain.row_distances)
    assert relaxed.iterations < plain.iterations / 2


def test_a_relaxation_that_oscillates_falls_back_towards_plain_sinkhorn():
    """ω = 1.99 oscillates instead of converging; the solver notices, goes on with a smaller ω and
    converges to plain Sinkhorn's plan."""
    hmm = preset("fully3").hmm
    x, _ = hmm.sample(400, 30, seed=5)
    y, _ = hmm.sample(400, 30, seed=6)
    plain = M.matched_distances(x, y, 3, overrelaxation=1.0, tol=1e-6, max_iter=20_000)
    wild = M.matched_distances(x, y, 3, overrelaxation=1.99, tol=1e-6, max_iter=20_000)
    assert plain.converged and wild.converged and plain.overrelaxation == 1.0
    assert wild.overrelaxation < 1.99
    np.testing.assert_array_equal(wild.matches, plain.matches)
    with pytest.raises(ValueError, match="overrelaxation"):
        M.matched_distances(x, y, 3, overrelaxation=2.0)
