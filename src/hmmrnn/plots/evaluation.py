"""Figures of an ``Evaluation``: HMM (green/grey) against the candidate (blue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._common import finish_axes, save_figure

HMM_COLOUR, CANDIDATE_COLOUR, BASELINE_COLOUR = "seagreen", "royalblue", "grey"


def _values(x: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in np.ravel(x)], dtype=float).reshape(np.shape(x))


def plot_transition_matrices(metrics: dict) -> Figure:
    """HMM, candidate and difference of the output transition matrices, annotated."""
    t = metrics["transition_matrix"]
    hmm, cand, diff = (_values(t[key]) for key in ("hmm", "candidate", "difference"))
    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 3)
    limit = max(np.nanmax(np.abs(diff)), 0.03)
    for ax, matrix, title, cmap, vmin, vmax in [
        (axes[0], hmm, "HMM", "viridis", 0, 1), (axes[1], cand, "RNN", "viridis", 0, 1),
        (axes[2], diff, "RNN − HMM", "RdBu_r", -limit, limit)]:
        image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, "–" if np.isnan(value) else f"{value:.3f}", ha="center", va="center", fontsize=8,
                    color="white" if cmap == "viridis" and value < 0.5 else "black")
        ax.set_title(title)
        ax.set_xlabel("symbol at t")
        ax.set_ylabel("symbol at t − 1")
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("Output transition matrices P(o_t | o_t−1)")
    fig.tight_layout()
    return fig


def plot_frequencies(metrics: dict) -> Figure:
    """Mean ± std (over sequences) of each symbol's frequency."""
    f = metrics["frequencies"]
    k = len(f["hmm_mean"])
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    x = np.arange(k)
    ax.bar(x - 0.2, f["hmm_mean"], 0.4, yerr=f["hmm_std"], color=HMM_COLOUR, label="HMM", capsize=3)
    ax.bar(x + 0.2, f["candidate_mean"], 0.4, yerr=f["candidate_std"], color=CANDIDATE_COLOUR, label="RNN",
           capsize=3)
    ax.set_xticks(x)
    finish_axes(ax, "symbol", "frequency per sequence")
    return fig


def plot_volatility(metrics: dict) -> Figure:
    """Distribution of symbol changes per sequence."""
    v = metrics["volatility"]
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    for key, colour, label in (("hmm_histogram", HMM_COLOUR, "HMM"), ("candidate_histogram", CANDIDATE_COLOUR, "RNN")):
        hist = _values(v[key])
        ax.step(np.arange(len(hist)), hist, where="mid", color=colour,
                label=f"{label}: {v[key.replace('histogram', 'mean')]:.2f} ± {v[key.replace('histogram', 'std')]:.2f}")
    finish_axes(ax, "symbol changes per sequence", "fraction of sequences")
    return fig


def plot_matched_distances(metrics: dict) -> Figure:
    """Histograms of matched Euclidean distances, HMM vs RNN and HMM vs HMM."""
    d = metrics["matched_distance"]
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    for key, summary, colour, label in (("candidate_mismatch_histogram", "candidate", CANDIDATE_COLOUR, "HMM vs RNN"),
                                        ("baseline_mismatch_histogram", "baseline", BASELINE_COLOUR, "HMM vs HMM")):
        hist = _values(d[key])
        distances = np.sqrt(2 * np.arange(len(hist)))
        ax.plot(distances, hist, "o-", ms=3, color=colour,
                label=f"{label}: {d[summary]['mean']:.3f} ± {d[summary]['std']:.3f}")
    finish_axes(ax, "matched Euclidean distance", "fraction of sequences")
    return fig


