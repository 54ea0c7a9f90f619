"""Which hidden-state dynamics a network emulates: an HMM re-fitted to its stationary symbols.

Baum–Welch (hmmlearn) with the true HMM's number of states, started from its transitions and
emissions (mixed 2 % with uniform so that no entry is stuck at zero), on ``--chains`` chains of the
network's long run after ``--burn-in`` steps. Prints the fitted transition and emission matrices and
what the fitted dynamics alone cost: the log-likelihood gap (nats/step, under the true HMM's filter)
of sequences drawn from the true HMM with the fitted transition matrix, against the true HMM's own.
On ``cyclic4`` this names the jumps between the two states that emit the same symbol (1 and 3),
which the chain never makes and which only the noise symbols reveal (BENCHMARKS.md, session 27).

    python benchmarks/refit_transitions.py RUN [--checkpoint FILE ...] [--chains 60] [--steps 4000]

One thread; about 40 s per network at the defaults.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from hmmlearn.hmm import CategoricalHMM

import hmmrnn

#: Weight of the uniform mixture in the fit's starting matrices.
UNIFORM_MIX = 0.02
#: Sequences and steps the gap of the fitted dynamics is measured on (started stationary, so the
#: filter from π needs no burn-in).
GAP_SEQUENCES, GAP_STEPS = 2000, 1000


def refit(symbols: np.ndarray, hmm: hmmrnn.HMM) -> CategoricalHMM:
    """Baum–Welch on symbols (chains, T) from the true HMM's matrices (transitions and emissions re-fitted)."""
    fit = CategoricalHMM(n_components=hmm.n_states, n_iter=300, tol=1e-7, init_params="", params="te",
                         random_state=0)
    fit.startprob_ = np.full(hmm.n_states, 1 / hmm.n_states)
    fit.transmat_ = (1 - UNIFORM_MIX) * hmm.transition + UNIFORM_MIX / hmm.n_states
    fit.emissionprob_ = (1 - UNIFORM_MIX) * hmm.emission + UNIFORM_MIX / hmm.n_outputs
    fit.fit(symbols.reshape(-1, 1), lengths=[symbols.shape[1]] * len(symbols))
    return fit


def dynamics_gap(transition: np.ndarray, hmm: hmmrnn.HMM, seed: int) -> float:
    """Gap of the true HMM with ``transition`` instead of its own, both started stationary: the mean
    per-step log-likelihood under the true HMM (``HMM.log_likelihood``) of its own sequences minus
    that of the swapped HMM's."""
    true = hmm.stationary()
    swapped = hmmrnn.HMM(transition, hmm.emission, hmm.start).stationary()
    own = true.log_likelihood(true.sample(GAP_SEQUENCES, GAP_STEPS, seed=seed)[0]).mean()
    other = true.log_likelihood(swapped.sample(GAP_SEQUENCES, GAP_STEPS, seed=seed + 1)[0]).mean()
    return float(own - other) / GAP_STEPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", nargs="*", default=[None], help="checkpoint files instead of model.safetensors")
    parser.add_argument("--chains", type=int, default=60)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--burn-in", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.set_printoptions(suppress=True, linewidth=120)
    for checkpoint in args.checkpoint:
        run = hmmrnn.load_run(args.run, **({"weights": checkpoint} if checkpoint else {}))
        symbols, _ = run.model.long_run(args.chains, args.steps, seed=args.seed)
        fit = refit(symbols[:, args.burn_in:].astype(int), run.hmm)
        transition = fit.transmat_ / fit.transmat_.sum(axis=1, keepdims=True)
        print(f"{checkpoint or 'model.safetensors'}: gap of the fitted transitions "
              f"{dynamics_gap(transition, run.hmm, args.seed):+.4f} nats/step")
        print("fitted transitions\n", np.round(transition, 4))
        print("fitted emissions\n", np.round(fit.emissionprob_, 4), flush=True)


if __name__ == "__main__":
    main()
