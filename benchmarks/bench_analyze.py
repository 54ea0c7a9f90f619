"""Time and peak memory of each analysis of `hmmrnn analyze` on one trained run, each in its own process.

    python benchmarks/bench_analyze.py RUN_DIR [--threads 2] [--only NAME,...]

Runs ``hmmrnn analyze RUN_DIR --only NAME`` for every analysis in a fresh process (so the peak
RSS is that analysis's own, and the shared PCA basis is recomputed each time, as a user running
one analysis would), then the whole set in one process. Prints a table. Target (dynamics issue):
the whole set in ≤ 2 minutes for an H = 150, d = 100 model on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from hmmrnn.analysis import ANALYSES


def _run(run_dir: str, only: str, threads: int) -> tuple[float, float, str]:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    code = ("import resource, sys, torch\n"
            f"torch.set_num_threads({threads})\n"
            "from hmmrnn.cli import main\n"
            f"sys.argv = ['hmmrnn', 'analyze', {run_dir!r}, '--only', {only!r}, '-q']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    peak = float(next(line.split()[1] for line in lines if line.startswith("PEAK")))
    summary = " | ".join(line for line in lines if not line.startswith(("PEAK", "wrote")))
    return seconds, peak, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=",".join(ANALYSES))
    args = parser.parse_args()
    names = args.only.split(",")
    print("| analysis | wall time (process) | peak RSS | result |\n|---|---|---|---|")
    for name in names:
        seconds, peak, summary = _run(args.run_dir, name, args.threads)
        print(f"| {name} | {seconds:.1f} s | {peak:.2f} GB | {summary} |", flush=True)
    seconds, peak, _ = _run(args.run_dir, ",".join(names), args.threads)
    print(f"| all, one process | {seconds:.1f} s | {peak:.2f} GB | |")


if __name__ == "__main__":
    main()
