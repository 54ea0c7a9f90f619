"""The run directory: config, weights, history, status and checkpoints, all written atomically.

::

    runs/<name>/
      config.json          RunConfig: HMM matrices, model sizes, training settings, seed, versions
      model.safetensors    best weights by validation loss (written at every improvement)
      final.safetensors    weights after the last epoch (or the last finite weights if training diverged)
      history.csv          epoch, train_loss, val_loss, seconds, lr (+ the periodic verdict: emulates,
                           transition_diff, loglik_gap, matched_distance of the training window, growth
                           of the long run, long_loglik_gap of the longest stationary window)
      status.json          state (running / completed / diverged), epochs done, best epoch and loss
      checkpoints/epoch_00010.safetensors   full training state every k epochs
      figures/loss.png, loss.pdf            training and validation loss per epoch
      attempts.json, attempts/attempt_<k>/  runs abandoned as stuck and restarted (--retries)

Every file is written to a temporary sibling and renamed into place, so a killed process never
leaves a half-written file. Weights are safetensors; nothing is ever unpickled.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors_bytes

from .config import ModelConfig, RunConfig
from .errors import HmmrnnError, RunDirError
from .hmm import HMM
from .rnn import WEIGHT_NAMES, NoiseRNN

__all__ = ["Run", "load_run", "CONFIG_FILE", "WEIGHTS_FILE", "FINAL_WEIGHTS_FILE", "HISTORY_FILE",
           "STATUS_FILE", "CHECKPOINT_DIR"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FINAL_WEIGHTS_FILE = "final.safetensors"
HISTORY_FILE = "history.csv"
STATUS_FILE = "status.json"
CHECKPOINT_DIR = "checkpoints"
ATTEMPTS_FILE = "attempts.json"
FIGURES_DIR = "figures"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds", "lr", "emulates", "transition_diff",
                   "loglik_gap", "matched_distance", "growth", "long_loglik_gap")
_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)\.safetensors$")
_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------- atomic IO


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_ready(obj: Any) -> Any:
    """NaN/inf become None; numpy scalars and arrays, tuples and tensors become JSON values."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_ready(obj.detach().cpu().numpy())
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"missing file: {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from None


# --------------------------------------------------------------------------- tensors


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically save a flat name -> tensor mapping as safetensors."""
    data = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write_bytes(path, save_safetensors_bytes(data, metadata=metadata))


def tensor_section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries named ``prefix.NAME`` of a flat checkpoint mapping, keyed by NAME."""
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; a missing or corrupt file raises :class:`RunDirError`."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"missing file: {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, ValueError, OSError) as exc:
        raise RunDirError(f"{path} is not a valid safetensors file: {exc}") from None
    return tensors, metadata


def weights_of(model: NoiseRNN) -> dict[str, torch.Tensor]:
    """The model's three matrices by name (detached copies on the CPU)."""
    return {name: getattr(model, name).detach().to("cpu").clone() for name in WEIGHT_NAMES}


def check_weights(weights: dict[str, torch.Tensor], model: ModelConfig, source: str) -> None:
    """Names, shapes and finiteness of ``weights`` against ``model``; errors name the mismatch."""
    expected = {"w_in": (model.hidden, model.input), "w_rec": (model.hidden, model.hidden),
                "w_out": (model.outputs, model.hidden)}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise RunDirError(f"{source}: weight names do not match (missing {missing}, unexpected {extra})")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise RunDirError(f"{source}: {name} has shape {tuple(weights[name].shape)}, config expects {shape}")
        if not torch.isfinite(weights[name]).all():
            raise RunDirError(f"{source}: {name} contains NaN or infinite values")


def model_from_weights(config: ModelConfig, weights: dict[str, torch.Tensor], source: str) -> NoiseRNN:
    check_weights(weights, config, source)
    model = NoiseRNN(config.hidden, config.input, config.outputs, initial_state=config.initial_state,
                     seed=None)
    with torch.no_grad():
        for name in WEIGHT_NAMES:
            getattr(model, name).copy_(weights[name].to(torch.float32))
    return model


