"""The run directory: config, weights, history, status and checkpoints, all written atomically.

::

    runs/<name>/
      config.json          RunConfig: HMM matrices, model sizes, training settings, seed, versions
      model.safetensors    best weights by validation loss (written at every improvement)
      final.safetensors    weights after the last epoch (or the last finite weights if training diverged)
      history.csv          epoch, train_loss, val_loss, seconds, lr (+ the periodic verdict: emulates,
                           transition_max_abs_diff, loglik_gap, matched_distance of the training window, growth
                           of the long run, long_loglik_gap of the longest stationary window)
      status.json          state (running / completed / diverged / interrupted / failed), epochs done,
                           best epoch and loss, a message
      checkpoints/epoch_00010.safetensors   full training state every k epochs
      figures/loss.png, loss.pdf            training and validation loss per epoch
      attempts.json, attempts/attempt_<k>/  runs abandoned as stuck and restarted (--retries)

Every file is written to a temporary sibling and renamed into place, so a killed process never
leaves a half-written file. Weights are safetensors; nothing is ever unpickled. One process at a
time writes a folder (``run_lock``). The promises and how they are kept: docs/run-folders.md.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors_bytes

from ._memory import available_memory, gigabytes
from .config import ModelConfig, RunConfig, renamed_keys
from .errors import ConfigError, HmmrnnError, RunDirError
from .hmm import HMM
from .rnn import NoiseRNN

__all__ = ["Run", "load_run", "run_lock", "CONFIG_FILE", "WEIGHTS_FILE", "FINAL_WEIGHTS_FILE", "HISTORY_FILE",
           "STATUS_FILE", "CHECKPOINT_DIR"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FINAL_WEIGHTS_FILE = "final.safetensors"
HISTORY_FILE = "history.csv"
STATUS_FILE = "status.json"
CHECKPOINT_DIR = "checkpoints"
ATTEMPTS_FILE = "attempts.json"
#: Sub-folder of a run that holds its state pretraining, itself a run folder (``hmmrnn._pretrain``).
PRETRAIN_DIR = "pretrain"
FIGURES_DIR = "figures"
LOCK_FILE = ".hmmrnn.lock"
METRICS_FILE = "metrics.json"
LINEAGE_FILE = "lineage.json"
"""The stages of a model trained in a chain of fine-tunes (``hmmrnn.zoo``): a list of {run, preset,
epochs: [first, last], train: the settings that changed}."""
REPORT_FILE = "report.html"
ANALYSIS_DIR = "analysis"
"""The folder of a run that holds the analyses' JSON and figures."""
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds", "lr", "emulates", "transition_max_abs_diff",
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


# --------------------------------------------------------------------------- one writer per folder

_held: dict[Path, list] = {}  # folder -> [fd, depth]: locks this process holds (re-entrant)


@contextmanager
def run_lock(folder: str | Path, *, create: bool = False) -> Iterator[Path]:
    """Hold the advisory write lock of ``folder`` for the ``with`` block (``create``: make the folder
    if it is missing; otherwise a missing folder is a ``RunDirError``).

    One process at a time may write a run (or sweep) folder: the lock is an exclusive ``flock`` on
    ``folder/.hmmrnn.lock``, which holds the owner's PID; a second writer gets a
    ``RunDirError`` naming it. The kernel drops the lock when its process ends, however it
    ends (SIGKILL included), so a stale lock file never blocks anyone. Re-entrant within a process.
    A folder this call created is removed again if the block fails and leaves it empty.
    """
    folder = Path(folder).absolute()
    if folder in _held:
        _held[folder][1] += 1
        try:
            yield folder
        finally:
            _held[folder][1] -= 1
        return
    if not create and not folder.is_dir():
        raise RunDirError(f"run folder not found: {folder}")
    created = _make_folder(folder)
    try:
        fd = _acquire(folder)
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    _held[folder] = [fd, 1]
    try:
        yield folder
    except BaseException:
        _release(folder)
        _remove_if_empty(folder, created)
        raise
    else:
        _release(folder)


