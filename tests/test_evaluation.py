"""The verdict as a calibrated test at every horizon: HMM vs itself (yes, or inconclusive at tiny N),
vs other HMMs (no), diverging and hand-built stationary networks, the standard errors against brute
force, and the evaluation pipeline and CLI."""

from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pytest
import torch

import hmmrnn
from hmmrnn._seeds import stream
from hmmrnn import HMM, Horizons, NoiseRNN, Thresholds, compare, judge, preset
from hmmrnn.evaluation import HMMCandidate, _cut_windows, _hmm_sets, _transition_estimate
from hmmrnn.metrics import matched_distances

from conftest import TINY_FLAGS

#: A long run small enough for unit tests (the defaults: 200 chains x 10,000 steps).
SHORT = Horizons(windows=(60,), chains=40, length=2000, burn_in=200)


def _status(result) -> dict[str, str]:
    return {f"{c.window}: {c.name}": c.status for c in result.checks}


def test_independent_samples_of_the_same_hmm_emulate(test_seed):
    hmm = preset("linear3").hmm
    candidate, _ = hmm.sample(5000, 30, seed=stream(test_seed, "candidate"))
    result = compare(hmm, candidate, seed=stream(test_seed, "reference"))
    assert result.verdict == "yes", result.summary()
    m = result.metrics
    assert len(result.checks) == 5  # frequencies, transitions, volatility, likelihood, distance
    assert m["matched_distance"]["candidate"]["mean"] == pytest.approx(m["matched_distance"]["baseline"]["mean"],
                                                                       abs=0.05)
    for order in (1, 2, 3):
        assert m["ngrams"][order]["tv"] < 0.01
    assert "emulates: yes" in result.summary()


def test_the_matched_distance_decides_at_n_2000_for_an_exact_emulator():
    """The matched-distance check pairs the two matchings by the reference HMM set's sequences: for
    HMM candidates at N = 2000, T = 100 (linear2) its sampling allowance is below the resolution
    (the unpaired difference's was 0.14 > 0.1: "inconclusive"), its paired excess is near 0, and it
    passes; for a far more volatile HMM it fails."""
    hmm = preset("linear2").hmm
    candidate, _ = hmm.sample(2000, 100, seed=11)
    result = compare(hmm, candidate, seed=12, refit=False)
    distance = next(c for c in result.checks if c.name.startswith("matched distance"))
    m = result.metrics["matched_distance"]
    assert distance.status == "pass", result.summary()
    assert result.z * distance.stderr < Thresholds().distance_resolution
    assert abs(m["paired_excess"]) < 3 * distance.stderr
    # the paired se is well below the unpaired one of the same per-sequence distances
    unpaired = np.sqrt(2 * 1.0 / 2000) * m["candidate"]["std"]
    assert distance.stderr < 0.7 * unpaired
    volatile = HMM(np.array([[0.8, 0.2], [0.2, 0.8]]), hmm.emission, hmm.start)
    other = compare(hmm, volatile.sample(2000, 100, seed=13)[0], seed=12, refit=False)
    assert next(c for c in other.checks if c.name.startswith("matched distance")).status == "fail"


def test_blocked_matching_pools_the_paired_differences_of_independent_block_matchings():
    """With matching_block = b the check pools the paired differences of k = N / b matchings, each of
    one block of candidates against the same block of the HMM reference sets (oracle: the blocks
    matched by hand); its mean distance is that of a b-sequence matching, larger than one matching
    of all N (fewer partners to choose from), with a standard error over all N pairs."""
    hmm = preset("linear2").hmm
    candidate = hmm.sample(600, 30, seed=21)[0]
    result = compare(hmm, candidate, seed=22, refit=False, matching_block=200)
    m = result.metrics["matched_distance"]
    assert (m["blocks"], m["block"]) == (3, 200)
    sets = _hmm_sets(hmm, 600, 30, 22)
    paired, distances = [], []
    for rows in (slice(0, 200), slice(200, 400), slice(400, 600)):
        own = matched_distances(sets[0][rows], candidate[rows], hmm.n_outputs)
        base = matched_distances(sets[0][rows], sets[2][rows], hmm.n_outputs)
        paired.append(own.row_distances - base.row_distances)
        distances.append(own.distances)
    paired = np.concatenate(paired)
    check = next(c for c in result.checks if c.name.startswith("matched distance"))
    assert m["paired_excess"] == pytest.approx(paired.mean()) and "pooled over 3 blocks of 200" in check.detail
    assert check.stderr == pytest.approx(paired.std(ddof=1) / np.sqrt(600))
    assert m["candidate"]["mean"] == pytest.approx(np.concatenate(distances).mean())
    whole = compare(hmm, candidate, seed=22, refit=False).metrics["matched_distance"]
    assert whole["blocks"] == 1 and whole["candidate"]["mean"] < m["candidate"]["mean"] - 0.05


