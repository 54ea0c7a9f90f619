"""Train a network first to emit the HMM's *states*, then its symbols (an experiment for ``cyclic4``).

Why (BENCHMARKS.md, "Session 24"): ``cyclic4``'s states 1 and 3 both emit mostly B and differ only in
their noise (state 1 emits A 10 % of its steps, state 3 emits C). Every network trained on the
symbols alone has one B region whose outputs mix the two noises whatever the run has shown
(≈ (0.056, 0.86, 0.08) after A and after C alike, the HMM's next-symbol frequencies (0.105, 0.852,
0.042) and (0.041, 0.852, 0.107)), which costs ≈ 0.015 nats per step; the gradient of a loss on
sampled symbols cannot split one region into two (the sampled noise symbol does not feed back into
the state). A network trained on an HMM with one symbol per state forms one region per state; a
readout fitted to it then gives each region its state's emission row, and training on the real HMM
starts from four regions.

    python benchmarks/state_pretrain.py OUT --preset cyclic4 [--epochs 100] [--threads 1] \
        [--stage2 "--emission-weight 1000 --change-count-weight 10000 --ngram-order 3"]

Stage 1 (``OUT/stage1``): ``hmmrnn train --preset P --hmm OUT/states_hmm.json``, the HMM with the
preset's transitions and S outputs, state z emitting symbol z with probability 0.91 and each other
symbol with 0.09 / (S − 1) (deterministic emissions collapse the training: measured, loss constant
from epoch 5). The readout: 200 chains of the stage-1 network, 1,500 steps after 500 of burn-in; each
state is labelled by its most likely output (its region); W_out (K, H) solves the ridge regression of
the centred log-rows log max(E_z, 1e-3) of the labelled regions on the states (ridge 0.01 per state).
Stage 2 (``OUT/stage2``): ``hmmrnn train --preset P --init-weights OUT/init.safetensors`` plus
``--stage2``'s options. The time of the whole is the sum of both runs' history.csv seconds and the
fit's (printed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import hmmrnn
from hmmrnn.presets import preset
from hmmrnn.runs import save_tensors

#: Probability that stage 1's HMM state z emits its own symbol z.
OWN_SYMBOL = 0.91


def states_hmm(hmm: hmmrnn.HMM) -> dict:
    """The HMM with ``hmm``'s start and transitions whose state z emits symbol z (module docstring)."""
    n = hmm.n_states
    emission = np.full((n, n), (1 - OWN_SYMBOL) / (n - 1))
    np.fill_diagonal(emission, OWN_SYMBOL)
    spec = hmm.to_dict()
    spec.update(name=f"{hmm.name}-states", emission=emission.tolist(),
                description={"n_states": n, "n_outputs": n, "emissions": f"one symbol per state ({OWN_SYMBOL})"})
    return spec


def fitted_readout(model: hmmrnn.NoiseRNN, emission: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """(K, H) readout giving each state region of ``model`` (one output per HMM state) its emission
    row, and the (S, K) mean output probabilities it gives each region."""
    generator = torch.Generator().manual_seed(seed)
    h = model.initial_hidden(200, generator)
    kept = []
    with torch.no_grad():
        for block in range(8):
            hidden = model.rollout(torch.randn(200, 250, model.noise_dim, generator=generator), h)
            h = hidden[:, -1]
            if block >= 2:
                kept.append(hidden.reshape(-1, model.hidden))
    states = torch.cat(kept).double().numpy()
    region = (states @ model.w_out.detach().double().numpy().T).argmax(1)
    target = np.log(np.maximum(emission[region], 1e-3))
    target -= target.mean(1, keepdims=True)
    ridge = 1e-2 * len(states)
    readout = np.linalg.solve(states.T @ states + ridge * np.eye(states.shape[1]), states.T @ target).T
    probabilities = torch.from_numpy(states @ readout.T).softmax(-1).numpy()
    means = np.array([probabilities[region == z].mean(0) for z in range(emission.shape[0])])
    return torch.from_numpy(readout).float(), means


def train(args: list[str]) -> None:
    """Run ``hmmrnn train`` with ``args``; stop on failure."""
    print("hmmrnn train " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "hmmrnn", "train", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="cyclic4")
    parser.add_argument("--epochs", type=int, default=100, help="stage 1's epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stage2", default="", help="further `hmmrnn train` options of stage 2")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    hmm = preset(args.preset).hmm
    (args.out / "states_hmm.json").write_text(json.dumps(states_hmm(hmm)))
    threads = ["--threads", str(args.threads), "-q"]
    if not (args.out / "stage1" / "model.safetensors").is_file():
        train(["--preset", args.preset, "--hmm", str(args.out / "states_hmm.json"), "--epochs", str(args.epochs),
               "--no-early-stop", "--no-evaluate", "--out", str(args.out / "stage1"), *threads])
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    model = hmmrnn.load_run(args.out / "stage1").model
    readout, means = fitted_readout(model, hmm.emission)
    save_tensors(args.out / "init.safetensors",
                 {"w_in": model.w_in.detach(), "w_rec": model.w_rec.detach(), "w_out": readout})
    print(f"readout fitted in {time.perf_counter() - started:.1f} s; mean outputs by state region:")
    for z, row in enumerate(means):
        print(f"  state {z}: {np.round(row, 3)} (HMM row {hmm.emission[z]})")
    train(["--preset", args.preset, "--init-weights", str(args.out / "init.safetensors"),
           "--out", str(args.out / "stage2"), *threads, *shlex.split(args.stage2)])


if __name__ == "__main__":
    main()
