"""Branch a staged run from an unstaged run's checkpoint, without re-training the first stage.

    python benchmarks/stage_from.py RUN EPOCH OUT --refine 'divergence_estimator=split,...'
    hmmrnn train --resume OUT --threads 1

A staged run (``refine_from = E``) trains its first E epochs as the same run without a
stage (tests/test_train.py), so a run that has passed epoch E already holds them: OUT receives RUN's
config with ``refine_from = E`` and ``refine`` set, its checkpoints up to E, its history to E and its
best weights, and ``--resume`` continues it as if it had been started staged. The wall time of the
staged run is RUN's time to epoch E (``history.csv``'s seconds) plus OUT's after it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from hmmrnn.config import RunConfig
from hmmrnn.runs import load_tensors, save_tensors, tensor_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("epoch", type=int)
    parser.add_argument("out")
    parser.add_argument("--refine", required=True, help="the second stage's KEY=VALUE,... settings")
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    checkpoint = run / "checkpoints" / f"epoch_{args.epoch:05d}.safetensors"
    if not checkpoint.is_file():
        raise SystemExit(f"no checkpoint {checkpoint}")
    if out.exists():
        raise SystemExit(f"{out} exists")
    data = json.loads((run / "config.json").read_text())
    data["train"].update(refine_from=args.epoch, refine=args.refine)
    RunConfig.from_dict(data)  # validates the stage's settings
    (out / "checkpoints").mkdir(parents=True)
    for path in sorted((run / "checkpoints").glob("epoch_*.safetensors")):
        if int(path.stem.split("_")[1]) <= args.epoch:
            shutil.copy2(path, out / "checkpoints" / path.name)
    lines = (run / "history.csv").read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[0]) <= args.epoch]
    (out / "history.csv").write_text("\n".join(kept) + "\n")
    tensors, meta = load_tensors(checkpoint)  # RUN's model.safetensors may be younger than epoch E
    best = tensor_section(tensors, "best") or tensor_section(tensors, "model")
    save_tensors(out / "model.safetensors", best, {"epoch": meta["best_epoch"]})
    (out / "config.json").write_text(json.dumps(data, indent=2))
    (out / "status.json").write_text(json.dumps({"state": "interrupted", "epoch": args.epoch}))
    seconds = sum(float(line.split(",")[3]) for line in kept[1:])
    print(f"{out}: branched at epoch {args.epoch} ({seconds / 60:.1f} min of epochs in {run}); "
          f"continue with: hmmrnn train --resume {out}")


if __name__ == "__main__":
    main()
