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
from hmmrnn._dispersion import hmm_change_count_distribution


def spread(name: str, windows: np.ndarray, hmm: hmmrnn.HMM) -> None:
    """Print mean and standard deviation of the per-window statistics of ``windows`` (n, T), the
    returns A → B → A per window (one-step excursions: the HMM's emission noise makes most of them),
    and the triangular discrimination Σ_n (q_n − p_n)² / (q_n + p_n) of the number of changes
    against the HMM's exact distribution (what ``change_count_weight`` trains on)."""
    length = windows.shape[1]
    changes = (np.diff(windows, axis=1) != 0).sum(1)
    returns = ((windows[:, 1:-1] != windows[:, :-2]) & (windows[:, 2:] == windows[:, :-2])).sum(1)
    observed = np.bincount(changes, minlength=length)[:length] / len(changes)
    exact = hmm_change_count_distribution(hmm, length)
    discrimination = ((observed - exact) ** 2 / np.maximum(observed + exact, 1e-12)).sum()
    loglik = hmm.log_likelihood(windows) / length
    counts = ", ".join(f"{k}: {c.mean():.2f} ± {c.std():.2f}"
                       for k, c in enumerate((windows == k).sum(1) for k in range(hmm.n_outputs)))
    tails = np.percentile(loglik, [1, 5, 50, 95, 99])
    print(f"{name}: {len(windows)} windows; changes {changes.mean():.3f} ± {changes.std():.3f} "
          f"(none: {np.mean(changes == 0):.4f}, ≤ 1: {np.mean(changes <= 1):.4f}; discrimination from the HMM's "
          f"exact distribution {discrimination:.4f}); returns A→B→A {returns.mean():.3f}; symbol counts {counts}; log-likelihood per step "
          f"{loglik.mean():.4f} ± {loglik.std():.4f} (1/5/50/95/99 %: {' '.join(f'{q:.3f}' for q in tails)})")


#: Run ages (steps since the symbol last changed) at which ``hazard`` reports the change rate.
AGES = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30)


def hazard(chains: np.ndarray) -> np.ndarray:
    """P(o_t ≠ o_t−1 | the symbol had lasted a steps at t − 1), pooled over chains (n, T), for a in
    the bands that start at ``AGES``. An HMM whose states emit mostly one symbol changes at almost
    the same rate at every age past 1 (age 1 holds the returns after a noise symbol); a network whose
    switches cluster changes too often just after a change and too rarely late in a run."""
    bands = np.array(AGES)
    changes, steps = np.zeros(len(bands)), np.zeros(len(bands))
    age = np.zeros(chains.shape[0], dtype=int)
    for t in range(1, chains.shape[1]):
        changed = chains[:, t] != chains[:, t - 1]
        band = np.searchsorted(bands, age, side="right") - 1
        counted = band >= 0
        np.add.at(changes, band[counted], changed[counted])
        np.add.at(steps, band[counted], 1)
        age = np.where(changed, 1, age + 1)
    return changes / np.maximum(steps, 1)


#: Steps of each network chain before windows are cut.
BURN_IN = 1000


def stationary_windows(args: argparse.Namespace) -> tuple[hmmrnn.Run, np.ndarray, np.ndarray, np.ndarray]:
    """The run (``args.run``, ``args.checkpoint``), its long run's symbols (chains, steps), windows
    of ``args.length`` cut from them after ``BURN_IN`` steps every length + 10 steps (n, T), and as
    many windows from the HMM's stationary distribution (n, T)."""
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    length = args.length or run.config.train.seq_len
    symbols, _ = run.model.long_run(args.chains, args.steps, seed=args.seed)
    network = np.concatenate([symbols[:, s: s + length] for s in range(BURN_IN, args.steps - length + 1, length + 10)])
    hmm_windows, _ = run.hmm.stationary().sample(len(network), length, seed=args.seed + 1)
    return run, symbols, network, hmm_windows


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
    run, symbols, network, hmm_windows = stationary_windows(args)
    stationary = run.hmm.stationary()
    spread("network", network, stationary)
    spread("HMM    ", hmm_windows, stationary)
    hmm_chains, _ = stationary.sample(args.chains, args.steps - BURN_IN, seed=args.seed + 2)
    for name, chains in (("network", symbols[:, BURN_IN:]), ("HMM    ", hmm_chains)):
        print(f"{name}: change rate by run age " + " ".join(f"{a}: {r:.4f}" for a, r in zip(AGES, hazard(chains))))


if __name__ == "__main__":
    main()
