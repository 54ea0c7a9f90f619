"""Importing the authors' reference checkpoints (docs/method.md §2.3, §3.6) into run folders.

A reference checkpoint is a PyTorch state dict with ``rnn.weight_ih_l0`` (W_in, H × d),
``rnn.weight_hh_l0`` (W_rec, H × H) and ``fc.weight`` (W_out, K × H). It is read with
``torch.load(weights_only=True)`` only: a file whose unpickling would construct anything but
tensors and plain containers (i.e. could run code) is refused.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from ._memory import available_memory, gigabytes
from .config import make_config
from .errors import RunDirError
from .hmm import HMM
from .runs import (CONFIG_FILE, STATUS_FILE, WEIGHTS_FILE, Run, load_run, model_from_weights, prepare_run_dir, run_lock,
                   save_tensors, weights_of, write_json)

__all__ = ["import_pth", "REFERENCE_KEYS"]

#: our weight name -> the reference state-dict key
REFERENCE_KEYS = {"w_in": "rnn.weight_ih_l0", "w_rec": "rnn.weight_hh_l0", "w_out": "fc.weight"}
_BIAS_KEYS = ("rnn.bias_ih_l0", "rnn.bias_hh_l0", "fc.bias")


def read_reference_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The three matrices of a reference checkpoint, by our names; one-line errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message suggests retrying the unsafe way; say only what was found
        found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(exc), re.S)
        detail = " ".join(found.group(1).split()) if found else type(exc).__name__
        raise RunDirError(f"{path} was refused: it holds more than tensors and plain containers ({detail}), so "
                          f"unpickling it could run code; hmmrnn never loads such files") from None
    except Exception as exc:  # truncated or not a torch file at all
        raise RunDirError(f"{path} is not a readable PyTorch checkpoint: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RunDirError(f"{path} holds a {type(state).__name__}, not a state dict")
    missing = [key for key in REFERENCE_KEYS.values() if key not in state]
    if missing:
        raise RunDirError(f"{path} lacks {', '.join(missing)} (found {', '.join(sorted(map(str, state))) or 'nothing'})")
    for key in (*REFERENCE_KEYS.values(), *(k for k in _BIAS_KEYS if k in state)):
        _check_declared_size(path, key, state[key])
    for key in _BIAS_KEYS:
        if key in state and torch.count_nonzero(state[key]) > 0:
            raise RunDirError(f"{path} has a non-zero {key}; the paper's networks (and hmmrnn's) have no biases")
    return {ours: state[theirs].detach().to(torch.float32).clone() for ours, theirs in REFERENCE_KEYS.items()}


def _check_declared_size(path: Path, key: str, tensor: object) -> None:
    """Refuse a tensor whose declared size its file does not back (a small storage viewed with
    zero strides, which would become gigabytes when copied) or that would not fit in memory,
    before anything is copied."""
    if not isinstance(tensor, torch.Tensor):
        raise RunDirError(f"{path}: {key} is a {type(tensor).__name__}, not a tensor")
    declared = tensor.numel() * 4  # as float32
    stored = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1) * 4
    if tensor.numel() > 0 and stored < declared:
        raise RunDirError(f"{path}: {key} declares shape {tuple(tensor.shape)} ({gigabytes(declared)}) but the file "
                          f"holds {gigabytes(stored)} of data for it; refusing to expand it")
    available = available_memory()
    if declared > available:
        raise RunDirError(f"{path}: {key} declares shape {tuple(tensor.shape)}, {gigabytes(declared)}; "
                          f"{gigabytes(available)} of memory are available")


def import_pth(path: str | Path, *, preset: str | None = None, hmm: HMM | None = None, out: str | Path | None = None,
               force: bool = False) -> Run:
    """Turn a reference checkpoint into a run folder (config, ``model.safetensors``, status).

    The sizes H, d and K come from the matrices; the HMM and the training settings recorded in the
    config from ``preset`` (or ``hmm``). The run's status is ``imported`` with the source path.
    """
    path = Path(path)
    weights = read_reference_state_dict(path)
    hidden, input_dim = weights["w_in"].shape
    config = make_config(preset, recipe="paper", hmm=hmm, hidden=int(hidden), noise_dim=int(input_dim))
    if weights["w_out"].shape[0] != config.hmm.n_outputs:
        raise RunDirError(f"{path}: fc.weight has {weights['w_out'].shape[0]} outputs but the HMM of "
                          f"{preset or config.hmm.name} emits {config.hmm.n_outputs} symbols")
    model = model_from_weights(config.model, weights, str(path))  # checks shapes and finiteness
    out = Path(out) if out is not None else Path("runs") / f"{path.stem}-imported"
    with run_lock(out, create=True):
        run_dir = prepare_run_dir(out, force=force)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
        save_tensors(run_dir / WEIGHTS_FILE, weights_of(model), {"source": str(path.resolve())})
        write_json(run_dir / STATUS_FILE, {"state": "imported", "source": str(path.resolve()), "epoch": 0})
        return load_run(run_dir)
