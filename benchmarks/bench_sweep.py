"""Throughput of the local sweep backend: cells per hour for a given split of the cores.

    python benchmarks/bench_sweep.py --workers 2 --threads 1 [--epochs 5] [--cells 4] [--out DIR]
    python benchmarks/bench_sweep.py --workers 1 --threads 2

Each cell is ``linear3`` at H = 150, d = 100 with the default recipe but a fixed number of epochs
(no early stop, so every cell does the same work), then evaluated as ``hmmrnn sweep`` does it
(N = 5000, matched distance, EM re-fit). Prints the wall time, cells per hour and the mean training
seconds per epoch inside the cells. Run the splits one after the other on an otherwise idle machine
and compare them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from hmmrnn.sweep import SweepSpec, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cells", type=int, default=4, help="seeds 0..cells-1")
    parser.add_argument("--preset", default="linear3")
    parser.add_argument("--out", default="benchmarks/runs/sweep_bench")
    args = parser.parse_args()
    out = Path(args.out) / f"w{args.workers}-t{args.threads}"
    if out.exists():
        shutil.rmtree(out)
    spec = SweepSpec(presets=(args.preset,), seeds=tuple(range(args.cells)),
                     overrides={"epochs": args.epochs, "early_stop": False})
    start = time.perf_counter()
    records = run_sweep(spec, out, backend="local", workers=args.workers, threads=args.threads, progress=False)
    wall = time.perf_counter() - start
    done = [r for r in records if r["status"] == "done"]
    per_epoch = sum(r["train_seconds"] for r in done) / max(sum(r["epochs"] for r in done), 1)
    result = {"preset": args.preset, "cells": len(records), "done": len(done), "workers": args.workers,
              "threads": args.threads, "epochs": args.epochs, "wall_seconds": round(wall, 1),
              "cells_per_hour": round(3600 * len(done) / wall, 1), "seconds_per_epoch_in_cell": round(per_epoch, 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
