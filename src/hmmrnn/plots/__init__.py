"""Figures. Each function takes computed results and returns a matplotlib Figure; nothing here computes.

:func:`save_figure` writes PNG (for reports) and PDF (for papers, fonts embedded as TrueType).
"""

from ._common import save_figure
from .training import plot_history

__all__ = ["plot_history", "save_figure"]
