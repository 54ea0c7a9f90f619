"""Figures of the state-space analyses (:mod:`hmmrnn.analysis`); each takes a Result and draws it."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import OUTPUT_COLOURS, finish_axes


def _colour(label: int) -> str:
    return OUTPUT_COLOURS[int(label) % len(OUTPUT_COLOURS)]


def _segments(ax, points: np.ndarray, labels: np.ndarray, lw: float = 0.6, alpha: float = 0.8) -> None:
    """Line segments between consecutive 2-D points, each coloured by the label at its start."""
    if len(points) < 2:
        return
    segments = np.stack([points[:-1], points[1:]], axis=1)
    ax.add_collection(LineCollection(segments, colors=[_colour(k) for k in labels[:-1]], linewidths=lw,
                                     alpha=alpha))
    ax.autoscale_view()


def _output_legend(ax, outputs: int = 3) -> None:
    handles = [Line2D([], [], color=_colour(k), lw=2, label=f"output {k}") for k in range(outputs)]
    ax.legend(handles=handles, frameon=False, fontsize=8)


def _pc_labels(evr: np.ndarray | None, axes: tuple[int, int] = (0, 1), prefix: str = "PC") -> tuple[str, str]:
    if evr is None or len(evr) <= max(axes):
        return f"{prefix}{axes[0] + 1}", f"{prefix}{axes[1] + 1}"
    return tuple(f"{prefix}{a + 1} ({100 * evr[a]:.1f}%)" for a in axes)  # type: ignore[return-value]


def plot_latent_geometry(result) -> Figure:
    """PC1–2 trajectory coloured by the argmax and by the sampled output, and PC1–3 in 3-D."""
    fig = Figure(figsize=(14, 4.2))
    traj = np.asarray(result.trajectory)
    for i, (labels, title) in enumerate([(result.argmax_labels, "argmax readout"),
                                         (result.sampled_labels, "sampled output")]):
        ax = fig.add_subplot(1, 3, i + 1)
        _segments(ax, traj[:, :2], np.asarray(labels))
        ax.set_title(f"first {len(traj)} noisy steps, coloured by {title}", fontsize=9)
        finish_axes(ax, *_pc_labels(np.asarray(result.explained_variance_ratio)), legend=False)
        _output_legend(ax)
    ax3 = fig.add_subplot(1, 3, 3, projection="3d")
    labels = np.asarray(result.argmax_labels)
    for k in np.unique(labels):
        sel = labels == k
        ax3.scatter(*traj[sel].T, s=2, color=_colour(k))
    ax3.plot(*traj.T, color="grey", lw=0.2)
    ax3.set_xlabel("PC1"), ax3.set_ylabel("PC2"), ax3.set_zlabel("PC3")
    ax3.view_init(elev=35, azim=75)
    return fig


def plot_input_free(result) -> Figure:
    """Input-free trajectories with their end point (×), and one trajectory with input."""
    fig = Figure(figsize=(10, 4.2))
    labels = _pc_labels(np.asarray(result.explained_variance_ratio))
    ax = fig.add_subplot(1, 2, 1)
    for traj, lab in zip(np.asarray(result.free_trajectories), np.asarray(result.free_labels)):
        _segments(ax, traj, lab, lw=0.8)
    ax.plot(*result.end_point, "x", color="black", ms=10, mew=2)
    ax.set_title(f"without input ({result.n_initial} starts, {result.steps} steps)", fontsize=9)
    finish_axes(ax, *labels, legend=False)
    _output_legend(ax)
    ax = fig.add_subplot(1, 2, 2)
    _segments(ax, np.asarray(result.noisy_trajectory), np.asarray(result.noisy_labels), lw=0.8)
    ax.set_title(f"with input ({result.steps} noisy steps)", fontsize=9)
    finish_axes(ax, *labels, legend=False)
    return fig


def plot_fixed_points(result) -> Figure:
    """Speed map along the orbit (log colour) with the points found, and their eigenvalues."""
    fig = Figure(figsize=(11, 4.4))
    ax = fig.add_subplot(1, 2, 1)
    pc = np.asarray(result.orbit_pc)
    speed = np.maximum(np.asarray(result.orbit_relative_speed), 1e-6)
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=np.log10(speed), s=3, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="log10 relative speed |F(h) - h| / |h| (no input)")
    for point in result.points:
        ax.plot(*point["pc"], marker="*" if "fixed" in point["kind"] else "o", color="red", ms=10)
    ax.set_title("speed map of the input-free map along the noisy orbit", fontsize=9)
    finish_axes(ax, "PC1", "PC2", legend=False)
    ax = fig.add_subplot(1, 2, 2)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="grey", lw=0.8)
    for i, point in enumerate(result.points):
        eig = np.asarray(point["eigenvalues"])
        ax.plot(eig[:, 0], eig[:, 1], ".", ms=4, label=f"{point['kind']} {i}: {point['stability']}")
    ax.set_aspect("equal")
    ax.set_title("Jacobian eigenvalues of the points found", fontsize=9)
    finish_axes(ax, "Re", "Im", legend=bool(result.points))
    return fig


def plot_variance_contours(result) -> Figure:
    """95 % KDE contours of the noisy cloud at each input scale, light (small) to dark (large)."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot()
    cmap = colormaps["inferno"]
    for i, grid in enumerate(result.grids):
        colour = cmap(0.15 + 0.7 * (1 - i / max(len(result.grids) - 1, 1)))
        density = np.asarray(grid["density"])
        ax.contour(grid["x"], grid["y"], density, levels=[grid["level"]], colors=[colour], linewidths=1.5)
        ax.plot([], [], color=colour, label=f"noise scale {grid['scale']:g}")
    ax.plot(*result.origin, "x", color="black", ms=8, label="origin")
    ax.set_title(f"variance contours (homogeneity error {result.homogeneity_error:.1e})", fontsize=9)
    finish_axes(ax, "PC1", "PC2")
    return fig


