"""The command line: presets listing, a full train run, and every bad input of the foundation issue."""

from __future__ import annotations

import json
import os

import pytest

from hmmrnn import load_run

from conftest import TINY_FLAGS, snapshot


def test_presets_lists_all_with_matrices(cli):
    code, out, _ = cli("presets")
    assert code == 0
    for name in ("linear2", "linear3", "linear4", "linear5", "fully3", "cyclic4"):
        assert f"{name}:" in out
    assert "0.7764" in out and "0.025" in out and "T=100" in out and "grad_clip=0.3" in out


def test_train_writes_a_complete_reloadable_run(cli, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = cli("train", "--preset", "linear2", *TINY_FLAGS, "--epochs", "3", "--out", out,
                            "--checkpoint-every", "1", "--quiet")
    assert code == 0, err
    assert "best validation loss" in stdout
    for name in ("config.json", "model.safetensors", "final.safetensors", "history.csv", "status.json",
                 "checkpoints/epoch_00003.safetensors"):
        assert (out / name).is_file(), name
    run = load_run(out)
    assert len(run.history) == 3 and run.config.preset == "linear2"
    # no temporary files are left behind by the atomic writes
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    # resuming with an extended budget continues the same run
    code, _, err = cli("train", "--resume", out, "--epochs", "4", "--quiet", "--no-evaluate")
    assert code == 0, err
    assert len(load_run(out).history) == 4


def test_train_with_custom_hmm_file(cli, tmp_path):
    spec = tmp_path / "mine.toml"
    spec.write_text('name = "mine"\ntransition = [[0.9, 0.1], [0.1, 0.9]]\nemission = [[0.8, 0.2], [0.2, 0.8]]\n')
    code, _, err = cli("train", "--hmm", spec, *TINY_FLAGS, "--epochs", "1", "--out", tmp_path / "r", "-q")
    assert code == 0, err
    run = load_run(tmp_path / "r")
    assert run.hmm.name == "mine" and run.config.model.n_outputs == 2


def _bad_inputs(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "rows.json").write_text(json.dumps({"transition": [[0.5, 0.6], [0.5, 0.5]],
                                                    "emission": [[1, 0, 0], [0, 0, 1]]}))
    (tmp_path / "shape.json").write_text(json.dumps({"transition": [[0.5, 0.5], [0.5, 0.5]],
                                                     "emission": [[1, 0, 0]]}))
    (tmp_path / "a_file").write_text("not a folder")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "config.json").write_text("{}")
    base = ["train", *TINY_FLAGS, "--epochs", "1"]
    return {
        "malformed HMM file": ([*base, "--hmm", tmp_path / "broken.json", "--out", tmp_path / "o1"],
                               "cannot parse HMM file"),
        "non-stochastic HMM file": ([*base, "--hmm", tmp_path / "rows.json", "--out", tmp_path / "o2"],
                                    "transition matrix row 0 sums to 1.1"),
        "wrong shapes": ([*base, "--hmm", tmp_path / "shape.json", "--out", tmp_path / "o3"],
                         "emission matrix must have shape (M=2"),
        "missing HMM file": ([*base, "--hmm", tmp_path / "nope.json", "--out", tmp_path / "o4"],
                             "HMM file not found"),
        "unknown preset": ([*base, "--preset", "linear9", "--out", tmp_path / "o5"], "unknown preset 'linear9'"),
        "unwritable output": ([*base, "--preset", "linear2", "--out", tmp_path / "a_file" / "run"],
                              "is not a folder"),
        "existing run folder": ([*base, "--preset", "linear2", "--out", existing],
                                "already exists and is not empty"),
        "bad value": ([*base, "--preset", "linear2", "--hidden", "0", "--out", tmp_path / "o6"],
                      "hidden size must be >= 1"),
        "resume missing folder": (["train", "--resume", tmp_path / "nothing"], "run folder not found"),
        "resume with changed settings": (["train", "--resume", existing, "--hidden", "8"], "drop --hidden"),
        "nothing to train": (["train", "--out", tmp_path / "o7"], "give --preset NAME or --hmm FILE"),
    }


@pytest.mark.parametrize("case", ["malformed HMM file", "non-stochastic HMM file", "wrong shapes",
                                  "missing HMM file", "unknown preset", "unwritable output",
                                  "existing run folder", "bad value", "resume missing folder",
                                  "resume with changed settings", "nothing to train"])
def test_bad_input_gives_one_line_error_and_leaves_disk_unchanged(cli, tmp_path, case):
    args, message = _bad_inputs(tmp_path)[case]
    before = snapshot(tmp_path)
    code, out, err = cli(*args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions; the not-a-folder case covers it")
def test_read_only_output_folder(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = cli("train", "--preset", "linear2", *TINY_FLAGS, "--out", locked / "run")
        assert code == 1 and "not writable" in err
        assert not (locked / "run").exists()
    finally:
        locked.chmod(0o700)


def test_force_overwrites_an_existing_run(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("train", "--preset", "linear2", *TINY_FLAGS, "--epochs", "2", "--out", out, "-q")[0] == 0
    code, _, err = cli("train", "--preset", "linear3", *TINY_FLAGS, "--epochs", "1", "--out", out, "--force", "-q")
    assert code == 0, err
    run = load_run(out)
    assert run.config.preset == "linear3" and len(run.history) == 1


def test_train_and_sweep_offer_the_same_training_options_derived_from_the_config(cli):
    import typer

    from hmmrnn.cli import app
    from hmmrnn.config import SETTINGS, training_options

    commands = typer.main.get_command(app).commands
    options = training_options()
    # every config setting is an option unless a command sets it by its own option (sizes, seed) or
    # it is kept off the command line (betas)
    assert {o.name for o in options} == set(SETTINGS) - {"hidden", "noise_dim", "seed", "betas"}
    for name in ("train", "sweep"):
        params = {p.name: p for p in commands[name].params}
        for option in options:
            param = params[option.name]
            assert option.flag in param.opts and param.default is None
            assert param.help == f"{option.help} [{option.default_text}]"
        code, text, _ = cli(name, "--help")
        assert code == 0
        for option in options:
            if option.choices:  # checked by the parser, listed in the help
                assert f"{option.flag} <{'|'.join(option.choices)}>" in text
    growth = next(o for o in options if o.name == "growth_weight")
    assert growth.default_text == "fast: 1000, paper: 0" and next(o for o in options if o.name == "seq_len"
                                                                 ).default_text == "preset: 30 / 40 / 100"
    code, _, err = cli("train", "--preset", "linear3", "--bigram-on", "counts")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "counts" in err and "probabilities" in err


def test_train_options_reach_the_config_as_make_config_would_put_them(cli, tmp_path):
    from hmmrnn.config import make_config

    out = tmp_path / "run"
    code, _, err = cli("train", "--preset", "linear3", *TINY_FLAGS, "--epochs", "2", "--growth-weight", "7",
                       "--bigram-on", "probabilities", "--carry-states", "--out", out)
    assert code == 0, err
    expected = make_config("linear3", recipe="paper", hidden=16, noise_dim=4, num_seq=600, seq_len=20, batch_size=100,
                           lr=0.01, epochs=2, growth_weight=7.0, bigram_on="probabilities", carry_states=True)
    run = load_run(out)
    assert run.config.train == expected.train and run.config.model == expected.model
