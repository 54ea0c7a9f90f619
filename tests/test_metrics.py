"""Emission metrics on hand-made sequences, the matching solver against brute force and the paper's
baselines, and batched EM against hmmlearn."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hmmrnn import HMM, preset
from hmmrnn import metrics as M
from hmmrnn._matching import mismatch_counts
from hmmrnn.hmm import em_step

OBS = np.array([[0, 0, 1, 2, 2, 2],
                [2, 2, 2, 2, 0, 1]])


def test_frequencies_and_volatility_known_answers():
    np.testing.assert_allclose(M.output_frequencies(OBS, 3), [[2 / 6, 1 / 6, 3 / 6], [1 / 6, 1 / 6, 4 / 6]])
    np.testing.assert_array_equal(M.volatility(OBS), [2, 2])
    np.testing.assert_array_equal(M.volatility(np.array([[1, 1, 1], [0, 2, 0]])), [0, 2])


def test_transition_counts_and_matrix_known_answers():
    counts = np.zeros((3, 3))
    counts[0, 0], counts[0, 1], counts[1, 2], counts[2, 2], counts[2, 0] = 1, 2, 1, 5, 1
    np.testing.assert_array_equal(M.transition_counts(OBS, 3), counts)
    np.testing.assert_allclose(M.transition_matrix(OBS, 3), [[1 / 3, 2 / 3, 0], [0, 0, 1], [1 / 6, 0, 5 / 6]])
    # a symbol that never occurs gets an undefined row instead of a division by zero
    never = M.transition_matrix(np.array([[0, 2, 2, 0]]), 3)
    assert np.isnan(never[1]).all() and np.isfinite(never[[0, 2]]).all()


def test_dwell_times_known_answers():
    lengths, symbols = M.dwell_times(OBS)
    np.testing.assert_array_equal(lengths, [2, 1, 3, 4, 1, 1])
    np.testing.assert_array_equal(symbols, [0, 1, 2, 2, 0, 1])
    dist = M.dwell_distribution(OBS, 3)
    np.testing.assert_allclose(dist[0], [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(dist[1], [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(dist[2], [0, 0, 0.5, 0.5, 0, 0])
    assert np.isnan(M.dwell_distribution(np.array([[0, 0]]), 2)[1]).all()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngrams_against_counter(n):
    rng = np.random.default_rng(n)
    obs = rng.integers(0, 3, size=(40, 9))
    counter = Counter(tuple(row[t: t + n]) for row in obs for t in range(9 - n + 1))
    total = sum(counter.values())
    expected = np.zeros(3**n)
    for word, count in counter.items():
        expected[sum(s * 3 ** (n - 1 - i) for i, s in enumerate(word))] = count / total
    np.testing.assert_allclose(M.ngram_distribution(obs, 3, n), expected)
    assert M.total_variation(expected, expected) == 0
    assert M.total_variation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 1.0


def test_metrics_reject_bad_symbols():
    with pytest.raises(ValueError, match="must lie in"):
        M.output_frequencies(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError, match="integer array"):
        M.transition_matrix(np.array([[0.5, 1.0]]), 3)


# ----------------------------------------------------------------------------- matching


def _reference_sinkhorn_matching(x: np.ndarray, y: np.ndarray, k: int, eps: float = 0.1) -> np.ndarray:
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
    rows = plan.argmax(axis=0)
    return cost[rows, np.arange(len(y))]


def test_matching_equals_dense_reference_solver():
    hmm = preset("linear3").hmm
    x, _ = hmm.sample(80, 12, seed=1)
    y, _ = hmm.sample(70, 12, seed=2)
    ours = M.matched_distances(x, y, 3, tol=1e-12, max_iter=5000)
    assert ours.converged
    np.testing.assert_allclose(ours.distances, _reference_sinkhorn_matching(x, y, 3), atol=1e-12)


def test_matching_identical_sets_gives_zero():
    x, _ = preset("linear2").hmm.sample(200, 20, seed=3)
    result = M.matched_distances(x, x.copy(), 3)
    assert result.distances.max() == 0.0


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


# ----------------------------------------------------------------------------- EM


def test_em_step_equals_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(4)
    for m, k in [(2, 3), (3, 3), (4, 2)]:
        obs, _ = HMM(rng.dirichlet(np.ones(m), m), rng.dirichlet(np.ones(k), m)).sample(150, 25, seed=m)
        start, trans, emis = rng.dirichlet(np.ones(m)), rng.dirichlet(np.ones(m), m), rng.dirichlet(np.ones(k), m)
        ours = em_step(obs, start, trans, emis)
        ref = hmmlearn.CategoricalHMM(n_components=m, n_features=k, n_iter=1, init_params="", params="ste")
        ref.startprob_, ref.transmat_, ref.emissionprob_ = start, trans, emis
        before = ref.score(obs.reshape(-1, 1), [25] * 150)
        ref.fit(obs.reshape(-1, 1), [25] * 150)
        np.testing.assert_allclose(ours[0], ref.startprob_, atol=1e-10)
        np.testing.assert_allclose(ours[1], ref.transmat_, atol=1e-10)
        np.testing.assert_allclose(ours[2], ref.emissionprob_, atol=1e-10)
        assert ours[3] == pytest.approx(before, abs=1e-6)


def test_em_recovers_two_state_hmm():
    from hmmrnn.evaluation import align_states

    true = preset("linear2").hmm
    obs, _ = true.sample(2000, 100, seed=5)
    fitted, ll = HMM.fit(obs, 2, 3, seed=0, restarts=3)
    perm = align_states(fitted.transition, fitted.emission, true)
    assert np.abs(fitted.transition[np.ix_(perm, perm)] - true.transition).max() < 0.02
    assert np.abs(fitted.emission[perm] - true.emission).max() < 0.02
    assert ll >= true.log_likelihood(obs).sum() - 1e-6 * obs.size  # EM reaches at least the truth's fit


def test_align_states_finds_the_permutation():
    from hmmrnn.evaluation import align_states

    true = preset("linear4").hmm
    perm = [2, 0, 3, 1]
    inverse = np.argsort(perm)
    shuffled_t = true.transition[np.ix_(inverse, inverse)]
    shuffled_e = true.emission[inverse]
    found = align_states(shuffled_t, shuffled_e, true)
    np.testing.assert_array_equal(shuffled_t[np.ix_(found, found)], true.transition)
    np.testing.assert_array_equal(shuffled_e[found], true.emission)
