"""Every command against a table of bad inputs: exit code != 0, one line on stderr naming the
problem, and every file under the test folder byte-for-byte as it was."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import hmmrnn

from conftest import TINY, TINY_FLAGS, snapshot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run folder (2 epochs, checkpoints), shared read-only by the cases."""
    out = tmp_path_factory.mktemp("trained") / "run"
    hmmrnn.train("linear3", out=out, epochs=2, seed=0, progress=False, checkpoint_every=1, **TINY)
    return out


def _files(tmp, trained):
    """Build the inputs the cases need under ``tmp``; returns a dict of named paths."""
    run = tmp / "run"
    shutil.copytree(trained, run)
    p = {"run": run}
    (tmp / "broken.json").write_text("{not json")
    (tmp / "broken.toml").write_text("transition = [[1, 0]\n")
    (tmp / "rows.json").write_text(json.dumps({"transition": [[0.5, 0.6], [0.5, 0.5]], "emission": [[1, 0], [0, 1]]}))
    (tmp / "negative.json").write_text(json.dumps({"transition": [[1.5, -0.5], [0.5, 0.5]],
                                                   "emission": [[1, 0], [0, 1]]}))
    (tmp / "nan.json").write_text('{"transition": [[NaN, 1], [0.5, 0.5]], "emission": [[1, 0], [0, 1]]}')
    (tmp / "shape.json").write_text(json.dumps({"transition": [[0.5, 0.5], [0.5, 0.5]], "emission": [[1, 0, 0]]}))
    (tmp / "unknown_key.json").write_text(json.dumps({"transitions": [[1.0]], "emission": [[1.0, 0.0]]}))
    (tmp / "huge.json").write_text(json.dumps({"n_states": 200000, "topology": "stay_prob", "emissions": "linear",
                                               "n_outputs": 3}))
    (tmp / "list.json").write_text("[1, 2, 3]")
    (tmp / "hmm_dir.json").mkdir()
    (tmp / "a_file").write_text("not a folder")
    (tmp / "existing").mkdir()
    (tmp / "existing" / "notes.txt").write_text("mine")
    # broken copies of the run
    for name in ("weights_dir", "corrupt_weights", "nan_weights", "no_config", "bad_config", "metrics_dir",
                 "shape_weights"):
        shutil.copytree(run, tmp / name)
    (tmp / "weights_dir" / "model.safetensors").unlink()
    (tmp / "weights_dir" / "model.safetensors").mkdir()
    (tmp / "corrupt_weights" / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    from hmmrnn.runs import load_tensors, save_tensors

    weights, _ = load_tensors(run / "model.safetensors")
    save_tensors(tmp / "nan_weights" / "model.safetensors", {**weights, "w_rec": weights["w_rec"] * float("nan")})
    save_tensors(tmp / "shape_weights" / "model.safetensors", {**weights, "w_rec": weights["w_rec"][:3]})
    (tmp / "no_config" / "config.json").unlink()
    (tmp / "bad_config" / "config.json").write_text('{"model": {"hidden": -4}}')
    (tmp / "metrics_dir" / "metrics.json").mkdir()
    # reference checkpoints
    good = {"rnn.weight_ih_l0": torch.randn(16, 4), "rnn.weight_hh_l0": torch.randn(16, 16),
            "fc.weight": torch.randn(3, 16)}
    torch.save({k: v for k, v in good.items() if k != "fc.weight"}, tmp / "missing_key.pth")
    torch.save({**good, "rnn.weight_hh_l0": torch.zeros(1).expand(100_000, 100_000)}, tmp / "bomb.pth")
    torch.save({**good, "rnn.weight_hh_l0": torch.randn(16, 15)}, tmp / "bad_shape.pth")
    torch.save({**good, "fc.weight": torch.full((3, 16), float("nan"))}, tmp / "nan.pth")
    torch.save([1, 2, 3], tmp / "list.pth")
    (tmp / "garbage.pth").write_bytes(b"PK\x03\x04 not really a zip")

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp / "evil.pth", "wb") as handle:
        pickle.dump({"rnn.weight_ih_l0": Evil()}, handle)
    # sweep specs
    (tmp / "spec_bad.json").write_text("{oops")
    (tmp / "spec_key.json").write_text(json.dumps({"presets": ["linear2"], "colour": "red"}))
    (tmp / "spec_type.json").write_text(json.dumps({"presets": "linear2"}))
    (tmp / "spec_hidden.json").write_text(json.dumps({"presets": ["linear2"], "hidden": [150, "many"]}))
    (tmp / "spec_preset.json").write_text(json.dumps({"presets": ["linear9"]}))
    (tmp / "report.html").write_text("<html>my own page</html>")
    return p


