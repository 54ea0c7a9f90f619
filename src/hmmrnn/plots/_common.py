"""Shared figure settings and atomic saving."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

#: Settings that apply while a figure is saved, and only then: importing hmmrnn changes neither the
#: backend nor the rcParams of a notebook or script that uses matplotlib itself. Figures are built
#: with matplotlib.figure.Figure, never pyplot, so no backend is needed: savefig picks its canvas
#: from the file format. TrueType fonts (type 42) keep the PDF text editable.
_SAVE_SETTINGS = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}

#: Colours of output symbols 0, 1, 2 (docs/method.md §5): dark green, royal blue, dark red.
OUTPUT_COLOURS = ("darkgreen", "royalblue", "darkred")


def finish_axes(ax, xlabel: str, ylabel: str, legend: bool = True) -> None:
    """Labels, a frameless legend and no top/right spines: the house style of single-panel figures."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def save_figure(fig: Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.png`` / ``stem.pdf`` (atomically) and return the paths."""
    from ..runs import atomic_write_bytes

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        # no creation date in the PDF: the same figure gives the same bytes (sweep reports are rebuilt from disk)
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with matplotlib.rc_context(_SAVE_SETTINGS):
            fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        path = stem.with_suffix(f".{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths
