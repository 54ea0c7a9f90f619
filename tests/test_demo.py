"""``hmmrnn demo``: evaluation, every analysis and the report on a small zoo model."""

from __future__ import annotations


def test_demo_evaluates_analyses_and_reports_a_small_zoo_model(tiny_zoo, tmp_path):
    from hmmrnn.analysis import ANALYSES
    from hmmrnn.demo import demo

    from test_analysis import _FAST

    lines = []
    report = demo(tmp_path / "demo", model="tiny", zoo_dir=tiny_zoo / "zoo", eval_n=500, analysis_settings=_FAST,
                  progress=False, say=lines.append)
    assert report == tmp_path / "demo" / "report.html" and report.stat().st_size > 10_000
    assert (tmp_path / "demo" / "metrics.json").exists()
    written = {p.stem for p in (tmp_path / "demo" / "analysis").glob("*.json")}
    # every analysis ran; the ones that may find nothing on a barely trained network say so
    assert written | {"transition_points", "noise_sensitivity", "training_evolution"} >= set(ANALYSES)
    assert lines[0].startswith("zoo model tiny") and lines[-1].startswith("wrote")
    assert sum(line.split(" (")[0] in ANALYSES for line in lines) == len(ANALYSES)
