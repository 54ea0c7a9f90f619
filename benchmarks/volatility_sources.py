"""Where a network's symbol changes come from, next to the HMM's: emission noise inside a state,
state changes, and the steps in between.

    python benchmarks/volatility_sources.py RUN [--checkpoint FILE] [--chains 2000] [--length 1000]

The network's expected symbol-change rate given its hidden path is exact: o_t and o_t+1 are drawn
independently from p_t = softmax(W_out h_t) and p_t+1, so P(o_t ≠ o_t+1 | h) = 1 − p_t · p_t+1.
Each step is given the region argmax p_t; a step is *settled* when p_t's largest entry is at least
``--settled`` (default: the smallest of the HMM states' largest emission probabilities, minus 0.1)
and *in transit* otherwise. The rate splits into

    changes inside a region (both steps settled, same argmax)    — the HMM: emission noise in a state
    changes of region                                            — the HMM: state changes
    steps touching a transit step                                — the HMM has none

and the same split of the stationary HMM (by its hidden states: kept, changed) is printed beside it,
with each region's mean largest probability against the HMM's emission. One thread.
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
    parser.add_argument("--chains", type=int, default=2000)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--settled", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    hmm, model = run.config.hmm, run.model
    emission = np.asarray(hmm.emission)
    settled_at = args.settled if args.settled is not None else float(emission.max(axis=1).min()) - 0.1

    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        noise = torch.randn(args.chains, args.length, model.noise_dim, generator=generator)
        hidden = model.rollout(noise, model.initial_hidden(args.chains, generator))
        probs = torch.softmax(model.readout(hidden), dim=-1).double().numpy()  # (B, T, K)
    change = 1.0 - np.einsum("btk,btk->bt", probs[:, :-1], probs[:, 1:])  # P(o_t != o_t+1 | h), (B, T-1)
    top, region = probs.max(axis=-1), probs.argmax(axis=-1)
    settled = top >= settled_at
    both = settled[:, :-1] & settled[:, 1:]
    same = both & (region[:, :-1] == region[:, 1:])
    moved = both & ~same
    transit = ~both
    total = change.mean()

    # The HMM's split by hidden state: kept (z_t = z_t+1) or changed.
    transition = np.asarray(hmm.transition)
    pi = np.asarray(hmm.stationary_distribution())
    overlap = emission @ emission.T  # P(o = o' | z, z')
    kept = float(np.sum(pi * np.diag(transition) * (1 - np.diag(overlap))))
    moved_hmm = float(np.sum(pi[:, None] * transition * (1 - overlap)) - kept)
    kept_share = float(np.sum(pi * np.diag(transition)))

    print(f"{args.run} {args.checkpoint or ''}: {args.chains} chains x {args.length} steps; settled = largest p >= {settled_at:.2f}")
    print(f"symbol-change rate: network {total:.5f}, HMM {kept + moved_hmm:.5f} "
          f"({100 * (total / (kept + moved_hmm) - 1):+.1f} %)")
    print(f"  inside a region : network {change[same].sum() / change.size:.5f} over {same.mean():.4f} of steps "
          f"(per step {change[same].mean():.5f}); HMM {kept:.5f} over {kept_share:.4f} "
          f"(per step {kept / kept_share:.5f})")
    print(f"  region changes  : network {change[moved].sum() / change.size:.5f} over {moved.mean():.4f} of steps; "
          f"HMM {moved_hmm:.5f} over {1 - kept_share:.4f}")
    print(f"  touching transit: network {change[transit].sum() / change.size:.5f} over {transit.mean():.4f} of steps; "
          f"HMM 0")
    for k in range(emission.shape[1]):
        in_k = settled & (region == k)
        if in_k.any():
            print(f"  region {k}: share {in_k.mean():.4f}, mean largest p {top[in_k].mean():.5f} "
                  f"(HMM states emitting {k} most: {np.round(emission.max(axis=1)[emission.argmax(axis=1) == k], 4)})")
    # Dwell times of regions (settled runs, transit steps ignored): the HMM's are geometric.
    lengths = []
    for chain_region, chain_settled in zip(region, settled):
        current, run_length = -1, 0
        for r, s in zip(chain_region, chain_settled):
            if not s:
                continue
            if r == current:
                run_length += 1
            else:
                if current >= 0:
                    lengths.append(run_length)
                current, run_length = r, 1
    lengths = np.asarray(lengths[1:] if len(lengths) > 1 else lengths)
    stay = float(np.mean(np.diag(transition)))
    print(f"  region dwell (completed runs, {lengths.size}): mean {lengths.mean():.2f} steps (HMM states: "
          f"{1 / (1 - stay):.2f}); P(dwell <= 2) {np.mean(lengths <= 2):.4f} (HMM {1 - stay ** 2:.4f})")


if __name__ == "__main__":
    main()
