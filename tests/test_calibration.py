"""The optional calibration penalty: beliefs by brute force, the exact zero, and what it tells apart;
both whole-sequence terms (likelihood, calibration) in the objective."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hmmrnn import make_config, preset
from hmmrnn._calibration import CalibrationPenalty
from hmmrnn._dispersion import ChangeCountPenalty, RunAgePenalty, RunPassagePenalty
from hmmrnn._emission import EmissionRowPenalty
from hmmrnn._likelihood import LikelihoodPenalty, prior_beliefs
from hmmrnn.hmm import HMM
from hmmrnn.rnn import gumbel_emit
from hmmrnn.training import _objective


def _onehot(symbols: np.ndarray, k: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(symbols).long(), k).double()


def test_prior_beliefs_are_the_posteriors_over_hidden_paths_by_brute_force():
    hmm = HMM(transition=[[0.7, 0.3], [0.2, 0.8]], emission=[[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]], start=[0.4, 0.6])
    symbols = np.array([[0, 2, 2, 1], [1, 0, 0, 2]])
    beliefs = prior_beliefs(_onehot(symbols) @ torch.tensor(hmm.emission).T, torch.tensor(hmm.start),
                             torch.tensor(hmm.transition))
    for row, seq in enumerate(symbols):
        for t in range(len(seq)):
            joint = np.zeros(2)  # P(x_<t, s_t = j) summed over every hidden path
            for path in itertools.product(range(2), repeat=t + 1):
                p = hmm.start[path[0]]
                for i in range(1, t + 1):
                    p *= hmm.emission[path[i - 1], seq[i - 1]] * hmm.transition[path[i - 1], path[i]]
                joint[path[-1]] += p
            np.testing.assert_allclose(beliefs[row, t].numpy(), joint / joint.sum(), atol=1e-12)


def test_the_hmm_filters_own_prediction_costs_exactly_nothing_and_a_bias_costs_its_formula():
    hmm = preset("fully3").hmm.stationary()
    symbols = _onehot(hmm.sample(300, 30, seed=1)[0])
    penalty = CalibrationPenalty(hmm, symbols.flatten(1), weight=5.0)
    predicted = penalty.beliefs(symbols) @ penalty.emission  # (B, T, K): P_HMM(x_t | x_<t)
    assert penalty(symbols, predicted).item() == pytest.approx(0.0, abs=1e-12)
    # move probability 0.05 from symbol 0 to symbol 1 in every step: O - E = (-0.05, 0.05, 0) n_j in cell j
    shifted = predicted + 0.05 * torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)
    observed, expected = penalty.counts(symbols, shifted)
    cell_sizes = penalty.counts(symbols, torch.ones_like(predicted))[0][:, 0]
    assert cell_sizes.sum().item() == 300 * 30 and (cell_sizes > 0).all()
    np.testing.assert_allclose((observed - expected).numpy(),
                               (cell_sizes[:, None] * torch.tensor([-0.05, 0.05, 0.0], dtype=torch.float64)).numpy(),
                               atol=1e-9)
    formula = 5.0 * ((observed - expected) ** 2 / (observed + expected)).sum() / (300 * 30)
    assert penalty(symbols, shifted).item() == pytest.approx(formula.item(), rel=1e-12)


def test_it_tells_an_hmm_with_other_stays_from_the_hmm_and_its_gradient_reaches_the_probabilities():
    hmm = preset("cyclic4").hmm.stationary()
    penalty = CalibrationPenalty(hmm, _onehot(hmm.sample(2000, 40, seed=2)[0], 3).flatten(1), weight=1.0)
    own = _onehot(hmm.sample(2000, 40, seed=3)[0])
    other = _onehot(hmm.with_stay_shift(-0.05).sample(2000, 40, seed=4)[0])
    # samples standing in for their own probabilities: the noise floor against a real difference
    assert penalty(other, other).item() > 5 * penalty(own, own).item()
    logits = torch.zeros(8, 40, 3, dtype=torch.float64, requires_grad=True)
    penalty(own[:8], torch.softmax(logits, dim=-1)).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("setting, term", [
    ("likelihood_weight", lambda hmm, targets, outputs, logits: LikelihoodPenalty(hmm, targets, 10.0)(outputs.flatten(1))),
    ("calibration_weight", lambda hmm, targets, outputs, logits: CalibrationPenalty(hmm, targets, 10.0, seed=0)(
        outputs, torch.softmax(logits, -1))),
    ("emission_weight", lambda hmm, targets, outputs, logits: EmissionRowPenalty(hmm.emission, 10.0)(logits)),
    ("change_count_weight", lambda hmm, targets, outputs, logits: ChangeCountPenalty(hmm, 6, 10.0)(
        torch.softmax(logits, -1))),
    ("run_age_weight", lambda hmm, targets, outputs, logits: RunAgePenalty(hmm, 6, 10.0)(torch.softmax(logits, -1))),
    ("passage_weight", lambda hmm, targets, outputs, logits: RunPassagePenalty(hmm, 6, 10.0)(
        torch.softmax(logits, -1))),
])
def test_objective_adds_each_whole_sequence_term_per_population(setting, term):
    """The likelihood, the calibration, the emission-row, the change-count, the run-age and the passage terms: fresh
    windows under the HMM's start, carried ones
    under its stationary version, each population with its own targets."""
    weights = {"likelihood_weight": 0.0, "calibration_weight": 0.0, "emission_weight": 0.0, "change_count_weight": 0.0,
               "run_age_weight": 0.0, "passage_weight": 0.0, setting: 10.0}
    config = make_config("cyclic4", seq_len=6, carry_states=True, fresh_fraction=0.5, bigram_weight=0.0,
                         transition_weight=0.0, **weights)
    stationary, start = config.hmm.stationary(), config.hmm
    targets = _onehot(stationary.sample(40, 6, seed=5)[0]).float().flatten(1)
    logits = torch.randn(40, 6, 3, generator=torch.Generator().manual_seed(6))
    outputs = gumbel_emit(logits, generator=torch.Generator().manual_seed(7))
    fresh = torch.arange(40) % 2 == 1

    def divergence(x, y):
        return (x - y).abs().sum()

    value = _objective(divergence, targets, config)(outputs, logits, targets, fresh)
    parts = [divergence(outputs[m].flatten(1), targets[m]) + term(hmm, targets[m], outputs[m], logits[m])
             for m, hmm in ((fresh, start), (~fresh, stationary))]
    assert value.item() == pytest.approx(0.5 * (parts[0] + parts[1]).item(), rel=1e-5)
