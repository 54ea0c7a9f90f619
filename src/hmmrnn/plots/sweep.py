"""The paper's grid figures from a sweep's cell records (docs/method.md §4.2); nothing here computes
metrics, it only aggregates the records over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._common import finish_axes

__all__ = ["sweep_figures", "plot_distance_grid", "plot_transition_grid", "plot_overview"]

_HIDDEN_COLOURS = ("deepskyblue", "royalblue", "midnightblue", "slateblue", "navy")


def _over_seeds(records: list[dict[str, Any]], key: str) -> tuple[float, float, int]:
    """Mean and std over seeds of a per-seed value (finished cells only); NaN when none."""
    values = [r["metrics"][key] for r in records if r.get("status") == "done" and r["metrics"].get(key) is not None]
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.std(values)), len(values)


def plot_distance_grid(preset: str, hidden: tuple[int, ...], inputs: tuple[int, ...],
                       records: list[dict[str, Any]]) -> Figure:
    """docs/method.md §4.2: matched distance against input dimension (equidistant positions), one line per
    hidden size (mean over seeds of the per-seed means, error bars = std over seeds), and the HMM
    baseline as a green line with a band (mean ± std over the cells' baseline means)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    offsets = np.linspace(-0.1, 0.1, len(hidden)) if len(hidden) > 1 else [0.0]
    baselines = [r["metrics"]["baseline_distance"] for r in records
                 if r.get("status") == "done" and r["metrics"].get("baseline_distance") is not None]
    if baselines:
        mean, std = float(np.mean(baselines)), float(np.std(baselines))
        ax.axhline(mean, color="green", lw=1.5, label="HMM baseline")
        ax.axhspan(mean - std, mean + std, color="green", alpha=0.15)
    for k, (h, offset) in enumerate(zip(hidden, offsets)):
        stats = [_over_seeds([r for r in records if r["hidden"] == h and r["noise_dim"] == d], "matched_distance")
                 for d in inputs]
        means, stds = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
        ax.errorbar(np.arange(len(inputs)) + offset, means, yerr=stds, fmt="o-", ms=4, capsize=3,
                    color=_HIDDEN_COLOURS[k % len(_HIDDEN_COLOURS)], label=f"H = {h}")
    ax.set_xticks(np.arange(len(inputs)), [str(d) for d in inputs])
    seq_len = next((r["metrics"]["seq_len"] for r in records if r.get("status") == "done"), None)
    ax.set_title(f"{preset}: matched distance to HMM samples" + (f" (T = {seq_len})" if seq_len else ""), fontsize=10)
    finish_axes(ax, "input dimension d", "mean matched distance")
    return fig


def plot_transition_grid(preset: str, hidden: tuple[int, ...], inputs: tuple[int, ...],
                         records: list[dict[str, Any]], matrices: dict[str, dict[str, np.ndarray] | None]) -> Figure:
    """docs/method.md §4.2: per (hidden, noise_dim) cell the element-wise squared difference between the
    RNN's and the HMM's empirical output transition matrices, mean ± std over seeds, on one colour
    scale."""
    grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for h in hidden:
        for d in inputs:
            squares = []
            for r in records:
                m = matrices.get(r["cell"]) if r["hidden"] == h and r["noise_dim"] == d else None
                if m is not None:
                    squares.append(np.nan_to_num(m["candidate"] - m["hmm"]) ** 2)
            if squares:
                grids[h, d] = (np.mean(squares, axis=0), np.std(squares, axis=0))
    fig = Figure(figsize=(max(6.0, 2.8 * len(inputs) + 1.5), 2.6 * len(hidden) + 0.8))
    top = max((g[0].max() for g in grids.values()), default=1.0) or 1.0
    image = None
    for i, h in enumerate(hidden):
        for j, d in enumerate(inputs):
            ax = fig.add_subplot(len(hidden), len(inputs), i * len(inputs) + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"H = {h}")
            if i == len(hidden) - 1:
                ax.set_xlabel(f"d = {d}")
            if (h, d) not in grids:
                ax.text(0.5, 0.5, "no finished cell", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            mean, std = grids[h, d]
            image = ax.imshow(mean, cmap="viridis", vmin=0, vmax=top)
            for a in range(mean.shape[0]):
                for b in range(mean.shape[1]):
                    ax.text(b, a, f"{mean[a, b]:.4f}\n±{std[a, b]:.4f}", ha="center", va="center", fontsize=6,
                            color="white" if mean[a, b] < 0.6 * top else "black")
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.8, label="squared difference")
    fig.suptitle(f"{preset}: (RNN - HMM)^2 of the output transition matrix\nmean ± std over seeds", fontsize=10)
    return fig


def plot_overview(presets: tuple[str, ...], records: list[dict[str, Any]]) -> Figure:
    """docs/method.md §4.2 style, for every preset: HMM baseline and RNN matched distance (mean of the per-seed
    means, error bars = mean of the per-seed stds), and how many cells emulate."""
    fig = Figure(figsize=(max(5, 1.6 * len(presets) + 2), 4))
    ax = fig.add_subplot()
    x = np.arange(len(presets))
    for offset, key, colour, label in ((-0.17, "baseline_distance", "green", "HMM"),
                                       (0.17, "matched_distance", "royalblue", "RNN")):
        means, errors = [], []
        for p in presets:
            mine = [r for r in records if r["preset"] == p]
            means.append(_over_seeds(mine, key)[0])
            errors.append(_over_seeds(mine, key + "_std")[0])
        ax.bar(x + offset, means, width=0.34, yerr=errors, capsize=3, color=colour, alpha=0.8, label=label)
    labels = []
    for p in presets:
        mine = [r for r in records if r["preset"] == p]
        done = [r for r in mine if r.get("status") == "done"]
        labels.append(f"{p}\n{sum(bool(r.get('emulates')) for r in done)}/{len(mine)} emulate")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_title("matched distance to HMM samples per preset (all cells)", fontsize=10)
    finish_axes(ax, "", "mean matched distance")
    return fig


def sweep_figures(spec, records: list[dict[str, Any]], matrices: dict[str, Any]) -> dict[str, Figure]:
    """Every figure of a sweep by file stem: ``distance_<preset>``, ``transitions_<preset>`` and ``overview``."""
    figures = {}
    for preset in spec.presets:
        mine = [r for r in records if r["preset"] == preset]
        figures[f"distance_{preset}"] = plot_distance_grid(preset, spec.hidden, spec.noise_dim, mine)
        figures[f"transitions_{preset}"] = plot_transition_grid(preset, spec.hidden, spec.noise_dim, mine, matrices)
    figures["overview"] = plot_overview(spec.presets, records)
    return figures
