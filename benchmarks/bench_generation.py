"""Batched generation from a NoiseRNN: N sequences x T (symbols only).

    python benchmarks/bench_generation.py [--threads 1] [--n 30000] [--length 30]

Target (evaluation issue): 30,000 x 30 with H = 150, d = 100 in <= 2 s; the reference code
(one sequence and one step at a time) needs 23 s on one core of this machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from hmmrnn import NoiseRNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = NoiseRNN(150, 100, 3, seed=0)
    model.sample(100, args.length, seed=0)  # warm up
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        model.sample(args.n, args.length, seed=repeat)
        times.append(time.perf_counter() - start)
    print(f"{args.n} x {args.length}, H=150, d=100, threads={torch.get_num_threads()}: "
          f"best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s over {args.repeats}")


if __name__ == "__main__":
    main()
