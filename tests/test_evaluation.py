"""The verdict and the evaluation pipeline: HMM vs itself, vs another HMM, vs an untrained RNN; CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hmmrnn
from hmmrnn import NoiseRNN, Thresholds, compare, preset

from conftest import TINY_FLAGS


def _checks(result) -> dict[str, bool]:
    return {c.name: c.passed for c in result.checks}


def test_independent_samples_of_the_same_hmm_emulate():
    hmm = preset("linear3").hmm
    candidate, _ = hmm.sample(5000, 30, seed=123)
    result = compare(hmm, candidate, seed=0)
    assert result.emulates, result.summary()
    m = result.metrics
    assert len(result.checks) == 5  # transitions, frequencies, volatility, distance, likelihood
    assert m["matched_distance"]["candidate"]["mean"] == pytest.approx(m["matched_distance"]["baseline"]["mean"],
                                                                       abs=0.05)
    for order in ("1", "2", "3"):
        ng = m["ngrams"][int(order)]
        assert ng["tv"] < 0.01
    assert "emulates: yes" in result.summary()


def test_cyclic_hmm_against_itself_emulates():
    hmm = preset("cyclic4").hmm
    candidate, _ = hmm.sample(3000, 40, seed=7)
    assert compare(hmm, candidate, seed=1, refit=False).emulates


def test_a_different_hmm_does_not_emulate():
    truth = preset("linear2").hmm
    impostor, _ = preset("linear3").hmm.sample(5000, 30, seed=1)
    result = compare(truth, impostor, seed=0, refit=False, matching=False)
    assert not result.emulates
    checks = _checks(result)
    assert not checks["output transition matrix max |diff|"] and not checks["volatility relative diff"]
    assert not checks["log-likelihood gap (nats/step)"]
    assert "emulates: no" in result.summary()


def test_untrained_rnn_does_not_emulate():
    hmm = preset("linear3").hmm
    rnn = NoiseRNN(150, 100, 3, seed=0)
    result = compare(hmm, rnn.sample(5000, 30, seed=0), seed=0, refit=False)
    assert not result.emulates
    assert not _checks(result)["output transition matrix max |diff|"]


def test_thresholds_are_configurable_and_recorded():
    hmm = preset("linear2").hmm
    impostor, _ = preset("linear3").hmm.sample(2000, 30, seed=1)
    lenient = Thresholds(transition_max_abs=1.0, frequency_max_abs=1.0, volatility_rel=10.0, distance_margin=100,
                         loglik_gap=10.0)
    result = compare(hmm, impostor, seed=0, thresholds=lenient, refit=False)
    assert result.emulates
    assert result.to_dict()["thresholds"]["loglik_gap"] == 10.0
    assert all(c.limit in (1.0, 10.0) or c.name == "matched distance" for c in result.checks)


def test_log_likelihood_score_equals_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    hmm = preset("linear4").hmm
    candidate, _ = hmm.sample(300, 30, seed=2)
    result = compare(hmm, candidate, seed=0, matching=False, refit=False)
    ref = hmmlearn.CategoricalHMM(n_components=4, n_features=3)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = hmm.start, hmm.transition, hmm.emission
    expected = np.mean([ref.score(seq[:, None]) for seq in candidate]) / 30
    assert result.metrics["log_likelihood"]["candidate_per_step"] == pytest.approx(expected, abs=1e-9)


def test_rare_symbol_never_emitted_is_reported():
    hmm = preset("linear2").hmm
    candidate, _ = hmm.sample(2000, 50, seed=3)
    candidate[candidate == 1] = 0  # the candidate never emits the rare symbol
    result = compare(hmm, candidate, seed=0, matching=False, refit=False)
    t = result.metrics["transition_matrix"]
    assert t["undefined_rows"] == [1]
    assert not _checks(result)["output transition matrix max |diff|"]
    assert np.isfinite(result.metrics["log_likelihood"]["candidate_per_step"])


def test_evaluate_cli_writes_metrics_and_figures(cli, tmp_path):
    out = tmp_path / "run"
    flags = [f for f in TINY_FLAGS if f != "--no-evaluate"]
    code, stdout, err = cli("train", "--preset", "linear2", *flags, "--epochs", "2", "--out", out, "-q",
                            "--eval-n", "300")
    assert code == 0, err
    # training evaluates at its end unless --no-evaluate
    assert "emulates:" in stdout and (out / "metrics.json").is_file()
    code, stdout, err = cli("evaluate", out, "--n", "400", "--seed", "3", "--max-loglik-gap", "0.5", "--no-refit")
    assert code == 0, err
    assert "verdict checks:" in stdout and "limit 0.5000" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 400 and metrics["seed"] == 3 and metrics["seq_len"] == 20
    assert metrics["thresholds"]["loglik_gap"] == 0.5 and "refit" not in metrics
    assert isinstance(metrics["emulates"], bool) and metrics["emulates"] is False
    for name in ("transitions", "frequencies", "volatility", "distances", "dwell_times"):
        assert (out / "figures" / f"evaluation_{name}.png").is_file(), name
    # the same seed gives the same numbers
    first = metrics["matched_distance"]["candidate"]["mean"]
    cli("evaluate", out, "--n", "400", "--seed", "3", "--no-refit")
    assert json.loads((out / "metrics.json").read_text())["matched_distance"]["candidate"]["mean"] == first


def test_evaluate_cli_bad_input(cli, tmp_path):
    code, _, err = cli("evaluate", tmp_path / "missing")
    assert code == 1 and err.startswith("error: run folder not found")
    code, _, err = cli("evaluate", tmp_path, "--n", "1")
    assert code == 1 and "--n must be at least 2" in err


def test_evaluate_api_on_a_run(tmp_path):
    run = hmmrnn.train("linear2", out=tmp_path / "r", epochs=1, seed=0, progress=False, hidden=8, input=3,
                       num_seq=300, seq_len=15, batch_size=100, evaluate=False)
    assert not (run.path / "metrics.json").exists()
    result = hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False)
    assert (run.path / "metrics.json").is_file() and not (run.path / "figures" / "evaluation_transitions.png").exists()
    assert result.metrics["semantics"] == "training" and result.metrics["weights"].endswith("model.safetensors")
    reference = hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False, save=False, semantics="reference")
    assert reference.metrics["semantics"] == "reference"
