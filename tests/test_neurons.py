"""Mechanism analyses: switch events, the kick-neuron criterion, planted connectivity, gains and
silencing, transition rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmmrnn import NoiseRNN
from hmmrnn.analysis import (KickNeurons, ablation, connectivity, kick_neurons, switch_events, switch_rates,
                             transition_rates)
from hmmrnn.analysis._neurons import kick_scores


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
            firing[t - 1: t + 1, 3] = True  # unit 3 fires one step before every 0 -> 2 switch and at it
        else:
            firing[t - 1: t + 1, 4] = True  # unit 4 before every 2 -> 0 switch
    scores, counts, p_before, p_elsewhere = kick_scores(firing, labels, window=2)
    assert set(counts) == {(0, 2), (2, 0)}
    assert int(np.argmax(scores["0->2"])) == 3 and int(np.argmax(scores["2->0"])) == 4
    assert scores["0->2"][3] == 1.0 and p_before[(0, 2)][3] == 1.0 and p_elsewhere[0][3] == 0.0
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


def test_switch_rates_are_per_step_in_the_source_label():
    labels = np.array([[0, 0, 0, 2, 2, 0], [2, 2, 2, 2, 0, 0]])
    # steps with a successor: label 0 four times (one leaves to 2), label 2 six times (two leave to 0)
    assert switch_rates(labels, 3) == {"0->2": 1000 * 1 / 4, "2->0": 1000 * 2 / 6}
    assert switch_rates(np.array([1, 1, 0]), 3) == {"1->0": 500.0}


def test_transition_rates_equal_a_one_chain_at_a_time_loop():
    model = NoiseRNN(10, 4, 3, seed=3)
    chains, steps, warmup = 8, 300, 10
    rates = transition_rates(model, chains=chains, steps=steps, warmup=warmup, seed=0)
    assert rates and all(r > 0 for r in rates.values())
    assert rates == transition_rates(model, chains=chains, steps=steps, warmup=warmup, seed=0)
    noise = torch.randn(chains, warmup + steps, model.noise_dim, generator=torch.Generator().manual_seed(0))
    pairs, time_in = {}, {}
    with torch.no_grad():
        for c in range(chains):
            h, labels = torch.zeros(model.hidden), []
            for t in range(warmup + steps):
                h = torch.relu(model.w_rec @ h + model.w_in @ noise[c, t])
                labels.append(int(torch.argmax(model.w_out @ h)))
            labels = labels[warmup:]
            for a, b in zip(labels[:-1], labels[1:]):
                time_in[a] = time_in.get(a, 0) + 1
                if a != b:
                    pairs[f"{a}->{b}"] = pairs.get(f"{a}->{b}", 0) + 1
    assert set(rates) == set(pairs)
    for key, n in pairs.items():
        assert abs(rates[key] - 1000 * n / time_in[int(key[0])]) < 1e-9
    # every unit silenced: h = 0, all logits 0, the label never changes
    assert transition_rates(model, silenced=list(range(10)), chains=8, steps=300, warmup=10, seed=0) == {}
    # several silenced groups in one batch give each group's rates exactly (same noise for every group)
    from hmmrnn.analysis._neurons import _rates_when_silenced

    groups = [[], [1, 4], [0, 2, 3]]
    batched = _rates_when_silenced(model, groups, chains=chains, steps=steps, warmup=warmup, seed=0, block=70)
    for group, rates_of_group in zip(groups, batched):
        alone = transition_rates(model, silenced=group, chains=chains, steps=steps, warmup=warmup, seed=0)
        assert rates_of_group.keys() == alone.keys()
        assert all(abs(rates_of_group[k] - alone[k]) < 1e-9 for k in alone)


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
    # the paper's definition: the 10 smallest products whatever the unit (the kick units' are 0), ordered
    # by g1 (pop1 −0.5, kicks 0, pop2 0.3) and halved by position
    paper = connectivity(model, kicks=kicks, population_size=10, populations="paper", activity_steps=50)
    assert paper.populations == [[4, 5, 6, 0, 1], [2, 3, 7, 8, 9]]
    with pytest.raises(ValueError, match="populations must be"):
        connectivity(model, kicks=kicks, populations="position")


def test_kick_neurons_runs_on_a_random_network():
    model = NoiseRNN(16, 4, 3, seed=5)
    result = kick_neurons(model, steps=3000, min_events=5, shown=100)
    assert result.directions, result.summary()
    for d in result.directions:
        assert len(d["units"]) <= 3 and all(s > 0.2 for s in d["scores"])
        assert d["events"] >= 5
    assert result.preactivations.shape[1] == 100


def planted_kick_network() -> tuple[NoiseRNN, int, int]:
    """A bistable network whose switches are triggered by two planted kick units.

    Populations A (units 0–3, output 0) and B (4–7, output 2) excite themselves (0.9) and inhibit
    each other (2.0), each unit with weak private noise (0.05): without a kick, a switch is rare.
    Kick unit 8 is driven by its own noise input and gated by the total activity, so it fires on
    about 2 % of steps; it excites B and inhibits A (strength 3), which switches A → B. Unit 9 does
    the same for B → A. Units 10–13 are distractors that fire on half the steps everywhere.
    """
    population_a, population_b, kick_ab, kick_ba, distractors = range(4), range(4, 8), 8, 9, range(10, 14)
    w_rec, w_in, w_out = np.zeros((14, 14)), np.zeros((14, 12)), np.zeros((3, 14))
    for own, other, excite, inhibit in ((population_a, population_b, kick_ba, kick_ab),
                                        (population_b, population_a, kick_ab, kick_ba)):
        for i in own:
            w_rec[i, list(own)] = 0.9 / 4
            w_rec[i, list(other)] = -2.0 / 4
            w_rec[i, excite], w_rec[i, inhibit] = 3.0, -3.0
            w_in[i, i] = 0.05
    for unit, source in ((kick_ab, 8), (kick_ba, 9)):
        w_in[unit, source] = 1.0
        w_rec[unit, list(population_a) + list(population_b)] = -20.0 / 4
    for j, i in enumerate(distractors):
        w_in[i, 10 + j % 2] = 1.0
        w_rec[i, list(population_a)] = 0.05
    w_out[0, list(population_a)], w_out[0, list(population_b)] = 1.0, -1.0
    w_out[2] = -w_out[0]
    w_out[1, :8] = -1.0
    model = NoiseRNN(14, 12, 3, seed=0)
    with torch.no_grad():
        for name, w in (("w_rec", w_rec), ("w_in", w_in), ("w_out", w_out)):
            getattr(model, name).copy_(torch.from_numpy(w))
    return model, kick_ab, kick_ba


def test_kick_neurons_recover_planted_trigger_units_and_their_ablation_is_causal():
    model, kick_ab, kick_ba = planted_kick_network()
    kicks = kick_neurons(model, steps=20_000, seed=0)
    assert kicks.group(0, 2) == [kick_ab] and kicks.group(2, 0) == [kick_ba], kicks.summary()
    assert all(s > 0.4 for d in kicks.directions for s in d["scores"])
    result = ablation(model, kicks=kicks, n_random=5, chains=32, steps=1000, seed=0)
    for d in result.per_direction:
        # silencing the trigger cuts its direction's hazard several-fold; one random unit does not
        assert d["ratio_kick"] < 0.4 and d["ratio_random"] > 0.8, result.summary()
