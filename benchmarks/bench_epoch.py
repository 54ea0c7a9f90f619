"""One training epoch at the paper's settings, training and validation passes timed separately.

    python benchmarks/bench_epoch.py [--preset linear3] [--threads 2] [--epochs 1] [--device cuda]

The paper's linear3 setting: H = 150, d = 100, T = 30, 10,000 training and 10,000 validation
sequences, batch 4096 (3 batches each). Reference code on this 2-core machine: 22.4 s per epoch
with 2 threads (about 55 % training, 45 % validation; 1.8 GB peak). Also prints where one
training batch spends its time. Run each setting in a fresh process so the peak memory is its own.
With ``--device cuda`` the same recipe runs on a GPU (GeomLoss's dense Sinkhorn there); 5 epochs of
linear3 take well under 5 minutes on one H100 (a prepared check for the GPU machine).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from hmmrnn import make_config
from hmmrnn.training import _epoch_loss, _objective, _targets, _TrainingState, sinkhorn_divergence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="linear3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = make_config(args.preset, recipe="paper", seed=0, device=args.device)
    device = torch.device(args.device)
    state = _TrainingState.fresh(config, device)
    train_targets, val_targets = _targets(config, device)
    loss_fn = sinkhorn_divergence(config.train.blur, config.hmm.n_outputs, device)
    objective = _objective(loss_fn, train_targets, config)  # the paper recipe: the divergence alone
    t = config.train
    print(f"{args.preset}: H={config.model.hidden} d={config.model.noise_dim} T={t.seq_len} "
          f"train={train_targets.shape[0]} val={val_targets.shape[0]} batch={t.batch_size} "
          f"threads={torch.get_num_threads()} device={device}")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        _epoch_loss(state.model, train_targets, config, state.generator, objective, state.optimizer)
        _synchronize(device)
        trained = time.perf_counter()
        _epoch_loss(state.model, val_targets, config, state.generator, objective, None)
        _synchronize(device)
        done = time.perf_counter()
        print(f"epoch {epoch}: total {done - start:.2f} s = training {trained - start:.2f} s "
              f"+ validation {done - trained:.2f} s")

    # where one full training batch goes
    target = train_targets[: t.batch_size]
    noise = torch.randn(target.shape[0], t.seq_len, config.model.noise_dim, generator=state.generator, device=device)
    t0 = time.perf_counter()
    outputs, _, _ = state.model(noise, state.generator, t.tau)
    _synchronize(device)
    t1 = time.perf_counter()
    loss = loss_fn(outputs.reshape(target.shape[0], -1), target)
    _synchronize(device)
    t2 = time.perf_counter()
    loss.backward()
    _synchronize(device)
    t3 = time.perf_counter()
    print(f"one batch of {target.shape[0]}: RNN forward {t1 - t0:.2f} s, loss forward {t2 - t1:.2f} s, "
          f"backward {t3 - t2:.2f} s")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak memory (max RSS) {peak_gb:.2f} GB"
          + (f", peak GPU memory {torch.cuda.max_memory_allocated() / 1024**3:.2f} GB" if device.type == "cuda" else ""))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
