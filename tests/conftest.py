"""Shared helpers: the suite's seed, tiny training settings, CLI invocation and disk snapshots."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

#: Seed of the statistical tests (samples judged against an oracle); HMMRNN_TEST_SEED=K runs them on
#: other samples. Each such test holds for all but a small, stated fraction of seeds.
TEST_SEED = int(os.environ.get("HMMRNN_TEST_SEED", "0"))


def pytest_report_header(config) -> str:
    return f"hmmrnn test seed: {TEST_SEED} (HMMRNN_TEST_SEED to change)"


@pytest.fixture
def test_seed() -> int:
    """The suite's seed (:data:`TEST_SEED`); derive a test's streams with ``hmmrnn._seeds.stream``."""
    return TEST_SEED

#: A model and data small enough to train for a few seconds on one CPU core; the paper's recipe,
#: so that the loop's mechanics are tested without the default recipe's periodic verdicts.
TINY = dict(recipe="paper", hidden=16, noise_dim=4, num_seq=600, seq_len=20, batch_size=100, lr=0.01, evaluate=False)
TINY_FLAGS = ["--recipe", "paper", "--hidden", "16", "--noise-dim", "4", "--num-seq", "600", "--seq-len", "20",
              "--batch-size", "100", "--lr", "0.01", "--no-evaluate"]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every file and folder under ``root``."""
    root = Path(root)
    state = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``hmmrnn ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from hmmrnn.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["hmmrnn", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    yield


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TQDM_DISABLE"] = "1"
    return env


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo folder holding one barely trained linear3 model, ``tiny`` (not an emulator)."""
    import hmmrnn
    from hmmrnn.errors import RunDirError
    from hmmrnn.zoo import add

    root = tmp_path_factory.mktemp("zoo")
    run = hmmrnn.train("linear3", out=root / "trained", epochs=2, seed=0, progress=False, **TINY)
    hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False)
    with pytest.raises(RunDirError, match="does not say emulates"):
        add(run.path, "tiny", zoo_dir=root / "zoo")
    add(run.path, "tiny", zoo_dir=root / "zoo", require_emulation=False)
    return root
