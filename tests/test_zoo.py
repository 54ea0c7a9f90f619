"""The model zoo: round trip, and the packaged models judged at every horizon and analysed."""

from __future__ import annotations

import json

import pytest
import torch

import hmmrnn
from hmmrnn.errors import RunDirError
from hmmrnn.presets import PRESETS
from hmmrnn.zoo import ZOO_DIR, get, list_models



def test_zoo_round_trip_gives_a_normal_run_folder(tiny_zoo, tmp_path):
    (entry,) = list_models(tiny_zoo / "zoo")
    assert entry["name"] == "tiny" and entry["hidden"] == 16 and entry["noise_dim"] == 4
    run = get("tiny", tmp_path / "copy", zoo_dir=tiny_zoo / "zoo")
    original = hmmrnn.load_run(tiny_zoo / "trained")
    for name in ("w_in", "w_rec", "w_out"):
        assert torch.equal(getattr(run.model, name), getattr(original.model, name))
    assert json.loads((run.path / "metrics.json").read_text()) == json.loads(
        (original.path / "metrics.json").read_text())
    assert not (run.path / "checkpoints").exists()
    with pytest.raises(RunDirError, match="not empty"):
        get("tiny", tmp_path / "copy", zoo_dir=tiny_zoo / "zoo")
    with pytest.raises(RunDirError, match="no zoo model 'nope'; available: tiny"):
        get("nope", tmp_path / "other", zoo_dir=tiny_zoo / "zoo")


def test_every_packaged_zoo_model_is_a_preset_model_judged_at_every_horizon():
    """The packaged metrics.json is the current verdict's (every horizon), not a stale "yes"."""
    entries = {e["name"]: e for e in list_models()}
    assert entries and set(entries) <= set(PRESETS), f"zoo models in {ZOO_DIR}: {sorted(entries)}"
    for name, e in entries.items():
        assert e["preset"] == name and (e["hidden"], e["noise_dim"]) == (150, 100) and e["recipe"] == "fast"
        metrics = json.loads((ZOO_DIR / name / "metrics.json").read_text())
        assert metrics["verdict"] in ("yes", "no", "inconclusive") and metrics["emulates"] == (metrics["verdict"] == "yes")
        assert metrics["n"] == 5000 and metrics["long_run"]["length"] >= 10_000
        if metrics["long_run"]["first_non_finite_step"] is None:
            assert {"stationary T=100", "stationary T=300"} <= set(metrics["windows"])
        assert (ZOO_DIR / name / "model.safetensors").stat().st_size < 200_000
        run = hmmrnn.load_run(ZOO_DIR / name)  # config and weights check out
        assert run.config.preset == name and run.model.w_rec.shape == (150, 150)




def test_every_zoo_model_is_bounded_and_a_packaged_yes_still_holds_at_small_n():
    """Every zoo model's long run stays bounded (the analyses follow 30,000-step orbits), and a model
    whose packaged metrics say yes is judged yes again at every horizon on a fresh, smaller sample."""
    from hmmrnn import Horizons, judge

    said_yes = []
    for entry in list_models():
        name = entry["name"]
        run = hmmrnn.load_run(ZOO_DIR / name)
        packaged = json.loads((ZOO_DIR / name / "metrics.json").read_text())
        assert packaged["long_run"]["first_non_finite_step"] is None, name
        result = judge(run.model, run.hmm, n=2000, seq_len=run.config.train.seq_len, seed=7, matching=False,
                       refit=False, horizons=Horizons(windows=(100,), length=4000, burn_in=500))
        assert result.long_run_checks and all(c.passed for c in result.long_run_checks), (name, result.summary())
        if packaged["emulates"]:
            said_yes.append(name)
            assert result.verdict == "yes", (name, result.summary())
    assert set(PRESETS) <= set(said_yes)


def test_fast_analyses_run_on_every_zoo_model(tmp_path):
    from hmmrnn.analysis import analyze

    from test_analysis import _FAST

    only = ["latent_geometry", "fixed_points", "residency", "training_evolution"]
    for name in [e["name"] for e in list_models()]:
        run = get(name, tmp_path / name)
        results = analyze(run.path, only=only, settings={k: _FAST[k] for k in only}, progress=False, figures=False)
        assert set(results) == set(only), name
        assert results["training_evolution"].epochs[-1] == run.status["epoch"]