def plot_output_pairs(result) -> Figure:
    """Per output pair: the longest in-pair stretch of the orbit and the KDE contours per scale."""
    if result.skipped:
        fig = Figure(figsize=(5, 1.5))
        fig.text(0.5, 0.5, f"output-pair subspaces skipped: {result.skipped}", ha="center", va="center")
        return fig
    fig = Figure(figsize=(13, 4.2))
    cmap = colormaps["inferno"]
    for i, pair in enumerate(result.pairs):
        ax = fig.add_subplot(1, len(result.pairs), i + 1)
        if pair.get("trajectory") is not None and len(pair.get("trajectory", [])):
            traj = np.asarray(pair["trajectory"])[:, [0, 2]]
            _segments(ax, traj, np.asarray(pair["labels"]), lw=0.7)
        grids = pair.get("grids", [])
        for j, grid in enumerate(grids):
            colour = cmap(0.15 + 0.7 * (1 - j / max(len(grids) - 1, 1)))
            ax.contour(grid["x"], grid["y"], np.asarray(grid["density"]), levels=[grid["level"]], colors=[colour],
                       linewidths=1)
        a, b = pair["pair"]
        ax.set_title(f"outputs {a}-{b}: longest run {pair['longest_run']} steps", fontsize=9)
        finish_axes(ax, *_pc_labels(np.asarray(pair["explained_variance_ratio"]), (0, 2), "sub-PC"), legend=False)
    return fig


def plot_readout_alignment(result) -> Figure:
    """Projection of each readout vector on the PC1–2 plane, with the 1/√2 (45°) reference."""
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.add_subplot()
    k = np.arange(len(result.projection))
    ax.bar(k, result.projection, color=[_colour(i) for i in k])
    ax.axhline(1 / np.sqrt(2), color="grey", ls="--", lw=1, label="1/sqrt(2) (45 deg)")
    ax.set_xticks(k, [f"w{i}\n{a:.0f} deg" for i, a in zip(k, result.angle_deg)])
    ax.set_ylim(0, 1)
    ax.set_title(f"readout projection on PC1-2 (mean {result.mean_projection:.3f})", fontsize=9)
    finish_axes(ax, "readout vector", "projection magnitude")
    return fig


