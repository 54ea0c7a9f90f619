"""The emission-row penalty: λ · mean_t min_z ‖p_t − E_z‖² (hmmrnn._emission)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmmrnn import preset
from hmmrnn._emission import EmissionRowPenalty


def test_zero_on_emission_rows_and_brute_force_elsewhere():
    emission = preset("cyclic4").hmm.emission  # four rows, two of them sharing their largest symbol
    rng = np.random.default_rng(0)
    on_rows = torch.tensor(emission[rng.integers(0, 4, size=(5, 7))], dtype=torch.float64)  # (5, 7, 3)
    assert EmissionRowPenalty(emission, 3.0)(on_rows).item() == pytest.approx(0.0, abs=1e-12)

    probabilities = rng.dirichlet(np.ones(3), size=(4, 6))  # (4, 6, 3)
    expected = np.mean([[min(sum((p[k] - row[k]) ** 2 for k in range(3)) for row in emission) for p in seq]
                        for seq in probabilities])
    value = EmissionRowPenalty(emission, 3.0)(torch.tensor(probabilities)).item()
    assert value == pytest.approx(3.0 * expected, rel=1e-12)


def test_gradient_moves_a_step_towards_its_nearest_row():
    """An over-confident step (largest probability 0.995 where the row says 0.98) and a step in
    transit between two rows both move towards the nearest row under a gradient step on the logits."""
    emission = preset("fully3").hmm.emission
    penalty = EmissionRowPenalty(emission, 1.0)
    logits = torch.tensor([[[np.log(0.995), np.log(0.0025), np.log(0.0025)],
                            [np.log(0.55), np.log(0.44), np.log(0.01)]]], requires_grad=True)
    before = penalty(torch.softmax(logits, -1))
    before.backward()
    with torch.no_grad():
        moved = torch.softmax(logits - 5.0 * logits.grad, -1)
    after = penalty(moved)
    assert after.item() < before.item()
    assert 0.98 < moved[0, 0, 0].item() < 0.995  # less confident, still the same state's symbol
    assert moved[0, 1, 0].item() > 0.55  # the transit step moves towards the nearer row (symbol 0's)
