"""Does `--threads 1` keep a command on one core? CPU time / wall time of each command in a child
process, with --threads 1 and with every core, torch and numba both busy (training: the Sinkhorn
kernels; evaluation: the matched distances).

    python benchmarks/bench_threads.py [--out benchmarks/runs/threads]

Target (issue 15): CPU time / wall <= 1.1 at --threads 1. Run it with the machine otherwise idle:
contention lowers both ratios and would make the check pass for the wrong reason.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _measure(command: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TQDM_DISABLE": "1"})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cpu_per_wall": round(cpu / wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/runs/threads")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    hmmrnn = [sys.executable, "-m", "hmmrnn"]
    subprocess.run([*hmmrnn, "zoo", "get", "linear3", "--out", str(out / "zoo")], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for threads in ("1", str(os.cpu_count())):
        train = [*hmmrnn, "train", "--preset", "linear3", "--recipe", "paper", "--epochs", "3", "--val-every", "1",
                 "--num-seq", "6000", "--batch-size", "1000", "--out", str(out / f"train{threads}"), "--no-evaluate", "-q", "--force",
                 "--threads", threads]
        evaluate = [*hmmrnn, "evaluate", str(out / "zoo"), "--n", "3000", "--no-refit", "--threads", threads]
        for name, command in (("train (3 epochs, 2,000 x 30 per epoch)", train), ("evaluate (N = 3000)", evaluate)):
            row = {"command": name, "threads": threads, **_measure(command)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    (out / "threads.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
