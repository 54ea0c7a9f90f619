"""Mechanism analyses: switch events, the kick-neuron criterion, planted connectivity, gains and
silencing, transition rates."""

from __future__ import annotations

import numpy as np
import torch

from hmmrnn import NoiseRNN
from hmmrnn.analysis import KickNeurons, connectivity, kick_neurons, switch_events, transition_rates
from hmmrnn.analysis.neurons import kick_scores


def test_switch_events():
    assert switch_events(np.array([0, 0, 2, 2, 0, 1, 1])) == [(2, 0, 2), (4, 2, 0), (5, 0, 1)]
    assert switch_events(np.array([1, 1, 1])) == []


def test_kick_scores_find_a_planted_kick_unit():
    rng = np.random.default_rng(0)
    length, units = 4000, 6
    labels = np.repeat(rng.integers(0, 2, size=length // 20) * 2, 20)  # dwells of 20 steps, labels 0 / 2
    firing = rng.random((length, units)) < 0.3  # background: every unit fires 30 % of the time
    firing[:, 3] = False
    firing[:, 4] = False
    for t, a, b in switch_events(labels):
        if (a, b) == (0, 2):
            firing[t - 1: t + 1, 3] = True  # unit 3 fires in the 2 steps ending at every 0 -> 2 switch
        else:
            firing[t - 1: t + 1, 4] = True  # unit 4 before every 2 -> 0 switch
    scores, counts, p_before, p_elsewhere = kick_scores(firing, labels, window=2)
    assert set(counts) == {(0, 2), (2, 0)}
    assert int(np.argmax(scores["0->2"])) == 3 and int(np.argmax(scores["2->0"])) == 4
    assert scores["0->2"][3] == 1.0 and p_before[(0, 2)][3] == 1.0 and p_elsewhere[3] == 0.0
    # unit 4 is a kick unit of the other direction: it scores below zero for 0 -> 2
    assert scores["0->2"][4] == -1.0
    background = [0, 1, 2, 5]
    assert np.abs(scores["0->2"][background]).max() < 0.15


def test_silencing_units_holds_them_at_zero_and_gains_enter_the_jacobian():
    model = NoiseRNN(8, 3, 3, seed=0).double()
    gen = torch.Generator().manual_seed(1)
    h = torch.rand(5, 8, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    gain = torch.ones(8, dtype=torch.float64)
    gain[[2, 5]] = 0
    out = model.step(h, x, recurrent_gain=gain, input_gain=gain)
    assert (out[:, [2, 5]] == 0).all()
    torch.testing.assert_close(model.step(h, x, recurrent_gain=torch.ones(8, dtype=torch.float64)), model.step(h, x))
    mu = torch.linspace(0.5, 1.5, 8, dtype=torch.float64)
    jac = model.jacobian(h, x, recurrent_gain=mu).detach()
    eps = 1e-6
    for i in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[i] = eps
        numeric = (model.step(h + e, x, recurrent_gain=mu) - model.step(h - e, x, recurrent_gain=mu)).detach() / (2 * eps)
        torch.testing.assert_close(jac[:, :, i], numeric, atol=1e-8, rtol=1e-6)


def test_transition_rates_count_switches():
    model = NoiseRNN(10, 4, 3, seed=3)
    rates = transition_rates(model, chains=8, steps=300, warmup=10, seed=0)
    assert rates and all(r > 0 for r in rates.values())
    assert rates == transition_rates(model, chains=8, steps=300, warmup=10, seed=0)
    # every unit silenced: h = 0, all logits 0, the label never changes
    assert transition_rates(model, silenced=list(range(10)), chains=8, steps=300, warmup=10, seed=0) == {}


def test_connectivity_recovers_planted_populations():
    hidden = 12
    w = np.zeros((hidden, hidden), dtype=np.float32)
    group1, group2 = [0, 1], [2, 3]
    pop1, pop2 = [4, 5, 6], [7, 8, 9]
    for j in pop1:  # population 1 inhibits group 1 and excites group 2
        w[group1, j], w[group2, j] = -0.5, 0.4
    for j in pop2:
        w[group1, j], w[group2, j] = 0.3, -0.6
    w[group1, 10], w[group2, 10] = 0.2, 0.2  # same sign onto both groups: in no population
    model = NoiseRNN(hidden, 2, 3, seed=0)
    with torch.no_grad():
        model.w_rec.copy_(torch.from_numpy(w))
    kicks = KickNeurons(1000, 5, 2, 0.2, 10, 0, [
        {"from": 0, "to": 2, "events": 50, "units": group1, "scores": [0.5, 0.5], "p_before": [], "p_elsewhere": []},
        {"from": 2, "to": 0, "events": 40, "units": group2, "scores": [0.5, 0.5], "p_before": [], "p_elsewhere": []}],
        {})
    result = connectivity(model, kicks=kicks, population_size=10, activity_steps=50)
    assert result.groups == [group1, group2] and result.directions == ["0->2", "2->0"]
    assert sorted(result.populations[0]) == pop1 and sorted(result.populations[1]) == pop2
    assert result.block_means["pop1->group1"] == -0.5 and result.block_means["pop2->group2"] < 0
    assert result.kick_population.shape == (4, 6)


def test_kick_neurons_runs_on_a_random_network():
    model = NoiseRNN(16, 4, 3, seed=5)
    result = kick_neurons(model, steps=3000, min_events=5, shown=100)
    assert result.directions, result.summary()
    for d in result.directions:
        assert len(d["units"]) <= 3 and all(s > 0.2 for s in d["scores"])
        assert d["events"] >= 5
    assert result.preactivations.shape[1] == 100
