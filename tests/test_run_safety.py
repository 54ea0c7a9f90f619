"""Run folders that cannot be damaged: one writer at a time, --force that removes exactly what a run
made, interrupted and failed runs that say so and resume, and size bombs refused before allocating."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import hmmrnn
from hmmrnn.runs import LOCK_FILE, run_lock

from conftest import TINY, TINY_FLAGS, snapshot, subprocess_env


def _start_training(out: Path, epochs: int = 400, *extra: str) -> subprocess.Popen:
    """A tiny CLI training in a child process, returned once it holds the folder's lock and has
    written its first checkpoint."""
    command = [sys.executable, "-m", "hmmrnn", "train", "--preset", "linear2", *TINY_FLAGS, "--epochs", str(epochs),
               "--checkpoint-every", "1", "--out", str(out), "--quiet", *extra]
    # a child of a background job inherits an ignored SIGINT (and Python then keeps ignoring it):
    # give it the default disposition, as a terminal would
    proc = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (out / "checkpoints" / "epoch_00001.safetensors").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _one_error_line(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_second_writer_is_refused_with_the_holders_pid(cli, tmp_path):
    out = tmp_path / "run"
    proc = _start_training(out)
    try:
        # train --force over a running run
        code, _, err = cli("train", "--preset", "linear3", *TINY_FLAGS, "--epochs", "1", "--out", out, "--force")
        assert code == 1
        _one_error_line(err, f"in use by another hmmrnn process (PID {proc.pid})")
        # a second resume, an evaluation, an analysis, a report: each refused
        for args in (("train", "--resume", out, "--no-evaluate"), ("evaluate", out, "--n", "50"),
                     ("analyze", out, "--only", "latent_geometry"), ("report", out)):
            code, _, err = cli(*args)
            assert code == 1
            _one_error_line(err, f"PID {proc.pid}")
        assert json.loads((out / "config.json").read_text())["preset"] == "linear2"
        assert not (out / "metrics.json").exists() and not (out / "report.html").exists()
    finally:
        _stop(proc)
    # the kernel released the killed holder's lock: the folder is usable again, nothing was lost
    done = json.loads((out / "status.json").read_text())["epoch"]
    code, _, err = cli("train", "--resume", out, "--epochs", str(done + 2), "--no-evaluate", "--quiet")
    assert code == 0, err
    run = hmmrnn.load_run(out)
    assert run.config.preset == "linear2" and [r["epoch"] for r in run.history] == list(range(1, done + 3))
    assert not (out / LOCK_FILE).exists()


def test_two_resumes_of_one_folder(tmp_path):
    out = tmp_path / "run"
    hmmrnn.train("linear2", out=out, epochs=1, seed=0, progress=False, checkpoint_every=1, **TINY)
    first = subprocess.Popen([sys.executable, "-m", "hmmrnn", "train", "--resume", str(out), "--epochs", "400",
                              "--quiet", "--no-evaluate"], env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "epoch_00002.safetensors").exists():
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.02)
    second = subprocess.run([sys.executable, "-m", "hmmrnn", "train", "--resume", str(out), "--epochs", "400",
                             "--quiet", "--no-evaluate"], env=subprocess_env(), capture_output=True, text=True)
    _stop(first)
    assert second.returncode == 1
    _one_error_line(second.stderr, f"PID {first.pid}")


def test_the_same_sweep_twice(tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "hmmrnn", "sweep", "--out", str(out), "--presets", "linear2", "--hidden", "16",
               "--noise-dim", "4", "--recipe", "paper", "--num-seq", "600", "--seq-len", "20", "--batch-size", "100",
               "--epochs", "400", "--checkpoint-every", "1", "--eval-n", "50", "--workers", "1", "--quiet"]
    first = subprocess.Popen(command, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    cell = out / "cells"
    deadline = time.time() + 180
    while not list(cell.glob("*/checkpoints/epoch_00001.safetensors")):
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True)
    _stop(first)
    assert second.returncode == 1
    _one_error_line(second.stderr, f"PID {first.pid}")


def test_a_locked_cell_is_not_trained_by_a_second_worker(tmp_path):
    """The cell lock alone (a user's `train --resume` on a cell while the sweep runs)."""
    from hmmrnn.errors import RunDirError

    folder = tmp_path / "cell"
    with run_lock(folder, create=True):
        with run_lock(folder):  # re-entrant in one process
            assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())
        child = subprocess.run([sys.executable, "-c", "import hmmrnn.runs as r; "
                                f"r.run_lock({str(folder)!r}).__enter__()"], capture_output=True, text=True)
        assert child.returncode != 0 and "in use by another hmmrnn process" in child.stderr
    assert not (folder / LOCK_FILE).exists()
    with pytest.raises(RunDirError, match="run folder not found"):
        with run_lock(tmp_path / "missing"):
            pass
    with pytest.raises(ValueError):  # a failing block in a folder it created leaves nothing behind
        with run_lock(tmp_path / "fresh", create=True):
            raise ValueError
    assert not (tmp_path / "fresh").exists()


