"""A network's switch rate by the age of its chains, against the HMM's.

    python benchmarks/switch_rate_by_age.py RUN [--checkpoint FILE]

2000 chains of 3000 steps from the network's initial state (after its burn-in, for the stationary
start); the share of steps whose symbol differs from the previous one, in age bands, next to the
stationary HMM's. One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import hmmrnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    chains, length = 2000, 3000
    switches = np.diff(run.model.sample(chains, length, seed=7), axis=1) != 0
    reference = (np.diff(run.config.hmm.stationary().sample(chains, length, seed=8)[0], axis=1) != 0).mean()
    for start, stop in [(0, 30), (30, 100), (100, 300), (300, 1000), (1000, 2000), (2000, length - 1)]:
        rate = switches[:, start:stop].mean()
        print(f"ages {start:4d}-{stop:4d}: switch rate {rate:.4f} ({100 * (rate / reference - 1):+.1f} % against the "
              f"HMM's {reference:.4f})")


if __name__ == "__main__":
    main()
