"""HMM builders, validation, sampling and likelihood against the paper's numbers (docs/method.md §1), hmmlearn and brute force."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from hmmrnn import HMM, HMMSpecError, PRESETS, preset
from hmmrnn.hmm import (em_step, gaussian_emissions, linear_emissions, stay_prob_transitions, target_prob_transitions,
                        triangular_emissions)

# ----------------------------------------------------------------------------- builders (docs/method.md §1.1–1.2)


def test_linear2_matrices():
    hmm = HMM.linear_chain(2)
    np.testing.assert_allclose(hmm.transition, [[0.95, 0.05], [0.05, 0.95]], atol=1e-12)
    np.testing.assert_allclose(hmm.emission, [[0.99, 0.01, 0.0], [0.0, 0.01, 0.99]], atol=1e-12)
    np.testing.assert_allclose(hmm.start, [0.5, 0.5])


@pytest.mark.parametrize("m, end_stay, interior_stay, q", [
    (3, 0.7764, 0.5528, 0.2236),
    (4, 0.6316, 0.2632, 0.3684),
    (5, 0.5271, 0.0543, 0.4729),
])
def test_target_prob_chain_numbers(m, end_stay, interior_stay, q):
    a = target_prob_transitions(m, 0.05)
    assert a[0, 0] == pytest.approx(end_stay, abs=1e-4) and a[-1, -1] == pytest.approx(end_stay, abs=1e-4)
    assert a[0, 1] == pytest.approx(q, abs=1e-4)
    for i in range(1, m - 1):
        assert a[i, i] == pytest.approx(interior_stay, abs=1e-4)
        assert a[i, i - 1] == pytest.approx(q, abs=1e-4) and a[i, i + 1] == pytest.approx(q, abs=1e-4)
    # walking straight from one end to the other in M-1 steps has probability target_prob
    assert np.prod([a[i, i + 1] for i in range(m - 1)]) == pytest.approx(0.05)
    # tridiagonal
    assert np.all(np.triu(a, 2) == 0) and np.all(np.tril(a, -2) == 0)


def test_linear_emissions_numbers():
    np.testing.assert_allclose(linear_emissions(3)[1], [0.495, 0.01, 0.495])
    np.testing.assert_allclose(linear_emissions(4), [[0.99, .01, 0], [0.66, .01, 0.33], [0.33, .01, 0.66],
                                                    [0, .01, .99]], atol=1e-12)
    b5 = linear_emissions(5)
    np.testing.assert_allclose(b5[1], [0.7425, 0.01, 0.2475])
    np.testing.assert_allclose(b5[2], [0.495, 0.01, 0.495])
    # generalisation to K != 3 keeps rows stochastic (the reference's rows are not)
    np.testing.assert_allclose(linear_emissions(3, 5).sum(axis=1), 1.0)


def test_stay_prob_fully_cyclic_triangular():
    np.testing.assert_allclose(stay_prob_transitions(3, 0.95),
                               [[0.95, 0.05, 0], [0.025, 0.95, 0.025], [0, 0.05, 0.95]])
    fully = HMM.fully_connected(3)
    np.testing.assert_allclose(fully.transition, np.where(np.eye(3) == 1, 0.95, 0.025))
    np.testing.assert_allclose(fully.emission, np.where(np.eye(3) == 1, 0.98, 0.01))
    cyc = HMM.cyclic4()
    np.testing.assert_allclose(cyc.transition, [[0.95, 0.025, 0, 0.025], [0.025, 0.95, 0.025, 0],
                                                [0, 0.025, 0.95, 0.025], [0.025, 0, 0.025, 0.95]])
    np.testing.assert_allclose(cyc.emission, [[0.9, 0.1, 0], [0.1, 0.9, 0], [0, 0.1, 0.9], [0, 0.9, 0.1]])
    with pytest.raises(HMMSpecError, match="as many states as outputs"):
        triangular_emissions(4, 3)


def test_gaussian_emissions_formula():
    m, k = 3, 3
    b = gaussian_emissions(m, k)
    centres = [0.0, 1.0, 2.0]
    for i in range(m):
        raw = [np.exp(-0.2 * (abs(j - centres[i]) / (0.1 * (k - 1))) ** 2) for j in range(k)]
        np.testing.assert_allclose(b[i], np.array(raw) / sum(raw))


def test_target_prob_needs_two_states():
    with pytest.raises(HMMSpecError, match="at least 2 states"):
        target_prob_transitions(1)


# ----------------------------------------------------------------------------- analytic statistics (docs/method.md §1.3)


@pytest.mark.parametrize("name, p00, p02, change", [
    ("linear2", 0.9405, 0.0495, 0.069),
    ("linear3", 0.7512, 0.2388, 0.256),
    ("linear4", 0.7092, 0.2808, 0.298),
    ("linear5", 0.6957, 0.2943, 0.311),
])
def test_linear_output_statistics(name, p00, p02, change):
    hmm = preset(name).hmm
    p = hmm.output_transition_matrix()
    assert p[0, 0] == pytest.approx(p00, abs=6e-5)
    assert p[0, 2] == pytest.approx(p02, abs=6e-5)
    assert p[0, 1] == pytest.approx(0.01, abs=1e-12)
    np.testing.assert_allclose(p[1], [0.495, 0.01, 0.495], atol=6e-5)
    assert hmm.change_probability() == pytest.approx(change, abs=6e-4)
    np.testing.assert_allclose(hmm.output_frequencies(), [0.495, 0.01, 0.495], atol=1e-9)


def test_cyclic_and_fully_output_statistics():
    cyc = HMM.cyclic4()
    p = cyc.output_transition_matrix()
    np.testing.assert_allclose(p[0], [0.7835, 0.212, 0.0045], atol=6e-4)
    np.testing.assert_allclose(p[1], [0.106, 0.788, 0.106], atol=6e-4)
    assert cyc.change_probability() == pytest.approx(0.214, abs=6e-4)
    np.testing.assert_allclose(cyc.output_frequencies(), [0.25, 0.5, 0.25], atol=1e-9)
    fully = HMM.fully_connected(3)
    p = fully.output_transition_matrix()
    np.testing.assert_allclose(np.diag(p), 0.9136, atol=6e-5)
    np.testing.assert_allclose(p[~np.eye(3, dtype=bool)], 0.0432, atol=6e-5)
    assert fully.change_probability() == pytest.approx(0.086, abs=6e-4)


def test_output_statistics_brute_force_on_random_hmm():
    """P(o_{t-1}, o_t) by enumerating hidden-state pairs under the stationary start."""
    rng = np.random.default_rng(3)
    a, b = rng.dirichlet(np.ones(3), 3), rng.dirichlet(np.ones(4), 3)
    hmm = HMM(a, b)
    pi = hmm.stationary_distribution()
    np.testing.assert_allclose(pi @ a, pi, atol=1e-12)
    joint = np.zeros((4, 4))
    for i, j, k, l in itertools.product(range(3), range(3), range(4), range(4)):
        joint[k, l] += pi[i] * b[i, k] * a[i, j] * b[j, l]
    np.testing.assert_allclose(hmm.output_transition_matrix(), joint / joint.sum(1, keepdims=True), atol=1e-12)
    assert hmm.change_probability() == pytest.approx(1 - np.trace(joint), abs=1e-12)


# ----------------------------------------------------------------------------- sampling


def test_sample_shapes_and_seed():
    hmm = preset("linear3").hmm
    obs, states = hmm.sample(50, 30, seed=7)
    assert obs.shape == states.shape == (50, 30) and obs.dtype == np.int64
    obs2, states2 = hmm.sample(50, 30, seed=7)
    np.testing.assert_array_equal(obs, obs2)
    np.testing.assert_array_equal(states, states2)
    assert not np.array_equal(obs, hmm.sample(50, 30, seed=8)[0])


def _within_sampling_error(counts: np.ndarray, probs: np.ndarray, z: float = 5.0) -> None:
    """Each row of multinomial counts matches its probabilities within z standard errors."""
    n = counts.sum(axis=1, keepdims=True)
    expected = n * probs
    se = np.sqrt(n * probs * (1 - probs)) + 1e-9
    assert np.all(np.abs(counts - expected) <= z * se + 1e-9), (counts / n, probs)


@pytest.mark.parametrize("name", list(PRESETS))
def test_sample_statistics_match_matrices(name, test_seed):
    hmm = preset(name).hmm
    obs, states = hmm.sample(20_000, 40, seed=test_seed)
    m, k = hmm.n_states, hmm.n_outputs
    trans = np.zeros((m, m))
    np.add.at(trans, (states[:, :-1].ravel(), states[:, 1:].ravel()), 1)
    _within_sampling_error(trans, hmm.transition)
    emis = np.zeros((m, k))
    np.add.at(emis, (states.ravel(), obs.ravel()), 1)
    _within_sampling_error(emis, hmm.emission)
    start = np.bincount(states[:, 0], minlength=m)[None, :]
    _within_sampling_error(start, hmm.start[None, :])
    # zero-probability events never happen
    assert np.all(trans[hmm.transition == 0] == 0) and np.all(emis[hmm.emission == 0] == 0)
    # output statistics (the start is stationary for every preset)
    out = np.zeros((k, k))
    np.add.at(out, (obs[:, :-1].ravel(), obs[:, 1:].ravel()), 1)
    _within_sampling_error(out, hmm.output_transition_matrix())


# ----------------------------------------------------------------------------- likelihood


def test_log_likelihood_matches_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(0)
    for m, k in [(2, 3), (3, 3), (4, 2), (5, 4)]:
        hmm = HMM(rng.dirichlet(np.ones(m), m), rng.dirichlet(np.ones(k), m), rng.dirichlet(np.ones(m)))
        ref = hmmlearn.CategoricalHMM(n_components=m, n_features=k)
        ref.startprob_, ref.transmat_, ref.emissionprob_ = hmm.start, hmm.transition, hmm.emission
        obs, _ = hmm.sample(20, 60, seed=m)
        ours = hmm.log_likelihood(obs)
        theirs = np.array([ref.score(seq[:, None]) for seq in obs])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_log_likelihood_matches_hmmlearn_with_zeros():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    for name in PRESETS:
        hmm = preset(name).hmm
        ref = hmmlearn.CategoricalHMM(n_components=hmm.n_states, n_features=hmm.n_outputs)
        ref.startprob_, ref.transmat_, ref.emissionprob_ = hmm.start, hmm.transition, hmm.emission
        obs, _ = hmm.sample(10, 100, seed=2)
        np.testing.assert_allclose(hmm.log_likelihood(obs), [ref.score(s[:, None]) for s in obs], atol=1e-6)


def test_log_likelihood_brute_force():
    rng = np.random.default_rng(5)
    hmm = HMM(rng.dirichlet(np.ones(3), 3), rng.dirichlet(np.ones(2), 3), rng.dirichlet(np.ones(3)))
    seqs = np.array(list(itertools.product(range(2), repeat=4)))
    total = 0.0
    for seq in seqs:
        p = sum(hmm.start[s[0]] * hmm.emission[s[0], seq[0]]
                * np.prod([hmm.transition[s[t - 1], s[t]] * hmm.emission[s[t], seq[t]] for t in range(1, 4)])
                for s in itertools.product(range(3), repeat=4))
        assert hmm.log_likelihood(seq) == pytest.approx(np.log(p), abs=1e-12)
        total += p
    assert total == pytest.approx(1.0)


def test_log_likelihood_impossible_and_long_sequences():
    hmm = HMM.linear_chain(2)
    # symbol 0 then symbol 2 at the next step needs a state switch: possible; 0 and 2 at once is not
    assert np.isfinite(hmm.log_likelihood(np.array([0, 2])))
    impossible = HMM([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    assert impossible.log_likelihood(np.array([0, 1])) == -np.inf
    obs, _ = hmm.sample(3, 5000, seed=0)  # long enough to underflow in probability space
    ll = hmm.log_likelihood(obs)
    assert np.all(np.isfinite(ll)) and np.all(ll < -100)
    with pytest.raises(ValueError, match="symbols must lie in"):
        hmm.log_likelihood(np.array([[0, 3]]))


# ----------------------------------------------------------------------------- validation and files


@pytest.mark.parametrize("transition, emission, start, message", [
    ([[0.9, 0.2], [0.5, 0.5]], [[1, 0], [0, 1]], None, r"transition matrix row 0 sums to 1\.1"),
    ([[0.5, 0.5], [0.5, 0.5]], [[1, 0], [0.3, 0.6]], None, r"emission matrix row 1 sums to 0\.9"),
    ([[1.5, -0.5], [0.5, 0.5]], [[1, 0], [0, 1]], None, r"transition matrix row 0 has a negative entry"),
    ([[0.5, 0.5], [0.5, 0.5]], [[1, 0], [0, 1], [1, 0]], None, r"emission matrix must have shape \(M=2"),
    ([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], [[1, 0], [0, 1]], None, r"transition matrix must be square"),
    ([[0.5, 0.5], [0.5, 0.5]], [[1, 0], [0, 1]], [0.5, 0.25], r"start distribution sums to 0\.75"),
    ([[0.5, 0.5], [0.5, np.nan]], [[1, 0], [0, 1]], None, r"transition matrix contains NaN"),
    ([[0.5, 0.5], [0.5, "x"]], [[1, 0], [0, 1]], None, r"transition matrix is not a numeric array"),
])
def test_validation_names_matrix_and_row(transition, emission, start, message):
    with pytest.raises(HMMSpecError, match=message):
        HMM(transition, emission, start)


def test_roundoff_within_tolerance_is_accepted():
    HMM([[0.5, 0.5 + 5e-7], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]])


def test_from_file_json_and_toml(tmp_path):
    spec = {"name": "mine", "transition": [[0.9, 0.1], [0.2, 0.8]], "emission": [[0.7, 0.3], [0.1, 0.9]]}
    (tmp_path / "h.json").write_text(json.dumps(spec))
    (tmp_path / "h.toml").write_text('name = "mine"\ntransition = [[0.9, 0.1], [0.2, 0.8]]\n'
                                     'emission = [[0.7, 0.3], [0.1, 0.9]]\n')
    for path in (tmp_path / "h.json", tmp_path / "h.toml"):
        hmm = HMM.from_file(path)
        assert hmm.name == "mine"
        np.testing.assert_allclose(hmm.transition, spec["transition"])
        np.testing.assert_allclose(hmm.start, [0.5, 0.5])
    # builder spec with an emission override
    (tmp_path / "b.toml").write_text('n_states = 3\ntopology = "fully"\nemissions = "triangular"\n'
                                     'stay_prob = 0.9\n')
    built = HMM.from_file(tmp_path / "b.toml")
    np.testing.assert_allclose(np.diag(built.transition), 0.9)
    # round trip
    again = HMM.from_dict(json.loads(json.dumps(built.to_dict())))
    np.testing.assert_array_equal(again.transition, built.transition)
    np.testing.assert_array_equal(again.emission, built.emission)


@pytest.mark.parametrize("name, text, message", [
    ("bad.json", "{not json", r"cannot parse HMM file"),
    ("bad.toml", "transition = [[", r"cannot parse HMM file"),
    ("rows.json", '{"transition": [[0.5, 0.4], [0.5, 0.5]], "emission": [[1, 0], [0, 1]]}',
     r"rows\.json: transition matrix row 0 sums to 0\.9"),
    ("keys.json", '{"transitions": [[1]]}', r"unknown HMM spec key"),
    ("h.yaml", "a: 1", r"must end in \.json or \.toml"),
])
def test_bad_files(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(HMMSpecError, match=message):
        HMM.from_file(tmp_path / name)
    with pytest.raises(HMMSpecError, match="not found"):
        HMM.from_file(tmp_path / "missing.json")


def test_stay_shift_moves_the_diagonal_and_keeps_rows_stochastic():
    hmm = preset("linear3").hmm
    shifted = hmm.with_stay_shift(-0.05)
    np.testing.assert_allclose(np.diag(shifted.transition), np.diag(hmm.transition) - 0.05)
    np.testing.assert_allclose(shifted.transition.sum(axis=1), 1.0)
    off = ~np.eye(3, dtype=bool)
    ratio = shifted.transition[0, 1] / hmm.transition[0, 1]  # the moves are rescaled, not shifted
    assert ratio == pytest.approx((1 - np.diag(shifted.transition)[0]) / (1 - hmm.transition[0, 0]))
    assert (shifted.transition[off] == 0).sum() == (hmm.transition[off] == 0).sum()
    with pytest.raises(HMMSpecError, match="leaves"):
        preset("fully3").hmm.with_stay_shift(0.1)


# ----------------------------------------------------------------------------- EM (HMM.fit)



def test_em_step_equals_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(4)
    for m, k in [(2, 3), (3, 3), (4, 2)]:
        obs, _ = HMM(rng.dirichlet(np.ones(m), m), rng.dirichlet(np.ones(k), m)).sample(150, 25, seed=m)
        start, trans, emis = rng.dirichlet(np.ones(m)), rng.dirichlet(np.ones(m), m), rng.dirichlet(np.ones(k), m)
        ours = em_step(obs, start, trans, emis)
        ref = hmmlearn.CategoricalHMM(n_components=m, n_features=k, n_iter=1, init_params="", params="ste")
        ref.startprob_, ref.transmat_, ref.emissionprob_ = start, trans, emis
        before = ref.score(obs.reshape(-1, 1), [25] * 150)
        ref.fit(obs.reshape(-1, 1), [25] * 150)
        np.testing.assert_allclose(ours[0], ref.startprob_, atol=1e-10)
        np.testing.assert_allclose(ours[1], ref.transmat_, atol=1e-10)
        np.testing.assert_allclose(ours[2], ref.emissionprob_, atol=1e-10)
        assert ours[3] == pytest.approx(before, abs=1e-6)


def test_em_recovers_two_state_hmm():
    from hmmrnn.evaluation import align_states

    true = preset("linear2").hmm
    obs, _ = true.sample(2000, 100, seed=5)
    fitted, ll = HMM.fit(obs, 2, 3, seed=0, restarts=3)
    perm = align_states(fitted.transition, fitted.emission, true)
    assert np.abs(fitted.transition[np.ix_(perm, perm)] - true.transition).max() < 0.02
    assert np.abs(fitted.emission[perm] - true.emission).max() < 0.02
    assert ll >= true.log_likelihood(obs).sum() - 1e-6 * obs.size  # EM reaches at least the truth's fit
