"""Where a network mispredicts: its output probabilities against the HMM filter, per belief cell.

    python benchmarks/calibration_table.py RUN [--checkpoint FILE] [--n 2000] [--seq-len 100]

Stationary windows (after the network's stationary start, burn-in 100) of the network and of the
HMM; each step gets the HMM's prior belief from the symbols before it (``hmmrnn._calibration``).
Prints the mean log-probability of the next symbol under the filter for both (their difference is
the verdict's log-likelihood gap), the calibration term Σ_jk (O_jk − E_jk)² / (N (O_jk + E_jk))
split into rare cells (< 5 % of the steps) and the others, and the ten cells whose error weighs
most (share × largest |ō − ē|). One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import hmmrnn
from hmmrnn._calibration import CalibrationPenalty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seq-len", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    hmm = run.config.hmm.stationary()
    k = hmm.n_outputs
    symbols, hidden, _ = run.model.generate(args.n, 100 + args.seq_len, seed=5, keep_states=True)
    network = torch.nn.functional.one_hot(symbols[:, 100:].long(), k).float()
    with torch.no_grad():
        probabilities = torch.softmax(run.model.readout(hidden[:, 100:].float()), dim=-1)
    reference = torch.nn.functional.one_hot(torch.as_tensor(hmm.sample(args.n, args.seq_len, seed=6)[0]), k).float()
    penalty = CalibrationPenalty(hmm, reference.flatten(1), weight=1.0)
    steps = args.n * args.seq_len
    for name, samples in (("HMM", reference), ("network", network)):
        beliefs = penalty.beliefs(samples).reshape(-1, len(hmm.start))
        log_prob = torch.log(((beliefs @ penalty.emission) * samples.reshape(-1, k)).sum(dim=1))
        print(f"{name}: mean log-probability of the next symbol under the filter {log_prob.mean():.4f}")
    observed, expected = penalty.counts(network, probabilities)
    size = penalty.counts(network, torch.ones_like(probabilities))[0][:, 0]
    term = torch.where(observed + expected > 0, (observed - expected) ** 2 / (observed + expected).clamp_min(1e-12),
                       0.0).sum(dim=1) / steps
    rare = size / steps < 0.05
    print(f"calibration term {term.sum():.5f}: rare cells {term[rare].sum():.5f}, others {term[~rare].sum():.5f}")
    error = (observed - expected) / size.clamp_min(1)[:, None]
    order = torch.argsort(-(size / steps) * error.abs().max(dim=1).values)
    for j in order[:10].tolist():
        print(f"  cell {j:2d}  share {size[j] / steps:.3f}  centroid {np.round(penalty.centroids[j].numpy(), 2)}  "
              f"ō - ē {np.round(error[j].numpy(), 4)}")


if __name__ == "__main__":
    main()
