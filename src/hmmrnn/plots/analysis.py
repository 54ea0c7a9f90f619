"""Figures of the state-space analyses (``hmmrnn.analysis``); each takes a Result and draws it."""

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


def _output_legend(ax, n_outputs: int = 3) -> None:
    handles = [Line2D([], [], color=_colour(k), lw=2, label=f"output {k}") for k in range(n_outputs)]
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
    if not result.points:
        ax.text(0, 0, "no fixed ray or slow point\nbesides the origin", ha="center", va="center", fontsize=9)
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


def _residency_scatter(fig: Figure, ax, pc: np.ndarray, rt: np.ndarray) -> None:
    """States coloured by residency time with the paper's boundaries [1, 2, 4, 9, max] (clusters grey)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    inferno = colormaps["inferno"]
    cmap = ListedColormap([inferno(10 / 14), inferno(9 / 14), "darkred", "grey"])
    bounds = [1, 2, 4, 9, max(float(rt.max()), 9) + 1]
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=rt, s=3, cmap=cmap, norm=BoundaryNorm(bounds, cmap.N))
    fig.colorbar(sc, ax=ax, label="residency time (steps)")


def _unstable_bars(ax, group_summary: dict) -> None:
    """Mean unstable-eigenvalue count per group, bars coloured by the group's mean residency."""
    names = list(group_summary)
    values = [group_summary[g]["mean_unstable"] for g in names]
    rts = np.array([group_summary[g]["mean_residency"] for g in names], dtype=float)
    top = np.nanmax(rts) if np.isfinite(rts).any() else 1.0
    ax.bar(names, np.nan_to_num(values), color=colormaps["inferno"](np.nan_to_num(rts) / max(top, 1)))
    finish_axes(ax, "group", "eigenvalues with |lambda| > 1", legend=False)


def plot_residency(result) -> Figure:
    """docs/method.md §5.8: (a) orbit coloured by residency time, (b) sign-change histogram coloured by mean
    residency, (c) mean unstable-eigenvalue count per group, (d) orbit coloured by unstable count."""

    from matplotlib.colors import ListedColormap

    fig = Figure(figsize=(18, 4.2))
    pc, rt = np.asarray(result.pc), np.asarray(result.residency)
    ax = fig.add_subplot(1, 4, 1)
    _residency_scatter(fig, ax, pc, rt)
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
    _unstable_bars(ax, result.group_summary)
    ax.set_title("mean unstable eigenvalues per group", fontsize=9)

    ax = fig.add_subplot(1, 4, 4)
    unstable = np.asarray(result.unstable_counts)
    cmap2 = ListedColormap(["lightgrey", "darkred", "orange", "gold"])
    sc = ax.scatter(pc[:, 0], pc[:, 1], c=np.minimum(unstable, 3), s=3, cmap=cmap2, vmin=-0.5, vmax=3.5)
    fig.colorbar(sc, ax=ax, ticks=[0, 1, 2, 3], label="unstable eigenvalues (3 = 3 or more)")
    ax.set_title("unstable eigenvalues of the input-free Jacobian", fontsize=9)
    finish_axes(ax, "PC1", "PC2", legend=False)
    fig.subplots_adjust(wspace=0.5)
    return fig


def plot_subspace_residency(result) -> Figure:
    """docs/method.md §5.8, subspace version: per output pair, its states in (sub-PC1, sub-PC3) coloured by
    residency time, and the mean unstable-eigenvalue count per group."""
    shown = [p for p in result.pairs if p["n_states"]]
    fig = Figure(figsize=(10, 4 * len(shown)))
    for row, pair in enumerate(shown):
        ratio = np.asarray(pair["explained_variance_ratio"])
        ax = fig.add_subplot(len(shown), 2, 2 * row + 1)
        _residency_scatter(fig, ax, np.asarray(pair["pc"]), np.asarray(pair["residency"]))
        ax.set_title(f"outputs {pair['pair'][0]} and {pair['pair'][1]}: residency time", fontsize=9)
        finish_axes(ax, f"sub-PC1 ({100 * ratio[0]:.1f}%)", f"sub-PC3 ({100 * ratio[2]:.1f}%)", legend=False)
        ax = fig.add_subplot(len(shown), 2, 2 * row + 2)
        _unstable_bars(ax, pair["group_summary"])
        ax.set_title("mean unstable eigenvalues per group", fontsize=9)
    fig.subplots_adjust(wspace=0.35, hspace=0.4)
    return fig


