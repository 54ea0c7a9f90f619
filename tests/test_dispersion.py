"""The change-count, run-age and run-passage penalties: both sides' exact statistics against brute
force, and an HMM's own state paths as the network that emulates it exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hmmrnn import preset
from hmmrnn._dispersion import (ChangeCountPenalty, RunAgePenalty, RunPassagePenalty, change_count_distribution,
                                hmm_change_count_distribution, hmm_run_age_changes, hmm_run_passages, run_age_changes,
                                run_passages)


def _changes(word: tuple[int, ...]) -> int:
    return sum(a != b for a, b in zip(word, word[1:]))


def _ages(word: tuple[int, ...], max_age: int) -> np.ndarray:
    """(run age, changed) counts of one word, by walking it."""
    table, age = np.zeros((max_age, 2)), 1
    for a, b in zip(word, word[1:]):
        table[min(age, max_age) - 1, int(a != b)] += 1
        age = 1 if a != b else age + 1
    return table / (len(word) - 1)


def _passages(word: tuple[int, ...], max_age: int, n: int) -> np.ndarray:
    """(entry x, run symbol b, length a, exit y) counts of one word's runs, by splitting it into runs:
    every run but the first (no entry inside the word) and the last (no exit)."""
    runs = [(symbol, len(list(group))) for symbol, group in itertools.groupby(word)]
    table = np.zeros((n, n, max_age, n))
    for (x, _), (b, length), (y, _) in zip(runs, runs[1:], runs[2:]):
        table[x, b, min(length, max_age) - 1, y] += 1
    return table / (len(word) - 1)


def test_the_conditional_distribution_is_the_sum_over_every_word():
    probabilities = torch.softmax(torch.randn(3, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), -1)
    brute = torch.zeros(3, 5, dtype=torch.float64)
    for word in itertools.product(range(3), repeat=5):
        brute[:, _changes(word)] += torch.stack([probabilities[:, t, k] for t, k in enumerate(word)]).prod(dim=0)
    assert torch.allclose(change_count_distribution(probabilities), brute, atol=1e-14)


def test_the_conditional_run_ages_are_the_sum_over_every_word():
    probabilities = torch.softmax(torch.randn(2, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), -1)
    brute = np.zeros((3, 2))
    for word in itertools.product(range(3), repeat=6):
        weight = torch.stack([probabilities[:, t, k] for t, k in enumerate(word)]).prod(dim=0).sum().item()
        brute += weight / 2 * _ages(word, 3)
    assert np.allclose(run_age_changes(probabilities, max_age=3).numpy(), brute, atol=1e-14)


def test_the_conditional_passages_are_the_sum_over_every_word():
    probabilities = torch.softmax(torch.randn(2, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)), -1)
    brute = np.zeros((3, 3, 2, 3))
    for word in itertools.product(range(3), repeat=7):
        weight = torch.stack([probabilities[:, t, k] for t, k in enumerate(word)]).prod(dim=0).sum().item()
        brute += weight / 2 * _passages(word, 2, 3)
    assert brute.sum() > 0.05 and np.allclose(run_passages(probabilities, max_age=2).numpy(), brute, atol=1e-14)


@pytest.mark.parametrize("name", ["cyclic4", "linear3"])
def test_the_hmm_statistics_are_the_sums_over_every_word_of_its_likelihood(name):
    hmm = preset(name).hmm
    words = np.array(list(itertools.product(range(hmm.n_outputs), repeat=6)))
    probability = np.exp(hmm.log_likelihood(words))
    brute = np.bincount([_changes(tuple(w)) for w in words], weights=probability, minlength=6)
    assert np.allclose(hmm_change_count_distribution(hmm, 6), brute, atol=1e-12)
    assert hmm_change_count_distribution(hmm, 6).sum() == pytest.approx(1.0, abs=1e-12)
    ages = sum(p * _ages(tuple(w), 3) for p, w in zip(probability, words))
    assert np.allclose(hmm_run_age_changes(hmm, 6, max_age=3), ages, atol=1e-12)
    passages = sum(p * _passages(tuple(w), 3, hmm.n_outputs) for p, w in zip(probability, words))
    assert passages.sum() > 1e-3 and np.allclose(hmm_run_passages(hmm, 6, max_age=3), passages, atol=1e-12)


@pytest.mark.parametrize("penalty_type", [ChangeCountPenalty, RunAgePenalty, RunPassagePenalty])
def test_the_hmms_own_state_paths_cost_only_sampling_noise_and_a_stay_shift_costs_more(penalty_type):
    """A network that holds the HMM's state z_t and emits its row E_z is an exact emulator: the mean of
    its conditional statistics over 20,000 paths is the HMM's up to sampling error."""
    hmm = preset("fully3").hmm.stationary()
    penalty = penalty_type(hmm, 30, weight=1.0)
    emission = torch.tensor(hmm.emission)

    def paths(source, seed):
        return emission[torch.from_numpy(source.sample(20000, 30, seed=seed)[1])]  # (n, T, K)

    own, shifted = penalty(paths(hmm, 1)), penalty(paths(hmm.with_stay_shift(-0.02), 2))
    assert own.item() < 1e-3 and shifted.item() > 10 * own.item()
    logits = torch.zeros(4, 30, 3, dtype=torch.float64, requires_grad=True)
    penalty(torch.softmax(logits + paths(hmm, 3)[:4].log(), -1)).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_passages_need_two_ages_to_tell_a_run_from_a_longer_one():
    with pytest.raises(ValueError, match="max_age must be >= 2, got 1"):
        run_passages(torch.full((1, 4, 3), 1 / 3), max_age=1)
    with pytest.raises(ValueError, match="max_age must be >= 2, got 1"):
        hmm_run_passages(preset("linear2").hmm, 4, max_age=1)
