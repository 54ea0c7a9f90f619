"""HMM sampling speed: vectorised ``HMM.sample`` vs the reference's one-hmmlearn-call-per-sequence loop.

    python benchmarks/bench_sampling.py [--reference]

Targets (foundation issue): 30,000 x 30 of the 3-state chain <= 0.1 s; 30,000 x 100 of the 2-state
chain <= 0.3 s (the reference code takes 6.6 s and 18 s on this machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hmmrnn import preset


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def reference_loop(hmm, n: int, length: int, seed: int) -> np.ndarray:
    """What the reference code does: one hmmlearn ``sample`` call per sequence."""
    from hmmlearn.hmm import CategoricalHMM

    model = CategoricalHMM(n_components=hmm.n_states, n_features=hmm.n_outputs, random_state=seed)
    model.startprob_, model.transmat_, model.emissionprob_ = hmm.start, hmm.transition, hmm.emission
    return np.stack([model.sample(length)[0][:, 0] for _ in range(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true", help="also time the hmmlearn loop (slow)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, n, length, target in [("linear3", 30_000, 30, 0.1), ("linear2", 30_000, 100, 0.3)]:
        hmm = preset(name).hmm
        ours = best_of(lambda: hmm.sample(n, length, seed=0), args.repeats)
        line = f"{name}: {n} x {length}: hmmrnn {ours:.4f} s (target <= {target} s)"
        if args.reference:
            ref = best_of(lambda: reference_loop(hmm, n, length, 0), 1)
            line += f"; hmmlearn loop {ref:.2f} s; speed-up {ref / ours:.0f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