def test_matching_if_passing_gives_the_full_verdict_and_skips_the_distance_after_a_failure():
    hmm = preset("linear2").hmm
    options = dict(n=400, seq_len=30, seed=3, refit=False, horizons=SHORT)
    full = judge(HMMCandidate(hmm), hmm, matching=True, **options)
    lazy = judge(HMMCandidate(hmm), hmm, matching="if-passing", **options)
    assert full.verdict == lazy.verdict != "no", full.summary()
    assert all("matched_distance" in w.metrics for w in lazy.windows)
    assert [c.to_dict() for c in lazy.checks] == [c.to_dict() for c in full.checks]
    assert lazy.z == full.z and lazy.tests == full.tests
    volatile = HMMCandidate(HMM(np.array([[0.8, 0.2], [0.2, 0.8]]), hmm.emission, hmm.start))
    full, lazy = (judge(volatile, hmm, matching=m, **options) for m in (True, "if-passing"))
    assert full.verdict == lazy.verdict == "no"
    assert "matched_distance" in full.metrics and all("matched_distance" not in w.metrics for w in lazy.windows)
    with pytest.raises(hmmrnn.ConfigError, match="matching_block"):
        judge(HMMCandidate(hmm), hmm, matching_block=401, **options)


def test_a_fixed_reference_seed_keeps_the_hmm_sets_and_their_baseline_across_verdicts():
    hmm = preset("linear2").hmm
    options = dict(n=300, seq_len=30, refit=False, horizons=SHORT)
    first, second = (judge(HMMCandidate(hmm), hmm, seed=s, reference_seed=9, **options) for s in (1, 2))
    for a, b in zip(first.windows, second.windows):
        assert a.metrics["matched_distance"]["baseline"] == b.metrics["matched_distance"]["baseline"]
        np.testing.assert_array_equal(a.metrics["frequencies"]["hmm_mean"], b.metrics["frequencies"]["hmm_mean"])
        assert not np.array_equal(a.metrics["frequencies"]["candidate_mean"], b.metrics["frequencies"]["candidate_mean"])
    # by default the reference derives from the seed, as before
    plain, same = judge(HMMCandidate(hmm), hmm, seed=1, **options), judge(HMMCandidate(hmm), hmm, seed=1,
                                                                             reference_seed=1, **options)
    assert [c.to_dict() for c in plain.checks] == [c.to_dict() for c in same.checks]


def test_z_is_bonferroni_over_the_tested_quantities():
    th = Thresholds(alpha=0.01)
    assert th.z(60) == pytest.approx(NormalDist().inv_cdf(1 - 0.01 / 120))
    result = compare(preset("linear2").hmm, preset("linear2").hmm.sample(500, 20, seed=1)[0], refit=False,
                     matching=False)
    assert result.tests == 3 + 9 + 2 and result.z == pytest.approx(th.z(14))


def test_the_hmm_itself_passes_whatever_the_seed_and_n():
    """Size: an exact emulator is not rejected at N = 2000 and 5000 for several seeds (full judge)."""
    hmm = preset("linear3").hmm
    for n, seed in [(2000, 0), (2000, 1), (5000, 2)]:
        result = judge(HMMCandidate(hmm), hmm, n=n, seq_len=30, seed=seed, matching=False, refit=False,
                       horizons=Horizons(windows=(100,), chains=100, length=4000, burn_in=200))
        assert result.verdict == "yes", result.summary()
        assert [w.name for w in result.windows] == ["T=30 from h0", "stationary T=30", "stationary T=100"]


def test_tiny_n_is_inconclusive_not_no():
    hmm = preset("linear3").hmm
    result = compare(hmm, hmm.sample(40, 30, seed=4)[0], seed=0, refit=False, matching=False)
    assert result.verdict == "inconclusive", result.summary()
    assert not result.emulates and "undecided" in {c.status for c in result.checks}


@pytest.mark.parametrize("name, shift, length", [("linear3", 0.05, 30), ("linear3", -0.05, 100),
                                                 ("fully3", -0.05, 30), ("linear5", 0.1, 100)])
def test_shifted_stay_probabilities_are_rejected(name, shift, length, test_seed):
    """Power: a ±0.05 change of the stay probabilities fails at N = 5000 (log-likelihood and volatility)."""
    hmm = preset(name).hmm
    candidate, _ = hmm.with_stay_shift(shift).sample(5000, length, seed=stream(test_seed, "candidate"))
    result = compare(hmm, candidate, seed=stream(test_seed, "reference"), refit=False, matching=False)
    assert result.verdict == "no", result.summary()
    assert _status(result)[f"T={length}: log-likelihood per step (gap)"] == "fail"