def _make_folder(folder: Path) -> bool:
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"not a folder: {folder}")
    if folder.is_dir():
        return False
    parent = next((p for p in folder.parents if p.exists()), Path("/"))
    if not parent.is_dir():
        raise RunDirError(f"cannot create folder {folder}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"output folder is not writable: {parent}")
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise RunDirError(f"cannot create folder {folder}: {exc.strerror}") from None
    return True


def _acquire(folder: Path) -> int:
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        except OSError as exc:
            raise RunDirError(f"cannot lock {folder}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(f"{folder} is in use by another hmmrnn process (PID {holder}); "
                              "wait for it to finish or stop it") from None
        try:  # the holder before us may have removed the file while we waited to open it
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _release(folder: Path) -> None:
    fd, _ = _held.pop(folder)
    (folder / LOCK_FILE).unlink(missing_ok=True)  # while still holding it: see the inode check above
    os.close(fd)


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


# --------------------------------------------------------------------------- tensors


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically save a flat name -> tensor mapping as safetensors."""
    data = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write_bytes(path, save_safetensors_bytes(data, metadata=metadata))


def tensor_section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries named ``prefix.NAME`` of a flat checkpoint mapping, keyed by NAME."""
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def judged_weights(checkpoint: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint's run judged and kept: the moving average (``average.NAME``) while
    ``weight_average`` kept one, else the trained weights (``model.NAME``); empty for another file."""
    return tensor_section(checkpoint, "average") or tensor_section(checkpoint, "model")


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; a missing or corrupt file raises ``RunDirError``."""
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
    """The model's three matrices (and its learned h_0, if any) by name (detached copies on the CPU)."""
    return {name: getattr(model, name).detach().to("cpu").clone() for name in model.weight_names}


def check_weights(weights: dict[str, torch.Tensor], model: ModelConfig, source: str) -> None:
    """Names, shapes and finiteness of ``weights`` against ``model``; errors name the mismatch."""
    expected = {"w_in": (model.hidden, model.noise_dim), "w_rec": (model.hidden, model.hidden),
                "w_out": (model.n_outputs, model.hidden)}
    if model.initial_state == "learned":
        expected["h0"] = (model.hidden,)
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
    model = NoiseRNN(config.hidden, config.noise_dim, config.n_outputs, initial_state=config.initial_state,
                     burn_in=config.burn_in, seed=None)
    with torch.no_grad():
        for name in model.weight_names:
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


#: history.csv columns of earlier versions, under today's names
_OLD_HISTORY_NAMES = {"transition_diff": "transition_max_abs_diff"}


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of ``history.csv`` with numbers parsed (None where an epoch had no validation or verdict)."""
    if not Path(path).exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            row = renamed_keys(row, _OLD_HISTORY_NAMES)  # runs of earlier versions
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


def own_stages_start(run_dir: Path) -> tuple[int, list[dict]]:
    """The first epoch of the last unbroken run of stages trained on the run's final preset (1 for
    a run without ``lineage.json``), and the earlier stages, trained on other HMMs, that it started
    from (in order; empty without a lineage)."""
    path = Path(run_dir) / LINEAGE_FILE
    if not path.exists():
        return 1, []
    stages = read_json(path)
    try:
        first = len(stages) - 1
        while first > 0 and stages[first - 1].get("preset") == stages[-1].get("preset"):
            first -= 1
        return int(stages[first]["epochs"][0]), stages[:first]
    except (TypeError, KeyError, IndexError, AttributeError, ValueError):
        raise RunDirError(f"{path} is not a list of stages with presets and epochs") from None


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{epoch:05d}.safetensors"


# --------------------------------------------------------------------------- run directory


def check_run_files(run_dir: Path) -> None:
    """Refuse a run folder in which a file that a run writes is something else (a folder, a link to
    one, ...), before anything is written."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, FINAL_WEIGHTS_FILE, HISTORY_FILE, STATUS_FILE, ATTEMPTS_FILE,
                 METRICS_FILE, REPORT_FILE):
        path = run_dir / name
        if path.exists() and not path.is_file():
            raise RunDirError(f"{path} should be a file but is not; move it away first")
    for name in (CHECKPOINT_DIR, FIGURES_DIR, ANALYSIS_DIR):
        path = run_dir / name
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path} should be a folder but is not; move it away first")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunDirError(f"run folder is not writable: {run_dir}")


