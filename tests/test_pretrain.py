"""State pretraining (hmmrnn._pretrain): the states HMM, the fitted readout, and runs that start from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import hmmrnn
from hmmrnn import ConfigError, load_run
from hmmrnn._pretrain import OWN_SYMBOL, pretraining_config, region_readout, states_hmm
from hmmrnn.runs import PRETRAIN_DIR, read_history

from conftest import TINY


def test_states_hmm_keeps_the_chain_and_emits_one_symbol_per_state():
    hmm = hmmrnn.HMM.cyclic4()
    states = states_hmm(hmm)
    np.testing.assert_array_equal(states.transition, hmm.transition)
    np.testing.assert_array_equal(states.start, hmm.start)
    assert states.emission.shape == (4, 4)
    np.testing.assert_allclose(np.diag(states.emission), OWN_SYMBOL)
    np.testing.assert_allclose(states.emission.sum(1), 1.0)
    # the noise goes to the neighbours on the ring, never to the state across it
    for z in range(4):
        np.testing.assert_allclose(states.emission[z, [(z + 1) % 4, (z - 1) % 4]], (1 - OWN_SYMBOL) / 2)
        assert states.emission[z, (z + 2) % 4] == 0
    # a state that cannot move spreads its noise over every other state
    absorbing = states_hmm(hmmrnn.HMM(np.eye(3), np.eye(3), np.full(3, 1 / 3)))
    np.testing.assert_allclose(absorbing.emission[0], [OWN_SYMBOL, (1 - OWN_SYMBOL) / 2, (1 - OWN_SYMBOL) / 2])
    # the symbols of a long sample are the states, but for the noise
    symbols, hidden = states.sample(20, 500, seed=0)
    assert abs(np.mean(symbols == hidden) - OWN_SYMBOL) < 0.01


def test_region_readout_is_the_soft_label_logistic_regression_and_gives_each_region_its_row():
    """Against scikit-learn's multinomial logistic regression (no intercept) on K weighted copies of
    every state (copy k labelled k, weighted by E_zk: the soft-label loss), C = 1 / (2 ρ n); on
    well-separated regions the readout's mean outputs are the emission rows."""
    rng = np.random.default_rng(0)
    emission = hmmrnn.HMM.cyclic4().emission
    region = rng.integers(0, 4, size=2000)
    states = np.eye(6)[region] + 0.3 * rng.standard_normal((2000, 6))  # H = 6 > S = 4, overlapping regions
    ridge = 1e-3
    readout, outputs = region_readout(states, region, emission, ridge=ridge)
    k = emission.shape[1]
    weights = emission[region].T.reshape(-1)  # copy k of every state, then the next k
    reference = LogisticRegression(fit_intercept=False, C=1 / (2 * ridge * len(states)), tol=1e-12, max_iter=10_000)
    reference.fit(np.tile(states, (k, 1)), np.repeat(np.arange(k), len(states)), sample_weight=weights)
    np.testing.assert_allclose(readout, reference.coef_, atol=1e-5)
    _, outputs = region_readout(np.eye(6)[region] + 0.05 * rng.standard_normal((2000, 6)), region, emission)
    np.testing.assert_allclose(outputs, emission, atol=0.005)
    # a region the states never visit gets a NaN row, not a number
    _, outputs = region_readout(states[region != 2], region[region != 2], emission)
    assert np.isnan(outputs[2]).all() and np.isfinite(outputs[[0, 1, 3]]).all()


def test_pretraining_config_trains_the_states_with_the_runs_own_terms():
    config = hmmrnn.make_config("fully3", state_pretrain_epochs=7)  # fully3's recipe has emission and n-gram terms
    pre = pretraining_config(config)
    assert pre.model.n_outputs == pre.hmm.n_outputs == 3 and pre.hmm.name == "fully3-states"
    t, run = pre.train, config.train
    assert (t.epochs, t.state_pretrain_epochs, t.early_stop, t.eval_every, t.refine_from, t.refine) == (7, 0, False, 0,
                                                                                                       0, "")
    assert (t.ngram_order, t.emission_weight, t.change_count_weight) == (3, 1000.0, 10000.0)
    assert (t.lr, t.seq_len, t.bigram_weight, t.carry_states) == (run.lr, run.seq_len, run.bigram_weight, True)
    with pytest.raises(ConfigError, match="state pretraining and init_weights"):
        hmmrnn.make_config("cyclic4", state_pretrain_epochs=5, init_weights="w.safetensors")
    with pytest.raises(ConfigError, match="state_pretrain_epochs must be >= 0"):
        hmmrnn.make_config("cyclic4", state_pretrain_epochs=-1)