def test_a_different_hmm_does_not_emulate(test_seed):
    truth = preset("linear2").hmm
    impostor, _ = preset("linear3").hmm.sample(5000, 30, seed=stream(test_seed, "candidate"))
    result = compare(truth, impostor, seed=stream(test_seed, "reference"), refit=False, matching=False)
    assert result.verdict == "no"
    status = _status(result)
    assert status["T=30: output transition matrix"] == "fail" and status["T=30: volatility (relative)"] == "fail"
    assert "emulates: no" in result.summary()


def test_transition_standard_error_matches_replicates():
    """The ratio-estimator standard error of P(o_t | o_t-1) equals the spread over 200 independent
    replicate sets (sequences are dependent inside, so a binomial error over pairs would be too small)."""
    hmm = preset("linear2").hmm
    estimates, predicted = [], []
    for seed in range(200):
        p, var = _transition_estimate(hmm.sample(200, 50, seed=seed)[0], 3)
        estimates.append(p)
        predicted.append(np.sqrt(var))
    spread, mean_se = np.std(estimates, axis=0), np.mean(predicted, axis=0)
    np.testing.assert_allclose(mean_se[[0, 2]][:, [0, 2]], spread[[0, 2]][:, [0, 2]], rtol=0.15)


def test_windows_are_cut_evenly_from_every_chain():
    chains = np.arange(4 * 1000).reshape(4, 1000)  # unique values: position identifies chain and step
    windows = _cut_windows(chains, 10, 50)
    assert windows.shape == (10, 50)
    assert set(windows[:4, 0] // 1000) == {0, 1, 2, 3}  # the first windows come from every chain
    assert np.all(np.diff(windows, axis=1) == 1)  # contiguous steps
    with pytest.raises(ValueError, match="fewer than"):
        _cut_windows(chains, 100, 50)


def test_diverging_network_fails_with_the_boundedness_reason():
    hmm = preset("linear3").hmm
    from hmmrnn.zoo import ZOO_DIR

    run = hmmrnn.load_run(ZOO_DIR / "linear3")
    model = run.model
    with torch.no_grad():
        # spectral radius 3: the relu gating keeps this network bounded up to a radius of about 2
        model.w_rec *= 3.0 / torch.linalg.eigvals(model.w_rec).abs().max()
    result = judge(model, hmm, n=300, seq_len=30, seed=0, matching=False, refit=False, horizons=SHORT)
    assert result.verdict == "no"
    bounded = result.long_run_checks[0]
    assert bounded.status == "fail" and "diverges" in bounded.detail
    assert [w.name for w in result.windows] == ["T=30 from h0"]  # no stationary window from a diverging run
    assert "the network diverges" in result.summary()


def test_hand_built_stationary_network_passes_every_horizon():
    """W_in = I, W_rec = 0, W_out = 2 I on 3 units: symbols are i.i.d. and, by the permutation symmetry,
    uniform, i.e. a one-state HMM with uniform emissions, from h_0 = 0 and at every horizon."""
    model = NoiseRNN(3, 3, 3, seed=0)
    with torch.no_grad():
        model.w_in.copy_(torch.eye(3))
        model.w_rec.zero_()
        model.w_out.copy_(2 * torch.eye(3))
    hmm = HMM(np.ones((1, 1)), np.full((1, 3), 1 / 3), name="uniform")
    result = judge(model, hmm, n=2000, seq_len=20, seed=1, refit=False, horizons=SHORT)
    assert result.verdict == "yes", result.summary()
    assert [w.name for w in result.windows] == ["T=20 from h0", "stationary T=20", "stationary T=60"]
    assert result.long_run["growth"] == pytest.approx(1.0, abs=0.1)


def test_thresholds_are_configurable_and_recorded():
    hmm = preset("linear2").hmm
    impostor, _ = preset("linear3").hmm.sample(2000, 30, seed=1)
    lenient = Thresholds(frequency_tolerance=1.0, transition_tolerance=1.0, volatility_tolerance=10.0,
                         loglik_tolerance=10.0, distance_tolerance=100.0)
    # the impostor's own spread makes three checks too coarse to decide at N = 2000 ...
    assert compare(hmm, impostor, seed=0, thresholds=lenient, refit=False).verdict == "inconclusive"
    # ... unless the resolutions are loosened too
    lenient = Thresholds(**{**lenient.__dict__, "volatility_resolution": 1.0, "loglik_resolution": 1.0,
                            "distance_resolution": 1.0})
    result = compare(hmm, impostor, seed=0, thresholds=lenient, refit=False)
    assert result.verdict == "yes"
    assert result.to_dict()["thresholds"]["loglik_tolerance"] == 10.0
    assert all(c.tolerance in (1.0, 10.0, 100.0) for c in result.checks)
    with pytest.raises(hmmrnn.ConfigError, match="alpha"):
        Thresholds(alpha=1.5)
    with pytest.raises(hmmrnn.ConfigError, match="loglik_tolerance"):
        Thresholds(loglik_tolerance=float("nan"))
    with pytest.raises(hmmrnn.ConfigError, match="twice the burn-in"):
        Horizons(length=100, burn_in=100)


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
    assert result.metrics["transition_matrix"]["undefined_rows"] == [1]
    assert _status(result)["T=50: output transition matrix"] == "fail"
    assert np.isfinite(result.metrics["log_likelihood"]["candidate_per_step"])


def test_evaluate_cli_writes_metrics_and_figures(cli, tmp_path):
    out = tmp_path / "run"
    flags = [f for f in TINY_FLAGS if f != "--no-evaluate"]
    code, stdout, err = cli("train", "--preset", "linear2", *flags, "--epochs", "2", "--out", out, "-q",
                            "--eval-n", "300")
    assert code == 0, err
    assert "emulates:" in stdout and (out / "metrics.json").is_file()  # training evaluates at its end
    code, stdout, err = cli("evaluate", out, "--n", "400", "--seed", "3", "--loglik-tolerance", "0.5",
                            "--no-refit", "--windows", "40", "--horizon", "1000", "--burn-in", "100",
                            "--chains", "20")
    assert code == 0, err
    assert "window 'stationary T=40'" in stdout and "bounded long run" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 400 and metrics["seed"] == 3 and metrics["seq_len"] == 20
    assert metrics["thresholds"]["loglik_tolerance"] == 0.5 and "refit" not in metrics
    assert metrics["verdict"] in ("yes", "no", "inconclusive") and metrics["emulates"] is False
    assert set(metrics["windows"]) == {"T=20 from h0", "stationary T=20", "stationary T=40"}
    assert metrics["long_run"]["chains"] == 20 and metrics["long_run"]["length"] >= 1000
    for name in ("transitions", "frequencies", "volatility", "distances", "dwell_times", "horizons"):
        assert (out / "figures" / f"evaluation_{name}.png").is_file(), name
    # the same seed gives the same numbers
    first = metrics["windows"]["stationary T=40"]["log_likelihood"]["gap"]
    cli("evaluate", out, "--n", "400", "--seed", "3", "--no-refit", "--windows", "40", "--horizon", "1000",
        "--burn-in", "100", "--chains", "20")
    again = json.loads((out / "metrics.json").read_text())
    assert again["windows"]["stationary T=40"]["log_likelihood"]["gap"] == first
    code, stdout, err = cli("evaluate", out, "--n", "300", "--no-refit", "--no-matching", "--no-long-run")
    assert code == 0 and list(json.loads((out / "metrics.json").read_text())["windows"]) == ["T=20 from h0"]


def test_evaluate_cli_bad_input(cli, tmp_path):
    code, _, err = cli("evaluate", tmp_path / "missing")
    assert code == 1 and err.startswith("error: run folder not found")
    code, _, err = cli("evaluate", tmp_path, "--n", "1")
    assert code == 1 and "--n must be at least 2" in err
    for flags, message in [(["--alpha", "0"], "alpha must lie in (0, 1)"),
                           (["--loglik-tolerance", "-1"], "loglik_tolerance must be a finite number"),
                           (["--windows", "1"], "window lengths must be >= 2"),
                           (["--horizon", "10", "--burn-in", "10"], "twice the burn-in")]:
        code, _, err = cli("evaluate", tmp_path, *flags)
        assert code == 1 and message in err and err.count("\n") == 1, (flags, err)


def test_evaluate_api_on_a_run(tmp_path):
    run = hmmrnn.train("linear2", out=tmp_path / "r", epochs=1, seed=0, progress=False, hidden=8, noise_dim=3,
                       num_seq=300, seq_len=15, batch_size=100, evaluate=False)
    assert not (run.path / "metrics.json").exists()
    result = hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False, horizons=SHORT)
    assert (run.path / "metrics.json").is_file() and not (run.path / "figures" / "evaluation_transitions.png").exists()
    assert result.metrics["semantics"] == "training" and result.metrics["weights"].endswith("model.safetensors")
    reference = hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False, save=False, semantics="reference",
                                horizons=SHORT)
    assert reference.metrics["semantics"] == "reference"


def test_align_states_finds_the_permutation():
    from hmmrnn.evaluation import align_states

    true = preset("linear4").hmm
    perm = [2, 0, 3, 1]
    inverse = np.argsort(perm)
    shuffled_t = true.transition[np.ix_(inverse, inverse)]
    shuffled_e = true.emission[inverse]
    found = align_states(shuffled_t, shuffled_e, true)
    np.testing.assert_array_equal(shuffled_t[np.ix_(found, found)], true.transition)
    np.testing.assert_array_equal(shuffled_e[found], true.emission)
