"""SIGTERM as Ctrl-C: a `kill` from a user or a scheduler ends a command the way Ctrl-C does
(training writes an ``interrupted`` status and resumes from its last checkpoint; a sweep stops its workers)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["stop_signals_interrupt"]


@contextmanager
def stop_signals_interrupt(sigint: bool = True):
    """Within the block, SIGTERM raises ``KeyboardInterrupt``, so that a ``kill`` takes the same path
    as Ctrl-C: training writes an ``interrupted`` status and stops, resumable from its last
    checkpoint. With ``sigint`` SIGINT does the same (unless it is ignored, as in a background job),
    and the first of either signal is the only one: later ones are ignored while that path runs (a
    sweep's worker gets SIGINT from the terminal and SIGTERM from the sweep). Off the main thread
    (where Python allows no handlers) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        for name in handled:
            signal.signal(name, signal.SIG_IGN)
        raise KeyboardInterrupt

    handled = [signal.SIGTERM] + ([signal.SIGINT] if sigint and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
                                  else [])
    previous = {name: signal.signal(name, interrupt) for name in handled}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)
