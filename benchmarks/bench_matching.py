"""Matched Euclidean distance (entropic OT, Euclidean cost, eps = 0.1): time and peak memory.

    python benchmarks/bench_matching.py --n 5000 [--length 30] [--preset linear3] [--overrelaxation 1.7]

Run each N in a fresh process so the peak memory (max RSS) is its own. Targets (evaluation
issue): N = 5,000 in <= 10 s; N = 30,000, T = 30 in <= 5 minutes with <= 4 GB peak memory. The
reference code: 80 s at N = 5,000 and 655 s (2.3 GB) at N = 10,000, T = 30, on one core; about
6-7 hours and 17.7 GB at N = 30,000.
"""

from __future__ import annotations

import argparse
import resource
import time

from hmmrnn import preset
from hmmrnn.metrics import matched_distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--preset", default="linear3")
    parser.add_argument("--overrelaxation", type=float, default=1.7, help="the solver's ω; 1.0 is plain Sinkhorn")
    args = parser.parse_args()
    hmm = preset(args.preset).hmm
    first, _ = hmm.sample(args.n, args.length, seed=1)
    second, _ = hmm.sample(args.n, args.length, seed=2)
    matched_distances(first[:50], second[:50], hmm.n_outputs)  # compile the kernels outside the timing
    start = time.perf_counter()
    result = matched_distances(first, second, hmm.n_outputs, overrelaxation=args.overrelaxation)
    elapsed = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{args.preset} N={args.n} T={args.length} ω={args.overrelaxation}: {elapsed:.1f} s, "
          f"{result.iterations} iterations "
          f"(converged {result.converged}), mean distance {result.distances.mean():.4f}, peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
