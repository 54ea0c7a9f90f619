"""State pretraining (hmmrnn._pretrain): the states HMM, the fitted readout, and runs that start from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

import hmmrnn
from hmmrnn import ConfigError, load_run
from hmmrnn._pretrain import OWN_SYMBOL, RIDGE, pretraining_config, region_readout, states_hmm
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
    # the symbols of a long sample are the states, but for the noise
    symbols, hidden = states.sample(20, 500, seed=0)
    assert abs(np.mean(symbols == hidden) - OWN_SYMBOL) < 0.01


def test_region_readout_is_the_ridge_solution_and_gives_each_region_its_row():
    """Against scikit-learn's ridge regression (no intercept, alpha = ρ n) on the same targets; on
    well-separated orthogonal regions the readout's mean outputs come close to the emission rows."""
    rng = np.random.default_rng(0)
    emission = hmmrnn.HMM.cyclic4().emission
    region = rng.integers(0, 4, size=4000)
    states = np.eye(6)[region] + 0.05 * rng.standard_normal((4000, 6))  # H = 6 > S = 4
    readout, outputs = region_readout(states, region, emission)
    target = np.log(np.maximum(emission[region], 1e-3))
    target -= target.mean(1, keepdims=True)
    reference = Ridge(alpha=RIDGE * len(states), fit_intercept=False).fit(states, target).coef_
    np.testing.assert_allclose(readout, reference, atol=1e-8)
    np.testing.assert_allclose(outputs, emission, atol=0.03)
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