def _cases(tmp):
    run = tmp / "run"
    tiny = ["train", *TINY_FLAGS, "--epochs", "1"]
    new = tmp / "new"
    return {
        # ---- train: HMM files
        "train malformed json": ([*tiny, "--hmm", tmp / "broken.json", "--out", new], "cannot parse HMM file"),
        "train malformed toml": ([*tiny, "--hmm", tmp / "broken.toml", "--out", new], "cannot parse HMM file"),
        "train rows do not sum to 1": ([*tiny, "--hmm", tmp / "rows.json", "--out", new], "sums to 1.1"),
        "train negative probability": ([*tiny, "--hmm", tmp / "negative.json", "--out", new], "negative"),
        "train NaN probability": ([*tiny, "--hmm", tmp / "nan.json", "--out", new], "NaN"),
        "train wrong emission shape": ([*tiny, "--hmm", tmp / "shape.json", "--out", new], "must have shape"),
        "train unknown HMM key": ([*tiny, "--hmm", tmp / "unknown_key.json", "--out", new], "unknown HMM spec key"),
        "train HMM file is a list": ([*tiny, "--hmm", tmp / "list.json", "--out", new], "table/object"),
        "train HMM file is a folder": ([*tiny, "--hmm", tmp / "hmm_dir.json", "--out", new], "hmm_dir.json"),
        "train missing HMM file": ([*tiny, "--hmm", tmp / "nope.json", "--out", new], "HMM file not found"),
        "train 200,000-state HMM": ([*tiny, "--hmm", tmp / "huge.json", "--out", new], "GB of memory"),
        # ---- train: values
        "train unknown preset": ([*tiny, "--preset", "linear9", "--out", new], "unknown preset 'linear9'"),
        "train nothing to train": (["train", "--out", new], "give --preset NAME or --hmm FILE"),
        "train hidden 0": ([*tiny, "--preset", "linear2", "--hidden", "0", "--out", new], "hidden size must be >= 1"),
        "train huge hidden": ([*tiny, "--preset", "linear2", "--hidden", "100000000", "--out", new], "GB of memory"),
        "train lr inf": ([*tiny, "--preset", "linear2", "--lr", "inf", "--out", new], "lr must be a finite number"),
        "train lr nan": ([*tiny, "--preset", "linear2", "--lr", "nan", "--out", new], "lr must be a finite number"),
        "train lr negative": ([*tiny, "--preset", "linear2", "--lr", "-1", "--out", new], "learning rate"),
        "train seq-len 0": ([*tiny, "--preset", "linear2", "--seq-len", "0", "--out", new], "seq_len must be >= 1"),
        "train batch above the data": ([*tiny, "--preset", "linear2", "--batch-size", "5000", "--out", new],
                                       "training sequences"),
        "train grad clip nan": ([*tiny, "--preset", "linear2", "--grad-clip", "nan", "--out", new], "grad_clip"),
        "train reset fraction 2": ([*tiny, "--preset", "linear2", "--reset-fraction", "2", "--out", new],
                                   "reset_fraction"),
        "train bigram-on unknown": ([*tiny, "--preset", "linear2", "--bigram-on", "words", "--out", new],
                                    "'words' is not one of 'samples', 'probabilities'"),
        "train device tpu": ([*tiny, "--preset", "linear2", "--device", "tpu", "--out", new], "device"),
        "train hidden not a number": ([*tiny, "--preset", "linear2", "--hidden", "many", "--out", new],
                                      "'--hidden'"),
        "train unknown option": ([*tiny, "--preset", "linear2", "--colour", "red", "--out", new], "--colour"),
        # ---- train: folders
        "train out under a file": ([*tiny, "--preset", "linear2", "--out", tmp / "a_file" / "run"], "not a folder"),
        "train out is a file": ([*tiny, "--preset", "linear2", "--out", tmp / "a_file"], "not a folder"),
        "train existing folder": ([*tiny, "--preset", "linear2", "--out", tmp / "existing"],
                                  "already exists and is not empty"),
        "resume missing folder": (["train", "--resume", tmp / "nothing"], "run folder not found"),
        "resume changed settings": (["train", "--resume", run, "--hidden", "8"], "drop --hidden"),
        "resume epochs below done": (["train", "--resume", run, "--epochs", "1", "--no-evaluate"],
                                     "below the 2 epochs"),
        "resume weights are a folder": (["train", "--resume", tmp / "weights_dir", "--epochs", "3"],
                                        "should be a file"),
        "resume without config": (["train", "--resume", tmp / "no_config"], "missing file"),
        "resume bad config": (["train", "--resume", tmp / "bad_config"], "config.json"),
        # ---- evaluate
        "evaluate missing folder": (["evaluate", tmp / "nothing"], "run folder not found"),
        "evaluate n 1": (["evaluate", run, "--n", "1"], "--n must be at least 2"),
        "evaluate seq-len 0": (["evaluate", run, "--seq-len", "0"], "--seq-len"),
        "evaluate alpha nan": (["evaluate", run, "--alpha", "nan"], "alpha"),
        "evaluate alpha 2": (["evaluate", run, "--alpha", "2"], "alpha"),
        "evaluate negative tolerance": (["evaluate", run, "--frequency-tolerance", "-0.1"], "frequency_tolerance"),
        "evaluate nan loglik tolerance": (["evaluate", run, "--loglik-tolerance", "nan"], "loglik_tolerance"),
        "evaluate max growth nan": (["evaluate", run, "--max-growth", "nan"], "max_growth"),
        "evaluate windows not numbers": (["evaluate", run, "--windows", "ten"], "--windows"),
        "evaluate window 0": (["evaluate", run, "--windows", "0"], "window"),
        "evaluate horizon negative": (["evaluate", run, "--horizon", "-5"], "long run (length -5)"),
        "evaluate chains 0": (["evaluate", run, "--chains", "0"], "chains"),
        "evaluate burn-in negative": (["evaluate", run, "--burn-in", "-1"], "burn"),
        "evaluate semantics unknown": (["evaluate", run, "--semantics", "mine"], "--semantics"),
        "evaluate weights unknown": (["evaluate", run, "--weights", "newest"], "newest"),
        "evaluate corrupt weights": (["evaluate", tmp / "corrupt_weights"], "not a valid safetensors file"),
        "evaluate NaN weights": (["evaluate", tmp / "nan_weights"], "NaN or infinite"),
        "evaluate wrong weight shape": (["evaluate", tmp / "shape_weights"], "has shape"),
        "evaluate metrics.json is a folder": (["evaluate", tmp / "metrics_dir", "--n", "50"], "should be a file"),
        # ---- analyze
        "analyze unknown analysis": (["analyze", run, "--only", "astrology"], "unknown analysis astrology"),
        "analyze missing folder": (["analyze", tmp / "nothing"], "run folder not found"),
        "analyze no config": (["analyze", tmp / "no_config"], "missing file"),
        # ---- report
        "report onto the weights": (["report", run, "--out", run / "model.safetensors"], "not an hmmrnn report"),
        "report onto the config": (["report", run, "--out", run / "config.json"], "not an hmmrnn report"),
        "report onto a user page": (["report", run, "--out", tmp / "report.html"], "not an hmmrnn report"),
        "report onto a folder": (["report", run, "--out", tmp / "existing"], "is a folder"),
        "report into a missing folder": (["report", run, "--out", tmp / "nope" / "r.html"], "does not exist"),
        "report missing run": (["report", tmp / "nothing"], "run folder not found"),
        # ---- import-pth
        "import missing file": (["import-pth", tmp / "nope.pth", "--preset", "linear3", "--out", new], "not found"),
        "import garbage": (["import-pth", tmp / "garbage.pth", "--preset", "linear3", "--out", new],
                           "not a readable PyTorch checkpoint"),
        "import code in pickle": (["import-pth", tmp / "evil.pth", "--preset", "linear3", "--out", new],
                                  "unpickling it could run code"),
        "import missing key": (["import-pth", tmp / "missing_key.pth", "--preset", "linear3", "--out", new],
                               "lacks fc.weight"),
        "import tensor bomb": (["import-pth", tmp / "bomb.pth", "--preset", "linear3", "--out", new],
                               "declares"),
        "import bad shape": (["import-pth", tmp / "bad_shape.pth", "--preset", "linear3", "--out", new],
                             "shape"),
        "import NaN weights": (["import-pth", tmp / "nan.pth", "--preset", "linear3", "--out", new],
                               "NaN or infinite"),
        "import a list": (["import-pth", tmp / "list.pth", "--preset", "linear3", "--out", new], "not a state dict"),
        "import both HMM sources": (["import-pth", tmp / "nan.pth", "--preset", "linear3", "--hmm",
                                     tmp / "rows.json", "--out", new], "exactly one of"),
        "import into existing": (["import-pth", tmp / "nan.pth", "--preset", "linear3", "--out", tmp / "existing"],
                                 "NaN or infinite"),
        # ---- sweep
        "sweep without presets": (["sweep", "--out", new], "give --presets"),
        "sweep unknown preset": (["sweep", "--out", new, "--presets", "linear9"], "unknown preset"),
        "sweep malformed spec": (["sweep", "--out", new, "--spec", tmp / "spec_bad.json"], "spec_bad.json"),
        "sweep unknown spec key": (["sweep", "--out", new, "--spec", tmp / "spec_key.json"], "colour"),
        "sweep presets not a list": (["sweep", "--out", new, "--spec", tmp / "spec_type.json"],
                                     "presets must be a list of preset names"),
        "sweep hidden not integers": (["sweep", "--out", new, "--spec", tmp / "spec_hidden.json"],
                                      "hidden must be a list of integers"),
        "sweep spec preset unknown": (["sweep", "--out", new, "--spec", tmp / "spec_preset.json"], "linear9"),
        "sweep spec and options": (["sweep", "--out", new, "--spec", tmp / "spec_key.json", "--presets", "linear2"],
                                   "not both"),
        "sweep hidden not numbers": (["sweep", "--out", new, "--presets", "linear2", "--hidden", "big"], "--hidden"),
        "sweep unknown backend": (["sweep", "--out", new, "--presets", "linear2", "--backend", "cloud"], "backend"),
        "sweep into a run folder": (["sweep", "--out", run, "--presets", "linear2"], "not a sweep folder"),
        "sweep-report not a sweep": (["sweep-report", run], "not a sweep folder"),
        # ---- zoo and demo
        "zoo unknown name": (["zoo", "get", "linear9", "--out", new], "no zoo model 'linear9'"),
        "zoo relative path": (["zoo", "get", "../zoo_models/linear3", "--out", new], "no zoo model"),
        "zoo absolute path": (["zoo", "get", str(run), "--out", new], "no zoo model"),
        "zoo into existing": (["zoo", "get", "linear3", "--out", tmp / "existing"], "already exists"),
        "demo unknown model": (["demo", "--model", "linear9", "--out", new], "no zoo model"),
    }


CASES = list(_cases(Path("/x")))  # the names only


def test_the_table_is_large():
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_and_nothing_changed(cli, tmp_path, trained, case):
    _files(tmp_path, trained)
    args, message = _cases(tmp_path)[case]
    before = snapshot(tmp_path)
    code, out, err = cli(*args)
    assert code != 0, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "this must never run" not in out + err
    assert "weights_only" not in err and "trusted" not in err  # never a hint to load unsafely
    assert snapshot(tmp_path) == before
