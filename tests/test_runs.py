"""Run folders written by earlier versions still load under today's names."""

from __future__ import annotations

import json
import shutil

import hmmrnn
from hmmrnn.sweep import SweepSpec
from hmmrnn.zoo import ZOO_DIR, list_models


def test_a_run_folder_of_an_earlier_version_loads_under_todays_names(tmp_path):
    run_dir = shutil.copytree(ZOO_DIR / "linear3", tmp_path / "old")
    config = json.loads((run_dir / "config.json").read_text())
    config["model"]["outputs"] = config["model"].pop("n_outputs", 3)  # the keys before 2026-12-02
    config["model"]["input"] = config["model"].pop("noise_dim")
    (run_dir / "config.json").write_text(json.dumps(config))
    history = (run_dir / "history.csv").read_text().replace("transition_max_abs_diff", "transition_diff")
    (run_dir / "history.csv").write_text(history)
    run = hmmrnn.load_run(run_dir)
    assert run.config.model.n_outputs == 3 and run.model.n_outputs == 3
    assert run.config.model.noise_dim == 100 and run.model.noise_dim == 100
    assert [e["noise_dim"] for e in list_models(tmp_path)] == [100]
    judged = [row for row in run.history if row["transition_max_abs_diff"] is not None]
    assert judged and all(0 <= row["transition_max_abs_diff"] < 1 for row in judged)


def test_a_sweep_spec_of_an_earlier_version_reads_input_as_noise_dim():
    spec = SweepSpec.from_dict({"presets": ["linear2"], "hidden": [8], "input": [3, 5], "seeds": [0]})
    assert spec.noise_dim == (3, 5) and [c.noise_dim for c in spec.cells()] == [3, 5]
