"""A model trained in a chain of fine-tunes, joined into one run folder (benchmarks/chain_runs.py) and
carried by the zoo with its lineage."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

import hmmrnn
from hmmrnn.analysis import training_evolution
from hmmrnn.errors import RunDirError
from hmmrnn.runs import checkpoint_path, load_tensors, read_history, tensor_section
from hmmrnn.zoo import add, get, list_models

from conftest import TINY

_SPEC = importlib.util.spec_from_file_location("chain_runs", Path(__file__).parents[1] / "benchmarks" / "chain_runs.py")
chain_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(chain_runs)


def _weights(path):
    return tensor_section(load_tensors(path)[0], "model")


def _same(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_a_chain_of_runs_joins_into_one_run_and_zoo_entry(tmp_path):
    settings = {**TINY, "checkpoint_every": 2, "val_every": 1}
    first = hmmrnn.train("linear2", out=tmp_path / "a", epochs=4, seed=0, progress=False, **settings)
    start = str(checkpoint_path(first.path, 4))
    # the second stage trains the same weights on another HMM, as the zoo's cyclic4 began as fully3
    second = hmmrnn.train("linear3", out=tmp_path / "b", epochs=2, seed=1, progress=False, init_weights=start,
                          **{**settings, "lr": 0.003})
    out = tmp_path / "chain"
    chain_runs.join(out, [(first.path, 4), (second.path, 2)], every=2)

    joined = hmmrnn.load_run(out)  # a normal run folder
    assert [int(r["epoch"]) for r in read_history(out / "history.csv")] == [1, 2, 3, 4, 5, 6]
    for chain_epoch, (run, epoch) in {2: (first.path, 2), 4: (first.path, 4), 6: (second.path, 2)}.items():
        assert _same(_weights(checkpoint_path(out, chain_epoch)), _weights(checkpoint_path(run, epoch)))
    assert _same(joined.model.state_dict(), _weights(checkpoint_path(second.path, 2)))
    lineage = json.loads((out / "lineage.json").read_text())
    assert [s["epochs"] for s in lineage] == [[1, 4], [5, 6]]
    assert [s["preset"] for s in lineage] == ["linear2", "linear3"] and joined.config.preset == "linear3"
    assert [s["train"] for s in lineage] == [{"epochs": 4, "lr": 0.01, "seed": 0}, {"epochs": 2, "lr": 0.003, "seed": 1}]
    assert json.loads((out / "status.json").read_text())["epoch"] == 6

    hmmrnn.evaluate(joined, n=200, seed=0, refit=False, matching=False, figures=False)
    zoo = tmp_path / "zoo"
    add(out, "chained", zoo_dir=zoo, require_emulation=False)
    assert [(e["name"], e["stages"], e["epochs"]) for e in list_models(zoo)] == [("chained", 2, 6)]
    copy = get("chained", tmp_path / "copy", zoo_dir=zoo)
    assert json.loads((copy.path / "lineage.json").read_text()) == lineage

    # training evolution follows the linear3 stage from the linear2 network it started from
    own = training_evolution(copy, steps=60, trials=2, shown=20)
    assert own.epochs == [4, 6] and own.started_from == "linear2, epochs 1-4"
    assert "started from a network trained on linear2, epochs 1-4" in own.summary()
    every = training_evolution(copy, steps=60, trials=2, shown=20, all_stages=True)
    assert every.epochs == [2, 4, 6] and every.started_from == ""
    assert every.transition_rate[1:].tolist() == own.transition_rate.tolist()
    (copy.path / "lineage.json").write_text('{"stages": 2}')
    with pytest.raises(RunDirError, match="not a list of stages"):
        training_evolution(copy, steps=60, trials=2, shown=20)

    # a run that did not start from the previous stage's cut is refused, and nothing is written
    with pytest.raises(RunDirError, match="did not start from"):
        chain_runs.join(tmp_path / "wrong", [(first.path, 2), (second.path, 2)], every=2)
    assert not (tmp_path / "wrong").exists()
