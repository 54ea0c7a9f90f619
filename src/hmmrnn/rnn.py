"""The noise-driven ReLU RNN (docs/method.md §2).

    h_t = F(h_{t-1}, x_t) = relu(W_rec h_{t-1} + W_in x_t),   x_t ~ N(0, I_d)
    z_t = W_out h_t                                            (logits, K outputs)
    y_t = one_hot(argmax(z_t + g_t)),  g_t ~ Gumbel(0, 1)      (straight-through gradient)

No biases anywhere, so the map is positively homogeneous: scaling the noise by c > 0 (with
h_0 = 0) scales every hidden state and logit by c. The one-step map ``NoiseRNN.step`` is
the core abstraction; rollouts and every later analysis build on it.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

__all__ = ["NoiseRNN", "gumbel_emit", "WEIGHT_NAMES"]

#: Names of the three weight matrices, as stored in ``model.safetensors`` (a model with
#: ``initial_state="learned"`` also stores its initial state ``h0``).
WEIGHT_NAMES = ("w_in", "w_rec", "w_out")

InitialState = Literal["zero", "random", "learned", "stationary"]
Semantics = Literal["training", "reference"]
Readout = Literal["sample", "argmax"]


def _gumbel_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """i.i.d. Gumbel(0, 1) noise shaped like ``like``: −log of an Exp(1) draw."""
    return -torch.empty_like(like).exponential_(generator=generator).log()


def gumbel_emit(logits: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Hard straight-through Gumbel-softmax.

    Forward: one_hot(argmax(z + g)), an exact sample from softmax(z). Backward: the gradient of
    softmax((z + g) / tau). Same as ``F.gumbel_softmax(hard=True)`` but drawing its Gumbel noise
    from ``generator`` so that training is reproducible and resumable.

    Parameters
    ----------
    logits : (..., K)

    Returns
    -------
    (..., K) one-hot in the forward pass.
    """
    soft = torch.softmax((logits + _gumbel_noise(logits, generator)) / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


class NoiseRNN(nn.Module):
    """Elman ReLU RNN without biases, driven only by Gaussian noise.

    Parameters
    ----------
    hidden : H, number of recurrent units.
    noise_dim : d, dimension of the noise input.
    n_outputs : K, number of output symbols.
    initial_state : ``"zero"`` (the paper), ``"random"`` (h_0 ~ N(0, I) per sequence) or
        ``"learned"`` (one trained h_0 shared by every sequence, starting at 0) or ``"stationary"``
        (each chain's h_0 is its state after ``burn_in`` noisy steps from 0: a draw from the
        network's own stationary distribution, for HMMs that start from theirs; docs/method.md §3.2).
    burn_in : the noisy steps before the first output with ``initial_state="stationary"``.
    seed : seed of the initialisation, PyTorch's default distribution U(-1/sqrt(H), 1/sqrt(H))
        for all three matrices.

    Attributes
    ----------
    w_in : (H, d)   input weights
    w_rec : (H, H)  recurrent weights
    w_out : (K, H)  readout weights
    h0 : (H,)       the learned initial state (only with ``initial_state="learned"``)
    """

    def __init__(self, hidden: int, noise_dim: int, n_outputs: int = 3, *,
                 initial_state: InitialState = "zero", burn_in: int = 100, seed: int | None = 0) -> None:
        super().__init__()
        if hidden < 1 or noise_dim < 1 or n_outputs < 2:
            raise ValueError(f"need hidden >= 1, noise_dim >= 1, n_outputs >= 2; got {hidden}, {noise_dim}, {n_outputs}")
        if initial_state not in get_args(InitialState):
            raise ValueError(f"initial_state must be one of {', '.join(get_args(InitialState))}, got {initial_state!r}")
        if burn_in < 1:
            raise ValueError(f"burn_in must be >= 1, got {burn_in}")
        self.hidden, self.noise_dim, self.n_outputs = hidden, noise_dim, n_outputs
        self.initial_state, self.burn_in = initial_state, burn_in
        gen = torch.Generator()
        if seed is not None:
            gen.manual_seed(seed)
        bound = 1.0 / math.sqrt(hidden)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound, generator=gen))

        self.w_in = uniform(hidden, noise_dim)
        self.w_rec = uniform(hidden, hidden)
        self.w_out = uniform(n_outputs, hidden)
        if initial_state == "learned":
            self.h0 = nn.Parameter(torch.zeros(hidden))

    @property
    def weight_names(self) -> tuple[str, ...]:
        """Names of this model's stored tensors: ``WEIGHT_NAMES``, plus ``"h0"`` when learned."""
        return WEIGHT_NAMES + (("h0",) if self.initial_state == "learned" else ())

    def extra_repr(self) -> str:
        burn_in = f", burn_in={self.burn_in}" if self.initial_state == "stationary" else ""
        return (f"hidden={self.hidden}, noise_dim={self.noise_dim}, n_outputs={self.n_outputs}, "
                f"initial_state={self.initial_state!r}{burn_in}")

    # ------------------------------------------------------------------ the one-step map

    def step(self, h: torch.Tensor, x: torch.Tensor | None = None, *, recurrent_gain: torch.Tensor | None = None,
             input_gain: torch.Tensor | None = None) -> torch.Tensor:
        """F(h, x) = relu(g_rec ⊙ (W_rec h) + g_in ⊙ (W_in x)).

        Parameters
        ----------
        h : (..., H) previous state.
        x : (..., d) input (noise) at this step; None for the input-free map relu(W_rec h).
        recurrent_gain, input_gain : (H,) per-unit gains on the recurrent and the input drive
            (docs/method.md §2.1); None means 1. Both 0 on a unit silences it (ablation).

        Returns
        -------
        (..., H) next state.
        """
        return torch.relu(self.preactivation(h, x, recurrent_gain=recurrent_gain, input_gain=input_gain))

    def jacobian(self, h: torch.Tensor, x: torch.Tensor | None = None, *, recurrent_gain: torch.Tensor | None = None,
                 input_gain: torch.Tensor | None = None) -> torch.Tensor:
        """∂F/∂h at (h, x): J = diag(relu'(pre)) diag(g_rec) W_rec, pre the argument of the relu in
        ``step`` (gains as there), with relu'(0) = 0.

        Parameters
        ----------
        h : (..., H); x : (..., d) or None (input-free map).

        Returns
        -------
        (..., H, H); J[..., i, j] = ∂F_i / ∂h_j.
        """
        pre = self.preactivation(h, x, recurrent_gain=recurrent_gain, input_gain=input_gain)
        w = self.w_rec if recurrent_gain is None else recurrent_gain[:, None] * self.w_rec
        return (pre > 0).to(self.w_rec.dtype).unsqueeze(-1) * w

    def preactivation(self, h: torch.Tensor, x: torch.Tensor | None = None, *,
                      recurrent_gain: torch.Tensor | None = None, input_gain: torch.Tensor | None = None) -> torch.Tensor:
        """g_rec ⊙ (W_rec h) + g_in ⊙ (W_in x), the argument of the relu in ``step`` (the drive
        that produces the next state; kick neurons are read from it). (..., H)."""
        recurrent = h @ self.w_rec.T
        if recurrent_gain is not None:
            recurrent = recurrent * recurrent_gain
        if x is None:
            return recurrent
        drive = x @ self.w_in.T
        return recurrent + (drive if input_gain is None else drive * input_gain)

    def initial_hidden(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """h_0 for ``batch`` sequences: zeros, N(0, I) when ``initial_state == "random"``, copies of
        the parameter ``h0`` (differentiable) when ``"learned"``, or with ``"stationary"`` the states
        after ``burn_in`` steps from 0 driven by noise from ``generator`` (no gradient). (batch, H)."""
        like = {"dtype": self.w_rec.dtype, "device": self.w_rec.device}
        if self.initial_state == "learned":
            return self.h0.expand(batch, self.hidden).clone()
        if self.initial_state == "stationary":
            with torch.no_grad():
                noise = torch.randn(batch, self.burn_in, self.noise_dim, generator=generator, **like)
                return self.rollout(noise, torch.zeros(batch, self.hidden, **like))[:, -1]
        if self.initial_state == "random":
            return torch.randn(batch, self.hidden, generator=generator, **like)
        return torch.zeros(batch, self.hidden, **like)

    def rollout(self, noise: torch.Tensor | None, h0: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None, steps: int | None = None,
                recurrent_gain: torch.Tensor | None = None, input_gain: torch.Tensor | None = None) -> torch.Tensor:
        """The one rollout engine: iterate ``step`` over time for a batch of chains.

        h_t = relu(g_rec ⊙ (W_rec h_{t−1}) + g_in ⊙ (W_in x_t)), t = 1..T. Training, generation, the
        verdict's long run and every analysis step the network through this method.

        Parameters
        ----------
        noise : (B, T, d) inputs x_1..x_T; None runs the input-free map h_t = relu(g_rec ⊙ W_rec h_{t−1})
            for ``steps`` steps (then ``h0`` is required).
        h0 : (B, H) initial states; default ``initial_hidden``.
        recurrent_gain, input_gain : per-unit gains, broadcast against (B, H): (H,) for every chain,
            (B, H) for one gain vector per chain (a gain sweep as one batch); None means 1.

        Returns
        -------
        hidden : (B, T, H) states h_1..h_T.
        """
        if noise is None:
            if h0 is None or steps is None:
                raise ValueError("the input-free rollout needs h0 and steps")
            h, length, drives = h0, steps, None
        else:
            if noise.ndim != 3 or noise.shape[-1] != self.noise_dim:
                raise ValueError(f"noise must have shape (B, T, d={self.noise_dim}), got {tuple(noise.shape)}")
            h = self.initial_hidden(noise.shape[0], generator) if h0 is None else h0
            length = noise.shape[1]
            if recurrent_gain is None and (input_gain is None or input_gain.ndim == 1) and not torch.is_grad_enabled():
                return self._rollout_columns(noise.permute(1, 2, 0), h.T, input_gain)
            # The input drive of all time steps in one matmul, time-major so that each step reads one
            # contiguous (B, H) block; only the recursion loops. unbind (not drive[t]) keeps the backward
            # pass linear in T: each indexing op would scatter its gradient into a full (T, B, H) buffer.
            drive = noise.transpose(0, 1) @ self.w_in.T
            if input_gain is not None:
                drive = drive * input_gain
            drives = drive.unbind(0)
        if length == 0:
            return h.new_zeros(h.shape[0], 0, self.hidden)
        states = []
        for t in range(length):
            recurrent = h @ self.w_rec.T
            if recurrent_gain is not None:
                recurrent = recurrent * recurrent_gain
            h = torch.relu(recurrent if drives is None else recurrent + drives[t])
            states.append(h)
        return torch.stack(states, dim=1)

    def _rollout_columns(self, noise: torch.Tensor, h: torch.Tensor, input_gain: torch.Tensor | None = None, *,
                         time_major: bool = False) -> torch.Tensor:
        """``rollout`` without autograd, in column form: h' = relu([W_rec  g_in ⊙ W_in] [h; x]), one
        matrix product per step on a stacked (H + d, B) buffer: the same numbers as the batch-major
        loop, 1.8× fewer seconds per flop on this CPU (BENCHMARKS.md, "RNN generation").

        noise : (T, d, B), any strides (column form); h : (H, B).
        Returns (B, T, H), or with ``time_major`` the (T, H, B) column states themselves (generation
        reads them out with one batched product and never transposes them).
        """
        length, _, batch = noise.shape
        w_in = self.w_in if input_gain is None else input_gain[:, None] * self.w_in
        w_step = torch.cat([self.w_rec, w_in], dim=1).detach()  # (H, H + d); detached: no autograd here
        like = {"dtype": w_step.dtype, "device": w_step.device}
        stacked = torch.empty(self.hidden + self.noise_dim, batch, **like)
        stacked[: self.hidden] = h
        pre = torch.empty(self.hidden, batch, **like)
        states = torch.empty(*((length, self.hidden, batch) if time_major else (batch, length, self.hidden)), **like)
        for t in range(length):
            stacked[self.hidden:] = noise[t]
            torch.mm(w_step, stacked, out=pre)
            torch.clamp(pre, min=0, out=stacked[: self.hidden])
            if time_major:
                states[t] = stacked[: self.hidden]
            else:  # a strided write per step costs less than one transposition of the whole block
                states[:, t] = stacked[: self.hidden].T
        return states

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits z = W_out h. (..., H) -> (..., K)."""
        return hidden @ self.w_out.T

    def forward(self, noise: torch.Tensor, generator: torch.Generator | None = None, tau: float = 1.0,
                h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training forward pass: an output at every step, the first from h_1 (docs/method.md §2.1).

        Parameters
        ----------
        noise : (B, T, d)
        h0 : (B, H) states the windows start from; default ``initial_hidden``.

        Returns
        -------
        outputs : (B, T, K) straight-through one-hot samples.
        hidden : (B, T, H)
        logits : (B, T, K)
        """
        hidden = self.rollout(noise, h0, generator=generator)
        logits = self.readout(hidden)
        return gumbel_emit(logits, tau, generator), hidden, logits

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def sample(self, n: int, length: int, *, seed: int | None = None, semantics: Semantics = "training",
               readout: Readout = "sample", noise_scale: float = 1.0) -> np.ndarray:
        """Output symbols only (no hidden states kept): ``generate`` for evaluation-sized N.

        Returns
        -------
        (n, length) int64 numpy array.
        """
        symbols, _, _ = self.generate(n, length, seed=seed, semantics=semantics, readout=readout,
                                      keep_states=False, noise_scale=noise_scale)
        return symbols.cpu().numpy()

    @torch.no_grad()
    def generate(self, n: int, length: int, *, seed: int | None = None,
                 generator: torch.Generator | None = None, semantics: Semantics = "training",
                 readout: Readout = "sample", keep_states: bool = True, batch_size: int = 1024,
                 noise_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Sample ``n`` output sequences of ``length`` steps from fresh noise.

        ``semantics="training"`` emits from h_1..h_T exactly as in training. ``"reference"``
        reproduces the authors' generator: the first symbol comes from h_0 (zero logits for h_0 = 0,
        so a uniform sample, or symbol 0 under argmax) and only ``length - 1`` noisy steps follow.
        ``readout="argmax"`` gives the deterministic readout argmax(W_out h) instead of a sample.

        The network runs through the rollout engine on ``batch_size`` sequences and 100 steps at a
        time: per block the generator yields the noise (steps, d, batch), then, for sampled readouts,
        the Gumbel noise (steps, K, batch). ``noise_scale`` multiplies the input noise (x_t ~ N(0, s² I)).

        Returns
        -------
        symbols : (n, length) int64
        hidden : (n, length, H), row 0 is h_0 under the reference semantics; None unless keep_states
        logits : (n, length, K); None unless keep_states
        """
        if semantics not in ("training", "reference"):
            raise ValueError(f"semantics must be 'training' or 'reference', got {semantics!r}")
        if readout not in ("sample", "argmax"):
            raise ValueError(f"readout must be 'sample' or 'argmax', got {readout!r}")
        if generator is None:
            generator = torch.Generator(device=self.w_rec.device)
            if seed is not None:
                generator.manual_seed(seed)
        parts = [self._generate_batch(min(batch_size, n - start), length, generator, semantics, readout,
                                      keep_states, noise_scale) for start in range(0, n, batch_size)]
        symbols = torch.cat([p[0] for p in parts])
        if not keep_states:
            return symbols, None, None
        return symbols, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])

    @torch.no_grad()
    def long_run(self, chains: int, length: int, *, seed: int | None = None, block: int = 250
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Follow ``chains`` independent noisy chains for ``length`` steps from h_0, keeping only the
        sampled symbols and the state norms (200 chains of 10,000 steps hold 24 MB, not 1.2 GB).

        The chains advance ``block`` steps at a time through ``rollout``; per block the
        generator yields the noise (chains, block, d), then the Gumbel noise of the symbols.

        Returns
        -------
        symbols : (chains, length) int64, sampled from softmax(W_out h_t), t = 1..length.
        norms : (chains, length) float64, ‖h_t‖₂ (inf or nan once a chain has diverged).
        """
        generator = torch.Generator(device=self.w_rec.device)
        if seed is not None:
            generator.manual_seed(seed)
        like = {"dtype": self.w_rec.dtype, "device": self.w_rec.device}
        h = self.initial_hidden(chains, generator)
        symbols, norms = [], []
        for start in range(0, length, block):
            noise = torch.randn(chains, min(block, length - start), self.noise_dim, generator=generator, **like)
            hidden = self.rollout(noise, h)
            logits = self.readout(hidden)
            symbols.append((logits + _gumbel_noise(logits, generator)).argmax(dim=-1))
            norms.append(torch.linalg.vector_norm(hidden, dim=-1))
            h = hidden[:, -1]
        return torch.cat(symbols, 1).cpu().numpy(), torch.cat(norms, 1).double().cpu().numpy()

    def _generate_batch(self, batch: int, length: int, generator: torch.Generator, semantics: Semantics,
                        readout: Readout, keep_states: bool, noise_scale: float = 1.0, block: int = 100
                        ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """One batch of ``generate``: the rollout engine ``block`` steps at a time in column form
        (per block the noise (steps, d, batch) is drawn, then the Gumbel noise of its symbols
        (steps, K, batch)), so memory stays bounded for any length."""
        h = self.initial_hidden(batch, generator).T  # (H, batch)
        w_out = self.w_out.detach()
        symbols, states, logits = [], [], []

        def emit(columns: torch.Tensor) -> None:  # columns (L, H, batch)
            z = w_out @ columns  # (L, K, batch)
            symbols.append((z + _gumbel_noise(z, generator) if readout == "sample" else z).argmax(dim=1).T)
            if keep_states:
                states.append(columns.permute(2, 0, 1))
                logits.append(z.permute(2, 0, 1))

        if semantics == "reference":
            emit(h[None])
        done = len(symbols)
        while done < length:
            steps = min(block, length - done)
            noise = torch.randn(steps, self.noise_dim, batch, generator=generator, dtype=h.dtype, device=h.device)
            columns = self._rollout_columns(noise if noise_scale == 1.0 else noise_scale * noise, h, time_major=True)
            emit(columns)
            h, done = columns[-1], done + steps
        if not keep_states:
            return torch.cat(symbols, dim=1), None, None
        return torch.cat(symbols, dim=1), torch.cat(states, dim=1), torch.cat(logits, dim=1)
