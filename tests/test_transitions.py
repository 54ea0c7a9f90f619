"""Transition locator and noise sensitivity: termination with a clear error, ordering of the points,
replayed noise gives no spread, the variance-preserving mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmmrnn import HmmrnnError, NoiseRNN
from hmmrnn.analysis import transition_points, noise_sensitivity


def _two_wells() -> NoiseRNN:
    """Two units inhibiting each other; output 0 while unit 0 leads, output 2 while unit 1 leads."""
    model = NoiseRNN(2, 2, 3, seed=0)
    with torch.no_grad():
        model.w_rec.copy_(torch.tensor([[0.9, -0.8], [-0.8, 0.9]]))
        model.w_in.copy_(0.3 * torch.eye(2))
        model.w_out.copy_(torch.tensor([[4.0, -4.0], [0.0, 0.0], [-4.0, 4.0]]))
    return model


def test_a_run_without_switches_is_a_clear_error_not_a_hang():
    model = NoiseRNN(6, 3, 3, seed=0)
    with torch.no_grad():
        model.w_out.copy_(torch.tensor([[1.0] * 6, [-1.0] * 6, [-1.0] * 6]))  # output 0 always wins
    with pytest.raises(HmmrnnError, match="no usable transition: 0 label switches"):
        transition_points(model, steps=500, min_time=50)


def test_noise_driven_switches_have_no_deterministic_transition():
    # the two wells switch only by noise: no state before a switch flips within 3 steps every time
    with pytest.raises(HmmrnnError, match="no deterministic transition before the switch"):
        transition_points(_two_wells(), steps=3000, min_time=100, trials=50, seed=1)


def _wells_with_delayed_readout() -> NoiseRNN:
    """The two wells (units 0, 1) copied through two delay units each (2, 3 then 4, 5) into the
    readout: once the wells have flipped, the label follows 2 steps later whatever the noise does,
    a deterministic transition after a noise-driven cluster."""
    w = torch.zeros(6, 6)
    w[:2, :2] = torch.tensor([[0.9, -0.8], [-0.8, 0.9]])
    w[2, 0] = w[3, 1] = w[4, 2] = w[5, 3] = 1.0
    model = NoiseRNN(6, 2, 3, seed=0)
    with torch.no_grad():
        model.w_rec.copy_(w)
        model.w_in.zero_()
        model.w_in[0, 0] = model.w_in[1, 1] = 0.3
        model.w_out.zero_()
        model.w_out[0, 4], model.w_out[0, 5] = 4.0, -4.0
        model.w_out[2, 4], model.w_out[2, 5] = -4.0, 4.0
    return model


def test_points_are_ordered_and_noise_sensitivity_behaves():
    model = _wells_with_delayed_readout()
    points = transition_points(model, steps=3000, min_time=100, trials=50, seed=1)
    assert points.switch_time - points.transition_time >= 2  # the delay line is a point of no return
    assert points.cluster_time < points.transition_time < points.switch_time
    assert points.previous_switch_time < points.switch_time
    assert len(points.probe_times) == len(points.probe_residency) == len(points.probe_switched)
    assert "states" not in points.to_dict() and "track_pc" in points.to_dict()
    result = noise_sensitivity(model, points=points, horizon=5, n_trajectories=40, seed=2)
    traces = {(c["location"], c["gamma"]): np.asarray(c["trace"]) for c in result.curves}
    assert np.allclose(traces[("cluster", 0.0)], 0) and np.allclose(traces[("transition", 0.0)], 0)
    assert traces[("cluster", 1.0)][-1] > 0 and traces[("transition", 1.0)][-1] > 0
    assert all(abs(t[0]) < 1e-6 for t in traces.values())  # all trajectories start at the same state


def test_variance_preserving_mixture_keeps_unit_variance():
    model = NoiseRNN(3, 400, 3, seed=0)
    with torch.no_grad():  # the first step's spread is exactly the spread of W_in x: make W_in the identity rows
        model.w_rec.zero_()
        model.w_in.zero_()
        model.w_in[0, 0] = 1.0
    from hmmrnn.analysis._transitions import TransitionPoints

    states = np.abs(np.random.default_rng(0).normal(size=(30, 3))).astype(np.float32) + 5
    noise = np.zeros((30, 400), dtype=np.float32)
    points = TransitionPoints(29, 0, 20, 10, 18, 15, "0->2", np.arange(3), np.zeros(3), np.zeros(3), states, noise,
                              np.zeros(30, dtype=int), np.zeros((30, 2)))
    # across trajectories only the fresh part varies: its variance is gamma (variance-preserving:
    # x = sqrt(1 - g) n + sqrt(g) xi, total variance 1) or gamma^2 (the reference's (1 - g) n + g xi)
    for preserving, expected in [(True, 0.5), (False, 0.25)]:
        result = noise_sensitivity(model, points=points, gammas=(0.5,), horizon=1, n_trajectories=4000,
                                   variance_preserving=preserving, seed=3)
        spread = [c for c in result.curves if c["location"] == "cluster"][0]["trace"][1]
        # unit 0 receives x_0 through relu: variance of relu(z), z ~ N(0, v) is v (1/2 - 1/(2 pi))
        assert spread == pytest.approx(expected * (0.5 - 1 / (2 * np.pi)), rel=0.1)


def test_candidate_switches_skip_exactly_the_first_ones():
    from hmmrnn.analysis._transitions import candidate_switches

    events = [(10, 0, 1), (25, 1, 0), (40, 0, 2), (70, 2, 0), (90, 0, 1)]
    # after the first 3 switches: the 4th (t = 70, previous switch at 40) and the 5th
    assert candidate_switches(events, 3, 0) == [(70, 40, 2, 0), (90, 70, 0, 1)]
    # the first switch never qualifies (no switch before it to measure the dwell from)
    assert candidate_switches(events, 0, 0) == candidate_switches(events, 1, 0) == [
        (25, 10, 1, 0), (40, 25, 0, 2), (70, 40, 2, 0), (90, 70, 0, 1)]
    assert candidate_switches(events, 3, 75) == [(90, 70, 0, 1)]
    assert candidate_switches(events, 1, 0, to_label=0) == [(25, 10, 1, 0), (70, 40, 2, 0)]
    assert candidate_switches(events, 5, 0) == []
