"""One self-contained HTML page per run: the HMM, training, evaluation and every analysis found on
disk, with the figures embedded (``hmmrnn report RUN_DIR`` → ``RUN_DIR/report.html``).

The page is built only from files (config, history, status, metrics.json, analysis/*.json and the
PNG figures), so it works on whatever exists and names what is missing. It has no external
resources: images are base64 data URIs, the style is inline, and a few lines of script only record,
in the page title, whether every figure loaded (the headless-browser test reads it).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HmmrnnError, RunDirError
from .runs import ANALYSIS_DIR, FIGURES_DIR, METRICS_FILE, REPORT_FILE, atomic_write_text, load_run, read_json, run_lock

__all__ = ["write_report", "REPORT_FILE"]

#: marks a page as an hmmrnn report: only such a file may be overwritten by another report
_GENERATOR_TAG = "<meta name='generator' content='hmmrnn report'>"


_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-bottom: .2em; } table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: right; } th { background: #f4f4f4; }
td.l, th.l { text-align: left; } .pass { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; margin: .4em 0; } .muted { color: #777; }
.reading { margin: .2em 0; } .numbers { font-family: monospace; font-size: .9em; background: #f7f7f7;
           padding: .3em .5em; }
"""

# Records in the title whether every figure decoded, and any script error: "report: 12/12 figures".
_CHECK_SCRIPT = """
window.addEventListener('error', function (e) { document.title = 'report: error ' + e.message; });
window.addEventListener('load', function () {
  if (document.title.indexOf('error') >= 0) return;
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.title = 'report: ' + ok + '/' + imgs.length + ' figures';
});
"""


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's HTML report (default ``RUN_DIR/report.html``) atomically; returns its path.

    ``out`` may name a new file or an earlier report (recognised by its generator tag); any other
    existing file is refused, so a report never replaces weights, a config or a user's page."""
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run folder not found: {run_dir}")
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    _check_report_target(target)
    with run_lock(run_dir):
        page = _report_page(run_dir)
        atomic_write_text(target, page)
    return target


