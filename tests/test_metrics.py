"""Emission metrics (``hmmrnn.metrics``) on hand-made sequences against known answers and Counter."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hmmrnn import metrics as M

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
