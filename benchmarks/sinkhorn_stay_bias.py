"""Which switch rate does the finite-batch Sinkhorn divergence prefer?

    python benchmarks/sinkhorn_stay_bias.py [PRESET]

Divergence (blur 0.2, the training loss) between B = 4096 stationary windows of T = 30 from the
preset's HMM with every stay probability shifted by s and B windows of the HMM itself; mean and
standard error over 6 seed pairs. One thread.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hmmrnn import preset
from hmmrnn.training import sinkhorn_divergence


def main() -> None:
    torch.set_num_threads(1)
    hmm = preset(sys.argv[1] if len(sys.argv) > 1 else "fully3").hmm.stationary()
    k, length, batch = hmm.n_outputs, 30, 4096
    loss = sinkhorn_divergence(0.2, k)

    def flat(symbols: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.from_numpy(symbols), k).float().reshape(len(symbols), -1)

    for shift in (-0.01, -0.005, -0.0025, 0.0, 0.0025, 0.005):
        shifted = hmm.with_stay_shift(shift) if shift else hmm
        values = [float(loss(flat(shifted.sample(batch, length, seed=100 + r)[0]), flat(hmm.sample(batch, length, seed=200 + r)[0])))
                  for r in range(6)]
        print(f"stay shift {shift:+.4f}: divergence {np.mean(values):.4f} ± {np.std(values) / np.sqrt(len(values)):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
