"""Maximum-likelihood fine-tuning of a noise-driven RNN with a bootstrap particle filter (an
experiment for issue 13, not a training option: it made `cyclic4` worse; BENCHMARKS.md, session 15).

    python benchmarks/particle_ml.py RUN [--weights CHECKPOINT] --out PREFIX [--particles 64] [--batch 64]

The network is a latent-variable model of symbol sequences: p_net(y) = E_x[prod_t softmax(W_out h_t)[y_t]]
over the noise x. For each HMM sequence y (stationary start, T steps) P particles run the network from
their own stationary states (``--burn-in`` noisy steps from 0), are weighted by the probability of
y_t, and are resampled (multinomial, no gradient) when the effective sample size falls below P/2;
log p̂(y) = sum over the resampling epochs of log mean weight. The loss -mean log p̂(y) / T estimates
the forward divergence KL(HMM || network) per step plus the HMM's entropy rate (the estimate is
biased high by Jensen's inequality for finite P). Every ``--eval-every`` steps the verdict at every
horizon (without the matched distance and the re-fit) is logged to PREFIX.log and the weights saved.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from safetensors.torch import save_file

import hmmrnn
from hmmrnn.evaluation import judge


def stationary_states(model: hmmrnn.NoiseRNN, n: int, burn_in: int, generator: torch.Generator) -> torch.Tensor:
    """(n, H) states after ``burn_in`` noisy steps from 0, without gradient."""
    with torch.no_grad():
        h = torch.zeros(n, model.w_rec.shape[0])
        for _ in range(burn_in):
            h = model.step(h, torch.randn(n, model.w_in.shape[1], generator=generator))
    return h


def log_marginal(model: hmmrnn.NoiseRNN, y: torch.Tensor, particles: int, burn_in: int,
                 generator: torch.Generator) -> torch.Tensor:
    """(B,) particle estimates of log p_net(y) for the (B, T) symbol sequences ``y``."""
    batch, length = y.shape
    h = stationary_states(model, batch * particles, burn_in, generator).view(batch, particles, -1)
    log_z, log_w = torch.zeros(batch), torch.zeros(batch, particles)
    for t in range(length):
        h = model.step(h, torch.randn(batch, particles, model.w_in.shape[1], generator=generator))
        log_p = torch.log_softmax(model.readout(h), -1)
        log_w = log_w + log_p.gather(-1, y[:, t].view(batch, 1, 1).expand(batch, particles, 1)).squeeze(-1)
        norm = torch.logsumexp(log_w, 1, keepdim=True)
        weights = torch.exp(log_w - norm).detach()
        resample = 1.0 / (weights ** 2).sum(1) < particles / 2
        if resample.any():
            log_z = log_z + torch.where(resample, norm.squeeze(1) - math.log(particles), torch.zeros(batch))
            index = torch.multinomial(weights[resample], particles, replacement=True, generator=generator)
            h = h.clone()
            h[resample] = torch.gather(h[resample], 1, index.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
            log_w = torch.where(resample.unsqueeze(1), torch.zeros_like(log_w), log_w)
    return log_z + torch.logsumexp(log_w, 1) - math.log(particles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--weights", default=None, help="a checkpoint instead of model.safetensors")
    parser.add_argument("--out", required=True, help="prefix of the log and the saved weights")
    parser.add_argument("--particles", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64, help="HMM sequences per step")
    parser.add_argument("--seq-len", type=int, default=40)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = hmmrnn.load_run(args.run, **({"weights": args.weights} if args.weights else {}))
    model, hmm = run.model, run.hmm
    stationary = hmm.stationary()
    generator = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    log = open(args.out + ".log", "a")

    def say(message: str) -> None:
        print(message, flush=True)
        log.write(message + "\n")
        log.flush()

    def verdict(step: int) -> None:
        evaluation = judge(model, hmm, n=args.eval_n, seq_len=run.config.train.seq_len, seed=step, matching=False,
                           refit=False)
        windows = [f"{w.name}: " + " ".join(f"{c.name.split()[0][:5]}={c.value:.4f}/{c.limit:.4f}"
                                            + ("" if c.passed else "!") for c in w.checks)
                   for w in evaluation.windows]
        say(f"step {step} verdict {evaluation.verdict} | " + " | ".join(windows))

    say(f"start {vars(args)}")
    verdict(0)
    started = time.time()
    for step in range(1, args.steps + 1):
        obs, _ = stationary.sample(n=args.batch, length=args.seq_len, seed=int(rng.integers(2 ** 31)))
        y = torch.as_tensor(np.asarray(obs), dtype=torch.long)
        loss = -(log_marginal(model, y, args.particles, args.burn_in, generator) / args.seq_len).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 20 == 0:
            say(f"step {step} loss {loss.item():.4f} ({time.time() - started:.0f} s)")
        if step % args.eval_every == 0:
            verdict(step)
            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                      f"{args.out}_step{step}.safetensors")


if __name__ == "__main__":
    main()
