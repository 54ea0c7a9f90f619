"""Whether a network keeps apart two hidden states that share their main symbol (``cyclic4``'s B states).

In ``cyclic4`` states 1 and 3 both emit B (90 %) and differ in their noise symbol, A in state 1 and C
in state 3; a run of B stays in one state, so two one-step noise symbols inside it (B X B^k Y B)
differ in kind (X ≠ Y) only when the state changed in between. The fraction with X ≠ Y, by the gap
k, is the memory of the B state along a run: flat at the HMM's 7–8 %, rising towards 50 % for a
network that forgets which B state it holds.

    python benchmarks/noise_mixing.py RUN [--checkpoint FILE] [--symbol 1] [--chains 200] [--steps 6000]

For a run trained on ``cyclic4``'s *states HMM* (state pretraining, ``RUN/pretrain``) it also reports
how often a long run (≥ 5 steps) of one of the two states' symbols is followed directly by a long run
of the other's (``--states 1,3``), against the states HMM. Chains start from the network's stationary
states; the first 1,000 steps are dropped, as in ``window_dispersion.py``. One thread.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

import hmmrnn
from window_dispersion import BURN_IN

#: Gaps k (steps of B between the two noise symbols) told apart: [low, high).
GAP_BANDS = ((1, 3), (3, 8), (8, 20), (20, 60))
#: A run this long or longer counts as a visit to a state, not a noise symbol.
LONG_RUN = 5


def mixed_noise(chains: np.ndarray, symbol: int) -> list[tuple[int, int]]:
    """(pairs, pairs with X ≠ Y) per ``GAP_BANDS`` band, over every pair of consecutive one-step noise
    symbols X, Y inside runs of ``symbol`` (chains (n, L))."""
    counts = [[0, 0] for _ in GAP_BANDS]
    for row in chains:
        inside = (row[:-2] == symbol) & (row[2:] == symbol) & (row[1:-1] != symbol)
        blips = np.flatnonzero(inside) + 1
        for a, b in zip(blips, blips[1:]):
            if np.all(row[a + 1:b] == symbol):
                for band, (low, high) in enumerate(GAP_BANDS):
                    if low <= b - a - 1 < high:
                        counts[band][0] += 1
                        counts[band][1] += int(row[a] != row[b])
    return [tuple(c) for c in counts]


def direct_jumps(chains: np.ndarray, states: tuple[int, int]) -> tuple[int, int]:
    """(long runs of either symbol of ``states`` followed by another long run, of which by the other one)."""
    followed = direct = 0
    for row in chains:
        long_runs = [k for k, group in itertools.groupby(row) if len(list(group)) >= LONG_RUN]
        for a, b in zip(long_runs, long_runs[1:]):
            if a in states and b != a:
                followed += 1
                direct += int(b in states)
    return followed, direct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--symbol", type=int, default=1, help="the shared main symbol [1, cyclic4's B]")
    parser.add_argument("--states", default=None, help="two symbols of a states-HMM run, e.g. 1,3")
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    network, _ = run.model.long_run(args.chains, args.steps, seed=args.seed)
    hmm, _ = run.hmm.stationary().sample(args.chains, args.steps - BURN_IN, seed=args.seed + 1)
    for name, chains in (("network", network[:, BURN_IN:]), ("HMM    ", hmm)):
        if args.states:
            followed, direct = direct_jumps(chains, tuple(int(s) for s in args.states.split(",")))
            print(f"{name}: long runs followed directly by the other state's: {direct}/{followed} = "
                  f"{direct / max(followed, 1):.3f}")
        else:
            bands = mixed_noise(chains, args.symbol)
            print(f"{name}: noise pairs of two kinds by gap " + "  ".join(
                f"{low}-{high - 1}: {m}/{n} = {m / max(n, 1):.3f}" for (low, high), (n, m) in zip(GAP_BANDS, bands)))


if __name__ == "__main__":
    main()