def test_a_run_starts_from_its_pretrained_network_and_resumes_without_pretraining_again(tmp_path):
    """The pretraining run lives in RUN/pretrain with the states HMM; the run's first weights are its
    recurrent and input weights with the fitted readout; a second start (resume before the first
    checkpoint) reuses the finished pretraining; --force removes it with the run."""
    from hmmrnn.training import _pretrained

    kwargs = dict(seed=1, progress=False, checkpoint_every=0, state_pretrain_epochs=2,
                  **{**TINY, "num_seq": 600, "batch_size": 100})
    run = hmmrnn.train("cyclic4", out=tmp_path / "run", epochs=1, **kwargs)
    pre = load_run(run.path / PRETRAIN_DIR)
    assert pre.hmm.name == "cyclic4-states" and pre.model.n_outputs == 4 and len(pre.history) == 2
    weights = _pretrained(run.config, run.path, progress=False)
    for name in ("w_in", "w_rec"):
        assert torch.equal(weights[name], getattr(pre.model, name).detach())
    assert weights["w_out"].shape == (3, 16)
    assert len(read_history(run.path / PRETRAIN_DIR / "history.csv")) == 2  # not trained again
    hmmrnn.train("cyclic4", out=tmp_path / "run", epochs=1, force=True, **{**kwargs, "state_pretrain_epochs": 0})
    assert not (tmp_path / "run" / PRETRAIN_DIR).exists()


def test_the_state_term_prices_the_states_of_the_fixed_readout_per_population():
    """objective = Σ over the fresh and carried windows of f · (divergence + λ · n-gram and transition
    penalty on softmax(W_s h) against the states HMM of that population's start)."""
    from hmmrnn._bigram import BigramPenalty, HMMWindows
    from hmmrnn.training import _objective

    config = hmmrnn.make_config("linear3", seq_len=6, carry_states=True, fresh_fraction=0.5, bigram_weight=0.0,
                                transition_weight=0.0, pair_lags=3, state_pretrain_epochs=1, state_weight=10.0)
    generator = torch.Generator().manual_seed(3)
    targets = torch.nn.functional.one_hot(torch.from_numpy(config.hmm.sample(40, 6, seed=5)[0]), 3).float().flatten(1)
    logits, hidden = torch.randn(40, 6, 3, generator=generator), torch.randn(40, 6, 8, generator=generator)
    readout = torch.randn(3, 8, generator=generator)  # linear3 has 3 states
    fresh = torch.arange(40) % 2 == 1

    def divergence(x, y):
        return (x - y).abs().sum()

    value = _objective(divergence, targets, config, readout)(logits, logits, targets, fresh, hidden)
    parts = []
    for rows, hmm in ((fresh, config.hmm), (~fresh, config.hmm.stationary())):
        term = BigramPenalty(HMMWindows(states_hmm(hmm), 6), 3, 10.0, config.train.ngram_order, lags=3,
                             conditional_weight=10.0)
        parts.append(divergence(logits[rows].flatten(1), targets[rows])
                     + term(torch.softmax(hidden[rows] @ readout.T, -1)))
    assert config.hmm.start.tolist() != config.hmm.stationary().start.tolist()  # the two populations differ
    assert parts[1] > parts[0] - divergence(logits[fresh].flatten(1), targets[fresh])  # the term is not 0
    assert value.item() == pytest.approx(0.5 * (parts[0] + parts[1]).item(), rel=1e-5)


def test_a_run_with_the_state_term_trains_resumes_and_needs_its_pretrained_network(tmp_path):
    with pytest.raises(ConfigError, match="state_weight needs state pretraining"):
        hmmrnn.make_config("cyclic4", state_weight=1.0)
    kwargs = dict(seed=1, progress=False, checkpoint_every=1, state_pretrain_epochs=2, state_weight=100.0,
                  **{**TINY, "num_seq": 600, "batch_size": 100})
    run = hmmrnn.train("cyclic4", out=tmp_path / "run", epochs=2, **kwargs)
    assert len(run.history) == 2 and all(np.isfinite(row["train_loss"]) for row in run.history)
    resumed = hmmrnn.resume(run.path, epochs=3, progress=False, evaluate=False)
    assert len(resumed.history) == 3
    (run.path / PRETRAIN_DIR / "model.safetensors").unlink()
    with pytest.raises(hmmrnn.RunDirError, match="state_weight needs the state-pretrained network"):
        hmmrnn.resume(run.path, epochs=4, progress=False, evaluate=False)
