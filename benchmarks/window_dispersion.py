"""How much stationary windows of a network differ from one another, against the HMM's: the spread of
the per-window number of symbol changes, of each symbol's count and of the log-likelihood per step
under the HMM. A network whose pooled statistics match (frequencies, transitions, mean
log-likelihood) can still make windows that are too alike or too unlike; the matched distance sees
that, the pooled checks do not.

    python benchmarks/window_dispersion.py RUN [--checkpoint FILE] [--length T] [--chains 200] [--steps 10000]

The network's windows come from a long run like the verdict's (``--chains`` chains of ``--steps``
steps from h0), but are cut more densely: after 1,000 steps of burn-in, every ``--length`` + 10 steps
(the verdict spreads N windows evenly along each chain). The
HMM's are as many windows from its stationary distribution. One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import hmmrnn


def spread(name: str, windows: np.ndarray, hmm: hmmrnn.HMM) -> None:
    """Print mean and standard deviation of the per-window statistics of ``windows`` (n, T)."""
    length = windows.shape[1]
    changes = (np.diff(windows, axis=1) != 0).sum(1)
    loglik = hmm.log_likelihood(windows) / length
    counts = ", ".join(f"{k}: {c.mean():.2f} ± {c.std():.2f}"
                       for k, c in enumerate((windows == k).sum(1) for k in range(hmm.n_outputs)))
    tails = np.percentile(loglik, [1, 5, 50, 95, 99])
    print(f"{name}: {len(windows)} windows; changes {changes.mean():.3f} ± {changes.std():.3f} "
          f"(≤ 1: {np.mean(changes <= 1):.4f}); symbol counts {counts}; log-likelihood per step "
          f"{loglik.mean():.4f} ± {loglik.std():.4f} (1/5/50/95/99 %: {' '.join(f'{q:.3f}' for q in tails)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--length", type=int, default=None, help="window length [the run's training T]")
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    length = args.length or run.config.train.seq_len
    symbols, _ = run.model.long_run(args.chains, args.steps, seed=args.seed)
    burn_in = 1000
    network = np.concatenate([symbols[:, s: s + length] for s in range(burn_in, args.steps - length + 1, length + 10)])
    stationary = run.hmm.stationary()
    hmm_windows, _ = stationary.sample(len(network), length, seed=args.seed + 1)
    spread("network", network, stationary)
    spread("HMM    ", hmm_windows, stationary)


if __name__ == "__main__":
    main()