def _check_report_target(target: Path) -> None:
    if target.is_dir():
        raise HmmrnnError(f"{target} is a folder; give the report's file name, e.g. {target / REPORT_FILE}")
    if target.exists():
        try:
            with open(target, "rb") as handle:
                head = handle.read(4096)
        except OSError as exc:
            raise HmmrnnError(f"cannot read {target}: {exc.strerror}") from None
        if _GENERATOR_TAG.encode() not in head:
            raise HmmrnnError(f"{target} exists and is not an hmmrnn report; refusing to overwrite it")
    if not target.parent.is_dir():
        raise HmmrnnError(f"cannot write {target}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise HmmrnnError(f"cannot write {target}: folder {target.parent} is not writable")


def _report_page(run_dir: str | Path) -> str:
    from .analysis import ANALYSES

    run = load_run(run_dir)
    root = Path(run.path)
    parts = [f"<h1>hmmrnn report: {_e(root.name)}</h1>", _overview(run)]
    parts += ["<h2>The HMM</h2>", _hmm_section(run)]
    parts += ["<h2>Training</h2>", _training_section(run, root)]
    parts += ["<h2>Evaluation</h2>", _evaluation_section(root)]
    parts.append("<h2>Analyses</h2>")
    missing = []
    for name in ANALYSES:
        path = root / ANALYSIS_DIR / f"{name}.json"
        if not path.exists():
            missing.append(name)
            continue
        parts.append(_analysis_section(ANALYSES[name], read_json(path), root / ANALYSIS_DIR / f"{name}.png"))
    if missing:
        parts.append(f"<p class='muted'>Not in this run folder: {_e(', '.join(missing))}. Run "
                     f"<code>hmmrnn analyze {_e(str(root))} --only {_e(','.join(missing))}</code> to add them."
                     f"</p>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>" + _GENERATOR_TAG +
            f"<title>report: loading</title><style>{_STYLE}</style><script>{_CHECK_SCRIPT}</script></head>"
            "<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _e(text: Any) -> str:
    return html.escape(str(text))


def _png(data: bytes, alt: str) -> str:
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode('ascii')}'>"


def _image(path: Path, alt: str) -> str:
    if not path.exists():
        return f"<p class='muted'>(figure {_e(path.name)} not found)</p>"
    return _png(path.read_bytes(), alt)


def _table(rows: list[list[Any]], header: list[str] | None = None, left: int = 1) -> str:
    def cells(row, tag):
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{c}</{tag}>" for i, c in enumerate(row))

    head = f"<tr>{cells(header, 'th')}</tr>" if header else ""
    return "<table>" + head + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</table>"


def _matrix(values: Any) -> str:
    array = np.asarray(values, dtype=float)
    return _table([[f"{v:.4f}" for v in row] for row in array], left=0)


def _overview(run) -> str:
    c, m, t = run.config, run.config.model, run.config.train
    rows = [["preset", _e(c.preset or "custom HMM")], ["HMM", _e(f"{c.hmm.name}: {c.hmm.n_states} states, "
                                                                  f"{c.hmm.n_outputs} outputs")],
            ["network", f"H = {m.hidden} hidden units, d = {m.noise_dim} noise inputs, {m.n_outputs} outputs"],
            ["training", _e(f"recipe {t.recipe}, T = {t.seq_len}, batch {t.batch_size}, lr {t.lr:g}, seed {t.seed}")],
            ["status", _e(run.status.get("state", "unknown"))],
            ["versions", _e(", ".join(f"{k} {v}" for k, v in c.versions.items()))]]
    return _table(rows)


def _hmm_section(run) -> str:
    hmm = run.hmm
    return (f"<p>Transition matrix (rows: from state, columns: to state)</p>{_matrix(hmm.transition)}"
            f"<p>Emission matrix (rows: state, columns: output symbol)</p>{_matrix(hmm.emission)}"
            f"<p>Start distribution {_e(np.round(hmm.start, 4).tolist())}; stationary output frequencies "
            f"{_e(np.round(hmm.output_frequencies(), 4).tolist())}.</p>")


def _training_section(run, root: Path) -> str:
    status, history = run.status, run.history
    if not history:
        return (f"<p class='muted'>No training history here (status: {_e(status.get('state', 'unknown'))}"
                f"{', imported from ' + _e(status['source']) if 'source' in status else ''}).</p>")
    seconds = sum(row["seconds"] for row in history)
    rows = [["epochs", len(history)], ["training time", f"{seconds / 60:.1f} min"],
            ["best validation loss", f"{status['best_val_loss']:.4f} (epoch {status.get('best_epoch')})"
             if status.get("best_val_loss") is not None else "-"],
            ["stopped early, emulating at epoch", status.get("emulating_epoch", "-")]]
    figure = root / FIGURES_DIR / "loss.png"
    if figure.exists():
        return _table(rows) + _image(figure, "training and validation loss")
    # a copied run (zoo) may have its history but not the figure: draw it from the history
    from .plots import plot_history

    ylabel = "Sinkhorn divergence" + (" + bigram penalty" if run.config.train.bigram_weight else "")
    buffer = io.BytesIO()
    plot_history(history, title=root.name, ylabel=ylabel).savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    return _table(rows) + _png(buffer.getvalue(), "training and validation loss")


def _evaluation_section(root: Path) -> str:
    path = root / METRICS_FILE
    if not path.exists():
        return f"<p class='muted'>Not evaluated yet: run <code>hmmrnn evaluate {_e(str(root))}</code>.</p>"
    metrics = read_json(path)
    verdict = metrics.get("verdict") or ("yes" if metrics.get("emulates") else "no")

    def number(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    rows = [[_e(c.get("window", "")), _e(c["name"]), number(c["value"]), number(c["limit"]), number(c.get("baseline")),
             f"<span class='{'pass' if c['passed'] else 'fail'}'>{_e(c.get('status', 'pass' if c['passed'] else 'fail'))}</span>",
             _e(c.get("detail", ""))]
            for c in metrics["checks"]]
    how = (f"family-wise alpha {metrics['thresholds']['alpha']:g} over {metrics['tests']} tested quantities, "
           f"z = {metrics['z']:.2f}; a check fails when |diff| &gt; tolerance + z·se. " if "z" in metrics else "")
    long_run = metrics.get("long_run")
    if long_run:
        how += (f"Long run: {long_run['chains']} chains × {long_run['length']} steps from h0 = 0, windows cut after "
                f"{long_run['burn_in']} steps. ")
    out = [f"<p>N = {metrics['n']} sequences per window against 3N HMM sequences. {how}"
           f"Verdict: <span class='{'pass' if verdict == 'yes' else 'fail'}'>{_e(verdict)}</span>.</p>",
           _table(rows, ["window", "check", "|diff|", "allowed", "HMM vs HMM", "", "note"])]
    for name in ("horizons", "transitions", "frequencies", "volatility", "distances", "dwell_times"):
        figure = root / FIGURES_DIR / f"evaluation_{name}.png"
        if figure.exists():
            out.append(_image(figure, name.replace("_", " ")))
    return "\n".join(out)


def _analysis_section(analysis, data: dict[str, Any], figure: Path) -> str:
    found = data.get("summary") or "(no summary stored; re-run the analysis)"
    name = analysis.name
    shown = "" if "nothing_found" in data else _image(figure, name)
    return (f"<h3>{_e(name.replace('_', ' '))}</h3><p class='reading'>{_e(analysis.reading)}</p>"
            f"<p class='numbers'>{_e(found)}</p>" + shown)
