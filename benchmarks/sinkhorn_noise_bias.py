"""Which emission noise does the finite-batch Sinkhorn divergence prefer: as much as the HMM's, less,
or the same amount in runs?

    python benchmarks/sinkhorn_noise_bias.py [PRESET]

From the stationary HMM's hidden paths (B = 4096 windows of T = 30), each step emits its state's
most likely symbol, and noise replaces it by another symbol drawn from the state's emission row
(restricted to the other symbols): independently at each step with probability r (the HMM itself
at r = its emission noise), or in runs of two steps started with probability r / 2 (the same share
of noise symbols, the pattern of a network whose noise symbols come from excursions of its hidden
state). The divergence (blur 0.2, the paper's loss) of each against B windows of the HMM itself,
and the split estimate of ``divergence_estimator = "split"`` on the same batches (halves of 2048);
mean and standard error over 6 seed pairs. One thread.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hmmrnn import preset
from hmmrnn._sinkhorn import SplitBatchDivergence
from hmmrnn.training import sinkhorn_divergence


def noisy(hmm, batch: int, length: int, rate: float, run: int, seed: int) -> np.ndarray:
    """Symbols of ``batch`` stationary windows with noise at ``rate`` per step, in runs of ``run``."""
    rng = np.random.default_rng(seed)
    _, states = hmm.sample(batch, length, seed=int(rng.integers(2**31)))
    emission = np.asarray(hmm.emission)
    top = emission.argmax(axis=1)
    symbols = top[states]
    starts = rng.random((batch, length)) < rate / run
    hit = np.zeros_like(starts)
    for offset in range(run):
        hit[:, offset:] |= starts[:, : length - offset]
    others = emission[states].copy()
    np.put_along_axis(others, top[states][..., None], 0.0, axis=-1)
    others /= others.sum(axis=-1, keepdims=True)
    # one noise symbol per run: drawn at the run's start, repeated while the run lasts
    draw = (others.cumsum(axis=-1) > rng.random((batch, length, 1))).argmax(axis=-1)
    for offset in range(1, run):
        draw[:, offset:] = np.where(starts[:, : length - offset] & ~starts[:, offset:], draw[:, : length - offset],
                                    draw[:, offset:])
    return np.where(hit, draw, symbols)


def main() -> None:
    torch.set_num_threads(1)
    hmm = preset(sys.argv[1] if len(sys.argv) > 1 else "fully3").hmm.stationary()
    k, length, batch = hmm.n_outputs, 30, 4096
    loss = sinkhorn_divergence(0.2, k)
    split = SplitBatchDivergence(loss, sinkhorn_divergence(0.2, k, cache_targets=False))
    emission = np.asarray(hmm.emission)
    hmm_rate = float(1 - emission.max(axis=1).mean())

    def flat(symbols: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.from_numpy(symbols), k).float().reshape(len(symbols), -1)

    cases = [("the HMM itself", None, None)] + [(f"independent noise r = {r:.4f}", r, 1) for r in
                                                 (0.5 * hmm_rate, 0.75 * hmm_rate, hmm_rate, 1.25 * hmm_rate)]
    cases += [(f"noise in runs of 2, r = {hmm_rate:.4f}", hmm_rate, 2)]
    for label, rate, run in cases:
        values, split_values = [], []
        for r in range(6):
            target = flat(hmm.sample(batch, length, seed=200 + r)[0])
            sample = flat(hmm.sample(batch, length, seed=100 + r)[0] if rate is None else
                          noisy(hmm, batch, length, rate, run, 100 + r))
            values.append(float(loss(sample, target)))
            split_values.append(float(split(sample, target)))
        print(f"{label:34s}: divergence {np.mean(values):.4f} ± {np.std(values) / np.sqrt(len(values)):.4f}, "
              f"split {np.mean(split_values):.4f} ± {np.std(split_values) / np.sqrt(len(split_values)):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