def plot_kick_neurons(result) -> Figure:
    """docs/method.md §5.10: the orbit in PC1–2 coloured by each chosen kick neuron's pre-activation."""
    units = [u for d in result.directions for u in d["units"]]
    if not units:
        fig = Figure(figsize=(5, 1.5))
        fig.text(0.5, 0.5, result.summary(), ha="center", va="center", wrap=True)
        return fig
    kicks = sorted(set(units))
    pre = np.asarray(result.preactivations)
    pc = np.asarray(result.pc)
    cols = min(3, len(units))
    rows = -(-len(units) // cols)
    fig = Figure(figsize=(5 * cols, 4 * rows))
    limit = float(np.abs(pre).max()) or 1.0
    for k, d in enumerate([d for d in result.directions for _ in d["units"]]):
        unit = units[k]
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.plot(pc[:, 0], pc[:, 1], color="lightgrey", lw=0.4)
        sc = ax.scatter(pc[:, 0], pc[:, 1], c=pre[kicks.index(unit)], s=4, cmap="seismic", vmin=-limit, vmax=limit)
        ax.set_title(f"unit {unit}: kick for {d['from']}->{d['to']}", fontsize=9)
        finish_axes(ax, "PC1", "PC2", legend=False)
    fig.colorbar(sc, ax=fig.axes, label="pre-activation")
    return fig


def plot_connectivity(result) -> Figure:
    """docs/method.md §5.11: kick↔kick, populations→kick and population↔population weights, and the mean
    activities of groups and populations with the dwell periods shaded."""
    fig = Figure(figsize=(16, 8))
    blocks = [(result.kick_kick, "kick <- kick"), (result.kick_population, "kick <- populations"),
              (result.population_population, "population <- population")]
    limit = max(float(np.abs(np.asarray(b)).max()) for b, _ in blocks if np.asarray(b).size) or 1.0
    for i, (block, title) in enumerate(blocks):
        ax = fig.add_subplot(2, 3, i + 1)
        im = ax.imshow(np.asarray(block), cmap="bwr", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=fig.axes[:3], orientation="horizontal", fraction=0.05, label="W_rec (row <- column)")
    ax = fig.add_subplot(2, 1, 2)
    labels = np.asarray(result.labels)
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = np.concatenate([[0], edges, [len(labels)]])
    for k in range(len(bounds) - 1):
        ax.axvspan(bounds[k], bounds[k + 1], color="0.85" if k % 2 else "0.95", lw=0)
    for key, style, colour, label in [("group1", "-", "navy", f"kick group {result.directions[0]}"),
                                      ("group2", "-", "darkred", f"kick group {result.directions[1]}"),
                                      ("pop1", "--", "royalblue", "population 1"),
                                      ("pop2", "--", "red", "population 2")]:
        ax.plot(np.asarray(result.activity[key]), style, color=colour, lw=1, label=label)
    finish_axes(ax, "time step", "mean activity")
    return fig


def plot_ablation(result) -> Figure:
    """Transition rate per direction: intact, kick group silenced, random groups silenced (mean ± sd)."""
    fig = Figure(figsize=(2.5 + 2.5 * max(len(result.per_direction), 1), 4))
    ax = fig.add_subplot()
    for i, d in enumerate(result.per_direction):
        ax.bar(i - 0.25, d["intact"], 0.25, color="grey", label="intact" if i == 0 else None)
        ax.bar(i, d["kick_ablated"], 0.25, color="darkred", label="kick units silenced" if i == 0 else None)
        ax.bar(i + 0.25, d["random_mean"], 0.25, yerr=d["random_std"], color="royalblue",
               label="random units silenced" if i == 0 else None)
    ax.set_xticks(range(len(result.per_direction)), [d["direction"] for d in result.per_direction])
    ax.set_title("causal test: silencing discovered kick neurons", fontsize=9)
    finish_axes(ax, "switch direction", "switches per 1000 steps in the source label", legend=bool(result.per_direction))
    return fig


def plot_noise_drift(result) -> Figure:
    """|E[δ2]| per orbit state (coloured by output) and E[δ2] per unit as a heat map."""
    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot(1, 2, 1)
    norm, labels = np.asarray(result.norm), np.asarray(result.labels)
    ax.bar(np.arange(len(norm)), norm, color=[_colour(k) for k in labels])
    ax.set_title("second-order noise drift along the orbit", fontsize=9)
    finish_axes(ax, "orbit state", "|E[delta2]|", legend=False)
    _output_legend(ax)
    ax = fig.add_subplot(1, 2, 2)
    drift = np.asarray(result.drift)
    limit = float(np.abs(drift).max()) or 1.0
    im = ax.imshow(drift.T, aspect="auto", cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="E[delta2]")
    ax.set_title("E[delta2] per unit", fontsize=9)
    finish_axes(ax, "orbit state", "unit", legend=False)
    return fig


def plot_stochastic_resonance(result) -> Figure:
    """Verdict metrics and output changes versus the test-time noise scale (sampled outputs)."""
    fig = Figure(figsize=(12, 3.8))
    scales = [r["scale"] for r in result.rows]
    panels = [("loglik_gap", "log-likelihood gap (nats/step)", 0.02),
              ("transition_max_abs_diff", "transition matrix max |diff|", 0.03),
              ("changes_per_step", "output changes per step", None)]
    for i, (key, label, limit) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(scales, [r[key] for r in result.rows], "o-", color="darkred", label="sampled")
        if key == "changes_per_step":
            ax.plot(scales, [r["argmax_changes_per_step"] for r in result.rows], "s--", color="grey", label="argmax")
        if limit is not None:
            ax.axhspan(-limit, limit, color="0.9", label="verdict limit")
        ax.axvline(1.0, color="black", lw=0.8, ls=":")
        finish_axes(ax, "noise scale s", label)
    fig.suptitle("emulation versus test-time noise (argmax switching is scale-invariant: positive homogeneity)",
                 fontsize=9)
    return fig


def plot_transition_points(result) -> Figure:
    """The probe curves around the chosen switch, and the recorded track with the two points."""
    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot(1, 2, 1)
    times = np.asarray(result.probe_times)
    ax.plot(times, result.probe_residency, "o-", ms=3, color="darkred", label="mean first-switch time")
    ax2 = ax.twinx()
    ax2.plot(times, result.probe_switched, "s-", ms=3, color="royalblue", label="fraction switched")
    ax2.set_ylabel("fraction of rollouts that switched")
    for t, name, colour in [(result.switch_time, "switch", "black"), (result.transition_time, "transition", "red"),
                            (result.cluster_time, "cluster", "grey")]:
        ax.axvline(t, color=colour, ls="--", lw=1, label=name)
    ax.set_title(f"probing back from the switch {result.direction}", fontsize=9)
    finish_axes(ax, "recorded time", "steps to first switch")
    ax = fig.add_subplot(1, 2, 2)
    pc = np.asarray(result.track_pc)
    _segments(ax, pc, np.asarray(result.labels), lw=0.4, alpha=0.5)
    ax.plot(*pc[result.cluster_time], "*", color="grey", ms=14, mec="black", label="cluster point")
    ax.plot(*pc[result.transition_time], "*", color="red", ms=14, mec="black", label="transition point")
    finish_axes(ax, "PC1", "PC2")
    return fig


def plot_noise_sensitivity(result) -> Figure:
    """Trajectories from each point under each γ, and the spread over time (docs/method.md §5.15)."""
    locations = ["cluster", "transition"]
    fig = Figure(figsize=(4 * len(result.gammas) * 2 / 1.5, 7.5))
    track = np.asarray(result.track_pc)
    panels = len(result.gammas) * 2
    for i, curve in enumerate(sorted(result.curves, key=lambda c: (locations.index(c["location"]), c["gamma"]))):
        ax = fig.add_subplot(2, panels, i + 1)
        ax.scatter(track[:, 0], track[:, 1], c=[_colour(k) for k in np.asarray(result.labels)], s=1, alpha=0.3)
        for traj in np.asarray(curve["trajectories"]):
            ax.plot(traj[:, 0], traj[:, 1], color="darkblue", lw=0.6, alpha=0.6)
        ax.plot(*np.asarray(curve["trajectories"])[0, 0], "*", color="gold", ms=12, mec="black")
        ax.set_title(f"{curve['location']} (gamma = {curve['gamma']:g})", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    for j, key in enumerate(["trace", "distance"]):
        ax = fig.add_subplot(2, 2, 3 + j)
        for curve in result.curves:
            if curve["gamma"] == 0:
                continue
            shade = 0.4 + 0.6 * curve["gamma"]
            colour = (0, 0, shade) if curve["location"] == "cluster" else (shade, 0, 0)
            ax.plot(np.asarray(curve[key]), "o-", ms=3, color=colour,
                    label=f"{curve['location']}, gamma {curve['gamma']:g}")
        finish_axes(ax, "step", "trace of covariance" if key == "trace" else "mean distance to mean")
    return fig


def plot_gain_sweep(result) -> Figure:
    """Per direction: switch rate and critical pairs versus gain for the three manipulations."""
    directions = sorted({r["direction"] for r in result.rows})
    fig = Figure(figsize=(11, 3.6 * max(len(directions), 1)))
    colours = {"kick": "darkred", "noise projection": "royalblue", "control": "grey"}
    for i, direction in enumerate(directions):
        for j, (key, label) in enumerate([("rate", "switches per 1000 steps in source"),
                                          ("critical_mean", "critical pairs around a switch")]):
            ax = fig.add_subplot(len(directions), 2, 2 * i + j + 1)
            for manipulation, colour in colours.items():
                sel = [r for r in result.rows if r["direction"] == direction and r["manipulation"] == manipulation]
                ax.plot([r["gain"] for r in sel], [r[key] for r in sel], "o-", ms=3, color=colour, label=manipulation)
            ax.axvline(1.0, color="black", lw=0.8, ls=":")
            ax.set_title(f"switch {direction}", fontsize=9)
            finish_axes(ax, "gain", label, legend=(i == 0 and j == 0))
    fig.subplots_adjust(hspace=0.45, wspace=0.3)
    return fig


def plot_training_evolution(result) -> Figure:
    """docs/method.md §5.18: transition rate, unstable / complex fractions and |E[δ2]| per unit versus epoch,
    and a row of per-epoch orbits."""
    epochs = np.asarray(result.epochs)
    fig = Figure(figsize=(18, 9))
    ax = fig.add_subplot(2, 3, 1)
    ax.plot(epochs, result.transition_rate, "o-", ms=3, color="black", label="transition rate")
    ax.axhline(result.converged_rate, color="red", ls="--", lw=1, label=f"converged {result.converged_rate:.3f}")
    if result.bifurcation_epoch is not None:
        ax.axvline(result.bifurcation_epoch, color="darkviolet", ls="--", lw=1,
                   label=f"bifurcation (epoch {result.bifurcation_epoch})")
    finish_axes(ax, "epoch", "mean 1 / dwell")
    ax = fig.add_subplot(2, 3, 2)
    ax.plot(epochs, result.complex_fraction, "o-", ms=3, color="darkorange", label="critical complex pair")
    ax.plot(epochs, result.unstable_fraction, "s-", ms=3, color="darkred", label="unstable eigenvalue")
    finish_axes(ax, "epoch", "fraction of orbit states")
    ax = fig.add_subplot(2, 3, 3)
    im = ax.imshow(np.sqrt(np.abs(np.asarray(result.drift))).T, aspect="auto", cmap="inferno",
                   extent=(epochs[0], epochs[-1], np.asarray(result.drift).shape[1], 0), interpolation="nearest")
    fig.colorbar(im, ax=ax, label="sqrt|E[delta2]|")
    finish_axes(ax, "epoch", "unit", legend=False)
    chosen = np.unique(np.linspace(0, len(epochs) - 1, min(6, len(epochs))).astype(int))
    for k, i in enumerate(chosen):
        ax = fig.add_subplot(2, len(chosen), len(chosen) + k + 1)
        _segments(ax, np.asarray(result.pcs)[i], np.asarray(result.labels)[i], lw=0.5)
        ax.set_title(f"epoch {epochs[i]}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    if result.started_from:
        fig.suptitle(f"epoch {epochs[0]}: the network it started from, trained on {result.started_from}")
    return fig
