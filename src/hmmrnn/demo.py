"""``hmmrnn demo``: a zoo model evaluated, analysed and reported in one command (a few minutes on a
2-core CPU)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .analysis import analyze, progress_line
from .evaluation import evaluate
from .report import write_report
from .runs import run_lock
from .zoo import get

__all__ = ["demo"]


def demo(out: str | Path = "runs/demo", *, model: str = "linear3", force: bool = False,
         zoo_dir: str | Path | None = None, eval_n: int = 5000, analysis_settings: dict | None = None,
         progress: bool = True, say: Callable[[str], None] = print) -> Path:
    """Copy zoo model ``model`` into ``out``, evaluate it (``eval_n`` sequences, its T), run every
    analysis (``analysis_settings`` as in ``hmmrnn.analysis.analyze``) and write
    ``report.html``; returns the report's path. ``say`` receives one line per step."""
    with run_lock(out, create=True):  # one writer for the whole demo
        return _demo(out, model, force, zoo_dir, eval_n, analysis_settings, progress, say)


def _demo(out, model, force, zoo_dir, eval_n, analysis_settings, progress, say) -> Path:
    started = time.perf_counter()
    run = get(model, out, force=force, zoo_dir=zoo_dir)
    say(f"zoo model {model} -> {run.path} (H = {run.config.model.hidden}, d = {run.config.model.noise_dim})")
    result = evaluate(run, n=eval_n, seed=0)
    say(f"evaluation: emulates {result.verdict} "
        f"({time.perf_counter() - started:.0f} s so far)")

    analyze(run.path, seed=0, progress=progress, report=lambda *line: say(progress_line(*line)),
            settings=analysis_settings)
    path = write_report(run.path)
    say(f"wrote {path} in {time.perf_counter() - started:.0f} s")
    return path
