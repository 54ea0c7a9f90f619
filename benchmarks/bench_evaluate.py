"""Wall time of a full evaluation (N = 5000): training window with EM re-fit and matched distance,
the long run (200 chains x 10,000 steps) and stationary windows of T, 100 and 300, each with its
matched distance. Target: <= 60 s on the 2-core CPU.

    python benchmarks/bench_evaluate.py [--models linear3,linear2] [--threads 2] [--n 5000]

Runs each zoo model twice (the second run reuses nothing: a fresh process state is not needed, the
only cache is the HMM-vs-HMM matching, which the second run hits) and prints one JSON line each.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import hmmrnn
from hmmrnn import evaluation
from hmmrnn.zoo import ZOO_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="linear3,linear2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        run = hmmrnn.load_run(ZOO_DIR / name)
        for attempt in ("cold", "warm"):
            if attempt == "cold":
                evaluation._BASELINES.clear()
            started = time.perf_counter()
            result = hmmrnn.evaluate(run, n=args.n, seed=0, save=False, figures=False)
            seconds = time.perf_counter() - started
            print(json.dumps({"model": name, "n": args.n, "seq_len": run.config.train.seq_len, "cache": attempt,
                              "threads": args.threads, "seconds": round(seconds, 1), "verdict": result.verdict,
                              "windows": [w.name for w in result.windows]}), flush=True)


if __name__ == "__main__":
    main()
