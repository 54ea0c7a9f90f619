"""Discrete hidden Markov models: construction, validation, sampling, likelihood.

An HMM with ``M`` hidden states and ``K`` output symbols is the triple

* ``start``      : (M,)   initial distribution  P(s_0 = i)
* ``transition`` : (M, M) row-stochastic        A[i, j] = P(s_t = j | s_{t-1} = i)
* ``emission``   : (M, K) row-stochastic        B[i, k] = P(o_t = k | s_t = i)

The builders reproduce the paper's constructions (docs/method.md §1.1–1.2). Sampling is vectorised
over sequences (only the time recursion is a Python loop) and seeded; the likelihood is the
exact forward algorithm in log space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._memory import available_memory, gigabytes
from ._textfiles import loads_settings
from .errors import HMMSpecError

__all__ = [
    "HMM",
    "em_step",
    "HMMSpecError",
    "TRANSITION_BUILDERS",
    "EMISSION_BUILDERS",
    "target_prob_transitions",
    "stay_prob_transitions",
    "fully_connected_transitions",
    "cyclic_transitions",
    "linear_emissions",
    "gaussian_emissions",
    "triangular_emissions",
    "CYCLIC4_EMISSIONS",
]

STOCHASTIC_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- transition builders


def target_prob_transitions(n_states: int, target_prob: float = 0.05) -> np.ndarray:
    """Linear chain whose end-to-end walk in ``M - 1`` steps has probability ``target_prob``.

    With ``q = target_prob ** (1 / (M - 1))``: end states stay with ``1 - q`` and move to their
    neighbour with ``q``; interior states stay with ``1 - 2q`` and move left/right with ``q``.

    Returns
    -------
    (M, M) array.
    """
    if n_states < 2:
        raise HMMSpecError(f"target_prob chain needs at least 2 states, got {n_states}")
    if not 0.0 < target_prob < 1.0:
        raise HMMSpecError(f"target_prob must lie in (0, 1), got {target_prob}")
    q = target_prob ** (1.0 / (n_states - 1))
    if n_states > 2 and 2 * q > 1:
        raise HMMSpecError(
            f"target_prob={target_prob} gives move probability {q:.4f} > 0.5 for interior states"
        )
    a = np.zeros((n_states, n_states))
    for i in range(n_states):
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < n_states]
        a[i, neighbours] = q
        a[i, i] = 1.0 - q * len(neighbours)
    return a


def stay_prob_transitions(n_states: int, stay_prob: float = 0.95) -> np.ndarray:
    """Linear chain that stays with ``stay_prob``; the rest goes to the neighbours in equal parts.

    Returns
    -------
    (M, M) array.
    """
    if n_states < 2:
        raise HMMSpecError(f"stay_prob chain needs at least 2 states, got {n_states}")
    if not 0.0 <= stay_prob <= 1.0:
        raise HMMSpecError(f"stay_prob must lie in [0, 1], got {stay_prob}")
    a = np.zeros((n_states, n_states))
    for i in range(n_states):
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < n_states]
        a[i, neighbours] = (1.0 - stay_prob) / len(neighbours)
        a[i, i] = stay_prob
    return a


def fully_connected_transitions(n_states: int, stay_prob: float = 0.95) -> np.ndarray:
    """Stay with ``stay_prob``, move to each other state with ``(1 - stay_prob) / (M - 1)``.

    Returns
    -------
    (M, M) array.
    """
    if n_states < 2:
        raise HMMSpecError(f"fully connected HMM needs at least 2 states, got {n_states}")
    a = np.full((n_states, n_states), (1.0 - stay_prob) / (n_states - 1))
    np.fill_diagonal(a, stay_prob)
    return a


def cyclic_transitions(n_states: int = 4, stay_prob: float = 0.95) -> np.ndarray:
    """Ring 0-1-...-(M-1)-0: stay with ``stay_prob``, ``(1 - stay_prob) / 2`` to each ring neighbour.

    Returns
    -------
    (M, M) array.
    """
    if n_states < 3:
        raise HMMSpecError(f"a ring needs at least 3 states, got {n_states}")
    a = np.zeros((n_states, n_states))
    for i in range(n_states):
        a[i, (i - 1) % n_states] += (1.0 - stay_prob) / 2
        a[i, (i + 1) % n_states] += (1.0 - stay_prob) / 2
        a[i, i] = stay_prob
    return a


# --------------------------------------------------------------------------- emission builders


def linear_emissions(n_states: int, n_outputs: int = 3, noise_prob: float = 0.01) -> np.ndarray:
    """First and last symbol mixed linearly along the chain; interior symbols are rare noise.

    For state ``i`` with ``a = i / (M - 1)``, every interior symbol gets ``noise_prob`` and the
    two end symbols share the rest ``r = 1 - (K - 2) noise_prob`` as ``[r (1 - a), ..., r a]``.
    For ``K = 3`` this is the paper's ``[0.99 (1 - a), 0.01, 0.99 a]``. (The reference code builds
    unnormalised rows for ``K != 3``; this generalisation keeps every row stochastic.)

    Returns
    -------
    (M, K) array.
    """
    if n_states < 2 or n_outputs < 2:
        raise HMMSpecError("linear emissions need at least 2 states and 2 outputs")
    rest = 1.0 - (n_outputs - 2) * noise_prob
    if rest < 0:
        raise HMMSpecError(f"noise_prob={noise_prob} too large for {n_outputs} outputs")
    b = np.zeros((n_states, n_outputs))
    a = np.arange(n_states) / (n_states - 1)
    b[:, 0] = rest * (1 - a)
    b[:, -1] = rest * a
    b[:, 1:-1] = noise_prob
    return b


def gaussian_emissions(n_states: int, n_outputs: int = 3) -> np.ndarray:
    """Gaussian bumps: centres ``c_i`` evenly spaced on [0, K-1],
    ``B[i, j] ∝ exp(-0.2 (|j - c_i| / (0.1 (K - 1)))^2)``, rows normalised.

    Returns
    -------
    (M, K) array.
    """
    if n_outputs < 2:
        raise HMMSpecError("gaussian emissions need at least 2 outputs")
    centres = np.linspace(0, n_outputs - 1, n_states)
    dist = np.abs(np.arange(n_outputs)[None, :] - centres[:, None]) / (0.1 * (n_outputs - 1))
    b = np.exp(-0.2 * dist**2)
    return b / b.sum(axis=1, keepdims=True)


def triangular_emissions(n_states: int, n_outputs: int = 3, diag_prob: float = 0.98) -> np.ndarray:
    """State ``i`` emits symbol ``i`` with ``diag_prob``, the rest shared equally (needs M = K).

    Returns
    -------
    (M, K) array; for M = K = 3 the paper's 0.98 diagonal / 0.01 off-diagonal.
    """
    if n_states != n_outputs:
        raise HMMSpecError(
            f"triangular emissions need as many states as outputs, got M={n_states}, K={n_outputs}"
        )
    b = np.full((n_states, n_outputs), (1.0 - diag_prob) / (n_outputs - 1))
    np.fill_diagonal(b, diag_prob)
    return b


#: The paper's cyclic 4-state emissions: states 1 and 3 both emit mostly symbol 1.
CYCLIC4_EMISSIONS = np.array(
    [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9], [0.0, 0.9, 0.1]]
)

TRANSITION_BUILDERS: dict[str, Callable[..., np.ndarray]] = {
    "target_prob": target_prob_transitions,
    "stay_prob": stay_prob_transitions,
    "fully": fully_connected_transitions,
    "cyclic": cyclic_transitions,
}
EMISSION_BUILDERS: dict[str, Callable[..., np.ndarray]] = {
    "linear": linear_emissions,
    "gaussian": gaussian_emissions,
    "triangular": triangular_emissions,
}


# --------------------------------------------------------------------------- validation


def _as_matrix(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HMMSpecError(f"{what} is not a numeric array: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise HMMSpecError(f"{what} contains NaN or infinite entries")
    return arr


def _check_stochastic(arr: np.ndarray, what: str) -> None:
    rows = arr[None, :] if arr.ndim == 1 else arr
    for i, row in enumerate(rows):
        label = what if arr.ndim == 1 else f"{what} row {i}"
        negative = np.flatnonzero(row < 0)
        if negative.size:
            raise HMMSpecError(f"{label} has a negative entry {row[negative[0]]:g} at column {negative[0]}")
        total = row.sum()
        if abs(total - 1.0) > STOCHASTIC_TOLERANCE:
            raise HMMSpecError(f"{label} sums to {total:.8g}, must sum to 1 (tolerance {STOCHASTIC_TOLERANCE:g})")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class HMM:
    """A validated discrete HMM.

    Parameters
    ----------
    transition : (M, M) row-stochastic array.
    emission : (M, K) row-stochastic array.
    start : (M,) distribution, default uniform (the paper's choice).
    name : label used in configs and figures.
    """

    transition: np.ndarray
    emission: np.ndarray
    start: np.ndarray | None = None
    name: str = "custom"
    description: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = _as_matrix(self.transition, "transition matrix")
        b = _as_matrix(self.emission, "emission matrix")
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
            raise HMMSpecError(f"transition matrix must be square (M, M), got shape {a.shape}")
        m = a.shape[0]
        if b.ndim != 2 or b.shape[0] != m or b.shape[1] < 2:
            raise HMMSpecError(
                f"emission matrix must have shape (M={m}, K>=2) to match the transition matrix, got {b.shape}"
            )
        s = np.full(m, 1.0 / m) if self.start is None else _as_matrix(self.start, "start distribution")
        if s.shape != (m,):
            raise HMMSpecError(f"start distribution must have shape ({m},), got {s.shape}")
        _check_stochastic(a, "transition matrix")
        _check_stochastic(b, "emission matrix")
        _check_stochastic(s, "start distribution")
        for arr in (a, b, s):
            arr.flags.writeable = False
        object.__setattr__(self, "transition", a)
        object.__setattr__(self, "emission", b)
        object.__setattr__(self, "start", s)

    # ---------------------------------------------------------------- construction

    @classmethod
    def build(
        cls,
        n_states: int,
        topology: str = "target_prob",
        emissions: str = "linear",
        n_outputs: int = 3,
        *,
        target_prob: float = 0.05,
        stay_prob: float = 0.95,
        name: str | None = None,
    ) -> "HMM":
        """Build an HMM from a named topology and emission model (docs/method.md §1.1–1.2).

        ``topology`` is one of ``target_prob``, ``stay_prob``, ``fully``, ``cyclic``;
        ``emissions`` one of ``linear``, ``gaussian``, ``triangular``.
        """
        _check_size(n_states, n_outputs)
        if topology not in TRANSITION_BUILDERS:
            raise HMMSpecError(f"unknown topology {topology!r}; choose from {sorted(TRANSITION_BUILDERS)}")
        if emissions not in EMISSION_BUILDERS:
            raise HMMSpecError(f"unknown emission model {emissions!r}; choose from {sorted(EMISSION_BUILDERS)}")
        if topology == "target_prob":
            a = target_prob_transitions(n_states, target_prob)
        else:
            a = TRANSITION_BUILDERS[topology](n_states, stay_prob)
        b = EMISSION_BUILDERS[emissions](n_states, n_outputs)
        desc = {"n_states": n_states, "topology": topology, "emissions": emissions, "n_outputs": n_outputs}
        desc["target_prob" if topology == "target_prob" else "stay_prob"] = (
            target_prob if topology == "target_prob" else stay_prob
        )
        return cls(a, b, name=name or f"{topology}{n_states}", description=desc)

    @classmethod
    def linear_chain(cls, n_states: int, target_prob: float = 0.05, n_outputs: int = 3) -> "HMM":
        """The paper's linear chain: ``target_prob`` topology with ``linear`` emissions."""
        return cls.build(n_states, "target_prob", "linear", n_outputs, target_prob=target_prob,
                         name=f"linear{n_states}")

    @classmethod
    def fully_connected(cls, n_states: int = 3, stay_prob: float = 0.95) -> "HMM":
        """The paper's fully connected HMM: stay 0.95, ``triangular`` emissions (M = K)."""
        return cls.build(n_states, "fully", "triangular", n_states, stay_prob=stay_prob,
                         name=f"fully{n_states}")

    @classmethod
    def cyclic4(cls, stay_prob: float = 0.95) -> "HMM":
        """The paper's cyclic ring of 4 states with emissions ``CYCLIC4_EMISSIONS`` (visible 0→1→2→1→0)."""
        return cls(cyclic_transitions(4, stay_prob), CYCLIC4_EMISSIONS, name="cyclic4",
                   description={"n_states": 4, "topology": "cyclic", "emissions": "cyclic4",
                                "stay_prob": stay_prob, "n_outputs": 3})

    @classmethod
    def from_dict(cls, spec: dict) -> "HMM":
        """Build from a mapping.

        Either explicit matrices (``transition``, ``emission``, optional ``start``) or a builder
        (``n_states``, ``topology``, ``emissions``, ``n_outputs``, ``target_prob``, ``stay_prob``);
        explicit matrices override the built ones. ``name`` is optional.
        """
        if not isinstance(spec, dict):
            raise HMMSpecError(f"an HMM spec must be a table/object, got {type(spec).__name__}")
        known = {"name", "start", "transition", "emission", "n_states", "topology", "emissions",
                 "n_outputs", "target_prob", "stay_prob", "description"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise HMMSpecError(f"unknown HMM spec key(s) {unknown}; known keys: {sorted(known)}")
        name = spec.get("name", "custom")
        if "transition" in spec and "emission" in spec:
            return cls(spec["transition"], spec["emission"], spec.get("start"), name=str(name),
                       description=dict(spec.get("description", {})))
        if "n_states" not in spec:
            raise HMMSpecError("HMM spec needs both 'transition' and 'emission' matrices, or 'n_states' "
                               "(with optional 'topology'/'emissions') to build them")
        base = cls.build(int(spec["n_states"]), spec.get("topology", "target_prob"),
                         spec.get("emissions", "linear"), int(spec.get("n_outputs", 3)),
                         target_prob=float(spec.get("target_prob", 0.05)),
                         stay_prob=float(spec.get("stay_prob", 0.95)), name=str(name))
        return cls(spec.get("transition", base.transition), spec.get("emission", base.emission),
                   spec.get("start", base.start), name=str(name), description=base.description)

    @classmethod
    def from_file(cls, path: str | Path) -> "HMM":
        """Read an HMM spec (see ``from_dict``) from a ``.json`` or ``.toml`` file."""
        path = Path(path)
        if not path.is_file():
            raise HMMSpecError(f"HMM file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() not in (".json", ".toml"):
                raise HMMSpecError(f"HMM file must end in .json or .toml: {path}")
            spec = loads_settings(text, path.suffix)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, HMMSpecError):
                raise
            raise HMMSpecError(f"cannot parse HMM file {path}: {exc}") from None
        try:
            return cls.from_dict(spec)
        except HMMSpecError as exc:
            raise HMMSpecError(f"{path}: {exc}") from None

    def to_dict(self) -> dict:
        """JSON-ready mapping that ``from_dict`` turns back into an identical HMM."""
        return {
            "name": self.name,
            "start": self.start.tolist(),
            "transition": self.transition.tolist(),
            "emission": self.emission.tolist(),
            "description": dict(self.description),
        }

    # ---------------------------------------------------------------- sizes

    @property
    def n_states(self) -> int:
        """M, the number of hidden states."""
        return self.transition.shape[0]

    @property
    def n_outputs(self) -> int:
        """K, the number of output symbols."""
        return self.emission.shape[1]

    def __repr__(self) -> str:
        return f"HMM(name={self.name!r}, n_states={self.n_states}, n_outputs={self.n_outputs})"

    # ---------------------------------------------------------------- sampling

    def sample(self, n: int, length: int, seed: int | np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``n`` independent sequences of ``length`` steps.

        Inverse-CDF sampling for all sequences at once; only time is a Python loop.

        Returns
        -------
        obs : (n, length) int64 array of symbols in [0, K).
        states : (n, length) int64 array of hidden states in [0, M).
        """
        if n < 1 or length < 1:
            raise ValueError(f"n and length must be positive, got n={n}, length={length}")
        rng = np.random.default_rng(seed)
        u_state = rng.random((length, n))  # time-major: each step reads contiguous memory
        u_obs = rng.random((length, n))
        states = np.empty((length, n), dtype=np.int64)
        states[0] = _categorical(u_state[0], _thresholds(self.start[None, :]), np.zeros(n, dtype=np.int64))
        trans_thr = _thresholds(self.transition)
        for t in range(1, length):
            states[t] = _categorical(u_state[t], trans_thr, states[t - 1])
        obs = _categorical(u_obs, _thresholds(self.emission), states)
        return np.ascontiguousarray(obs.T), np.ascontiguousarray(states.T)

    # ---------------------------------------------------------------- likelihood

    def log_likelihood(self, obs: np.ndarray) -> np.ndarray:
        """Exact log P(o_1..o_T) of each sequence by the forward algorithm.

        The forward variables are renormalised at every step, α̂_t = α_t / c_t, and the likelihood is
        accumulated in log space, log P = Σ_t log c_t, so it never underflows; a sequence the HMM
        cannot emit gets -inf.

        Parameters
        ----------
        obs : (n, T) or (T,) integer array of symbols in [0, K).

        Returns
        -------
        (n,) float64 array (a scalar array for 1-D input).
        """
        obs = np.asarray(obs)
        single = obs.ndim == 1
        obs = check_symbols(np.atleast_2d(obs), self.n_outputs)
        _, log_scale = _forward(self.emission.T[obs.T], self.start, self.transition)
        ll = log_scale.sum(axis=0)
        return ll[0] if single else ll

    @classmethod
    def fit(cls, obs: np.ndarray, n_states: int, n_outputs: int, *, seed: int = 0, restarts: int = 5,
            n_iter: int = 300, tol: float = 1e-6, name: str = "fitted") -> tuple["HMM", float]:
        """Maximum-likelihood HMM for symbol sequences by Baum-Welch EM, best of seeded restarts.

        Each restart draws start, transition and emission rows from a flat Dirichlet and iterates
        ``em_step`` until the mean log-likelihood per symbol improves by less than ``tol``.
        All sequences are processed at once (hmmlearn's ``CategoricalHMM.fit``, which this
        reproduces step for step, loops over sequences in Python: 2,000 sequences of 100 steps
        took it 23-140 s per fit on this machine).

        Parameters
        ----------
        obs : (n, T) integer symbols in [0, n_outputs).

        Returns
        -------
        The best HMM and its total log-likelihood.
        """
        obs = check_symbols(obs, n_outputs)
        best: tuple[float, tuple[np.ndarray, ...]] | None = None
        for restart in range(restarts):
            rng = np.random.default_rng([seed, restart])
            params = (rng.dirichlet(np.ones(n_states)), rng.dirichlet(np.ones(n_states), n_states),
                      rng.dirichlet(np.ones(n_outputs), n_states))
            previous = -np.inf
            for _ in range(n_iter):
                *updated, ll = em_step(obs, *params)
                if ll / obs.size - previous / obs.size < tol:
                    break
                params, previous = tuple(updated), ll
            if best is None or previous > best[0]:
                best = (previous, params)
        start, transition, emission = best[1]
        return cls(transition, emission, start, name=name), float(best[0])

    # ---------------------------------------------------------------- stationary output statistics

    def stationary_distribution(self) -> np.ndarray:
        """π with π A = π, Σ π = 1 (least squares; unique for an irreducible chain). Shape (M,)."""
        m = self.n_states
        lhs = np.vstack([self.transition.T - np.eye(m), np.ones((1, m))])
        rhs = np.zeros(m + 1)
        rhs[-1] = 1.0
        pi, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
        pi = np.clip(pi, 0.0, None)
        return pi / pi.sum()

    def stationary(self) -> "HMM":
        """The same HMM started from its stationary distribution: windows sampled from it look like
        windows cut from the middle of an infinitely long run (the paper's presets already start
        there, their uniform start being stationary)."""
        return HMM(self.transition, self.emission, self.stationary_distribution(), name=self.name,
                   description=dict(self.description))

    def with_stay_shift(self, shift: float) -> "HMM":
        """The same HMM with every stay probability A[i, i] moved by ``shift`` and the moves of each
        row rescaled to keep it stochastic (a perturbation used to measure the verdict's power).
        A stay probability outside [0, 1] raises ``HMMSpecError``."""
        a = self.transition.copy()
        for i in range(len(a)):
            stay = a[i, i] + shift
            if not 0 <= stay <= 1:
                raise HMMSpecError(f"stay probability {a[i, i]:g} of state {i} + {shift:g} leaves [0, 1]")
            a[i] *= (1 - stay) / (1 - a[i, i])
            a[i, i] = stay
        return HMM(a, self.emission, self.start, name=f"{self.name}{shift:+.2f}", description=dict(self.description))

    def output_frequencies(self) -> np.ndarray:
        """Stationary symbol frequencies f = π B. Shape (K,)."""
        return self.stationary_distribution() @ self.emission

    def output_transition_matrix(self) -> np.ndarray:
        """Stationary P(o_t = l | o_{t-1} = k) = Σ_ij π_i B_ik A_ij B_jl / f_k. Shape (K, K).

        Rows of symbols with zero stationary frequency are NaN.
        """
        pi = self.stationary_distribution()
        joint = (pi[:, None] * self.emission).T @ self.transition @ self.emission  # (K, K)
        freq = joint.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(freq > 0, joint / freq, np.nan)

    def change_probability(self) -> float:
        """Stationary probability that the symbol changes from one step to the next."""
        pi = self.stationary_distribution()
        joint = (pi[:, None] * self.emission).T @ self.transition @ self.emission
        return float(1.0 - np.trace(joint))


def check_symbols(obs: np.ndarray, n_outputs: int) -> np.ndarray:
    """``obs`` as an (n, T) integer array of symbols in [0, n_outputs), or a ValueError saying why not."""
    obs = np.asarray(obs)
    if obs.ndim != 2 or not np.issubdtype(obs.dtype, np.integer):
        raise ValueError(f"symbols must be an integer array (n, T), got dtype {obs.dtype} shape {obs.shape}")
    if obs.size and (obs.min() < 0 or obs.max() >= n_outputs):
        raise ValueError(f"symbols must lie in [0, {n_outputs}), got range [{obs.min()}, {obs.max()}]")
    return obs


def _check_size(n_states: int, n_outputs: int) -> None:
    """Refuse, before building anything, an HMM whose matrices (and the working copies that
    validation and sampling make, about four) do not fit in the memory available."""
    if n_states < 1 or n_outputs < 1:
        raise HMMSpecError(f"an HMM needs at least one state and one output, got {n_states} and {n_outputs}")
    need, have = 4 * 8 * n_states * (n_states + n_outputs), available_memory()
    if need > have:
        raise HMMSpecError(f"an HMM with {n_states} states and {n_outputs} outputs needs about {gigabytes(need)} of "
                           f"memory; {gigabytes(have)} are available")


def _forward(emitted: np.ndarray, start: np.ndarray, transition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised forward variables of all sequences at once.

    α̂_0 ∝ π ∘ B[:, o_0], α̂_t ∝ (α̂_{t-1} A) ∘ B[:, o_t], each divided by its sum c_t.

    Parameters
    ----------
    emitted : (T, n, M) emission probabilities of the observed symbols, B[:, o_t] per sequence.

    Returns
    -------
    alpha : (T, n, M) normalised forward variables (0 after an impossible symbol).
    log_scale : (T, n) log c_t; their sum over t is log P(o).
    """
    alpha = np.empty_like(emitted)
    scale = np.empty(emitted.shape[:2])
    current = start[None, :] * emitted[0]
    for t in range(emitted.shape[0]):
        if t:
            current = (alpha[t - 1] @ transition) * emitted[t]
        scale[t] = current.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha[t] = np.where(scale[t][:, None] > 0, current / scale[t][:, None], 0.0)
    with np.errstate(divide="ignore"):
        return alpha, np.log(scale)


def em_step(obs: np.ndarray, start: np.ndarray, transition: np.ndarray, emission: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One Baum-Welch update from the given parameters, over all sequences at once.

    With normalised forward α̂ and backward β̂ (β̂_{T-1} = 1, β̂_t = A (B[:, o_{t+1}] ∘ β̂_{t+1}) / c_{t+1}):
    γ_t = α̂_t ∘ β̂_t, ξ_t(i, j) = α̂_t(i) A_ij B_j(o_{t+1}) β̂_{t+1}(j) / c_{t+1};
    π' = mean_n γ_0, A' ∝ Σ ξ, B'[:, k] ∝ Σ_{o_t = k} γ_t.

    Parameters
    ----------
    obs : (n, T) symbols; start (M,), transition (M, M), emission (M, K).

    Returns
    -------
    Updated start, transition, emission, and the log-likelihood of ``obs`` under the *input* parameters.
    """
    emitted = emission.T[obs.T]  # (T, n, M): B[:, o_t] for every sequence and step
    alpha, log_scale = _forward(emitted, start, transition)
    scale = np.exp(log_scale)
    beta = np.ones_like(alpha)
    xi = np.zeros_like(transition)
    for t in range(obs.shape[1] - 2, -1, -1):
        weighted = emitted[t + 1] * beta[t + 1] / scale[t + 1][:, None]  # (n, M)
        beta[t] = weighted @ transition.T
        xi += alpha[t].T @ weighted
    xi *= transition
    gamma = alpha * beta
    counts = np.stack([gamma[obs.T == k].sum(axis=0) for k in range(emission.shape[1])], axis=1)  # (M, K)
    new_start = gamma[0].mean(axis=0)
    new_transition = xi / np.maximum(xi.sum(axis=1, keepdims=True), 1e-300)
    new_emission = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-300)
    return new_start, new_transition, new_emission, float(log_scale.sum())


def _thresholds(probs: np.ndarray) -> np.ndarray:
    """Inner category boundaries of each row: cumulative sums without the last, normalised. (R, C-1).

    Normalising by the row total means round-off can never select a zero-probability last category.
    """
    cum = np.cumsum(probs, axis=1)
    return cum[:, :-1] / cum[:, -1:]


def _categorical(uniform: np.ndarray, thresholds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: category = number of inner boundaries of row ``rows`` that are <= ``uniform``.

    One gather per boundary (C - 1 passes over 1-byte-per-element comparisons) is several times
    faster than gathering the (..., C - 1) boundary block at once.
    """
    category = np.zeros(uniform.shape, dtype=np.int64)
    for boundary in thresholds.T:
        category += uniform >= boundary[rows]
    return category
