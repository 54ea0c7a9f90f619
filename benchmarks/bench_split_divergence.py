"""The split estimate's cost: its within-model term S(x₁, x₂) solved once with both sides' gradients
(the package) against the two one-sided solves it replaced, in one process.

    python benchmarks/bench_split_divergence.py [--preset fully3] [--batch 4096] [--length 30] [--threads 1]

x and y are stationary HMM windows (x stands in for a model batch, with a gradient). The earlier
form solved S(x₁, x₂ held fixed) and S(x₂, x₁ held fixed) and kept the second one's gradient only
(``forward + backward − backward.detach()``); both give the same value and gradient, which the script
prints beside each time. One warm-up call first (numba kernels, the targets' cached problems), then
the two forms alternate twice.
"""

from __future__ import annotations

import argparse
import time

import torch

from hmmrnn import preset
from hmmrnn._sinkhorn import OneHotSinkhornDivergence, SplitBatchDivergence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fully3")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hmm = preset(args.preset).hmm.stationary()

    def windows(seed: int) -> torch.Tensor:
        obs = hmm.sample(args.batch, args.length, seed=seed)[0]
        return torch.nn.functional.one_hot(torch.from_numpy(obs), hmm.n_outputs).float().reshape(args.batch, -1)

    y, x = windows(1), windows(2)
    cached, fresh = OneHotSinkhornDivergence(hmm.n_outputs), OneHotSinkhornDivergence(hmm.n_outputs, cache_targets=False)
    split = SplitBatchDivergence(cached, fresh)

    def two_solves(batch: torch.Tensor) -> torch.Tensor:
        x1, x2, y1, y2 = batch[0::2], batch[1::2], y[0::2], y[1::2]
        cross = 0.5 * (cached(x1, y1) + cached(x2, y2))
        forward, backward = fresh(x1, x2.detach()), fresh(x2, x1.detach())
        return cross - 0.5 * (forward + backward - backward.detach()) - 0.5 * split._target_term(y1, y2)

    def one_solve(batch: torch.Tensor) -> torch.Tensor:
        return split(batch, y)

    for name, form in [("warm-up", one_solve)] + [("two solves", two_solves), ("one solve", one_solve)] * 2:
        batch = x.clone().requires_grad_(True)
        start = time.perf_counter()
        value = form(batch)
        value.backward()
        seconds = time.perf_counter() - start
        print(f"{name:10s} {seconds:6.2f} s  value {value.item():.6f}  |grad| {batch.grad.norm().item():.6f}")


if __name__ == "__main__":
    main()
