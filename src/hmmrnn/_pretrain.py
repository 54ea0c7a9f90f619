"""State pretraining: a network first trained to emit the HMM's states, then given a readout of its symbols.

Why it exists (docs/method.md §3.5; BENCHMARKS.md, "Session 24"). In ``cyclic4`` states 1 and 3 both
emit mostly B and differ only in their noise (A in state 1, C in state 3, 10 % of the steps). Every
network trained on the symbols alone has one B region whose outputs mix the two noises (≈ (0.056,
0.86, 0.08) after A and after C alike, where the HMM's next-symbol frequencies are (0.106, 0.852,
0.042) and (0.041, 0.857, 0.102) at run ages 5–9), which costs ≈ 0.015 nats per step of log-likelihood. Training on the
symbols cannot split that region: the sampled noise symbol does not feed back into the state, so no
gradient ties the state to the noise it emitted. A network trained on the *states HMM* — the same
start and transitions, state z emitting symbol z with probability ``OWN_SYMBOL`` and the rest as
the symbols of the states it can move to — forms one region per state. A readout fitted on its own
long run then gives region z the HMM's emission row E_z: with h_i (i = 1..n) the states of the run
and z_i the argmax of its state-readout at h_i, W_out (K, H) minimises

    (1/n) Σ_i KL(E_{z_i} ‖ softmax(W_out h_i)) + ρ ‖W_out‖²        (ρ = ``RIDGE``),

a convex soft-label multinomial logistic regression, solved by L-BFGS from the least-squares fit of
the centred log rows. (The least-squares fit alone, used first, gives soft outputs: A's region of
``cyclic4`` emitted (0.71, 0.27, 0.015) for the row (0.9, 0.1, 0) at every ridge tried, since a
squared error on logits weighs the spread of the region's states, not the probabilities it emits;
BENCHMARKS.md, session 26.) Training on the real HMM then starts from one region per state (the
recurrent and input weights of the pretrained network, this readout). Deterministic state emissions
(``OWN_SYMBOL`` = 1) collapse the training (measured: the loss constant from epoch 5), hence the noise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .config import RunConfig
from .hmm import HMM
from .rnn import NoiseRNN

__all__ = ["OWN_SYMBOL", "fitted_readout", "pretraining_config", "region_readout", "states_hmm"]

#: Probability that state z of the states HMM emits its own symbol z.
OWN_SYMBOL = 0.91
#: The readout fit: chains, steps per block, blocks (the first ``FIT_BURN_IN`` blocks dropped).
FIT_CHAINS, FIT_BLOCK, FIT_BLOCKS, FIT_BURN_IN = 200, 250, 8, 2
#: Floor of the emission probabilities in the least-squares start's target logits; the fit's ridge ρ.
LOG_FLOOR, RIDGE = 1e-3, 1e-6
#: L-BFGS iterations of the readout fit: on cyclic4's 300,000 states 100 reach the optimum to 2e-5 nats
#: (500: 1e-8), 20 s on one thread (BENCHMARKS.md, session 26).
FIT_ITERATIONS = 100


def states_hmm(hmm: HMM, own: float = OWN_SYMBOL) -> HMM:
    """The HMM with ``hmm``'s start and transitions whose state z emits symbol z with probability
    ``own`` and the rest over the states z can move to, in proportion to A[z, j] (j ≠ z; uniformly
    over the other states for a state that cannot move); S outputs. A jump the chain cannot make
    (state 1 to state 3 of ``cyclic4``) then looks like no emission noise: in the target the pair
    "1 then 3" needs a move and a noise symbol together."""
    n = hmm.n_states
    others = 1.0 - np.eye(n)
    moves = hmm.transition * others
    totals = moves.sum(axis=1, keepdims=True)
    spread = np.divide(moves, totals, out=others / (n - 1), where=totals > 0)
    emission = own * np.eye(n) + (1 - own) * spread
    return HMM(hmm.transition, emission, hmm.start, name=f"{hmm.name}-states",
               description={"n_states": n, "n_outputs": n,
                            "emissions": f"one symbol per state ({own:g}), the rest to its neighbours"})


def pretraining_config(config: RunConfig) -> RunConfig:
    """The run that pretrains ``config``'s network: its states HMM (S outputs), ``state_pretrain_epochs``
    epochs of the run's own training settings (every loss term, now measured against the states HMM)
    without a stop, verdict, stage, retry or ``state_weight`` (its own readout is the state readout)."""
    t = config.train
    train = replace(t, epochs=t.state_pretrain_epochs, state_pretrain_epochs=0, state_weight=0.0, early_stop=False,
                    eval_every=0, confirmations=0, retries=0, refine_from=0, refine="", init_weights="")
    hmm = states_hmm(config.hmm)
    return replace(config, hmm=hmm, model=replace(config.model, n_outputs=hmm.n_outputs), train=train)


@torch.no_grad()
def fitted_readout(model: NoiseRNN, emission: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """The symbol readout of a network pretrained on the states HMM (module docstring).

    Parameters
    ----------
    model : the pretrained network, whose S outputs are the HMM's states.
    emission : (S, K) the symbol HMM's emission matrix.
    seed : seed of the long run the readout is fitted on.

    Returns
    -------
    readout : (K, H) float32, the new W_out.
    region_outputs : (S, K) mean softmax(readout h) over the run's states in each state's region
        (NaN rows for a region the run never visits).
    """
    generator = torch.Generator(device=model.w_rec.device).manual_seed(seed)
    h = model.initial_hidden(FIT_CHAINS, generator)
    kept = []
    for block in range(FIT_BLOCKS):
        noise = torch.randn(FIT_CHAINS, FIT_BLOCK, model.noise_dim, generator=generator, dtype=model.w_rec.dtype,
                            device=model.w_rec.device)
        hidden = model.rollout(noise, h)
        h = hidden[:, -1]
        if block >= FIT_BURN_IN:
            kept.append(hidden.reshape(-1, model.hidden))
    states = torch.cat(kept).double().cpu().numpy()  # (n, H)
    region = (states @ model.w_out.double().cpu().numpy().T).argmax(1)  # (n,)
    readout, region_outputs = region_readout(states, region, emission)
    return torch.from_numpy(readout).float(), region_outputs


def region_readout(states: np.ndarray, region: np.ndarray, emission: np.ndarray,
                   ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """The readout that gives each region its emission row (module docstring).

    Parameters
    ----------
    states : (n, H) hidden states.
    region : (n,) the state (row of ``emission``) whose region each hidden state lies in.
    emission : (S, K) emission matrix.
    ridge : ρ.

    Returns
    -------
    readout : (K, H) float64, argmin_W (1/n) Σ_i KL(E_{region_i} ‖ softmax(W h_i)) + ρ ‖W‖².
    region_outputs : (S, K) mean softmax(W h) over each region's states (NaN rows for empty regions).
    """
    rows = np.asarray(emission, dtype=np.float64)[region]  # (n, K)
    start = np.log(np.maximum(rows, LOG_FLOOR))
    start -= start.mean(1, keepdims=True)
    gram = states.T @ states + len(states) * np.eye(states.shape[1])  # a unit ridge: a start, not the fit
    # scikit-learn's LogisticRegression takes hard labels only (soft rows would need K weighted copies
    # of every state); the convex soft-label loss is a few lines for torch's L-BFGS
    x, target = torch.from_numpy(states), torch.from_numpy(rows)
    readout = torch.from_numpy(np.linalg.solve(gram, states.T @ start).T.copy()).requires_grad_(True)
    optimizer = torch.optim.LBFGS([readout], max_iter=FIT_ITERATIONS, tolerance_grad=1e-9, tolerance_change=1e-14,
                                  history_size=20, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = -(target * torch.log_softmax(x @ readout.T, dim=-1)).sum(1).mean() + ridge * readout.square().sum()
        value.backward()
        return value

    with torch.enable_grad():  # fitted_readout calls this under no_grad
        optimizer.step(loss)
    readout = readout.detach().numpy()
    probabilities = torch.from_numpy(states @ readout.T).softmax(-1).numpy()
    region_outputs = np.array([probabilities[region == z].mean(0) if np.any(region == z)
                               else np.full(readout.shape[0], np.nan) for z in range(len(emission))])
    return readout, region_outputs
