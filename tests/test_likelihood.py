"""The optional log-likelihood penalty: exact likelihoods, the W2 formula, and what it tells apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmmrnn import preset
from hmmrnn._likelihood import LikelihoodPenalty
from hmmrnn.rnn import gumbel_emit


def _flat(symbols: np.ndarray, k: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(symbols).long(), k).double().reshape(len(symbols), -1)


@pytest.mark.parametrize("name", ["linear4", "cyclic4"])
def test_per_step_likelihood_is_the_forward_algorithm(name):
    hmm = preset(name).hmm.stationary()
    obs, _ = hmm.sample(200, 40, seed=1)
    penalty = LikelihoodPenalty(hmm, _flat(obs), weight=1.0, floor=1e-12)
    np.testing.assert_allclose(penalty.per_step(_flat(obs)).numpy(), hmm.log_likelihood(obs) / 40, atol=1e-9)


def test_penalty_is_the_squared_w2_to_the_target_quantiles_and_reaches_the_logits():
    hmm = preset("cyclic4").hmm.stationary()
    targets = _flat(hmm.sample(400, 20, seed=2)[0])
    penalty = LikelihoodPenalty(hmm, targets, weight=3.0)
    # stays 0.05 shorter: frequencies alike, runs shorter, each sequence less likely
    shifted = _flat(hmm.with_stay_shift(-0.05).sample(400, 20, seed=3)[0])
    values = np.sort(penalty.per_step(shifted).numpy())
    quantiles = np.quantile(penalty.target.numpy(), (np.arange(400) + 0.5) / 400)
    assert penalty(shifted).item() == pytest.approx(3.0 * np.mean((values - quantiles) ** 2), rel=1e-9)
    same = _flat(hmm.sample(400, 20, seed=4)[0])
    assert penalty(same).item() < 0.35 * penalty(shifted).item()
    logits = torch.randn(64, 20, 3, dtype=torch.float64, requires_grad=True)
    penalty(gumbel_emit(logits, generator=torch.Generator().manual_seed(0)).flatten(1)).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
