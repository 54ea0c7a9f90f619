"""State-space analyses: hand-built networks with known answers, finite differences, homogeneity,
end to end on a tiny trained model, reproducibility and bad input."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

import hmmrnn
from hmmrnn.errors import NothingFound
from hmmrnn._seeds import stream
from hmmrnn.reproduce import QUICK_SETTINGS
from hmmrnn import NoiseRNN
from hmmrnn.analysis import (ANALYSES, classify, fixed_points, input_free, jacobian_spectra,
                             variance_contours)

from conftest import TINY


def _network(w_rec, w_in=None, w_out=None) -> NoiseRNN:
    w_rec = torch.tensor(w_rec, dtype=torch.float32)
    h = w_rec.shape[0]
    w_in = torch.eye(h) if w_in is None else torch.tensor(w_in, dtype=torch.float32)
    model = NoiseRNN(h, w_in.shape[1], 3, seed=0)
    with torch.no_grad():
        model.w_rec.copy_(w_rec)
        model.w_in.copy_(w_in)
        if w_out is not None:
            model.w_out.copy_(torch.tensor(w_out, dtype=torch.float32))
    return model


def _grid_starts(low: float = 0.2, high: float = 2.0, n: int = 7) -> np.ndarray:
    a = np.linspace(low, high, n)
    return np.array([[x, y] for x in a for y in a], dtype=np.float32)


def test_jacobian_matches_central_finite_differences():
    gen = torch.Generator().manual_seed(0)
    model = NoiseRNN(12, 5, 3, seed=1).double()
    h = torch.rand(4, 12, generator=gen, dtype=torch.float64)
    x = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    jac = model.jacobian(h, x).detach()
    eps = 1e-6
    for i in range(12):
        e = torch.zeros(12, dtype=torch.float64)
        e[i] = eps
        numeric = (model.step(h + e, x) - model.step(h - e, x)).detach() / (2 * eps)
        torch.testing.assert_close(jac[:, :, i], numeric, atol=1e-8, rtol=1e-6)
    # input-free map: x = None
    torch.testing.assert_close(model.jacobian(h).detach(),
                               (h @ model.w_rec.T > 0).double().unsqueeze(-1) * model.w_rec.detach())


def test_stable_spiral_under_constant_input_is_found_and_classified():
    # h* = (1, 1) with both units active: h* = W h* + b  =>  b = (I - W) h* = (0.9, 0.1); eigs 0.5 ± 0.4i
    model = _network([[0.5, -0.4], [0.4, 0.5]])
    result = fixed_points(model, constant_input=np.array([0.9, 0.1]), initial_states=_grid_starts(), orbit_steps=500,
                               shown=100)
    assert len(result.points) == 1, result.points
    point = result.points[0]
    assert point["kind"] == "fixed point" and point["stability"] == "stable spiral"
    np.testing.assert_allclose(point["state"], [1, 1], atol=1e-5)
    eig = np.asarray(point["eigenvalues"])
    np.testing.assert_allclose(sorted(eig[:, 1]), [-0.4, 0.4], atol=1e-6)
    np.testing.assert_allclose(eig[:, 0], [0.5, 0.5], atol=1e-6)
    assert point["count"] == len(_grid_starts()) - result.outliers_dropped


def test_saddle_under_constant_input_is_found_and_classified():
    # W = [[0.5, -1], [-1, 0.5]]: eigenvalues -0.5 along (1, 1) and 1.5 along (1, -1); h* = (1, 1)
    # needs b = (I - W) h* = (1.5, 1.5). Under noise alone the orbit stays bounded (mutual inhibition).
    model = _network([[0.5, -1.0], [-1.0, 0.5]])
    result = fixed_points(model, constant_input=np.array([1.5, 1.5]), initial_states=_grid_starts(0.6, 1.4),
                               orbit_steps=500, shown=100)
    saddles = [p for p in result.points if p["kind"] == "fixed point" and p["stability"] == "saddle"]
    assert len(saddles) == 1, result.points
    np.testing.assert_allclose(saddles[0]["state"], [1, 1], atol=1e-5)
    np.testing.assert_allclose(sorted(np.asarray(saddles[0]["eigenvalues"])[:, 0]), [-0.5, 1.5], atol=1e-6)


def test_a_diverging_orbit_is_a_clear_error():
    model = _network([[1.5, 0.0], [0.0, 0.5]])
    with pytest.raises(hmmrnn.HmmrnnError, match="noisy orbit diverges"):
        fixed_points(model, orbit_steps=2000, shown=100)
    # every analysis that fits a PCA to its own orbit says the same (once failed inside scikit-learn)
    from hmmrnn.analysis import kick_neurons
    with pytest.raises(hmmrnn.HmmrnnError, match="noisy orbit diverges"):
        kick_neurons(model, steps=2000)


def test_line_attractor_is_reported_as_one_ray_and_the_origin_does_not_attract():
    # no input, no biases: W (1, 1) = (1, 1), other eigenvalue 0.5 -> a ray of fixed points along (1, 1)
    model = _network([[0.75, 0.25], [0.25, 0.75]])
    result = fixed_points(model, initial_states=_grid_starts(), orbit_steps=500, shown=100)
    rays = [p for p in result.points if p["kind"] == "fixed ray"]
    assert len(rays) == 1, result.points  # one direction, not one point per start
    np.testing.assert_allclose(rays[0]["state"], [2 ** -0.5, 2 ** -0.5], atol=1e-5)
    assert rays[0]["stability"] == "attracting ray" and rays[0]["speed"] < 1e-6
    assert not result.origin["attracting"] and abs(result.origin["max_growth_exponent"]) < 1e-3


def test_contracting_network_has_only_the_origin():
    model = _network([[0.3, 0.1], [-0.2, 0.4]])
    result = fixed_points(model, initial_states=_grid_starts(), orbit_steps=500, shown=100)
    assert result.points == [] and result.origin["attracting"]
    assert result.origin["max_growth_exponent"] < np.log(0.6)
    dynamics = input_free(model, n_initial=20, steps=200, pca_steps=500)
    assert dynamics.converged and dynamics.final_norms.max() < 1e-10


def test_classify_names():
    assert classify(np.array([0.5, 0.2])) == "stable node"
    assert classify(np.array([1.2 + 0.3j, 1.2 - 0.3j])) == "unstable spiral"
    assert classify(np.array([1.5, 0.5])) == "saddle"
    assert classify(np.array([1.0, 1.3]), on_ray=True) == "repelling ray"
    assert classify(np.array([1.0, 0.9, 1.2]), on_ray=True) == "saddle ray"


def test_variance_clouds_are_exact_rescalings():
    model = NoiseRNN(20, 6, 3, seed=3)
    result = variance_contours(model, scales=(0.1, 1, 3), steps=600, pca_steps=800)
    assert result.homogeneity_error < 1e-5
    std = np.asarray(result.cloud_std)
    np.testing.assert_allclose(std / std[1], np.array([[0.1, 0.1], [1, 1], [3, 3]]), rtol=1e-4)


def test_jacobian_spectra_equal_a_one_state_at_a_time_loop():
    from hmmrnn.analysis import mobius
    from hmmrnn.analysis._common import simulate

    model = NoiseRNN(10, 3, 3, seed=5)
    with torch.no_grad():
        model.w_rec.mul_(2.5)  # some eigenvalues leave the unit circle; the orbit stays bounded
    result = jacobian_spectra(model, n_states=30, burn_in=5, pca_steps=200, seed=2)
    states, noise = simulate(model, 36, seed=stream(2, "jacobian_spectra", "orbit"), return_noise=True)
    unstable, critical = [], []
    for t in range(5, 35):  # J of h_{t+1} = F(h_t, x_{t+1}) at h_t
        pre = model.w_rec.detach().numpy() @ states[0, t].numpy() + model.w_in.detach().numpy() @ noise[0, t + 1].numpy()
        eig = np.linalg.eigvals((pre > 0)[:, None] * model.w_rec.detach().numpy().astype(np.float64))
        m = mobius(eig)
        unstable.append(int((np.abs(eig) > 1).sum()))
        critical.append(int(((np.abs(m.real) < 0.1) & (m.imag > 0.05)).sum()))
    assert result.unstable_counts.tolist() == unstable and result.critical_pairs.tolist() == critical
    assert sum(unstable) > 0
    # the Möbius criterion: a pair at radius 1.02 and angle 60 degrees is critical, its conjugate counted once
    theta = np.pi / 3
    pair = 1.02 * np.exp(1j * np.array([theta, -theta]))
    m = mobius(pair)
    assert ((np.abs(m.real) < 0.1) & (m.imag > 0.05)).sum() == 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "run"
    return hmmrnn.train("linear3", out=out, epochs=3, seed=0, progress=False, checkpoint_every=1, **TINY)


# the reproduction's quick settings, and small ones for the analyses it does not run
_FAST = {**QUICK_SETTINGS, "variance_contours": dict(steps=500, pca_steps=2000),
         "jacobian_spectra": dict(n_states=100, pca_steps=2000),
         "subspace_residency": dict(steps=3000, min_run=20, max_states=100, n_samples=4, max_steps=20),
         "noise_drift": dict(n_points=5, trials=4), "stochastic_resonance": dict(scales=(0.5, 1.0, 2.0), n=200),
         "transition_points": dict(steps=600, min_time=50, trials=10),
         "noise_sensitivity": dict(horizon=3, n_trajectories=10)}


def test_every_analysis_runs_end_to_end_and_is_reproducible(tiny_run, tmp_path):
    from hmmrnn import plots

    for name, entry in ANALYSES.items():
        try:
            first = entry.compute(tiny_run, seed=4, **_FAST[name])
        except NothingFound as exc:
            # an untrained network may have no deterministic transition and no kick neurons: the
            # analyses that need them say so; every other analysis must find its object
            assert name in ("transition_points", "noise_sensitivity", "connectivity", "gain_sweep"), (name, exc)
            assert "kick" in str(exc) or "no " in str(exc), (name, exc)
            continue
        second = entry.compute(tiny_run.path, seed=4, **_FAST[name])
        a, b = first.save(tmp_path / f"{name}_a.json"), second.save(tmp_path / f"{name}_b.json")
        assert a.read_bytes() == b.read_bytes(), name
        assert json.loads(a.read_text())["analysis"] == name
        assert isinstance(first.summary(), str) and first.summary()
        paths = plots.save_figure(entry.figure(first), tmp_path / name)
        assert all(p.stat().st_size > 1000 for p in paths)


def test_analyze_cli_writes_json_and_figures(tiny_run, cli, monkeypatch):
    import hmmrnn.analysis as analysis

    # shrink the defaults so the CLI path runs in seconds
    for name, entry in list(analysis.ANALYSES.items()):
        fast = _FAST[name]
        monkeypatch.setitem(analysis.ANALYSES, name, dataclasses.replace(entry, compute=functools.partial(
            entry.compute, **fast)))
    code, out, err = cli("analyze", tiny_run.path, "--only", "input_free,readout_alignment", "-q")
    assert code == 0, err
    assert "input_free" in out and "readout_alignment" in out and "readout projection" in out
    for name in ("input_free", "readout_alignment"):
        assert (tiny_run.path / "analysis" / f"{name}.json").is_file()
        assert (tiny_run.path / "analysis" / f"{name}.png").is_file()
    code, out, err = cli("analyze", tiny_run.path, "--only", "nope")
    assert code == 1 and "unknown analysis nope" in err


def test_analyze_with_missing_or_corrupt_weights_is_one_line_error(tiny_run, tmp_path, cli):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run.path, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    code, out, err = cli("analyze", broken)
    assert code == 1 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    (broken / "model.safetensors").unlink()
    code, out, err = cli("analyze", broken)
    assert code == 1 and "model.safetensors" in err and len(err.strip().splitlines()) == 1


def _slow_residency(model, states, n_samples, max_steps, seed, block=8, count_switch_step=False):
    """One rollout at a time, one step at a time: the reference algorithm of docs/method.md §5.8 (the
    noise drawn as the batched version draws it: per block of steps, one row per rollout); like the
    paper's code it stops before looking at the switching step's increment unless ``count_switch_step``."""
    gen = torch.Generator().manual_seed(seed)
    n = len(states)
    blocks = [torch.randn(n * n_samples, min(block, max_steps - t), model.noise_dim, generator=gen)
              for t in range(0, max_steps, block)]
    noises = torch.cat(blocks, dim=1).transpose(0, 1)  # (max_steps, rollouts, d)
    rt, sc, switched = np.zeros(n), np.zeros(n), np.zeros(n)
    with torch.no_grad():
        for i in range(n):
            target = int(model.readout(states[i]).argmax())
            for k in range(n_samples):
                r = i * n_samples + k
                h, last, last_sign, changes = states[i], float(model.readout(states[i])[target]), 0.0, 0
                for step in range(1, max_steps + 1):
                    h = model.step(h, noises[step - 1][r])
                    logits = model.readout(h)
                    sign = float(np.sign(float(logits[target]) - last))
                    if int(logits.argmax()) != target:
                        switched[i] += 1 / n_samples
                        changes += count_switch_step and step > 1 and sign != 0 and sign != last_sign
                        break
                    if step > 1 and sign != 0 and sign != last_sign:
                        changes += 1
                    last, last_sign = float(logits[target]), sign
                    if step == max_steps:
                        break
                rt[i] += step / n_samples
                sc[i] += changes / n_samples
    return rt, sc, switched


def test_batched_residency_equals_a_slow_loop():
    from hmmrnn.analysis._regions import rollout_residency
    from hmmrnn.analysis._common import simulate

    model = NoiseRNN(12, 4, 3, seed=2)
    states = simulate(model, 6, seed=1)[0]
    sign_changes = {}
    for block, at_switch in ((8, False), (3, False), (8, True), (3, True)):  # block boundaries inside rollouts
        fast_rt, fast_sc, fast_switched = rollout_residency(model, states, n_samples=5, max_steps=15, seed=3,
                                                            block=block, count_switch_step=at_switch)
        slow_rt, slow_sc, slow_switched = _slow_residency(model, states, 5, 15, 3, block=block,
                                                          count_switch_step=at_switch)
        np.testing.assert_allclose(fast_switched, slow_switched, atol=1e-6)
        np.testing.assert_allclose(fast_rt, slow_rt, atol=1e-5)
        np.testing.assert_allclose(fast_sc, slow_sc, atol=1e-5)
        sign_changes[block, at_switch] = fast_sc
    # counting the switching step adds at most one change per switched rollout, and some here
    extra = sign_changes[8, True] - sign_changes[8, False]
    assert (extra >= -1e-6).all() and (extra <= fast_switched + 1e-6).all() and extra.sum() > 0


def test_residency_groups_on_a_toy_system_with_known_dwells():
    """Two units inhibiting each other: deep inside a well the output stays (clusters, long RT),
    on the border between the wells it switches at once (transitions)."""
    from hmmrnn.analysis import residency

    model = _network([[0.9, -0.8], [-0.8, 0.9]], w_in=0.3 * np.eye(2), w_out=[[4.0, -4.0], [0.0, 0.0], [-4.0, 4.0]])
    result = residency(model, n_states=400, n_samples=10, max_steps=40, seed=0)
    deep = np.abs(result.pc[:, 0]) > np.quantile(np.abs(result.pc[:, 0]), 0.9)
    # the states furthest from the border dwell longest; the ones nearest switch soonest
    assert result.residency[deep].mean() > 3 * result.residency[~deep].min()
    assert set(np.unique(result.groups)) <= {-1, 0, 1, 2}
    rt = result.residency
    assert ((result.groups == 0) == (rt < 2)).all()
    assert ((result.groups == 1) == ((rt >= 2) & (rt <= 8))).all()
    assert ((result.groups == 2) == ((rt > 8) & (result.confidence > 0.8))).all()
    assert result.group_summary["cluster"]["mean_residency"] > result.group_summary["transition"]["mean_residency"]


def test_subspace_residency_keeps_long_in_pair_runs_and_decomposes_them_like_the_global_version():
    from hmmrnn.analysis import subspace_residency
    from hmmrnn.analysis._common import simulate
    from hmmrnn.analysis._geometry import contiguous_runs
    from hmmrnn.analysis._regions import rollout_residency

    assert contiguous_runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)) == [(0, 2), (3, 1), (6, 3)]
    # three units inhibiting each other: one of the three outputs dominates for a while
    model = _network(0.95 * np.eye(3) - 0.3 * (1 - np.eye(3)), w_in=0.3 * np.eye(3), w_out=4 * np.eye(3))
    result = subspace_residency(model, steps=3000, min_run=30, max_states=150, n_samples=5, max_steps=20, seed=0)
    assert sum(p["n_states"] > 0 for p in result.pairs) >= 2, result.summary()
    states = simulate(model, 3000, seed=stream(0, "subspace_residency", "orbit"))[0]
    labels = model.readout(states).argmax(-1).numpy()
    for pair in result.pairs:
        if not pair["n_states"]:
            continue
        times = pair["times"]
        assert pair["n_states"] == len(times) <= 150 and (np.diff(times) > 0).all()
        inside = np.isin(labels, pair["pair"])
        long_runs = np.zeros(len(labels), dtype=bool)
        for start, length in contiguous_runs(inside):
            long_runs[start: start + length] = length > 30
        assert long_runs[times].all() and (pair["labels"] == labels[times]).all()
        rt, sc, _ = rollout_residency(model, states[times], n_samples=5, max_steps=20,
                                     seed=stream(0, "subspace_residency", "rollouts", *pair["pair"]))
        np.testing.assert_array_equal(pair["residency"], rt)
        np.testing.assert_array_equal(pair["sign_changes"], sc)
        assert ((pair["groups"] == 0) == (rt < 2)).all()
    two_outputs = NoiseRNN(4, 2, 2, seed=0)
    with pytest.raises(NothingFound, match="need 3 outputs"):
        subspace_residency(two_outputs, steps=100)


def test_second_order_drift_equals_an_explicit_matrix_recursion():
    from hmmrnn.analysis import expected_second_order

    model = NoiseRNN(7, 3, 3, seed=4)
    h0 = torch.rand(7)
    drift, first = expected_second_order(model, h0, trials=1, t0=3, tf=4, sigma=0.7, h_eps=0.05, seed=9)
    # the same draws, in the same order, through explicit D_k matrices
    gen = torch.Generator().manual_seed(9)
    w, w_in = model.w_rec.detach().double().numpy(), model.w_in.detach().double().numpy()
    h = (h0.reshape(1, -1) + (2 * torch.randn(1, 7, generator=gen) - 1) * 0.05)
    for _ in range(2):
        h = model.step(h, 0.7 * torch.randn(1, 3, generator=gen)).detach()
    s = [h[0].double().numpy()]
    for _ in range(3):
        s.append(np.maximum(w @ s[-1], 0))
    omega = (0.7 * torch.randn(4, 1, 3, generator=gen)).double().numpy()[:, 0]
    d = [np.diag((sk > 0).astype(float)) for sk in s]
    delta1 = [w_in @ omega[0]]
    for k in range(1, 4):
        delta1.append(w @ d[k - 1] @ delta1[-1] + w_in @ omega[k])
    delta2 = np.zeros(7)
    for u in range(4):
        delta2 = w @ d[u] @ delta2 + 0.5 * w @ (delta1[u] ** 2 * (s[u] > 0))
    np.testing.assert_allclose(drift, delta2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first, delta1[0], rtol=1e-5, atol=1e-6)


def test_resonance_argmax_switching_is_scale_invariant(tiny_run):
    from hmmrnn.analysis import stochastic_resonance

    result = stochastic_resonance(tiny_run, scales=(0.5, 1.0, 3.0), n=300, seed=1)
    argmax = [r["argmax_changes_per_step"] for r in result.rows]
    np.testing.assert_allclose(argmax, argmax[1], atol=2e-3)
    assert "homogeneity" in result.note and result.best_scale in (0.5, 1.0, 3.0)


def test_transition_rate_and_bifurcation_from_checkpoints(tiny_run):
    from hmmrnn.analysis import training_evolution, transition_rate

    assert transition_rate(np.array([0, 0, 2, 2, 2, 0, 0, 0, 0, 2])) == (pytest.approx((1 / 3 + 1 / 4) / 2), 3.5)
    assert transition_rate(np.array([0, 0, 0, 2])) == (0.0, 4.0)
    result = training_evolution(tiny_run, steps=300, trials=3, shown=50)
    assert result.epochs == [1, 2, 3] and result.pcs.shape == (3, 50, 2) and result.drift.shape == (3, 16)
    from hmmrnn.analysis._evolution import bifurcation_epoch

    # the rule on known curves: the first jump above 0.02 from one checkpoint to the next, not a level
    assert bifurcation_epoch([1, 11, 21, 31], [0.0, 0.01, 0.30, 0.25], 0.02) == 21
    assert bifurcation_epoch([1, 11, 21, 31], [0.5, 0.51, 0.52, 0.53], 0.02) is None
    assert bifurcation_epoch([1, 11, 21], [0.0, 0.025, 0.04], 0.02) == 11
    assert result.bifurcation_epoch == bifurcation_epoch(result.epochs, result.complex_fraction, 0.02)


def test_angle_sectors_measure_how_the_angle_gives_the_output():
    from hmmrnn.analysis._geometry import _angle_sectors, _angles

    rng = np.random.default_rng(0)
    theta = np.concatenate([rng.uniform(10, 80, 500), rng.uniform(190, 260, 500)])
    points = np.stack([np.cos(np.radians(theta)), np.sin(np.radians(theta))], axis=1) * rng.uniform(1, 5, (1000, 1))
    labels = np.repeat([0, 2], 500)
    angle = _angles(points)
    np.testing.assert_allclose(angle, theta, atol=1e-9)
    accuracy, by_output = _angle_sectors(angle, labels, 3)
    assert accuracy == 1.0 and set(by_output) == {"0", "2"}
    assert by_output["0"]["mean_deg"] == pytest.approx(45, abs=3) and by_output["2"]["mean_deg"] == pytest.approx(225, abs=3)
    assert by_output["0"]["fraction"] == 0.5
    # labels that ignore the angle: about half right
    accuracy, _ = _angle_sectors(angle, rng.permutation(labels), 3)
    assert 0.45 < accuracy < 0.75


@dataclasses.dataclass
class _ToyResult(hmmrnn.analysis.Result):
    name = "toy_norm"
    mean_norm: float
    seed: int

    def summary(self) -> str:
        return f"mean |W_rec| row norm {self.mean_norm:.4f}"


def toy_norm(run_or_model, *, seed: int = 0) -> _ToyResult:
    from hmmrnn.analysis._common import resolve

    model, _ = resolve(run_or_model)
    return _ToyResult(float(model.w_rec.norm(dim=1).mean()), seed)


def toy_follower(run_or_model, *, base=None, seed: int = 0) -> _ToyResult:
    raise AssertionError("never called: what it builds on found nothing")


def test_a_registered_toy_analysis_runs_through_analyze_and_the_report(tiny_run, cli, monkeypatch):
    """A new analysis is one function plus one registration: the CLI runs it, the report shows it."""
    import matplotlib.figure

    from hmmrnn.analysis import register
    from hmmrnn.report import write_report

    monkeypatch.setattr(hmmrnn.analysis, "ANALYSES", dict(ANALYSES))

    def figure(result):
        fig = matplotlib.figure.Figure(figsize=(3, 2))
        fig.add_subplot().bar([0], [result.mean_norm])
        return fig

    def nothing(run_or_model, *, seed: int = 0):
        raise NothingFound("the toy network has no widgets")

    register(toy_norm, figure=figure, reading="How large the recurrent rows are (a toy).")
    register(nothing, name="toy_widgets", figure=figure, reading="Widgets (a toy that finds none).")
    register(toy_follower, figure=figure, reading="Builds on the widgets.", builds_on={"base": "toy_widgets"})
    with pytest.raises(ValueError, match="already registered"):
        register(toy_norm, figure=figure, reading="again")
    with pytest.raises(ValueError, match="register 'later' first"):
        register(toy_follower, name="other", figure=figure, reading="x", builds_on={"base": "later"})

    code, out, err = cli("analyze", tiny_run.path, "--only", "toy_norm,toy_widgets,toy_follower", "-q")
    assert code == 0, err
    expected = float(tiny_run.model.w_rec.norm(dim=1).mean())
    assert "toy_norm (" in out and f"mean |W_rec| row norm {expected:.4f}" in out
    assert "toy_widgets" in out and "nothing found: the toy network has no widgets" in out
    assert "toy_follower" in out and "builds on toy_widgets, which found nothing" in out
    folder = tiny_run.path / "analysis"
    assert json.loads((folder / "toy_norm.json").read_text())["mean_norm"] == pytest.approx(expected)
    assert (folder / "toy_norm.png").stat().st_size > 1000 and not (folder / "toy_widgets.png").exists()
    page = write_report(tiny_run.path).read_text()
    assert "How large the recurrent rows are (a toy)." in page and f"{expected:.4f}" in page
    assert "nothing found: the toy network has no widgets" in page


def test_readout_alignment_on_a_network_whose_activity_plane_is_known():
    """Activity confined to span(e1, e2) (the third unit gets no input and no recurrence): the PC
    plane is that span, so a readout row's projection is the norm of its first two normalised
    entries: 1 for e1, 0 for e3, sqrt(2/3) for (1, 1, 1)."""
    from hmmrnn.analysis import readout_alignment

    model = _network([[0.5, 0.2, 0.0], [0.1, 0.4, 0.0], [0.0, 0.0, 0.0]],
                     w_in=[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], w_out=[[1, 0, 0], [0, 0, 1], [1, 1, 1]])
    result = readout_alignment(model, steps=3000, seed=1)
    np.testing.assert_allclose(result.projection, [1.0, 0.0, np.sqrt(2 / 3)], atol=1e-5)
    np.testing.assert_allclose(result.angle_deg, [0.0, 90.0, np.degrees(np.arccos(np.sqrt(2 / 3)))], atol=0.05)
    assert result.mean_projection == pytest.approx(np.mean([1.0, 0.0, np.sqrt(2 / 3)]), abs=1e-5)


def test_gain_sweep_batch_equals_one_run_per_gain_and_gain_one_is_the_intact_network():
    """Oracle: each gain's run re-done alone with NoiseRNN.step; at gain 1 every manipulation is the
    intact network, so its rate is the same for all three."""
    from types import SimpleNamespace

    from hmmrnn.analysis import gain_sweep, switch_rates
    from hmmrnn.analysis._common import generator

    model = _network(0.95 * np.eye(3) - 0.3 * (1 - np.eye(3)), w_in=0.3 * np.eye(3), w_out=4 * np.eye(3))
    kicks = SimpleNamespace(directions=[{"from": 0, "to": 1, "units": [1]}, {"from": 1, "to": 0, "units": [0]}])
    gains = (0.0, 1.0, 1.5)
    result = gain_sweep(model, kicks=kicks, gains=gains, steps=1500, spectra=False, top_k=2, control_k=1, seed=3)
    noise = torch.randn(1500, 3, generator=generator(stream(3, "gain_sweep", "noise")))
    h0 = 0.1 * (2 * torch.rand(3, generator=generator(stream(3, "gain_sweep", "start"))) - 1)
    for row in result.rows:
        units = result.unit_sets[f"{row['direction']} / {row['manipulation']}"]
        gain = torch.ones(3)
        gain[units] = row["gain"]
        where = "recurrent_gain" if row["manipulation"] == "kick" else "input_gain"
        h, states = h0.clone(), [h0]
        with torch.no_grad():
            for t in range(1500):
                h = model.step(h, noise[t], **{where: gain})
                states.append(h)
        labels = model.readout(torch.stack(states)).argmax(-1).numpy()
        assert row["rate"] == pytest.approx(switch_rates(labels, 3).get(row["direction"], 0.0), abs=1e-9)
    for direction in ("0->1", "1->0"):
        at_one = {r["rate"] for r in result.rows if r["direction"] == direction and r["gain"] == 1.0}
        assert len(at_one) == 1 and at_one.pop() > 0


def test_output_pairs_agree_with_a_direct_two_stage_pca():
    """Second method: scikit-learn's PCA applied by hand to the same orbit (global PCA of 4, then a
    PCA of 3 of each pair's in-pair states), and the longest in-pair run counted directly."""
    from sklearn.decomposition import PCA

    from hmmrnn.analysis import output_pairs
    from hmmrnn.analysis._common import generator, simulate

    model = _network(0.95 * np.eye(3) - 0.3 * (1 - np.eye(3)), w_in=0.3 * np.eye(3), w_out=4 * np.eye(3))
    result = output_pairs(model, steps=3000, min_run=30, scales=(1.0,), contour_steps=500, seed=2)
    h0 = torch.randn(1, 3, generator=generator(stream(2, "output_pairs", "start")))
    states = simulate(model, 3000, h0=h0, seed=stream(2, "output_pairs", "orbit"))[0].numpy()
    labels = states @ model.w_out.detach().numpy().T
    labels = labels.argmax(-1)
    coords = PCA(3).fit_transform(states)  # H = 3: four components are three
    for pair in result.pairs:
        inside = np.isin(labels, pair["pair"])
        assert pair["n_states"] == inside.sum() > 10
        np.testing.assert_allclose(pair["explained_variance_ratio"], PCA(3).fit(coords[inside]).explained_variance_ratio_,
                                   atol=1e-4)
        runs, current = [], 0
        for flag in inside:
            current = current + 1 if flag else 0
            runs.append(current)
        assert pair["longest_run"] == max(runs)
