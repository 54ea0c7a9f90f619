"""Where a network's log-likelihood gap comes from: the gap split by the context of each step.

The verdict's log-likelihood check compares the mean per-step log-likelihood of stationary network
windows under the HMM with that of the HMM's own windows. Per step it is a mean surprise,
s_t = −log P_HMM(o_t | o_<t) (the scaled forward algorithm's −log c_t), so the gap splits exactly
over any partition of the steps into contexts g:

    gap = Σ_g [ f_net(g) · s̄_net(g) − f_hmm(g) · s̄_hmm(g) ],

with f(g) the share of steps in context g and s̄(g) their mean surprise. The contexts here are the
symbol before the current run (the ring's direction for ``cyclic4``), the run's symbol, how long it
has lasted (bands) and the symbol emitted now. The rows with the largest contributions name what the
network does that the HMM finds unlikely (or too likely).

    python benchmarks/surprise_sources.py RUN [--checkpoint FILE] [--length T] [--chains 200] [--steps 10000]

Windows are cut as in ``window_dispersion.py`` (after 1,000 steps of burn-in, every T + 10 steps);
the HMM's are as many from its stationary distribution. One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import hmmrnn
from hmmrnn.hmm import _forward
from window_dispersion import stationary_windows

#: Lower edges of the run-age bands (steps the current symbol has lasted before this step).
AGE_BANDS = (1, 2, 3, 5, 10, 20)


def contexts(windows: np.ndarray) -> np.ndarray:
    """(n, T, 4) context of every step: symbol before the current run (−1 if the window has not
    seen a change yet), the run's symbol (−1 at t = 0), the run-age band (−1 at t = 0), this symbol."""
    n, length = windows.shape
    out = np.full((n, length, 4), -1, dtype=int)
    out[:, :, 3] = windows
    before = np.full(n, -1)
    age = np.zeros(n, dtype=int)
    bands = np.array(AGE_BANDS)
    for t in range(1, length):
        previous = windows[:, t - 1]
        age = age + 1
        out[:, t, 0] = before
        out[:, t, 1] = previous
        out[:, t, 2] = np.searchsorted(bands, age, side="right") - 1
        changed = windows[:, t] != previous
        before = np.where(changed, previous, before)
        age = np.where(changed, 0, age)
    return out


def surprise(hmm: hmmrnn.HMM, windows: np.ndarray) -> np.ndarray:
    """(n, T) per-step surprise −log c_t of the windows under ``hmm`` (its start distribution)."""
    _, log_scale = _forward(hmm.emission.T[windows.T], hmm.start, hmm.transition)
    return -log_scale.T


def split(hmm: hmmrnn.HMM, network: np.ndarray, reference: np.ndarray, top: int) -> None:
    """Print the gap and its largest contributions by context."""
    tables = []
    for windows in (network, reference):
        keys = contexts(windows).reshape(-1, 4)
        values = surprise(hmm, windows).reshape(-1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        share = np.bincount(inverse, minlength=len(unique)) / len(values)
        total = np.bincount(inverse, weights=values, minlength=len(unique)) / len(values)
        tables.append({tuple(k): (f, s) for k, f, s in zip(unique, share, total)})
    net, ref = tables
    gap = sum(s for _, s in net.values()) - sum(s for _, s in ref.values())
    print(f"gap (mean surprise, network − HMM): {gap:+.5f} nats/step over {network.size} / {reference.size} steps")
    rows = []
    for key in set(net) | set(ref):
        f_net, s_net = net.get(key, (0.0, 0.0))
        f_ref, s_ref = ref.get(key, (0.0, 0.0))
        rows.append((s_net - s_ref, key, f_net, f_ref, s_net / max(f_net, 1e-12), s_ref / max(f_ref, 1e-12)))
    rows.sort(key=lambda r: -abs(r[0]))
    print(f"{'before':>6} {'run':>4} {'age≥':>5} {'now':>4} {'contribution':>13} {'share net':>10} {'share HMM':>10} "
          f"{'s̄ net':>7} {'s̄ HMM':>7}")
    for contribution, key, f_net, f_ref, s_net, s_ref in rows[:top]:
        before, run, band, now = key
        age = "start" if band < 0 else str(AGE_BANDS[band])
        print(f"{before:>6} {run:>4} {age:>5} {now:>4} {contribution:>+13.5f} {f_net:>10.5f} {f_ref:>10.5f} "
              f"{s_net:>7.3f} {s_ref:>7.3f}")
    changes = {"stay": lambda k: k[1] == k[3], "change": lambda k: k[1] >= 0 and k[1] != k[3],
               "first step": lambda k: k[1] < 0}
    for name, keep in changes.items():
        part = sum(s for k, (_, s) in net.items() if keep(k)) - sum(s for k, (_, s) in ref.items() if keep(k))
        print(f"  {name}: {part:+.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--length", type=int, default=None, help="window length [the run's training T]")
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run, _, network, reference = stationary_windows(args)
    stationary = run.hmm.stationary()
    split(stationary, network, reference, args.top)


if __name__ == "__main__":
    main()
