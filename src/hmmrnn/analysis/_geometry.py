"""Where the network lives: PCA of the noisy orbit, input-free collapse, variance contours, output-pair
subspaces and the readout's alignment with the dominant plane (docs/method.md §5.1–5.6)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._seeds import stream
from ..errors import NothingFound
from ._common import (PCABasis, Result, argmax_labels, density_grid, fit_pca, generator, rare_outputs, reference_pca,
                      resolve, sampled_labels, simulate)

__all__ = ["LatentGeometry", "latent_geometry", "InputFreeDynamics", "input_free", "VarianceContours",
           "variance_contours", "OutputPairSubspaces", "output_pairs", "ReadoutAlignment",
           "readout_alignment"]


# --------------------------------------------------------------------------- latent geometry (§5.1)


@dataclass
class LatentGeometry(Result):
    """PCA of one long noisy trajectory and its first ``shown`` steps in PC1–3.

    explained_variance_ratio : (k,)
    trajectory : (shown, 3) PC coordinates of h_1..h_shown
    argmax_labels, sampled_labels : (shown,) outputs at those steps (deterministic / sampled readout)
    """

    name = "latent_geometry"
    steps: int
    seed: int
    explained_variance_ratio: np.ndarray
    trajectory: np.ndarray
    argmax_labels: np.ndarray
    sampled_labels: np.ndarray
    mean_norm: float
    origin_pc: np.ndarray
    angle_accuracy: float
    angle_by_output: dict[str, dict[str, float]]

    def summary(self) -> str:
        evr = self.explained_variance_ratio
        sectors = ", ".join(f"output {k}: {v['mean_deg']:.0f}+-{v['std_deg']:.0f} deg ({100 * v['fraction']:.1f}%)"
                            for k, v in self.angle_by_output.items())
        return (f"PCA of {self.steps} noisy steps: PC1 {100 * evr[0]:.1f}%, PC2 {100 * evr[1]:.1f}%, "
                f"PC3 {100 * evr[2]:.1f}% of variance; mean |h| {self.mean_norm:.2f}; the angle around the "
                f"origin in PC1-2 gives the argmax output for {100 * self.angle_accuracy:.1f}% of states "
                f"({sectors})")


def latent_geometry(run_or_model: Any, *, steps: int = 30_000, n_components: int = 10, shown: int = 1000,
                    seed: int = 0) -> LatentGeometry:
    """docs/method.md §5.1: one trajectory of ``steps`` noisy steps from h_0 = 0, PCA with ``n_components``,
    and the first ``shown`` steps projected on PC1–3 with argmax and sampled output labels.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the noisy run.
    n_components : principal components kept.
    shown : steps of the run kept for the figure.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``LatentGeometry``: explained variance ratios (n_components,), the first ``shown`` steps on PC1–3
    (shown, 3) with their labels, and how well the PC1–2 angle predicts the output.
    """
    model, _ = resolve(run_or_model)
    basis, states = reference_pca(model, steps=steps, seed=seed, n_components=max(n_components, 3))
    head = states[:shown]
    origin = basis.project(np.zeros((1, model.hidden)))[0, :2]
    angle = _angles(basis.project(states)[:, :2] - origin)
    labels = argmax_labels(model, states)
    accuracy, by_output = _angle_sectors(angle, labels, model.n_outputs)
    return LatentGeometry(steps, seed, basis.explained_variance_ratio[:n_components], basis.project(head)[:, :3],
                          argmax_labels(model, head), sampled_labels(model, head, stream(seed, "latent_geometry", "samples")),
                          float(np.linalg.norm(states, axis=1).mean()), origin, accuracy, by_output)


def _angles(points: np.ndarray) -> np.ndarray:
    """Angle in degrees [0, 360) of (n, 2) points around 0."""
    return np.degrees(np.arctan2(points[:, 1], points[:, 0])) % 360


def _angle_sectors(angle: np.ndarray, labels: np.ndarray, n_outputs: int, bins: int = 72
                   ) -> tuple[float, dict[str, dict[str, float]]]:
    """How well the angle determines the output: each 5° sector predicts its majority output; the
    accuracy is the fraction of states whose output is their sector's majority. Per output: the
    circular mean and spread of its angles and its share of the states."""
    sector = np.minimum((angle / (360 / bins)).astype(int), bins - 1)
    counts = np.zeros((bins, n_outputs))
    np.add.at(counts, (sector, labels), 1)
    accuracy = float(counts.max(1).sum() / len(labels))
    by_output = {}
    for k in range(n_outputs):
        chosen = np.radians(angle[labels == k])
        if len(chosen) == 0:
            continue
        resultant = np.hypot(np.cos(chosen).mean(), np.sin(chosen).mean())
        by_output[str(k)] = {"mean_deg": float(np.degrees(np.arctan2(np.sin(chosen).mean(), np.cos(chosen).mean()))
                                               % 360),
                             "std_deg": float(np.degrees(np.sqrt(-2 * np.log(max(resultant, 1e-12))))),
                             "fraction": float(len(chosen) / len(labels))}
    return accuracy, by_output


# --------------------------------------------------------------------------- input-free dynamics (§5.2)


@dataclass
class InputFreeDynamics(Result):
    """Trajectories without input from states of the noisy orbit, and one trajectory with input.

    free_trajectories : (shown, steps + 1, 2) PC1–2 of the first ``shown`` input-free runs (h_0 first)
    free_labels : (shown, steps + 1) argmax outputs along them
    end_point : (2,) PC1–2 of the mean final state (the reference's "fixed point")
    noisy_trajectory, noisy_labels : (steps + 1, 2) and (steps + 1,) for one run with input
    final_norms : (n,) |h_T| of every input-free run; relative to the orbit's mean |h| in the summary
    """

    name = "input_free"
    n_initial: int
    steps: int
    seed: int
    orbit_mean_norm: float
    final_norms: np.ndarray
    final_spread: float
    end_point_norm: float
    converged: bool
    tolerance: float
    end_point: np.ndarray
    free_trajectories: np.ndarray
    free_labels: np.ndarray
    noisy_trajectory: np.ndarray
    noisy_labels: np.ndarray
    explained_variance_ratio: np.ndarray

    def summary(self) -> str:
        rel = self.final_norms.max() / self.orbit_mean_norm
        verdict = "all converge to the origin" if self.converged else "NOT all converged to the origin"
        return (f"{self.n_initial} input-free runs of {self.steps} steps: {verdict} "
                f"(max |h_T| = {rel:.2e} x orbit mean |h|, spread {self.final_spread:.2e})")


def input_free(run_or_model: Any, *, n_initial: int = 100, steps: int = 500, shown: int = 20,
                        pca_steps: int = 30_000, tolerance: float = 1e-3, seed: int = 0) -> InputFreeDynamics:
    """docs/method.md §5.2, with a convergence test the reference lacked.

    ``n_initial`` states of a second noisy run (30,000 steps, seed + 1) are iterated with
    h ← relu(W_rec h) for ``steps`` steps. With no biases the origin is always a fixed point
    (docs/method.md §2.1); ``converged`` says whether every final |h_T| is below ``tolerance`` × the orbit's
    mean |h|. One more state is run with noise for comparison.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    n_initial : starting states taken from a noisy run.
    steps : input-free steps from each.
    shown : trajectories kept for the figure.
    pca_steps : length of the noisy run that gives the starts and the PCA basis.
    tolerance : convergence threshold, relative to the orbit's mean |h|.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``InputFreeDynamics``: final norms (n_initial,), ``converged``, the end point (H,) and the
    trajectories of the figure projected on PC1–2.
    """
    model, _ = resolve(run_or_model)
    basis, _ = reference_pca(model, steps=pca_steps, seed=seed)
    orbit = simulate(model, pca_steps, seed=stream(seed, "input_free", "orbit"))[0]
    rng = np.random.default_rng(stream(seed, "input_free", "starts"))
    starts = orbit[torch.from_numpy(rng.choice(pca_steps, n_initial, replace=False))]
    free = torch.cat([starts[:, None], simulate(model, steps, n=n_initial, h0=starts, input_free=True)], dim=1)
    noisy = torch.cat([starts[:1, None], simulate(model, steps, h0=starts[:1], seed=stream(seed, "input_free", "noisy"))], dim=1)[0]
    final = free[:, -1].numpy()
    orbit_norm = float(orbit.norm(dim=1).mean())
    final_norms = np.linalg.norm(final, axis=1)
    mean_final = final.mean(0)
    return InputFreeDynamics(
        n_initial, steps, seed, orbit_norm, final_norms,
        float(np.linalg.norm(final - mean_final, axis=1).max()), float(np.linalg.norm(mean_final)),
        bool(final_norms.max() <= tolerance * orbit_norm), tolerance, basis.project(mean_final[None])[0, :2],
        basis.project(free[:shown].numpy())[..., :2], argmax_labels(model, free[:shown]),
        basis.project(noisy.numpy())[:, :2], argmax_labels(model, noisy), basis.explained_variance_ratio[:2])


# --------------------------------------------------------------------------- variance contours (§5.4)


@dataclass
class VarianceContours(Result):
    """Noisy clouds at several input scales in the σ = 1 PC1–2 plane, as KDE grids and 95 % levels.

    grids : per scale {"x": (G,), "y": (G,), "density": (G, G), "level": float}
    homogeneity_error : max over scales c of max|h^(c) − c h^(1)| / max|c h^(1)| with the same noise
    """

    name = "variance_contours"
    scales: list[float]
    steps: int
    seed: int
    cloud_std: list[list[float]]
    cloud_mean: list[list[float]]
    homogeneity_error: float
    grids: list[dict[str, Any]]
    origin: np.ndarray

    def summary(self) -> str:
        sizes = ", ".join(f"{s:g}: {np.hypot(*sd):.2f}" for s, sd in zip(self.scales, self.cloud_std))
        return (f"cloud size (PC1-2 std) by noise scale {sizes}; positive homogeneity holds to "
                f"{self.homogeneity_error:.1e}")


def variance_contours(run_or_model: Any, *, scales: tuple[float, ...] = (0.1, 1, 2, 3, 4), steps: int = 10_000,
                      pca_steps: int = 30_000, mass: float = 0.95, seed: int = 0) -> VarianceContours:
    """docs/method.md §5.4: for each noise scale s, ``steps`` steps from h_0 = 0 with inputs s·x_t,
    projected with the σ = 1 basis; KDE (bw × 3) and the level enclosing ``mass`` of the points.

    All scales share the same x_t, so positive homogeneity (F(c h, c x) = c F(h, x)) predicts
    h^(s) = s h^(1) exactly; the measured relative deviation is reported.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    scales : noise scales s.
    steps : noisy steps per scale.
    pca_steps : length of the σ = 1 run that gives the PCA basis.
    mass : share of the points inside each contour.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``VarianceContours``: per scale the cloud's mean and std (2,), a KDE grid and its level; the
    homogeneity error.
    """
    model, _ = resolve(run_or_model)
    basis, _ = reference_pca(model, steps=pca_steps, seed=seed)
    noise_seed = stream(seed, "variance_contours", "noise")  # the same x_t at every scale
    unit = simulate(model, steps, seed=noise_seed)[0]
    grids, stds, means, error = [], [], [], 0.0
    for s in scales:
        cloud = simulate(model, steps, seed=noise_seed, noise_scale=s)[0]
        error = max(error, float((cloud - s * unit).abs().max() / (s * unit).abs().max().clamp_min(1e-30)))
        points = basis.project(cloud.numpy())[:, :2]
        grid = density_grid(points, mass=mass, seed=stream(seed, "variance_contours", "kde", s))
        grids.append({"scale": s, "x": grid.x, "y": grid.y, "density": grid.density, "level": grid.level})
        stds.append(points.std(0).tolist())
        means.append(points.mean(0).tolist())
    origin = basis.project(np.zeros((1, model.hidden)))[0, :2]
    return VarianceContours(list(map(float, scales)), steps, seed, stds, means, error, grids, origin)


# --------------------------------------------------------------------------- output-pair subspaces (§5.5)


@dataclass
class OutputPairSubspaces(Result):
    """Two-stage PCA per pair of outputs and the longest stretch of the orbit inside each pair.

    pairs : per pair {"pair", "explained_variance_ratio" (3,), "n_states", "longest_run",
        "trajectory" (≤ shown, 3) sub-PC coordinates, "labels" (≤ shown,), "grids" KDE per scale}
    """

    name = "output_pairs"
    steps: int
    seed: int
    global_explained_variance_ratio: np.ndarray
    pairs: list[dict[str, Any]]

    def summary(self) -> str:
        parts = [f"{p['pair'][0]}{p['pair'][1]}: {100 * p['explained_variance_ratio'][0]:.1f}/"
                 f"{100 * p['explained_variance_ratio'][2]:.1f}% (longest run {p['longest_run']})"
                 for p in self.pairs if p["n_states"]]
        return "output-pair subspaces, sub-PC1/PC3 variance: " + "; ".join(parts)


def output_pairs(run_or_model: Any, *, steps: int = 100_000, min_run: int = 200, shown: int = 1000,
                          scales: tuple[float, ...] = (0.1, 1, 2, 3, 4), contour_steps: int = 10_000,
                          seed: int = 0) -> OutputPairSubspaces:
    """docs/method.md §5.5 for 3-output models: a noisy run from h_0 ~ N(0, I), global PCA (4 components),
    and for each output pair a second PCA (3 components) of the global coordinates of the states
    whose argmax label is in the pair; the longest contiguous run inside the pair (the reference
    kept runs longer than ``min_run`` steps) and KDE grids of the in-pair states at each noise scale.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the noisy run.
    min_run : shortest in-pair run the reference kept (reported, not required).
    shown : states per pair kept for the figure.
    scales : noise scales of the in-pair KDE grids.
    contour_steps : noisy steps per scale for the grids.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``OutputPairSubspaces``: the global explained variance (4,) and per pair its sub-PCA
    explained variance (3,), state count, longest run and grids.
    """
    model, _ = resolve(run_or_model)
    if model.n_outputs != 3:
        raise NothingFound(f"output-pair subspaces need 3 outputs, the model has {model.n_outputs}")
    h0 = torch.randn(1, model.hidden, generator=generator(stream(seed, "output_pairs", "start")))
    states = simulate(model, steps, h0=h0, seed=stream(seed, "output_pairs", "orbit"))[0].numpy()
    labels = argmax_labels(model, states)
    global_basis = fit_pca(states, 4)
    coords = global_basis.project(states)
    clouds = {s: simulate(model, contour_steps, seed=stream(seed, "output_pairs", "contours"),
                       noise_scale=s)[0].numpy() for s in scales}
    pairs = []
    for pair in itertools.combinations(range(3), 2):
        inside = np.isin(labels, pair)
        entry: dict[str, Any] = {"pair": list(pair), "n_states": int(inside.sum())}
        if inside.sum() < 10:
            pairs.append({**entry, "explained_variance_ratio": [0.0, 0.0, 0.0], "longest_run": 0})
            continue
        sub = fit_pca(coords[inside], 3)
        start, length = _longest_run(inside)
        segment = slice(start, start + min(length, shown))
        grids = []
        for s, cloud in clouds.items():
            keep = np.isin(argmax_labels(model, cloud), pair)
            if keep.sum() >= 10:
                grid = density_grid(sub.project(global_basis.project(cloud[keep]))[:, [0, 2]],
                                    seed=stream(seed, "output_pairs", "kde", s))
                grids.append({"scale": s, "x": grid.x, "y": grid.y, "density": grid.density, "level": grid.level})
        pairs.append({**entry, "explained_variance_ratio": sub.explained_variance_ratio, "longest_run": length,
                      "long_enough": length >= min_run, "trajectory": sub.project(coords[segment]),
                      "labels": labels[segment], "grids": grids})
    return OutputPairSubspaces(steps, seed, global_basis.explained_variance_ratio, pairs)


def contiguous_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of every run of True in a 1-D boolean array, in time order."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """Start and length of the longest run of True in a 1-D boolean array ((0, 0) if none)."""
    runs = contiguous_runs(mask)
    return max(runs, key=lambda run: (run[1], -run[0])) if runs else (0, 0)


# --------------------------------------------------------------------------- readout alignment (§5.6)


@dataclass
class ReadoutAlignment(Result):
    """Projection of each unit readout vector w_k / |w_k| onto the PC1–PC2 plane and its angle.

    projection : (K,) sqrt((ŵ·pc1)² + (ŵ·pc2)²);  angle_deg : (K,) arccos(projection) in degrees
    """

    name = "readout_alignment"
    steps: int
    seed: int
    projection: np.ndarray
    angle_deg: np.ndarray
    ignored_outputs: list[int]
    mean_projection: float
    explained_variance_ratio: np.ndarray

    def summary(self) -> str:
        per = ", ".join(f"w{k}: {p:.3f} ({a:.0f} deg)" for k, (p, a) in enumerate(zip(self.projection,
                                                                                      self.angle_deg)))
        ignored = f", ignoring rare output(s) {self.ignored_outputs}" if self.ignored_outputs else ""
        return f"readout projection on PC1-2: {per}; mean {self.mean_projection:.3f}{ignored}"


def readout_alignment(run_or_model: Any, *, steps: int = 5000, seed: int = 0) -> ReadoutAlignment:
    """docs/method.md §5.6: ``steps`` noisy steps from h_0 ~ N(0, I), PCA(2), and for every readout row the
    norm of its projection on the plane and the angle arccos of it. The mean leaves out outputs
    the HMM emits less than 5 % of the time (the linear chains' noise symbol), as the paper did.

    Parameters
    ----------
    run_or_model : a ``Run``, a run folder, or a ``NoiseRNN``.
    steps : length of the noisy run.
    seed : seed of the analysis' random streams (the same seed gives the same result).

    Returns
    -------
    ``ReadoutAlignment``: per output the projection norm and angle (K,), and their mean.
    """
    model, hmm = resolve(run_or_model)
    h0 = torch.randn(1, model.hidden, generator=generator(stream(seed, "readout_alignment", "start")))
    orbit = simulate(model, steps, h0=h0, seed=stream(seed, "readout_alignment", "orbit"))[0].numpy()
    basis: PCABasis = fit_pca(orbit, 2)
    w = model.w_out.detach().numpy()
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    projection = np.linalg.norm(unit @ basis.components.T, axis=1)
    ignored = rare_outputs(hmm, model.n_outputs)
    kept = [k for k in range(model.n_outputs) if k not in ignored]
    return ReadoutAlignment(steps, seed, projection, np.degrees(np.arccos(np.clip(projection, 0, 1))), ignored,
                            float(projection[kept].mean()), basis.explained_variance_ratio)