def test_force_removes_everything_the_previous_run_made_and_only_that(cli, tmp_path):
    out = tmp_path / "run"
    hmmrnn.train("linear2", out=out, epochs=2, seed=0, progress=False, checkpoint_every=1, **TINY)
    hmmrnn.evaluate(out, n=60, horizons=hmmrnn.Horizons(windows=(), chains=10, length=300, burn_in=100),
                    matching=False, refit=False)
    from hmmrnn.analysis import analyze

    analyze(out, only=["latent_geometry"], progress=False)
    from hmmrnn.report import write_report

    write_report(out)
    (out / "notes.txt").write_text("my notes")
    (out / "figures" / "my_plot.png").write_bytes(b"mine")
    made = {"metrics.json", "report.html", "analysis/latent_geometry.json", "figures/evaluation_transitions.png"}
    assert made <= set(snapshot(out)), sorted(snapshot(out))
    code, _, err = cli("train", "--preset", "linear3", *TINY_FLAGS, "--epochs", "1", "--out", out, "--force", "-q")
    assert code == 0, err
    after = snapshot(out)
    assert not [name for name in after if name in made or name.startswith("analysis")]
    assert not [name for name in after if "evaluation_" in name]
    assert after["notes.txt"] and after["figures/my_plot.png"]
    assert hmmrnn.load_run(out).config.preset == "linear3"
    assert sorted(n for n in after if n.startswith("checkpoints/")) == []


def test_failed_resume_leaves_the_config_as_it_was(cli, tmp_path, monkeypatch):
    out = tmp_path / "run"
    hmmrnn.train("linear2", out=out, epochs=2, seed=0, progress=False, checkpoint_every=1, **TINY)
    before = snapshot(out)
    import hmmrnn.training as training

    def no_device(name):
        raise hmmrnn.errors.ConfigError("device went away")

    monkeypatch.setattr(training, "_check_device", no_device)
    code, _, err = cli("train", "--resume", out, "--epochs", "800", "--no-evaluate")
    assert code == 1 and "device went away" in err
    assert snapshot(out) == before


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_or_kill_says_interrupted_and_resumes(tmp_path, stop):
    out = tmp_path / "run"
    proc = _start_training(out)
    proc.send_signal(stop)
    # generous: on a loaded machine the child may need long to exit; an ignored Ctrl-C would show as
    # exit code 0 after its 400 epochs, not as a time-out
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    _one_error_line(err, "interrupted after epoch")
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "interrupted" and "--resume" in status["message"]
    done = status["epoch"]
    resumed = subprocess.run([sys.executable, "-m", "hmmrnn", "train", "--resume", str(out), "--epochs",
                              str(done + 2), "--quiet", "--no-evaluate"], env=subprocess_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "status.json").read_text())["state"] == "completed"


def test_a_full_disk_fails_with_one_line_and_resumes(cli, tmp_path, monkeypatch):
    import hmmrnn.training as training

    out = tmp_path / "run"
    real = training.write_history
    calls = {"n": 0}

    def full_disk(path, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, rows)

    monkeypatch.setattr(training, "write_history", full_disk)
    code, _, err = cli("train", "--preset", "linear2", *TINY_FLAGS, "--epochs", "4", "--checkpoint-every", "1",
                       "--out", out, "-q")
    assert code == 1
    _one_error_line(err, "training failed: No space left on device")
    assert "continues from epoch 2" in err
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "--resume" in status["message"]
    monkeypatch.setattr(training, "write_history", real)
    code, _, err = cli("train", "--resume", out, "--no-evaluate", "-q")
    assert code == 0, err
    assert [r["epoch"] for r in hmmrnn.load_run(out).history] == [1, 2, 3, 4]


def test_tensor_bomb_is_refused_without_allocating(tmp_path):
    bomb = tmp_path / "bomb.pth"
    torch.save({"rnn.weight_ih_l0": torch.randn(16, 4), "fc.weight": torch.randn(3, 16),
                "rnn.weight_hh_l0": torch.zeros(1).expand(60_000, 60_000)}, bomb)  # 14 GB declared, 4 bytes stored
    assert bomb.stat().st_size < 10_000
    script = ("import resource, sys\nfrom hmmrnn.interop import import_pth\nfrom hmmrnn.errors import RunDirError\n"
              "try:\n"
              f"    import_pth({str(bomb)!r}, preset='linear3', out={str(tmp_path / 'out')!r})\n"
              "except RunDirError as exc:\n    print(exc)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env())
    message, peak_kb = done.stdout.strip().splitlines()
    assert "declares shape (60000, 60000)" in message and "refusing to expand it" in message
    assert int(peak_kb) < 1_500_000  # the interpreter and torch: far below the 14 GB of the declared tensor
    assert not (tmp_path / "out").exists()


def test_zoo_names_are_names_never_paths(tmp_path):
    from hmmrnn.errors import RunDirError
    from hmmrnn.zoo import add

    out = tmp_path / "run"
    hmmrnn.train("linear2", out=out, epochs=1, seed=0, progress=False, **TINY)
    (out / "metrics.json").write_text('{"emulates": true}')
    zoo = tmp_path / "zoo"
    for name in ("../escaped", "/abs/path", "a/b", ".hidden", ""):
        with pytest.raises(RunDirError, match="a zoo name is"):
            add(out, name, zoo_dir=zoo)
    assert not (tmp_path / "escaped").exists() and not zoo.exists()
    assert (add(out, "mine_2", zoo_dir=zoo) / "config.json").is_file()


def test_a_sweep_with_failed_cells_exits_non_zero(cli, tmp_path):
    # lr 1e6 makes every cell's training diverge: the cells fail, the sweep says so and exits 1
    code, out, err = cli("sweep", "--out", tmp_path / "sweep", "--presets", "linear2", "--hidden", "16", "--noise-dim", "4",
                         "--recipe", "paper", "--num-seq", "600", "--seq-len", "20", "--batch-size", "100",
                         "--epochs", "3", "--lr", "1e6", "--eval-n", "50", "--workers", "1", "--quiet")
    assert code == 1 and "failed" in out
    _one_error_line(err, "1 of 1 cells failed")
