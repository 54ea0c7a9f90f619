"""Which HMM windows the network's samples fail to match: the verdict's paired matched-distance
excess, split by the kind of HMM window.

    python benchmarks/matched_excess.py RUN [--checkpoint FILE] [--length T] [--n 5000] [--seed 0]

The check pairs two matchings by the sequences of HMM set 1: each one's distance to its partner
among the network's windows and among a second HMM set's. Their difference, averaged, is the excess
the verdict tests. Here each set-1 window is classed by its one-step returns A → B → A (most of them
the HMM's emission noise) and its other changes (switches of the hidden state), and the table gives
each class's share of the windows, its mean excess and its contribution to the total. The network's
windows are cut from a long run as the verdict cuts them (after 1,000 steps, every T + 10 steps);
the HMM's start from its stationary distribution. One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import hmmrnn
from hmmrnn import _matching


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--length", type=int, default=None, help="window length [the run's training T]")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    length, n = args.length or run.config.train.seq_len, args.n
    stationary = run.hmm.stationary()
    chains = 250
    per_chain = -(-n // chains)
    symbols, _ = run.model.long_run(chains, 1000 + per_chain * (length + 10), seed=args.seed)
    network = np.concatenate([symbols[:, s: s + length]
                              for s in range(1000, symbols.shape[1] - length + 1, length + 10)])[:n]
    first, third = (stationary.sample(n, length, seed=args.seed + k)[0] for k in (1, 3))
    to_network = _matching.matched_distances(first, network, run.hmm.n_outputs)
    to_hmm = _matching.matched_distances(first, third, run.hmm.n_outputs)
    excess = to_network.row_distances - to_hmm.row_distances
    changes = (np.diff(first, axis=1) != 0).sum(1)
    returns = ((first[:, 1:-1] != first[:, :-2]) & (first[:, 2:] == first[:, :-2])).sum(1)
    others = changes - 2 * returns
    print(f"paired excess {excess.mean():.4f} (se {excess.std(ddof=1) / np.sqrt(n):.4f}); network returns "
          f"per window {((network[:, 1:-1] != network[:, :-2]) & (network[:, 2:] == network[:, :-2])).sum(1).mean():.3f}"
          f", HMM {returns.mean():.3f}")
    print("other changes  returns  share   mean excess  contribution")
    for other in range(int(others.max()) + 1):
        for back in range(int(returns.max()) + 1):
            chosen = (others == other) & (returns == back)
            if chosen.sum() >= 20:
                print(f"{other:13d}  {back:7d}  {chosen.mean():.3f}  {excess[chosen].mean():+11.3f}  "
                      f"{excess[chosen].sum() / n:+.4f}")


if __name__ == "__main__":
    main()
