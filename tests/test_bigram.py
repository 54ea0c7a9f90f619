"""The default recipe's bigram penalty: exact counts, its formula, and the bias it corrects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmmrnn import preset
from hmmrnn._bigram import BigramPenalty, HMMWindows, bigram_frequencies, lagged_pair_frequencies
from hmmrnn._sinkhorn import OneHotSinkhornDivergence
from hmmrnn.rnn import gumbel_emit


def _onehot(symbols: np.ndarray, k: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(symbols).long(), k).float()


def test_bigram_frequencies_count_consecutive_pairs():
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 3, size=(7, 11))
    counts = np.zeros((3, 3))
    for row in symbols:  # brute force
        for a, b in zip(row[:-1], row[1:]):
            counts[a, b] += 1
    np.testing.assert_allclose(bigram_frequencies(_onehot(symbols)).numpy(), counts / (7 * 10), atol=1e-7)
    # a single step gives the symbol frequencies on the diagonal
    np.testing.assert_allclose(bigram_frequencies(_onehot(symbols[:, :1])).numpy(),
                               np.diag(np.bincount(symbols[:, 0], minlength=3) / 7), atol=1e-7)


def test_penalty_is_the_triangular_discrimination_and_reaches_the_logits():
    rng = np.random.default_rng(1)
    targets = _onehot(rng.integers(0, 3, size=(50, 9))).reshape(50, -1)
    penalty = BigramPenalty(targets, 3, weight=7.0)
    assert penalty(targets).item() == 0.0
    outputs = _onehot(rng.choice(3, p=[0.7, 0.2, 0.1], size=(40, 9))).reshape(40, -1)
    p, q = bigram_frequencies(targets.reshape(50, 9, 3)), bigram_frequencies(outputs.reshape(40, 9, 3))
    mask = (p + q) > 0
    expected = 7.0 * float((((q - p) ** 2)[mask] / (q + p)[mask]).sum())
    assert penalty(outputs).item() == pytest.approx(expected, rel=1e-6)
    # straight-through samples carry its gradient back to the logits
    logits = torch.zeros(40, 9, 3, requires_grad=True)
    samples = gumbel_emit(logits, generator=torch.Generator().manual_seed(0))
    penalty(samples.reshape(40, -1)).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_bigram_frequencies_of_probabilities_are_the_expected_sampled_frequencies():
    """The outputs are conditionally independent given the hidden states (no output feedback), so
    the bigram frequencies of softmax(logits) equal the mean bigram frequencies of Gumbel samples
    drawn from those logits: the exact conditional expectation that ``bigram_on="probabilities"``
    penalises."""
    logits = 1.5 * torch.randn(6, 8, 3, generator=torch.Generator().manual_seed(2))
    exact = bigram_frequencies(torch.softmax(logits, -1))
    gen = torch.Generator().manual_seed(3)
    draws = 20_000
    # pooled over 20,000 copies of the batch = the mean over 20,000 draws of the batch's frequencies
    monte_carlo = bigram_frequencies(gumbel_emit(logits.repeat(draws, 1, 1), generator=gen))
    # each entry is a mean over 20,000 x 42 pairs: standard error < 0.001
    np.testing.assert_allclose(monte_carlo.numpy(), exact.numpy(), atol=4e-3)
    assert float(exact.sum()) == pytest.approx(1.0, abs=1e-6)


def test_objective_penalises_samples_or_probabilities_as_configured():
    from hmmrnn import make_config
    from hmmrnn.training import _objective

    targets = _onehot(np.random.default_rng(4).integers(0, 3, size=(30, 5))).reshape(30, -1)
    logits = torch.randn(30, 5, 3, generator=torch.Generator().manual_seed(5))
    outputs = gumbel_emit(logits, generator=torch.Generator().manual_seed(6))

    def divergence(x, y):
        return (x - y).abs().sum()

    hmm = preset("linear3").hmm
    penalty = BigramPenalty(HMMWindows(hmm, 5), 3, weight=100.0)  # the HMM's exact statistics, not the targets'
    base = divergence(outputs.flatten(1), targets)
    none = torch.zeros(30, dtype=torch.bool)
    for where, expected in (("samples", penalty(outputs)), ("probabilities", penalty(torch.softmax(logits, -1)))):
        config = make_config("linear3", seq_len=5, bigram_weight=100.0, bigram_on=where, carry_states=False,
                             transient_steps=0, pair_lags=0, transition_weight=0.0)  # the pooled term alone
        value = _objective(divergence, targets, config)(outputs, logits, targets, none)
        assert value.item() == pytest.approx((base + expected).item(), rel=1e-6)
    paper = make_config("linear3", recipe="paper")
    assert _objective(divergence, targets, paper)(outputs, logits, targets, none) == base
    # fresh and carried windows are two populations, each against its own targets and HMM (the carried
    # windows': the stationary HMM)
    config = make_config("linear3", seq_len=5, bigram_weight=100.0, bigram_on="samples", carry_states=True,
                         fresh_fraction=0.5)
    fresh = torch.arange(30) % 2 == 1
    value = _objective(divergence, targets, config)(outputs, logits, targets, fresh)
    # the fresh windows (from h0) also get the per-position term of the recipe's transient_steps; both
    # populations the recipe's lagged pairs and transition term
    t = config.train
    assert (t.transient_steps, t.transient_weight, t.pair_lags, t.transition_weight) == (10, 0.0, 8, 1000.0)
    parts = [divergence(outputs[m].flatten(1), targets[m])
             + BigramPenalty(HMMWindows(source, 5), 3, 100.0, positions=k, lags=8, conditional_weight=1000.0)(outputs[m])
             for m, k, source in ((fresh, 10, hmm), (~fresh, 0, hmm.stationary()))]
    assert value.item() == pytest.approx(0.5 * (parts[0] + parts[1]).item(), rel=1e-6)


def test_penalty_removes_the_finite_batch_bias_against_the_rare_symbol():
    """The paper's divergence prefers HMM sequences without the rare symbol 1 to true HMM sequences;
    divergence + penalty (weight 100, the default recipe) prefers the true ones."""
    hmm = preset("linear3").hmm
    n, length = 2048, 30

    def batch(seed: int, suppress_rare: bool = False) -> torch.Tensor:
        symbols, states = hmm.sample(n, length, seed=seed)
        if suppress_rare:
            emission = hmm.emission.copy()
            emission[:, 1] = 0
            symbols = np.where(symbols == 1, emission.argmax(1)[states], symbols)
        return _onehot(symbols).reshape(n, -1)

    target = batch(0)
    divergence = OneHotSinkhornDivergence(3, 0.2)
    penalty = BigramPenalty(target, 3, weight=100.0)
    true_sample, suppressed = batch(1), batch(1, suppress_rare=True)
    assert divergence(suppressed, target).item() < divergence(true_sample, target).item() - 0.05
    assert (divergence(suppressed, target) + penalty(suppressed)).item() > \
        (divergence(true_sample, target) + penalty(true_sample)).item() + 0.5


def test_ngram_frequencies_equal_the_ngram_metric_and_the_penalty_sums_orders():
    from hmmrnn._bigram import ngram_frequencies
    from hmmrnn.metrics import ngram_distribution

    obs, _ = preset("cyclic4").hmm.sample(300, 25, seed=5)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(obs), 3).double()
    for order in (1, 2, 3, 4):
        np.testing.assert_allclose(ngram_frequencies(onehot, order).numpy(), ngram_distribution(obs, 3, order),
                                   atol=1e-12)
    targets = onehot.reshape(300, -1).float()
    other = torch.nn.functional.one_hot(torch.from_numpy(preset("linear3").hmm.sample(300, 25, seed=6)[0]), 3)
    other = other.reshape(300, -1).float()
    second, third = (BigramPenalty(targets, 3, 1.0, order)(other).item() for order in (2, 3))
    q, p = ngram_frequencies(other.reshape(300, 25, 3), 3), ngram_frequencies(targets.reshape(300, 25, 3), 3)
    assert third == pytest.approx(second + ((q - p) ** 2 / (q + p).clamp_min(1e-12)).sum().item(), rel=1e-5)


def test_positions_see_a_transient_that_pooled_bigrams_miss():
    """A time shift of the same cycle: pooled bigrams agree exactly, the bigrams at each of the first
    steps do not (each position's tables are disjoint one-hots: discrimination 2)."""
    import torch.nn.functional as F

    target = F.one_hot(torch.tensor([[0, 1, 2, 0]]), 3).float().flatten(1)
    shifted = F.one_hot(torch.tensor([[1, 2, 0, 1]]), 3).float().flatten(1)
    assert float(BigramPenalty(target, 3, 5.0)(shifted)) == 0.0
    assert float(BigramPenalty(target, 3, 5.0, positions=2)(shifted)) == pytest.approx(5.0 * 2.0)
    assert float(BigramPenalty(target, 3, 5.0, positions=2)(target)) == 0.0
    assert len(BigramPenalty(target, 3, 1.0, positions=10).positions) == 3  # at most T − 1 positions
    # each position weighed λ_p instead of λ / P: 7 per position, 2 positions with discrimination 2
    assert float(BigramPenalty(target, 3, 5.0, positions=2, position_weight=7.0)(shifted)) == pytest.approx(7.0 * 2 * 2)


def test_the_conditional_term_weighs_every_row_alike():
    """Hand-computed: rows P(b|a) of the target [.5 .5 0], [1/3 1/3 1/3], [0 .5 .5] against the
    output's [0 1 0], [1/3 1/3 1/3], [0 1/3 2/3]: 0.5 + 1/6 for row 0, 0 for row 1,
    (1/6)²/(5/6) + (1/6)²/(7/6) for row 2."""
    import torch.nn.functional as F

    target = F.one_hot(torch.tensor([[0, 0, 1, 2, 2, 1, 1, 0]]), 3).float().flatten(1)
    output = F.one_hot(torch.tensor([[0, 1, 1, 2, 2, 2, 1, 0]]), 3).float().flatten(1)
    expected = 0.5 + 1 / 6 + (1 / 36) / (5 / 6) + (1 / 36) / (7 / 6)
    assert float(BigramPenalty(target, 3, 0.0, conditional_weight=2.0)(output)) == pytest.approx(2 * expected, rel=1e-5)
    assert float(BigramPenalty(target, 3, 0.0, conditional_weight=2.0)(target)) == 0.0


def test_lagged_pairs_count_by_brute_force():
    rng = np.random.default_rng(3)
    symbols = rng.integers(0, 3, (5, 12))
    for lag in (1, 2, 5, 11):
        counts = np.zeros((3, 3))
        for row in symbols:
            for t in range(12 - lag):
                counts[row[t], row[t + lag]] += 1
        expected = counts / counts.sum()
        np.testing.assert_allclose(lagged_pair_frequencies(_onehot(symbols), lag).numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(lagged_pair_frequencies(_onehot(symbols), 1), bigram_frequencies(_onehot(symbols)))


def test_lagged_pairs_see_which_side_a_run_began_that_bigrams_miss():
    """Crossing (0 1 2, 2 1 0) against returning (0 1 0, 2 1 2): the same bigrams, the lag-2 pairs
    disjoint ((0,2), (2,0) against (0,0), (2,2), each 1/2): discrimination 4 · (1/2)² / (1/2) = 2."""
    import torch.nn.functional as F

    crossing = F.one_hot(torch.tensor([[0, 1, 2], [2, 1, 0]]), 3).float().flatten(1)
    returning = F.one_hot(torch.tensor([[0, 1, 0], [2, 1, 2]]), 3).float().flatten(1)
    assert float(BigramPenalty(crossing, 3, 5.0)(returning)) == 0.0
    assert float(BigramPenalty(crossing, 3, 5.0, lags=2)(returning)) == pytest.approx(5.0 * 2.0)
    assert float(BigramPenalty(crossing, 3, 5.0, lags=2)(crossing)) == 0.0


def test_lags_beyond_the_window_are_left_out():
    import torch.nn.functional as F

    target = F.one_hot(torch.tensor([[0, 1, 2, 0]]), 3).float().flatten(1)
    assert list(BigramPenalty(target, 3, 1.0, lags=8).lags) == [2, 3]


def test_exact_hmm_window_statistics_equal_brute_force_enumeration():
    """Every window of 6 symbols weighted by its probability (forward algorithm), from a start that is
    not stationary: the expected pooled n-grams, lagged pairs and per-position pairs equal
    ``HMMWindows``' closed forms; for a stationary start the pooled pairs are the HMM's stationary
    change probability and output transition matrix."""
    import itertools

    from hmmrnn._bigram import ngram_frequencies
    from hmmrnn.hmm import HMM

    base = HMM.linear_chain(3)
    hmm = HMM(base.transition, base.emission, np.array([0.7, 0.2, 0.1]))
    length = 6
    words = np.array(list(itertools.product(range(3), repeat=length)))  # (3^6, 6)
    weights = torch.from_numpy(np.exp(hmm.log_likelihood(words)))  # sums to 1
    onehot = _onehot(words).double()

    def expected(statistic):
        per_window = torch.stack([statistic(onehot[i:i + 1]) for i in range(len(words))])
        return torch.einsum("w,w...->...", weights, per_window)

    exact = HMMWindows(hmm, length)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    for order in (1, 2, 3, 4):
        np.testing.assert_allclose(exact.ngram(order).numpy(), expected(lambda x: ngram_frequencies(x, order)).numpy(),
                                   atol=1e-12)
    for lag in (2, 3, 5):
        np.testing.assert_allclose(exact.lagged(lag).numpy(), expected(lambda x: lagged_pair_frequencies(x, lag)).numpy(),
                                   atol=1e-12)
    for t in range(length - 1):
        np.testing.assert_allclose(exact.position(t).numpy(), expected(lambda x: bigram_frequencies(x[:, t:t + 2])).numpy(),
                                   atol=1e-12)
    with pytest.raises(ValueError, match="word length"):
        exact.ngram(length + 1)
    # the stationary version's pooled pairs are the HMM's own stationary statistics
    stationary = HMMWindows(hmm.stationary(), 30)
    pairs = stationary.ngram(2).numpy().reshape(3, 3)
    assert 1 - np.trace(pairs) == pytest.approx(hmm.change_probability(), abs=1e-12)
    np.testing.assert_allclose(pairs / pairs.sum(1, keepdims=True), hmm.output_transition_matrix(), atol=1e-12)