# --------------------------------------------------------------------------- history


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_COLUMNS})
    atomic_write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of ``history.csv`` with numbers parsed (None where an epoch had no validation or verdict)."""
    if not Path(path).exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append({"epoch": int(row["epoch"]),
                             **{k: (float(row[k]) if row.get(k) not in ("", None) else None)
                                for k in HISTORY_COLUMNS[1:]}})
            except (KeyError, ValueError) as exc:
                raise RunDirError(f"{path} has a malformed row {row}: {exc}") from None
    return rows


# --------------------------------------------------------------------------- checkpoints


def checkpoint_paths(run_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint in the run, by epoch."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return sorted(found)


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{epoch:05d}.safetensors"


# --------------------------------------------------------------------------- run directory


def prepare_run_dir(out: Path, *, force: bool) -> Path:
    """Check that ``out`` can hold a new run and create it.

    An existing non-empty folder is refused unless ``force`` (then its run files are removed).
    Nothing is created or deleted when a check fails.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output path exists and is not a folder: {out}")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise RunDirError(f"output folder already exists and is not empty: {out} "
                              "(use --resume to continue it or --force to overwrite it)")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise RunDirError(f"cannot create output folder {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"output folder is not writable: {parent}")
    if force and out.is_dir():
        _remove_run_files(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create output folder {out}: {exc.strerror}") from None
    return out


def _remove_run_files(out: Path) -> None:
    for name in (CONFIG_FILE, WEIGHTS_FILE, FINAL_WEIGHTS_FILE, HISTORY_FILE, STATUS_FILE, ATTEMPTS_FILE):
        (out / name).unlink(missing_ok=True)
    if (out / "attempts").is_dir():
        shutil.rmtree(out / "attempts")
    for _, path in checkpoint_paths(out):
        path.unlink()
    for path in (out / FIGURES_DIR).glob("loss.*"):
        path.unlink()


@dataclass
class Run:
    """A loaded run directory.

    Attributes
    ----------
    path : the folder.
    config : the resolved :class:`RunConfig`.
    model : :class:`NoiseRNN` with the loaded weights (best by validation unless asked otherwise).
    history : rows of ``history.csv``.
    status : contents of ``status.json`` (empty if absent).
    weights_file : the safetensors file the model's weights came from.
    """

    path: Path
    config: RunConfig
    model: NoiseRNN
    history: list[dict[str, Any]]
    status: dict[str, Any]
    weights_file: Path | None = None

    @property
    def hmm(self) -> HMM:
        return self.config.hmm

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, hmm={self.hmm.name}, hidden={self.config.model.hidden}, "
                f"input={self.config.model.input}, epochs={len(self.history)}, "
                f"state={self.status.get('state', 'unknown')})")


def load_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        return RunConfig.from_dict(read_json(path))
    except RunDirError:
        raise
    except HmmrnnError as exc:
        raise RunDirError(f"{path}: {exc}") from None


def load_run(path: str | Path, weights: str = "best") -> Run:
    """Rebuild the HMM and the model of a run directory.

    Parameters
    ----------
    path : the run folder.
    weights : ``"best"`` (``model.safetensors``), ``"final"`` (``final.safetensors``) or a path to
        any safetensors file with the three matrices (e.g. a checkpoint).
    """
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunDirError(f"run folder not found: {run_dir}")
    config = load_config(run_dir)
    source = {"best": run_dir / WEIGHTS_FILE, "final": run_dir / FINAL_WEIGHTS_FILE}.get(weights, Path(weights))
    tensors, _ = load_tensors(source)
    if weights not in ("best", "final"):  # a checkpoint stores the model under "model.<name>"
        tensors = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("model.")} or tensors
    model = model_from_weights(config.model, tensors, str(source))
    status = read_json(run_dir / STATUS_FILE) if (run_dir / STATUS_FILE).exists() else {}
    return Run(run_dir, config, model, read_history(run_dir / HISTORY_FILE), status, source)