def plot_dwell_times(metrics: dict) -> Figure:
    """P(run length | symbol), HMM vs RNN, one panel per symbol (log scale)."""
    dw = metrics["dwell_times"]
    hmm, cand = _values(dw["hmm"]), _values(dw["candidate"])
    k = hmm.shape[0]
    fig = Figure(figsize=(4 * k, 3.3))
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
    lengths = np.arange(1, hmm.shape[1] + 1)
    for s, ax in enumerate(axes):
        for values, colour, label in ((hmm[s], HMM_COLOUR, "HMM"), (cand[s], CANDIDATE_COLOUR, "RNN")):
            shown = values > 0
            ax.semilogy(lengths[shown], values[shown], "o-", ms=2.5, lw=1, color=colour, label=label)
        stats = dw["per_symbol"].get(s) or dw["per_symbol"][str(s)]  # int keys in memory, str from JSON
        ax.set_title(f"symbol {s}: TV {stats['tv']:.3f} (HMM vs HMM {stats['baseline_tv']:.3f})", fontsize=9)
        ax.set_xlabel("dwell time (steps)")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("probability")
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_horizons(evaluation: dict) -> Figure:
    """The long-run verdict at a glance: the long run's median ‖h_t‖ (90 % quantile shaded) against the
    step, and for every window each check's |diff| as a fraction of its allowance (a bar above 1 fails).

    ``evaluation`` is ``to_dict`` (or metrics.json)."""
    windows = evaluation.get("windows") or {}
    long_run = evaluation.get("long_run")
    fig = Figure(figsize=(12, 3.8))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    if long_run:
        steps, median, q90 = (_values(long_run[key]) for key in ("steps", "median_norm", "q90_norm"))
        left.loglog(steps, median, color=CANDIDATE_COLOUR, label="median")
        left.fill_between(steps, median, q90, color=CANDIDATE_COLOUR, alpha=0.2, label="to 90 % quantile")
        left.axvline(long_run["burn_in"], color=BASELINE_COLOUR, ls="--", lw=1, label="end of burn-in")
        growth = long_run["growth"]
        left.set_title(f"{long_run['chains']} chains from h0 = 0: growth "
                       + ("diverged" if growth is None else f"{growth:.2f}"), fontsize=10)
        finish_axes(left, "step", "‖h_t‖")
    else:
        left.text(0.5, 0.5, "no long run", ha="center", va="center", transform=left.transAxes)
        left.set_axis_off()
    names = list(windows)
    checks = [c for c in evaluation.get("checks", []) if c.get("window") in names]
    labels = list(dict.fromkeys(c["name"].split(" (")[0] for c in checks))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        mine = {c["name"].split(" (")[0]: c for c in checks if c["window"] == name}
        ratios = [max(mine[l]["value"], 0) / mine[l]["limit"] if l in mine and mine[l]["limit"] else np.nan
                  for l in labels]
        right.bar(np.arange(len(labels)) + (i - (len(names) - 1) / 2) * width, ratios, width, label=name,
                  color=CANDIDATE_COLOUR if i == 0 else None, alpha=0.9)
    right.axhline(1, color="firebrick", lw=1, ls="--", label="allowance")
    right.set_xticks(range(len(labels)))
    right.set_xticklabels([l.replace("output ", "") for l in labels], rotation=15, fontsize=8)
    right.set_title(f"verdict: {evaluation.get('verdict', 'yes' if evaluation.get('emulates') else 'no')}",
                    fontsize=10)
    finish_axes(right, "", "|diff| / allowance")
    fig.tight_layout()
    return fig


def save_evaluation_figures(result: Any, folder: str | Path) -> list[Path]:
    """Write every evaluation figure (PNG + PDF) into ``folder``; returns the paths."""
    evaluation = result.to_dict() if hasattr(result, "to_dict") else result
    metrics = result.metrics if hasattr(result, "metrics") else result
    folder = Path(folder)
    makers = {"evaluation_transitions": plot_transition_matrices, "evaluation_frequencies": plot_frequencies,
              "evaluation_volatility": plot_volatility, "evaluation_dwell_times": plot_dwell_times}
    if "matched_distance" in metrics:
        makers["evaluation_distances"] = plot_matched_distances
    paths = []
    for name, make in makers.items():
        paths += save_figure(make(metrics), folder / name)
    if evaluation.get("windows"):
        from ..runs import json_ready

        paths += save_figure(plot_horizons(json_ready(evaluation)), folder / "evaluation_horizons")
    return paths
