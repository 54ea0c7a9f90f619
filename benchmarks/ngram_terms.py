"""Each n-gram term of the default recipe on a network's stationary windows, against the HMM's exact
statistics, next to the same statistics counted on the run's training set.

    python benchmarks/ngram_terms.py RUN [--checkpoint FILE] [--order 3] [--lags 8] [--chains 4096] [--top 0]

The network's windows are the last T steps of ``--chains`` chains run for 300 + T steps from its
initial state (its stationary windows); the terms are computed on softmax(logits), as the recipe
does (``bigram_on = "probabilities"``). Prints the triangular discrimination of the words of each
length, of the lagged pairs and of the output transition probabilities (multiply by the run's
weights for the loss), the pooled change rate of the network, of the HMM and of the training set,
and the training set's symbol frequencies; ``--top K`` also lists the K words of the longest length
whose network frequency differs most from the HMM's. One thread.
"""

from __future__ import annotations

import argparse

import torch

import hmmrnn
from hmmrnn._bigram import HMMWindows, _conditional, _discrimination, bigram_frequencies, lagged_pair_frequencies, ngram_frequencies
from hmmrnn.training import _targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint file instead of model.safetensors")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--lags", type=int, default=8)
    parser.add_argument("--chains", type=int, default=4096)
    parser.add_argument("--top", type=int, default=0, help="list the K most mismatched words of --order")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = hmmrnn.load_run(args.run, **({"weights": args.checkpoint} if args.checkpoint else {}))
    model, config = run.model, run.config
    length, k = config.train.seq_len, config.hmm.n_outputs
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        noise = torch.randn(args.chains, 300 + length, model.noise_dim, generator=generator)
        hidden = model.rollout(noise, model.initial_hidden(args.chains, generator))[:, 300:]
        probs = torch.softmax(model.readout(hidden), dim=-1).double()  # (B, T, K)
    exact = HMMWindows(config.hmm.stationary(), length)
    for n in range(2, args.order + 1):
        print(f"words of {n}: {float(_discrimination(ngram_frequencies(probs, n), exact.ngram(n))):.6f}")
    if args.top:
        network, hmm = ngram_frequencies(probs, args.order).flatten(), exact.ngram(args.order).flatten()
        for index in torch.argsort((network - hmm).abs(), descending=True)[:args.top].tolist():
            word = " ".join(str(index // k ** (args.order - 1 - i) % k) for i in range(args.order))
            print(f"  {word}: network {float(network[index]):.5f}, HMM {float(hmm[index]):.5f}")
    for lag in range(2, args.lags + 1):
        print(f"pairs {lag} apart: {float(_discrimination(lagged_pair_frequencies(probs, lag), exact.lagged(lag))):.6f}")
    pairs = exact.ngram(2).reshape(k, k)
    print(f"transition probabilities: "
          f"{float(_discrimination(_conditional(bigram_frequencies(probs)), _conditional(pairs))):.6f}")
    train, _ = _targets(config, "cpu")
    counted = train.reshape(train.shape[0], -1, k).double()
    print(f"change rate: network {float(1 - bigram_frequencies(probs).trace()):.5f}, HMM "
          f"{float(1 - pairs.trace()):.5f}, training set {float(1 - bigram_frequencies(counted).trace()):.5f}")
    print(f"training set symbol frequencies {counted.mean(dim=(0, 1)).numpy().round(4)}, "
          f"HMM {config.hmm.output_frequencies().round(4)}")


if __name__ == "__main__":
    main()
