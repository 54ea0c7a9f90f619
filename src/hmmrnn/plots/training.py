"""Training-history figures."""

from __future__ import annotations

from typing import Any, Sequence

from matplotlib.figure import Figure

from ._common import finish_axes


def plot_history(history: Sequence[dict[str, Any]], title: str = "", ylabel: str = "Sinkhorn divergence") -> Figure:
    """Training and validation loss per epoch, best validation epoch marked, and the epochs whose
    periodic verdict said "emulates: yes".

    Parameters
    ----------
    history : rows with ``epoch``, ``train_loss`` and ``val_loss`` (None where not validated).
    """
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_loss"] for row in history], color="royalblue", lw=1.2, label="training")
    validated = [(row["epoch"], row["val_loss"]) for row in history if row.get("val_loss") is not None]
    if validated:
        ve, vl = zip(*validated)
        ax.plot(ve, vl, color="darkorange", lw=1.2, label="validation")
        best = min(validated, key=lambda item: item[1])
        ax.plot(*best, "o", color="darkred", ms=5, label=f"best {best[1]:.3f} (epoch {best[0]})")
    judged = [(row["epoch"], row["val_loss"] if row.get("val_loss") is not None else row["train_loss"])
              for row in history if row.get("emulates")]
    if judged:
        ax.plot(*zip(*judged), "*", color="darkgreen", ms=10, label="verdict: emulates")
    ax.set_title(title)
    finish_axes(ax, "epoch", ylabel)
    return fig