def memory_estimate(config: RunConfig, training: bool = True) -> int:
    """Bytes a run of ``config`` needs, roughly (float32): the weights, and for training also their
    gradients and Adam moments, the activations of one batch kept for backpropagation
    (B T (4H + d + 4K)), the one-hot target sets (n T K), the batch's transport plans (3 B²) and
    the HMM's matrices."""
    m, t, s = config.model, config.train, config.hmm.n_states
    weights = m.hidden * (m.hidden + m.noise_dim + m.n_outputs)
    total = weights + s * (s + config.hmm.n_outputs)
    if training:
        total += 3 * weights + t.batch_size * t.seq_len * (4 * m.hidden + m.noise_dim + 4 * m.n_outputs)
        total += t.num_seq * t.seq_len * m.n_outputs + 3 * t.batch_size ** 2 + t.num_seq * t.seq_len * s
    return 4 * total


def check_memory(config: RunConfig, training: bool = True) -> None:
    """Refuse, before any allocation, a config whose ``memory_estimate`` exceeds the memory
    available now."""
    need, have = memory_estimate(config, training), available_memory()
    if need > have:
        what = "training" if training else "loading"
        raise ConfigError(f"{what} this model needs about {gigabytes(need)} of memory (H = {config.model.hidden}, "
                          f"d = {config.model.noise_dim}, {config.hmm.n_states} HMM states, batch "
                          f"{config.train.batch_size}, T = {config.train.seq_len}); {gigabytes(have)} are available")


def prepare_run_dir(out: Path, *, force: bool) -> Path:
    """Make the folder ``out`` ready for a new run. The caller holds ``run_lock(out, create=True)``,
    which checked the path and created the folder.

    A folder holding anything but the lock is refused unless ``force`` (then the files of an
    earlier run are removed); nothing is deleted when the check fails.
    """
    out = Path(out)
    if any(p.name != LOCK_FILE for p in out.iterdir()):
        if not force:
            raise RunDirError(f"output folder already exists and is not empty: {out} "
                              "(use --resume to continue it or --force to overwrite it)")
        _remove_run_files(out)
    return out


def _remove_run_files(out: Path) -> None:
    """Remove everything an earlier run, its evaluation, analyses and report wrote into ``out``, and
    nothing else (a user's own files stay)."""
    for name in (CONFIG_FILE, WEIGHTS_FILE, FINAL_WEIGHTS_FILE, HISTORY_FILE, STATUS_FILE, ATTEMPTS_FILE,
                 METRICS_FILE, REPORT_FILE):
        (out / name).unlink(missing_ok=True)
    for folder in ("attempts", PRETRAIN_DIR):
        if (out / folder).is_dir():
            shutil.rmtree(out / folder)
    for _, path in checkpoint_paths(out):
        path.unlink()
    for folder, patterns in ((out / FIGURES_DIR, ("loss.*", "evaluation_*")), (out / ANALYSIS_DIR, ("*",))):
        for pattern in patterns:
            for path in folder.glob(pattern):
                if path.is_file() and path.suffix in (".png", ".pdf", ".json"):
                    path.unlink()
    for folder in (out / CHECKPOINT_DIR, out / FIGURES_DIR, out / ANALYSIS_DIR):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@dataclass
class Run:
    """A loaded run directory.

    Attributes
    ----------
    path : the folder.
    config : the resolved ``RunConfig``.
    model : ``NoiseRNN`` with the loaded weights (best by validation unless asked otherwise).
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
                f"noise_dim={self.config.model.noise_dim}, epochs={len(self.history)}, "
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

    Returns
    -------
    The ``Run``; a missing, corrupt or mismatched file raises ``RunDirError``.
    """
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunDirError(f"run folder not found: {run_dir}")
    config = load_config(run_dir)
    check_memory(config, training=False)
    source = {"best": run_dir / WEIGHTS_FILE, "final": run_dir / FINAL_WEIGHTS_FILE}.get(weights, Path(weights))
    tensors, _ = load_tensors(source)
    if weights not in ("best", "final"):
        tensors = judged_weights(tensors) or tensors
    model = model_from_weights(config.model, tensors, str(source))
    status = read_json(run_dir / STATUS_FILE) if (run_dir / STATUS_FILE).exists() else {}
    return Run(run_dir, config, model, read_history(run_dir / HISTORY_FILE), status, source)
