"""The HTML report: self-contained, names what is missing, and loads in a real headless browser with
every figure decoded and no script error."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import hmmrnn
from hmmrnn.analysis import ANALYSES, analyze
from hmmrnn.report import write_report

from conftest import TINY

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str | None:
    return next((path for path in map(shutil.which, _BROWSERS) if path), None)


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    run = hmmrnn.train("linear3", out=out, epochs=2, seed=0, progress=False, checkpoint_every=1, **TINY)
    hmmrnn.evaluate(run, n=300, seed=0, refit=False)
    analyze(out, only=["latent_geometry", "readout_alignment", "residency"], progress=False)
    return out


def test_report_embeds_every_figure_and_lists_missing_analyses(reported_run):
    path = write_report(reported_run)
    page = path.read_text()
    assert path == reported_run / "report.html"
    assert "src='http" not in page and "href='http" not in page and "<link" not in page  # self-contained
    images = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,", page)
    # the loss, the six evaluation figures and the three analyses
    assert "training and validation loss" in images and {"latent_geometry", "readout_alignment", "residency"} <= set(images)
    assert sum(a.startswith(("horizons", "transitions", "frequencies", "volatility", "dwell", "distances"))
               for a in images) == 6
    for name in ("latent_geometry", "readout_alignment", "residency"):
        assert ANALYSES[name].reading[:40] in page.replace("&#x27;", "'")
    assert "Not in this run folder: input_free, fixed_points" in page
    # a 2-epoch network is far from its HMM; every window's checks are listed with the long run's
    assert "Verdict: <span class='fail'>no</span>" in page
    assert "stationary T=100" in page and "bounded long run" in page and "z = 3.76" in page


def test_report_of_a_bare_run_says_what_is_missing(tmp_path):
    run = hmmrnn.train("linear2", out=tmp_path / "bare", epochs=1, seed=0, progress=False, **TINY)
    page = write_report(run.path).read_text()
    assert "Not evaluated yet" in page and "Not in this run folder: latent_geometry" in page


@pytest.mark.skipif(_browser() is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_report_loads_in_a_headless_browser_with_every_figure(reported_run, tmp_path):
    path = write_report(reported_run)
    n_images = path.read_text().count("<img ")
    result = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}",
                             path.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", result.stdout)
    assert title is not None, result.stdout[:500]
    assert title.group(1) == f"report: {n_images}/{n_images} figures", title.group(1)
