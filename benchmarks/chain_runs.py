"""Join a chain of fine-tunes into one run folder (the maintainers' step behind a zoo model trained in stages).

    python benchmarks/chain_runs.py OUT RUN1:E1 RUN2:E2 ... RUNn:En [--every 20]

RUN1 trained from scratch; each later RUNi started (``init_weights``) from the weights of RUN(i-1)'s
checkpoint at epoch E(i-1) — checked tensor by tensor, not by path — and is cut at its epoch Ei. OUT
gets: ``config.json`` of RUNn (``init_weights`` cleared: the chain replaces it), ``lineage.json`` (per
stage: the run, its preset (a chain may cross HMMs: the zoo's ``cyclic4`` began as ``fully3``), its
epochs in the chain, the training settings that change along the chain and the package versions),
``history.csv``
(the stages' rows up to their cut, epochs counted along the chain), the weights-only checkpoints at
every ``--every``-th chain epoch and at the end, and RUNn's epoch-En weights as ``model.safetensors``
and ``final.safetensors``. Evaluate OUT afterwards (``hmmrnn evaluate OUT``): nothing of the runs'
own verdicts is copied.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from hmmrnn.errors import RunDirError
from hmmrnn.runs import (CHECKPOINT_DIR, CONFIG_FILE, FINAL_WEIGHTS_FILE, HISTORY_FILE, LINEAGE_FILE, STATUS_FILE,
                         WEIGHTS_FILE, checkpoint_path, load_tensors, read_history, read_json, save_tensors, tensor_section,
                         write_history, write_json)


def stage_weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    return tensor_section(load_tensors(checkpoint_path(run, epoch))[0], "model")


def join(out: Path, stages: list[tuple[Path, int]], every: int) -> None:
    first = read_json(stages[0][0] / CONFIG_FILE)
    if first["train"].get("init_weights"):
        raise RunDirError(f"{stages[0][0]} starts from {first['train']['init_weights']}, not from scratch")
    configs = [read_json(run / CONFIG_FILE) for run, _ in stages]
    for (previous, previous_cut), (run, _), config in zip(stages, stages[1:], configs[1:]):
        if not config["train"].get("init_weights"):
            raise RunDirError(f"{run} starts from scratch, not from {previous} epoch {previous_cut}")
        start_file = load_tensors(Path(config["train"]["init_weights"]))[0]
        start = tensor_section(start_file, "model") or start_file  # a checkpoint or a weights file
        end = stage_weights(previous, previous_cut)
        if set(start) != set(end) or not all(torch.equal(start[k], end[k]) for k in end):
            raise RunDirError(f"{run} did not start from {previous} epoch {previous_cut}")
    if out.exists():
        raise RunDirError(f"{out} already exists")
    building = out.with_name(f".{out.name}.partial")  # renamed to ``out`` once complete
    shutil.rmtree(building, ignore_errors=True)
    (building / CHECKPOINT_DIR).mkdir(parents=True)
    lineage, history, offset = [], [], 0
    for i, ((run, cut), config) in enumerate(zip(stages, configs)):
        lineage.append({"run": str(run), "preset": config["preset"], "epochs": [offset + 1, offset + cut],
                        "train": config["train"], "versions": config.get("versions", {})})
        history += [{**row, "epoch": offset + int(row["epoch"])} for row in read_history(run / HISTORY_FILE)
                    if int(row["epoch"]) <= cut]
        for epoch in range(1, cut + 1):
            chain_epoch = offset + epoch
            if (chain_epoch % every == 0 or (i == len(stages) - 1 and epoch == cut)) and \
                    checkpoint_path(run, epoch).exists():
                save_tensors(building / CHECKPOINT_DIR / checkpoint_path(building, chain_epoch).name,
                             {f"model.{k}": v for k, v in stage_weights(run, epoch).items()}, {"epoch": str(chain_epoch)})
        offset += cut
    varying = {k for k in first["train"] if len({repr(stage["train"].get(k)) for stage in lineage}) > 1}
    for stage in lineage:  # only the settings that change along the chain; config.json has the rest
        stage["train"] = {k: v for k, v in stage["train"].items() if k in varying and k != "init_weights"}
    config = configs[-1]
    config["train"]["init_weights"] = ""
    write_json(building / CONFIG_FILE, config)
    write_json(building / LINEAGE_FILE, lineage)
    write_history(building / HISTORY_FILE, history)
    final = stage_weights(*stages[-1])
    save_tensors(building / WEIGHTS_FILE, final)
    save_tensors(building / FINAL_WEIGHTS_FILE, final)
    write_json(building / STATUS_FILE, {"state": "completed", "epoch": offset, "best_epoch": offset,
                                        "stages": len(stages)})
    building.rename(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("stages", nargs="+", help="RUN:EPOCH, the first from scratch")
    parser.add_argument("--every", type=int, default=20, help="keep the checkpoints at every k-th chain epoch")
    args = parser.parse_args()
    stages = [(Path(s.rsplit(":", 1)[0]), int(s.rsplit(":", 1)[1])) for s in args.stages]
    join(args.out, stages, args.every)
    print(f"{args.out}: {sum(c for _, c in stages)} epochs in {len(stages)} stages")


if __name__ == "__main__":
    main()
