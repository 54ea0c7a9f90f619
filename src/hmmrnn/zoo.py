"""Pretrained models shipped with the package: one per preset (H = 150, d = 100), each trained by
this package with its default recipe (how each was trained and judged: ``BENCHMARKS.md``, "Model
zoo").

A zoo entry is a folder ``hmmrnn/zoo_models/<name>/`` with ``config.json``, ``model.safetensors``,
``metrics.json``, ``history.csv`` and ``status.json``, the files of the run it came from, and
``checkpoints/epoch_*.safetensors`` holding only the weights of each checkpoint (no optimizer or
carried states: about 150 KB each instead of 12 MB), enough for the training-evolution analysis.
``get`` copies one into a new run folder that every command reads.

A model trained in a chain of fine-tunes (each run started from the previous one's checkpoint with
other settings) is one entry too: its history and checkpoints are counted along the chain, and
``lineage.json`` lists the stages with their epochs and the settings that changed
(``benchmarks/chain_runs.py`` joins the runs; ``config.json`` holds the last stage's settings).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .config import OLD_NAMES, renamed_keys
from .errors import RunDirError
from .runs import (CHECKPOINT_DIR, CONFIG_FILE, HISTORY_FILE, LINEAGE_FILE, METRICS_FILE, STATUS_FILE, WEIGHTS_FILE, Run,
                   atomic_write_bytes, checkpoint_paths, load_run, load_tensors, prepare_run_dir, read_json, run_lock,
                   save_tensors, tensor_section)

__all__ = ["ZOO_DIR", "list_models", "get", "add"]

#: Where the packaged models live.
ZOO_DIR = Path(__file__).with_name("zoo_models")
#: The files of a zoo entry, copied to and from run folders (the lineage only where there is one).
ENTRY_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, HISTORY_FILE, STATUS_FILE, LINEAGE_FILE)
_ENTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def list_models(zoo_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every entry with its preset, sizes, seed, verdict, training epochs and stages (1 unless trained
    in a chain of fine-tunes), sorted by name."""
    root = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if not (folder / CONFIG_FILE).exists():
            continue
        config, metrics = read_json(folder / CONFIG_FILE), read_json(folder / METRICS_FILE)
        status = read_json(folder / STATUS_FILE)
        entries.append({"name": folder.name, "preset": config.get("preset"), "hidden": config["model"]["hidden"],
                        "noise_dim": renamed_keys(config["model"], OLD_NAMES)["noise_dim"], "seed": config["train"]["seed"],
                        "recipe": config["train"].get("recipe"), "emulates": metrics.get("emulates"),
                        "epochs": status.get("epoch"), "seq_len": config["train"]["seq_len"],
                        "stages": len(read_json(folder / LINEAGE_FILE)) if (folder / LINEAGE_FILE).exists() else 1})
    return entries


def get(name: str, out: str | Path, *, force: bool = False, zoo_dir: str | Path | None = None) -> Run:
    """Copy zoo entry ``name`` into the new run folder ``out`` and load it."""
    root = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    known = [e["name"] for e in list_models(root)]
    if name not in known:  # a name, never a path: only the zoo's own entries can be copied
        raise RunDirError(f"no zoo model {name!r}; available: {', '.join(known) or 'none'}")
    with run_lock(out, create=True):
        run_dir = prepare_run_dir(Path(out), force=force)
        _copy_entry(root / name, run_dir)
        return load_run(run_dir)


def _copy_entry(source: Path, target: Path, weights_only_checkpoints: bool = False) -> None:
    """Copy the entry files that ``source`` has into ``target`` (atomically, one by one), and its
    checkpoints, reduced to their weights with ``weights_only_checkpoints``."""
    for file in ENTRY_FILES:
        if (source / file).exists():
            atomic_write_bytes(target / file, (source / file).read_bytes())
    for epoch, path in checkpoint_paths(source):
        (target / CHECKPOINT_DIR).mkdir(exist_ok=True)
        if weights_only_checkpoints:
            weights = tensor_section(load_tensors(path)[0], "model")
            save_tensors(target / CHECKPOINT_DIR / path.name, {f"model.{k}": v for k, v in weights.items()},
                         {"epoch": str(epoch)})
        else:
            atomic_write_bytes(target / CHECKPOINT_DIR / path.name, path.read_bytes())


def add(run_dir: str | Path, name: str, *, zoo_dir: str | Path | None = None, require_emulation: bool = True) -> Path:
    """Copy a trained and evaluated run into the zoo as ``name`` (the maintainers' step that fills
    the packaged zoo). Refuses a run without metrics.json, and, with ``require_emulation``, one whose
    metrics.json does not say it emulates."""
    run_dir = Path(run_dir)
    load_run(run_dir)  # checks config and weights
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.exists():
        raise RunDirError(f"{run_dir} has no metrics.json; evaluate it first")
    if require_emulation and not read_json(metrics_path).get("emulates"):
        raise RunDirError(f"{run_dir}: its evaluation does not say emulates: yes")
    if not _ENTRY_NAME.fullmatch(name):
        raise RunDirError(f"a zoo name is letters, digits, '-' and '_' (starting with a letter or digit), got {name!r}")
    target = (Path(zoo_dir) if zoo_dir is not None else ZOO_DIR) / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    _copy_entry(run_dir, target, weights_only_checkpoints=True)
    return target