def plot_jacobian_spectra(result) -> Figure:
    """Orbit states coloured by unstable-eigenvalue count and by near-unit-circle complex pairs,
    and a sample of eigenvalues with the unit circle."""
    fig = Figure(figsize=(15, 4.2))
    pc = np.asarray(result.pc)
    for i, (values, title) in enumerate([(result.unstable_counts, "eigenvalues with |lambda| > 1"),
                                         (result.critical_pairs, "complex pairs near the unit circle")]):
        ax = fig.add_subplot(1, 3, i + 1)
        sc = ax.scatter(pc[:, 0], pc[:, 1], c=np.asarray(values), s=3, cmap="magma_r")
        fig.colorbar(sc, ax=ax, label="count")
        ax.set_title(title, fontsize=9)
        finish_axes(ax, "PC1", "PC2", legend=False)
    ax = fig.add_subplot(1, 3, 3)
    eig = np.asarray(result.eigenvalues_sample)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="grey", lw=0.8)
    ax.plot(eig[:, 0], eig[:, 1], ".", ms=2, color="black", alpha=0.4)
    ax.set_aspect("equal")
    ax.set_title("eigenvalues at 50 states along the orbit", fontsize=9)
    finish_axes(ax, "Re", "Im", legend=False)
    return fig


def plot_residency(result) -> Figure:
    """SPEC §7.4: (a) orbit coloured by residency time, (b) sign-change histogram coloured by mean
    residency, (c) mean unstable-eigenvalue count per group, (d) orbit coloured by unstable count."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    fig = Figure(figsize=(18, 4.2))
    pc, rt = np.asarray(result.pc), np.asarray(result.residency)
    inferno = colormaps["inferno"]
    cmap = ListedColormap([inferno(10 / 14), inferno(9 / 14), "darkred", "grey"])
    bounds = [1, 2, 4, 9, max(float(rt.max()), 9) + 1]
    ax = fig.add_subplot(1, 4, 1)
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=rt, s=3, cmap=cmap, norm=BoundaryNorm(bounds, cmap.N))
    fig.colorbar(sc, ax=ax, label="residency time (steps)")
    ax.set_title("residency time along the orbit", fontsize=9)
    finish_axes(ax, *_pc_labels(np.asarray(result.explained_variance_ratio)), legend=False)

    ax = fig.add_subplot(1, 4, 2)
    changes = np.asarray(result.sign_changes)
    bins = np.arange(0, max(int(changes.max()), 1) + 2)
    which = np.digitize(changes, bins) - 1
    mean_rt = np.array([rt[which == b].mean() if (which == b).any() else 0 for b in range(len(bins) - 1)])
    colours = colormaps["viridis"](mean_rt / max(mean_rt.max(), 1e-9))
    counts = np.histogram(changes, bins)[0]
    ax.bar(bins[:-1], counts, width=0.9, align="edge", color=colours)
    ax.set_title("logit sign changes per rollout (colour: mean residency)", fontsize=9)
    finish_axes(ax, "sign changes", "states", legend=False)

    ax = fig.add_subplot(1, 4, 3)
    names = list(result.group_summary)
    values = [result.group_summary[g]["mean_unstable"] for g in names]
    rts = np.array([result.group_summary[g]["mean_residency"] for g in names], dtype=float)
    ax.bar(names, np.nan_to_num(values), color=colormaps["inferno"](np.nan_to_num(rts) / max(np.nanmax(rts), 1)))
    ax.set_title("mean unstable eigenvalues per group", fontsize=9)
    finish_axes(ax, "group", "eigenvalues with |lambda| > 1", legend=False)

    ax = fig.add_subplot(1, 4, 4)
    unstable = np.asarray(result.unstable_counts)
    cmap2 = ListedColormap(["lightgrey", "darkred", "orange", "gold"])
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=np.minimum(unstable, 3), s=3, cmap=cmap2, vmin=-0.5, vmax=3.5)
    fig.colorbar(sc, ax=ax, ticks=[0, 1, 2, 3], label="unstable eigenvalues (3 = 3 or more)")
    ax.set_title("unstable eigenvalues of the input-free Jacobian", fontsize=9)
    finish_axes(ax, "PC1", "PC2", legend=False)
    return fig
