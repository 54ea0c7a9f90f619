"""The training loss computed for one-hot sequences equals GeomLoss's debiased Sinkhorn divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geomloss import SamplesLoss

from hmmrnn import NoiseRNN, preset
from hmmrnn._sinkhorn import OneHotSinkhornDivergence, SplitBatchDivergence
from hmmrnn.hmm import HMM


def _batches(name: str, n_model: int, n_target: int, length: int, seed: int):
    obs, _ = preset(name).hmm.sample(n_target, length, seed=seed)
    target = torch.nn.functional.one_hot(torch.from_numpy(obs), 3).float().reshape(n_target, -1)
    model = NoiseRNN(20, 5, 3, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    outputs, _, _ = model(torch.randn(n_model, length, 5, generator=generator), generator)
    return outputs.reshape(n_model, -1), target


def _geomloss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    grad_mode = torch.is_grad_enabled()
    try:
        return SamplesLoss("sinkhorn", p=2, blur=0.2, backend="tensorized")(x, y)
    finally:
        torch.set_grad_enabled(grad_mode)


@pytest.mark.parametrize("name, n_model, n_target, length, seed", [
    ("linear3", 300, 300, 30, 0), ("linear2", 256, 200, 100, 1), ("cyclic4", 150, 260, 40, 2),
    ("linear2", 100, 100, 5, 3)])
def test_value_and_gradient_equal_geomloss(name, n_model, n_target, length, seed):
    x, y = _batches(name, n_model, n_target, length, seed)
    xa = x.detach().clone().requires_grad_(True)
    xb = x.detach().clone().requires_grad_(True)
    reference = _geomloss(xa, y)
    reference.backward()
    ours = OneHotSinkhornDivergence(3, blur=0.2)(xb, y)
    ours.backward()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-6)
    assert ((xa.grad - xb.grad).norm() / xa.grad.norm()).item() < 1e-4


def test_gradients_to_both_arguments_equal_geomloss():
    """Two model batches compared with each other (the split estimator's halves): one solve gives both
    sides' gradients, each equal to GeomLoss's autograd through both arguments."""
    x, y = _batches("fully3", 140, 110, 15, 7)
    xa, ya = x.detach().clone().requires_grad_(True), y.detach().clone().requires_grad_(True)
    xb, yb = x.detach().clone().requires_grad_(True), y.detach().clone().requires_grad_(True)
    reference = _geomloss(xa, ya)
    reference.backward()
    ours = OneHotSinkhornDivergence(3, blur=0.2, cache_targets=False)(xb, yb)
    ours.backward()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-6)
    for theirs, mine in ((xa.grad, xb.grad), (ya.grad, yb.grad)):
        assert ((theirs - mine).norm() / theirs.norm()).item() < 1e-4


def test_gradient_reaches_the_model_through_straight_through_outputs():
    model = NoiseRNN(12, 4, 3, seed=0)
    generator = torch.Generator().manual_seed(0)
    outputs, _, _ = model(torch.randn(64, 10, 4, generator=generator), generator)
    obs, _ = preset("linear2").hmm.sample(64, 10, seed=0)
    target = torch.nn.functional.one_hot(torch.from_numpy(obs), 3).float().reshape(64, -1)
    OneHotSinkhornDivergence(3)(outputs.reshape(64, -1), target).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_cached_target_term_and_no_grad_path():
    x, y = _batches("linear3", 120, 120, 20, 4)
    loss = OneHotSinkhornDivergence(3)
    first = loss(x.detach(), y).item()
    assert loss(x.detach(), y).item() == first  # second call reuses the cached y-y problem
    assert OneHotSinkhornDivergence(3)(x.detach(), y).item() == first
    with torch.no_grad():
        value = loss(x, y)
        assert not torch.is_grad_enabled() and not value.requires_grad
    # a different target batch is not served from the cache
    _, other = _batches("linear2", 120, 120, 20, 5)
    assert loss(x.detach(), other).item() == pytest.approx(_geomloss(x.detach(), other).item(), rel=1e-5)


def test_split_estimator_value_and_gradient_equal_its_formula_under_geomloss():
    """½[S(x₁,y₁) + S(x₂,y₂)] − ½S(x₁,x₂) − ½S(y₁,y₂), every S GeomLoss's with autograd through both
    of its arguments, against the estimator built on our divergence (halves: alternate rows)."""
    x, y = _batches("fully3", 160, 140, 12, 5)
    xa = x.detach().clone().requires_grad_(True)
    xb = x.detach().clone().requires_grad_(True)
    reference = (0.5 * (_geomloss(xa[0::2], y[0::2]) + _geomloss(xa[1::2], y[1::2])) - 0.5 * _geomloss(xa[0::2], xa[1::2])
                 - 0.5 * _geomloss(y[0::2], y[1::2]))
    reference.backward()
    ours = SplitBatchDivergence(OneHotSinkhornDivergence(3), OneHotSinkhornDivergence(3, cache_targets=False))(xb, y)
    ours.backward()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-4, abs=1e-5)
    assert ((xa.grad - xb.grad).norm() / xa.grad.norm()).item() < 1e-3


def test_split_estimator_is_centred_and_does_not_reward_less_noise():
    """HMM windows against HMM windows: the split estimate is zero within its error, the batch
    divergence is not; windows of the same HMM with a quarter of its emission noise score *lower* than
    the HMM's own on the batch divergence (its finite-batch bias) and higher on the split estimate.
    Paired over seeds (the same target batch for both)."""
    hmm = preset("fully3").hmm.stationary()
    quiet = HMM(hmm.transition, np.full((3, 3), 0.0025) + np.eye(3) * (0.995 - 0.0025), hmm.start)

    def onehot(obs):
        return torch.nn.functional.one_hot(torch.from_numpy(obs), 3).float().reshape(len(obs), -1)

    batch_gap, split_gap, split_hmm, batch_hmm = [], [], [], []
    for r in range(6):
        y = onehot(hmm.sample(1024, 20, seed=50 + r)[0])
        values = {}
        for name, source in (("hmm", hmm), ("quiet", quiet)):
            x = onehot(source.sample(1024, 20, seed=10 + r)[0])
            split = SplitBatchDivergence(OneHotSinkhornDivergence(3), OneHotSinkhornDivergence(3, cache_targets=False))
            values[name] = (OneHotSinkhornDivergence(3)(x, y).item(), split(x, y).item())
        batch_gap.append(values["quiet"][0] - values["hmm"][0])
        split_gap.append(values["quiet"][1] - values["hmm"][1])
        batch_hmm.append(values["hmm"][0])
        split_hmm.append(values["hmm"][1])

    def mean_se(values):
        return np.mean(values), np.std(values, ddof=1) / np.sqrt(len(values))

    (m, se) = mean_se(split_hmm)
    assert abs(m) < 3 * se
    (m, se) = mean_se(batch_hmm)
    assert m > 10 * se
    (m, se) = mean_se(batch_gap)
    assert m < -3 * se
    (m, se) = mean_se(split_gap)
    assert m > 3 * se


def test_identical_point_clouds_have_zero_divergence():
    """Two halves of a model batch that emits one sequence only (the bounding box has diameter 0):
    the divergence is 0 and the split estimator is finite."""
    constant = torch.nn.functional.one_hot(torch.zeros(40, 8, dtype=torch.long), 3).float().reshape(40, -1)
    assert OneHotSinkhornDivergence(3)(constant[:20], constant[20:]).item() == pytest.approx(0.0, abs=1e-6)
    _, y = _batches("fully3", 40, 40, 8, 6)
    split = SplitBatchDivergence(OneHotSinkhornDivergence(3), OneHotSinkhornDivergence(3, cache_targets=False))
    x = constant.clone().requires_grad_(True)
    value = split(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
