"""Sweeps: the grid, the local and Ray backends giving the same cells, resuming after a killed
worker, failing cells, and the summary rebuilt identically from disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmmrnn import ConfigError, HmmrnnError
from hmmrnn.runs import checkpoint_paths, read_history
from hmmrnn.sweep import CELL_FILE, SUMMARY_FILE, SweepSpec, run_sweep, sweep_report

# tiny cells: a few seconds each on one thread
TINY_OVERRIDES = dict(num_seq=600, seq_len=20, batch_size=100, lr=0.01, epochs=3, checkpoint_every=1)


def tiny_spec(**changes) -> SweepSpec:
    settings = dict(presets=("linear2", "linear3"), hidden=(12,), noise_dim=(3,), seeds=(0, 1), recipe="paper",
                    overrides=dict(TINY_OVERRIDES), eval_n=200)
    settings.update(changes)
    return SweepSpec(**settings)


def _comparable(record: dict) -> dict:
    """A cell's record without what depends on the machine and the moment."""
    return {k: v for k, v in record.items() if k not in ("seconds_this_session", "train_seconds", "resumed")}


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern))}


def test_spec_checks_its_grid_and_reads_json_and_toml(tmp_path):
    spec = tiny_spec()
    assert [c.name for c in spec.cells()] == ["linear2-h12-d3-s0", "linear2-h12-d3-s1",
                                              "linear3-h12-d3-s0", "linear3-h12-d3-s1"]
    with pytest.raises(ConfigError, match="unknown preset"):
        tiny_spec(presets=("linear9",))
    with pytest.raises(ConfigError, match="can override: hidden"):
        tiny_spec(overrides={"hidden": 5})
    with pytest.raises(ConfigError, match="repeated value in seeds"):
        tiny_spec(seeds=(0, 0))
    with pytest.raises(ConfigError, match="learning rate"):
        tiny_spec(overrides={"lr": -1.0})
    (tmp_path / "s.json").write_text(json.dumps(spec.to_dict()))
    assert SweepSpec.from_file(tmp_path / "s.json") == spec
    (tmp_path / "s.toml").write_text('presets = ["linear2"]\nhidden = [12]\ninput = [3]\nseeds = [0, 1]\n'
                                     'recipe = "paper"\neval_n = 200\n[overrides]\nepochs = 3\nlr = 0.01\n')
    toml = SweepSpec.from_file(tmp_path / "s.toml")
    assert toml.seeds == (0, 1) and toml.overrides == {"epochs": 3, "lr": 0.01}
    (tmp_path / "bad.toml").write_text("presets = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SweepSpec.from_file(tmp_path / "bad.toml")


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "local"
    records = run_sweep(tiny_spec(), out, backend="local", workers=2, threads=1, progress=False)
    return out, records


def test_local_sweep_trains_and_evaluates_every_cell(local_sweep):
    out, records = local_sweep
    assert [r["status"] for r in records] == ["done"] * 4
    for r in records:
        cell = out / "cells" / r["cell"]
        assert (cell / "model.safetensors").exists() and (cell / "metrics.json").exists()
        assert r["epochs"] == 3 and r["attempts"] == 1 and r["metrics"]["n"] == 200
    rows = (out / SUMMARY_FILE).read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("cell,preset,hidden,noise_dim,seed")
    names = {p.stem for p in (out / "figures").glob("*.png")}
    assert names == {"distance_linear2", "distance_linear3", "transitions_linear2", "transitions_linear3", "overview"}


def test_rerun_skips_finished_cells_and_the_report_is_rebuilt_identically(local_sweep, tmp_path):
    out, records = local_sweep
    weights = {r["cell"]: (out / "cells" / r["cell"] / "model.safetensors").stat().st_mtime_ns for r in records}
    before = {**_files(out, SUMMARY_FILE), **_files(out, "figures/*")}
    again = run_sweep(tiny_spec(), out, backend="local", workers=2, threads=1, progress=False)
    assert [_comparable(r) for r in again] == [_comparable(r) for r in records]
    assert weights == {r["cell"]: (out / "cells" / r["cell"] / "model.safetensors").stat().st_mtime_ns
                       for r in records}
    (out / SUMMARY_FILE).unlink()
    sweep_report(out)
    assert {**_files(out, SUMMARY_FILE), **_files(out, "figures/*")} == before
    with pytest.raises(HmmrnnError, match="holds a different sweep"):
        run_sweep(tiny_spec(seeds=(0, 2)), out, progress=False)


def test_ray_backend_on_a_real_local_cluster_gives_the_same_cells(local_sweep, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'hmmrnn[ray]')")
    _, local_records = local_sweep
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a real local cluster, not local mode
    try:
        records = run_sweep(tiny_spec(presets=("linear2",)), tmp_path / "ray", backend="ray", threads=1,
                            progress=False)
    finally:
        ray.shutdown()
    assert [r["status"] for r in records] == ["done", "done"]
    assert [_comparable(r) for r in records] == [_comparable(r) for r in local_records[:2]]


def test_a_failing_cell_is_reported_and_does_not_stop_the_others(tmp_path):
    spec = tiny_spec(presets=("linear2",))
    out = tmp_path / "sweep"
    broken = out / "cells" / "linear2-h12-d3-s1"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")  # a corrupt half-written cell from some earlier run
    (broken / "checkpoints").mkdir()
    (broken / "checkpoints" / "epoch_00001.safetensors").write_bytes(b"garbage")
    (out / "sweep.json").write_text(json.dumps(spec.to_dict()))
    records = run_sweep(spec, out, backend="local", workers=1, threads=1, progress=False)
    assert [r["status"] for r in records] == ["done", "failed"]
    assert "config.json is not valid JSON" in records[1]["error"]
    summary = (out / SUMMARY_FILE).read_text()
    assert "failed" in summary and "not valid JSON" in summary
    # after the user removes the debris, the same command finishes the sweep and keeps the finished cell
    (broken / "config.json").unlink()
    first = (out / "cells" / "linear2-h12-d3-s0" / "model.safetensors").stat().st_mtime_ns
    records = run_sweep(spec, out, backend="local", workers=1, threads=1, progress=False)
    assert [r["status"] for r in records] == ["done", "done"]
    assert (out / "cells" / "linear2-h12-d3-s0" / "model.safetensors").stat().st_mtime_ns == first


def test_killing_a_worker_mid_sweep_then_rerunning_finishes_with_no_lost_or_duplicated_cells(tmp_path):
    out = tmp_path / "sweep"
    spec = tiny_spec(presets=("linear2",), overrides={**TINY_OVERRIDES, "epochs": 25})
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict()))
    command = [sys.executable, "-m", "hmmrnn", "sweep", "--spec", str(tmp_path / "spec.json"), "--out", str(out),
               "--workers", "2", "--threads", "1", "-q"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = out / "cells" / "linear2-h12-d3-s0"
    deadline = time.time() + 120
    while time.time() < deadline and not list((victim / "checkpoints").glob("epoch_0000[3-9].safetensors")):
        time.sleep(0.2)
    worker = json.loads((victim / "sweep_worker.json").read_text())["pid"]
    os.kill(worker, signal.SIGKILL)
    killed_at = max(int(p.stem.split("_")[1]) for p in (victim / "checkpoints").glob("epoch_*.safetensors"))
    output, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, output
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    rows = (out / SUMMARY_FILE).read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == sorted(c.name for c in spec.cells())
    assert all(",done," in r for r in rows)
    for cell in spec.cells():
        record = json.loads((out / "cells" / cell.name / CELL_FILE).read_text())
        epochs = [row["epoch"] for row in read_history(out / "cells" / cell.name / "history.csv")]
        assert record["status"] == "done" and epochs == list(range(1, 26)), (cell.name, epochs)
    # the killed cell went on from its checkpoint rather than starting again
    assert json.loads((victim / CELL_FILE).read_text()).get("resumed") is True and killed_at < 25


def test_sweep_cli_from_grid_options_and_its_one_line_errors(tmp_path, cli):
    out = tmp_path / "cli"
    grid = ["--presets", "linear2", "--hidden", "12", "--noise-dim", "3", "--seeds", "0,1", "--recipe", "paper",
            "--epochs", "1", "--num-seq", "600", "--seq-len", "20", "--batch-size", "100", "--lr", "0.01",
            "--eval-n", "100", "--workers", "1", "--threads", "1", "-q"]
    code, stdout, err = cli("sweep", "--out", out, *grid, "--only", "*-s1")  # a part of the grid: one cell
    assert code == 0, err
    assert "linear2-h12-d3-s1:" in stdout and "linear2-h12-d3-s0:" not in stdout and "1/2 cells finished" in stdout
    assert not (out / "cells" / "linear2-h12-d3-s0").exists()
    summary = (out / SUMMARY_FILE).read_text()
    assert "linear2-h12-d3-s0,linear2,12,3,0,,not run" in summary and "linear2-h12-d3-s1,linear2,12,3,1,paper,done" in summary
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["overrides"] == {"epochs": 1, "num_seq": 600, "seq_len": 20, "batch_size": 100, "lr": 0.01,
                                 "eval_n": 100}
    assert spec["eval_n"] == 100  # --eval-n is the N of the periodic and of the final verdict alike
    code, stdout, _ = cli("sweep-report", out)
    assert code == 0 and "sweep_summary.csv" in stdout
    for args, message in ((["--presets", "linear2", "--spec", "x.json"], "either --spec FILE or the grid options"),
                          (["--hidden", "150"], "give --presets"),
                          (["--presets", "linear2", "--hidden", "a,b"], "--hidden takes comma-separated integers"),
                          (["--presets", "linear2", "--backend", "slurm"], "unknown backend"),
                          (["--presets", "linear2", "--only", "linear3-*"], "--only 'linear3-*' matches no cell")):
        code, _, err = cli("sweep", "--out", tmp_path / "bad", *args)
        assert code == 1 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()  # nothing written for a refused command


def test_sigterm_to_the_sweep_stops_its_workers_and_leaves_every_cell_resumable(tmp_path):
    """A scheduler's or a user's `kill` reaches only the sweep's own process (Ctrl-C in a terminal
    reaches the whole process group): the workers must stop with it, the cells not yet started must
    not start, and the stopped cells must say so (re-running resumes them: the killed-worker test)."""
    out = tmp_path / "sweep"
    spec = tiny_spec(overrides={**TINY_OVERRIDES, "epochs": 60})  # 4 cells, 2 workers: 2 left waiting
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict()))
    command = [sys.executable, "-m", "hmmrnn", "sweep", "--spec", str(tmp_path / "spec.json"), "--out", str(out),
               "--workers", "2", "--threads", "1", "-q"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = [out / "cells" / name for name in ("linear2-h12-d3-s0", "linear2-h12-d3-s1")]
    deadline = time.time() + 120
    while time.time() < deadline and not all(list((c / "checkpoints").glob("epoch_0000[2-9].safetensors"))
                                             for c in running):  # about 0.2 s an epoch
        time.sleep(0.2)
    workers = [json.loads((c / "sweep_worker.json").read_text())["pid"] for c in running]
    sweep.send_signal(signal.SIGTERM)
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted", err
    for pid in workers:  # gone, not orphaned and still training
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for cell in running:
        record = json.loads((cell / CELL_FILE).read_text())
        assert record["status"] == "interrupted" and "interrupted after epoch" in record["error"]
        assert json.loads((cell / "status.json").read_text())["state"] == "interrupted"
    assert not (out / "cells" / "linear3-h12-d3-s0").exists() and not (out / "cells" / "linear3-h12-d3-s1").exists()
    stopped_at = [checkpoint_paths(c)[-1][0] for c in running]
    time.sleep(1.0)  # nothing goes on writing after the sweep has exited
    assert [checkpoint_paths(c)[-1][0] for c in running] == stopped_at
    assert all(epoch < 60 for epoch in stopped_at)
