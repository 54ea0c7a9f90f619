"""What every analysis shares: the Result convention, resolving a model, simulating, PCA, KDE levels."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .._seeds import stream
from ..errors import HmmrnnError
from ..hmm import HMM
from ..rnn import NoiseRNN


@dataclass
class Result:
    """Base of every analysis result: a dataclass of numbers and arrays that saves to JSON.

    Subclasses set ``name`` (the file stem under ``analysis/``) and implement ``summary``, the
    one line that ``hmmrnn analyze`` prints.
    """

    name = "result"
    #: fields too large for the JSON file (kept in memory for figures and later analyses)
    not_saved: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        from ..runs import json_ready

        data = {k: v for k, v in asdict(self).items() if k not in self.not_saved}
        return json_ready({"analysis": self.name, "summary": self.summary(), **data})

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON (atomically); returns the path."""
        from ..runs import write_json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, self.to_dict())
        return path

    def summary(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


def resolve(run_or_model: Any) -> tuple[NoiseRNN, HMM | None]:
    """The model (on the CPU, float32, no gradients) and, for a run, its HMM.

    Accepts a ``Run``, a run folder or a ``NoiseRNN``.
    """
    from ..runs import Run, load_run

    if isinstance(run_or_model, (str, Path)):
        run_or_model = load_run(run_or_model)
    if isinstance(run_or_model, Run):
        model, hmm = run_or_model.model, run_or_model.hmm
    elif isinstance(run_or_model, NoiseRNN):
        model, hmm = run_or_model, None
    else:
        raise HmmrnnError(f"expected a run, a run folder or a NoiseRNN, got {type(run_or_model).__name__}")
    model = model.to("cpu").float()
    model.requires_grad_(False)
    return model, hmm


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


@torch.no_grad()
def simulate(model: NoiseRNN, steps: int, *, n: int = 1, seed: int = 0, noise_scale: float = 1.0,
             h0: torch.Tensor | None = None, input_free: bool = False, return_noise: bool = False):
    """Iterate the one-step map from ``h0`` for ``steps`` steps, n trajectories in parallel.

    h_t = F(h_{t-1}, s x_t), x_t ~ N(0, I_d) (seeded), or h_t = F(h_{t-1}) with ``input_free``.

    Parameters
    ----------
    h0 : (n, H); default zeros.

    Returns
    -------
    states : (n, steps, H) float32 tensor, h_1..h_steps.
    noise : (n, steps, d), only with ``return_noise`` (the unscaled x_t).
    """
    h = torch.zeros(n, model.hidden) if h0 is None else h0.float().clone()
    noise = None if input_free else torch.randn(n, steps, model.noise_dim, generator=generator(seed))
    states = model.rollout(None if input_free else noise_scale * noise, h, steps=steps)
    return (states, noise) if return_noise else states


@dataclass
class PCABasis:
    """A fitted PCA: project with (h − mean) @ components.T."""

    mean: np.ndarray  # (H,)
    components: np.ndarray  # (k, H)
    explained_variance_ratio: np.ndarray  # (k,)

    def project(self, states: np.ndarray | torch.Tensor) -> np.ndarray:
        states = states.numpy() if isinstance(states, torch.Tensor) else states
        return (states - self.mean) @ self.components.T


def fit_pca(states: np.ndarray, n_components: int) -> PCABasis:
    """scikit-learn PCA (centred, no whitening, docs/method.md §5) of (L, H) states. A state that is
    not finite (a diverging network) is a one-line ``HmmrnnError`` naming its step."""
    from sklearn.decomposition import PCA

    bad = ~np.isfinite(states).all(axis=1)
    if bad.any():
        raise HmmrnnError(f"the noisy orbit diverges (|h| is not finite from step {int(np.argmax(bad)) + 1} "
                          f"of {len(states)}): the network is unstable and has no orbit to analyse")

    k = min(n_components, states.shape[0], states.shape[1])
    # the covariance solver: 0.15 s instead of 8.3 s for the full SVD of 30,000 x 150 (same result)
    pca = PCA(n_components=k, svd_solver="covariance_eigh").fit(states)
    return PCABasis(pca.mean_, pca.components_, pca.explained_variance_ratio_)


_PCA_CACHE: dict[tuple, tuple[PCABasis, np.ndarray]] = {}


def reference_pca(model: NoiseRNN, *, steps: int = 30_000, seed: int = 0, n_components: int = 10
                  ) -> tuple[PCABasis, np.ndarray]:
    """PCA of one noisy trajectory of ``steps`` steps from h_0 = 0 (σ = 1), and the (steps, H) states.

    Cached on a hash of the weights (at most 4 entries), so the analyses of one model share one basis.
    """
    digest = hashlib.sha1(b"".join(getattr(model, name).detach().cpu().float().contiguous().numpy().tobytes()
                                   for name in ("w_in", "w_rec", "w_out"))).hexdigest()
    key = (digest, steps, seed, n_components)
    if key not in _PCA_CACHE:
        if len(_PCA_CACHE) >= 4:
            _PCA_CACHE.pop(next(iter(_PCA_CACHE)))
        states = simulate(model, steps, seed=stream(seed, "reference_orbit"))[0].numpy()
        _PCA_CACHE[key] = (fit_pca(states, n_components), states)
    return _PCA_CACHE[key]


def argmax_labels(model: NoiseRNN, states: torch.Tensor | np.ndarray) -> np.ndarray:
    """Deterministic readout argmax(W_out h) of (..., H) states: (...) int."""
    states = torch.as_tensor(states, dtype=torch.float32)
    with torch.no_grad():
        return model.readout(states).argmax(-1).numpy()


def sampled_labels(model: NoiseRNN, states: torch.Tensor | np.ndarray, seed: int) -> np.ndarray:
    """Samples from softmax(W_out h) of (..., H) states (Gumbel-max, seeded): (...) int."""
    states = torch.as_tensor(states, dtype=torch.float32)
    with torch.no_grad():
        logits = model.readout(states)
        gumbel = -torch.empty_like(logits).exponential_(generator=generator(seed)).log()
        return (logits + gumbel).argmax(-1).numpy()


def rare_outputs(hmm: HMM | None, n_outputs: int, threshold: float = 0.05) -> list[int]:
    """Outputs whose stationary frequency under the HMM is below ``threshold`` (none without an HMM)."""
    if hmm is None:
        return []
    freq = hmm.output_frequencies()
    return [k for k in range(n_outputs) if freq[k] < threshold]


@dataclass
class DensityGrid:
    """A 2-D Gaussian KDE on a grid and the level enclosing ``mass`` of the points (iso-proportion)."""

    x: np.ndarray  # (G,)
    y: np.ndarray  # (G,)
    density: np.ndarray  # (G, G), density[j, i] at (x[i], y[j])
    level: float
    mass: float


def density_grid(points: np.ndarray, *, mass: float = 0.95, bw_adjust: float = 3.0, grid: int = 50,
                 max_points: int = 1500, seed: int = 0) -> DensityGrid:
    """KDE of (n, 2) points (scipy ``gaussian_kde``, Scott bandwidth × ``bw_adjust``, as seaborn's
    ``kdeplot(bw_adjust=3)`` of docs/method.md §5.2–5.4) and the density level whose super-level set holds
    ``mass`` of the points: the (1 − mass) quantile of the density at the points themselves.
    At most ``max_points`` points (a seeded subsample) enter the KDE: with bandwidth × 3 the
    contour of 1,500 points is smooth, and the cost grows with points × (grid² + points)."""
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(seed)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    kde = gaussian_kde(points.T)
    kde.set_bandwidth(kde.factor * bw_adjust)
    lo, hi = points.min(0), points.max(0)
    pad = 0.25 * (hi - lo) + 1e-9
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    xx, yy = np.meshgrid(x, y)
    density = kde(np.vstack([xx.ravel(), yy.ravel()])).reshape(grid, grid)
    level = float(np.quantile(kde(points.T), 1 - mass))
    return DensityGrid(x, y, density, level, mass)
