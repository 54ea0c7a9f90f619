"""The emission-row penalty: λ · mean_t min_z KL(E_z ‖ p_t) (hmmrnn._emission)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmmrnn import preset
from hmmrnn._emission import EmissionRowPenalty


def test_zero_on_emission_rows_and_brute_force_elsewhere():
    emission = preset("cyclic4").hmm.emission  # rows with zeros; two rows share their largest symbol
    rng = np.random.default_rng(0)
    rows = emission[rng.integers(0, 4, size=(5, 7))]  # (5, 7, 3)
    on_rows = torch.tensor(np.log(np.maximum(rows, 1e-300)))  # logits whose softmax is the row
    assert EmissionRowPenalty(emission, 3.0)(on_rows).item() == pytest.approx(0.0, abs=1e-9)

    logits = rng.normal(size=(4, 6, 3)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.mean([[min(sum(row[k] * math.log(row[k] / p[k]) for k in range(3) if row[k] > 0)
                             for row in emission) for p in seq] for seq in probabilities])
    value = EmissionRowPenalty(emission, 3.0)(torch.tensor(logits)).item()
    assert value == pytest.approx(3.0 * expected, rel=1e-10)


def test_gradient_is_p_minus_the_nearest_row_and_corrects_over_confidence():
    """∂/∂logits = (p_t − E_z*) / (B T): it does not vanish on a saturated, over-confident output,
    which a gradient step then moves towards the row; a step in transit moves towards the nearer row."""
    emission = preset("fully3").hmm.emission
    logits = torch.tensor([[[math.log(0.997), math.log(0.0015), math.log(0.0015)],
                            [math.log(0.55), math.log(0.44), math.log(0.01)]]], dtype=torch.float64, requires_grad=True)
    penalty = EmissionRowPenalty(emission, 1.0)
    penalty(logits).backward()
    p = torch.softmax(logits.detach(), -1)
    expected = (p - torch.tensor(np.stack([emission[0], emission[0]]))[None]) / 2
    assert torch.allclose(logits.grad, expected, atol=1e-12)
    assert logits.grad[0, 0, 0].item() == pytest.approx((0.997 - 0.98) / 2, rel=1e-6)  # not ~1e-4
    moved = torch.softmax(logits.detach() - 0.5 * logits.grad, -1)
    assert 0.98 < moved[0, 0, 0].item() < 0.997
    assert moved[0, 1, 0].item() > 0.55
