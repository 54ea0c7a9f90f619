"""Importing the authors' checkpoints: weights land where they belong, and a file that would run
code when unpickled is refused without running it."""

from __future__ import annotations

import pytest
import torch

import hmmrnn
from hmmrnn.errors import RunDirError
from hmmrnn.interop import import_pth


def _reference_state(hidden=8, noise_dim=3, outputs=3, seed=0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"rnn.weight_ih_l0": torch.randn(hidden, noise_dim, generator=gen),
            "rnn.weight_hh_l0": torch.randn(hidden, hidden, generator=gen) / 4,
            "fc.weight": torch.randn(outputs, hidden, generator=gen)}


def test_import_puts_each_matrix_in_place_and_the_run_works(tmp_path):
    state = _reference_state()
    torch.save(state, tmp_path / "ref.pth")
    run = import_pth(tmp_path / "ref.pth", preset="linear3", out=tmp_path / "run")
    assert torch.equal(run.model.w_in, state["rnn.weight_ih_l0"])
    assert torch.equal(run.model.w_rec, state["rnn.weight_hh_l0"])
    assert torch.equal(run.model.w_out, state["fc.weight"])
    assert (run.config.model.hidden, run.config.model.noise_dim) == (8, 3) and run.status["state"] == "imported"
    # the imported run is an ordinary run folder: reload it and step the one-step map
    again = hmmrnn.load_run(tmp_path / "run")
    h = torch.rand(2, 8)
    x = torch.randn(2, 3)
    expected = torch.relu(h @ state["rnn.weight_hh_l0"].T + x @ state["rnn.weight_ih_l0"].T)
    torch.testing.assert_close(again.model.step(h, x), expected)
    assert again.model.sample(5, 4, seed=0).shape == (5, 4)


class _RunsCode:
    """Unpickling this calls open(path, "w"): harmless, but proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, cli):
    marker = tmp_path / "code_ran"
    state = _reference_state()
    state["rnn.weight_ih_l0"] = _RunsCode(str(marker))
    torch.save(state, tmp_path / "evil.pth")
    with pytest.raises(RunDirError, match="refused"):
        import_pth(tmp_path / "evil.pth", preset="linear3", out=tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()
    # the same through the CLI: one line, exit code 1
    code, _, err = cli("import-pth", tmp_path / "evil.pth", "--preset", "linear3", "--out", tmp_path / "run")
    assert code == 1 and err.count("\n") == 1 and "refused" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_the_malicious_file_really_runs_code_when_unpickled_unsafely(tmp_path):
    """The control for the test above: without weights_only the same file does run its payload."""
    marker = tmp_path / "code_ran"
    torch.save({"x": _RunsCode(str(marker))}, tmp_path / "evil.pth")
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    torch.save({"rnn.weight_hh_l0": torch.zeros(4, 4)}, tmp_path / "partial.pth")
    with pytest.raises(RunDirError, match="lacks rnn.weight_ih_l0, fc.weight"):
        import_pth(tmp_path / "partial.pth", preset="linear3")
    state = _reference_state(outputs=2)
    torch.save(state, tmp_path / "two.pth")
    with pytest.raises(RunDirError, match="2 outputs but the HMM"):
        import_pth(tmp_path / "two.pth", preset="linear3", out=tmp_path / "r2")
    state = _reference_state()
    state["fc.bias"] = torch.ones(3)
    torch.save(state, tmp_path / "bias.pth")
    with pytest.raises(RunDirError, match="non-zero fc.bias"):
        import_pth(tmp_path / "bias.pth", preset="linear3", out=tmp_path / "r3")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="not a readable PyTorch checkpoint|refused"):
        import_pth(tmp_path / "junk.pth", preset="linear3", out=tmp_path / "r4")
    with pytest.raises(RunDirError, match="checkpoint not found"):
        import_pth(tmp_path / "missing.pth", preset="linear3")
