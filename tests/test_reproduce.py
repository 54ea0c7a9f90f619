"""``hmmrnn reproduce``: the page on a small trained run (--quick), its numbers read back from the
analyses, the claim rules on hand-made results, and the user's run folder left untouched."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

import hmmrnn
from hmmrnn.reproduce import CLAIMS, PAPER, _claim_outcomes, _quantity_rows
from hmmrnn.runs import read_json

from conftest import TINY


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".hmmrnn.lock"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "small"
    run = hmmrnn.train("linear3", out=out, epochs=3, seed=0, progress=False, checkpoint_every=1, **TINY)
    hmmrnn.evaluate(run, n=300, seed=0, refit=False, figures=False)
    return run.path


def test_quick_reproduction_writes_the_page_from_the_analyses(small_run, tmp_path, cli):
    before = _digest(small_run)
    code, out, err = cli("reproduce", "--runs", small_run, "--quick", "--out", tmp_path / "rep", "-q")
    assert code == 0, err
    assert _digest(small_run) == before  # analysed in a copy: nothing written into the user's run
    page = (tmp_path / "rep" / "reproduction.md").read_text()
    html = (tmp_path / "rep" / "reproduction.html").read_text()
    # the page's numbers are the analyses' numbers
    geometry = read_json(tmp_path / "rep" / "models" / "small" / "analysis" / "latent_geometry.json")
    pc1, pc2 = (100 * v for v in geometry["explained_variance_ratio"][:2])
    assert f"| PC1 / PC2 share | {pc1:.1f} / {pc2:.1f} % | 52.8–53.9 / 16.0–16.5 % |" in page
    alignment = read_json(tmp_path / "rep" / "models" / "small" / "analysis" / "readout_alignment.json")
    assert f"| readout projection on PC1–PC2 | {alignment['mean_projection']:.3f} | 0.320 |" in page
    # one row per claim that applies to a linear chain, each with an outcome
    for claim in CLAIMS:
        rows = re.findall(rf"^\| {claim} \| small \| (\w[\w ]*) \|", page, flags=re.M)
        assert rows == ([] if claim == "compositional reuse" else [rows[0]]), claim
        assert not rows or rows[0] in ("reproduced", "partly", "not", "not tested")
    # every figure the Markdown names lies beside it, and the HTML embeds them all
    figures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", page)
    assert figures and all((tmp_path / "rep" / f).is_file() for f in figures)
    assert html.count("data:image/png;base64,") == len(figures)
    # running again into the same folder is allowed; into someone else's folder it is not
    assert cli("reproduce", "--runs", small_run, "--quick", "--out", tmp_path / "rep", "-q")[0] == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    code, _, err = cli("reproduce", "--runs", small_run, "--quick", "--out", tmp_path / "mine", "-q")
    assert code == 1 and "not an earlier reproduction" in err and err.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    code, _, err = cli("reproduce", "--runs", tmp_path / "nowhere", "--quick", "--out", tmp_path / "r2", "-q")
    assert code == 1 and "not a run folder" in err and not (tmp_path / "r2").exists()


def _results(**changes):
    """Hand-made analysis results of a model that shows every part of the mechanism."""
    results = {
        "input_free": {"converged": True, "final_spread": 0.0},
        "fixed_points": {"points": [], "origin": {"attracting": True}},
        "residency": {"residency": [1.0, 4.5, 40.0], "group_summary": {
            "transition": {"fraction": 0.1}, "kick zone": {"fraction": 0.3}, "cluster": {"fraction": 0.5}}},
        "kick_neurons": {"directions": [{"from": 0, "to": 2, "units": [1, 2, 3]},
                                        {"from": 2, "to": 0, "units": [4, 5, 6]}]},
        "ablation": {"per_direction": [
            {"direction": "0->2", "ratio_kick": 0.3, "ratio_random": 0.95, "kick_ablated": 6.0, "random_mean": 19.0,
             "random_std": 1.0},
            {"direction": "2->0", "ratio_kick": 0.4, "ratio_random": 1.02, "kick_ablated": 8.0, "random_mean": 20.4,
             "random_std": 2.0}]},
        "connectivity": {"block_means": {"pop1->group1": -0.05, "pop1->group2": 0.04, "pop2->group1": 0.03,
                                         "pop2->group2": -0.06}},
        "training_evolution": {"transition_rate": [0.7, 0.3, 0.1], "epochs": [10, 20, 30], "bifurcation_epoch": 20,
                               "converged_rate": 0.1},
        "output_pairs": {"pairs": [{"pair": [0, 1], "n_states": 50, "explained_variance_ratio": [0.7, 0.2, 0.1]},
                                   {"pair": [0, 2], "n_states": 50, "explained_variance_ratio": [0.8, 0.1, 0.1]},
                                   {"pair": [1, 2], "n_states": 50, "explained_variance_ratio": [0.65, 0.2, 0.1]}]},
        "latent_geometry": {"explained_variance_ratio": [0.536, 0.267, 0.068]},
        "readout_alignment": {"nothing_found": "not run"}, "gain_sweep": {"nothing_found": "not run"}}
    results.update(changes)
    return {"name": "m", "preset": "fully3", "results": results, "stopped": None,
            "metrics": {"emulates": True, "verdict": "yes", "windows": {}}}


def test_claim_rules_on_hand_made_results():
    outcomes = _claim_outcomes(_results())
    assert {k: v[0] for k, v in outcomes.items()} == {claim: "reproduced" for claim in CLAIMS}
    # kick units without a causal effect and without push-pull: partly; no kick units at all: not
    weak = _results(ablation={"per_direction": [{"direction": "0->2", "ratio_kick": 1.0, "ratio_random": 0.9,
                                                 "kick_ablated": 20.0, "random_mean": 18.0, "random_std": 1.0}]},
                    connectivity={"nothing_found": "no populations"})
    assert _claim_outcomes(weak)["kick neurons"][0] == "partly"
    # a 1 % slow-down is not causal, even where random units speed the switches up (the zoo's linear2)
    barely = _results(ablation={"per_direction": [{"direction": "2->0", "ratio_kick": 0.99, "ratio_random": 1.07,
                                                   "kick_ablated": 34.2, "random_mean": 37.0, "random_std": 0.9}]})
    assert _claim_outcomes(barely)["kick neurons"][0] == "partly"
    none = _results(kick_neurons={"directions": []}, ablation={"per_direction": []},
                    connectivity={"nothing_found": "no kick units"})
    assert _claim_outcomes(none)["kick neurons"][0] == "not"
    # a second attracting fixed point breaks the single-fixed-point claim
    two = _results(fixed_points={"points": [{"kind": "fixed point", "stability": "stable node"}],
                                 "origin": {"attracting": True}})
    assert _claim_outcomes(two)["single fixed point"][0] == "not"
    assert _claim_outcomes(_results(residency={"group_summary": {"transition": {"fraction": 0.4},
                                                                 "kick zone": {"fraction": 0.6},
                                                                 "cluster": {"fraction": 0.0}}}))[
        "three zones"][0] == "partly"
    # a switch rate that barely drops, without a bifurcation epoch: not
    flat = _results(training_evolution={"transition_rate": [0.7, 0.66], "epochs": [1, 2], "bifurcation_epoch": None,
                                        "converged_rate": 0.66})
    assert _claim_outcomes(flat)["bifurcation"][0] == "not"
    one_pair = _results(output_pairs={"pairs": [{"pair": [0, 1], "n_states": 5,
                                                 "explained_variance_ratio": [0.4, 0.3, 0.2]}]})
    assert _claim_outcomes(one_pair)["compositional reuse"][0] == "partly"


def test_quantity_rows_compare_with_the_stated_rules():
    rows = {r[0]: r for r in _quantity_rows(_results())}
    assert rows["PC1 / PC2 share"][1:] == ["53.6 / 26.7 %", "53.6 / 26.7 %", "agrees"]
    assert PAPER["fully3"].bifurcation_epoch == (110, 110)
    assert rows["bifurcation epoch"][1:] == ["20", "110", "differs"]  # 20 < 110 / 1.5
    assert rows["output-pair PC1 share (%)"][3] == "differs"  # pair 1-2: 65.0 against 85.6
    assert rows["converged switch rate (per step)"][3] == "agrees"  # 0.100 within 25 % of 0.107
    assert rows["max residency (steps)"][1:] == ["40.0", "31–56 (over all models)", "agrees"]
    # a model fine-tuned from another HMM's network says so next to its bifurcation epoch
    evolution = {"transition_rate": [0.2, 0.1], "epochs": [620, 640], "bifurcation_epoch": 640,
                 "converged_rate": 0.1, "started_from": "fully3, epochs 1-620"}
    inherited = _results(training_evolution=evolution)
    assert _quantity_rows(inherited)[[r[0] for r in _quantity_rows(inherited)].index("bifurcation epoch")][1] == (
        "640 (from epoch 620; it started from a network trained on fully3, epochs 1-620)")
    assert _claim_outcomes(inherited)["bifurcation"][1].endswith(
        "(it started from a network trained on fully3, epochs 1-620, whose stages are left out)")


def test_a_diverging_model_is_reported_and_the_others_still_analysed(small_run, tmp_path):
    import shutil

    import torch

    from hmmrnn.reproduce import reproduce
    from hmmrnn.runs import WEIGHTS_FILE, save_tensors, weights_of

    unstable = shutil.copytree(small_run, tmp_path / "unstable", ignore=shutil.ignore_patterns("checkpoints"))
    model = hmmrnn.load_run(unstable).model
    with torch.no_grad():
        model.w_rec *= 4.0 / torch.linalg.eigvals(model.w_rec).abs().max()
    save_tensors(unstable / WEIGHTS_FILE, weights_of(model))
    lines = []
    page = reproduce([small_run, unstable], tmp_path / "rep", quick=True, progress=False, say=lines.append)
    text = page.read_text()
    assert "### unstable" in text and "The analyses stopped: the noisy orbit diverges" in text
    assert "### small" in text and "| single fixed point | small |" in text
    assert any("unstable: analyses stopped" in line for line in lines)
    # the page alone, rebuilt from the analyses on disk, says the same
    again = reproduce([small_run, unstable], tmp_path / "rep", page_only=True, progress=False, say=lines.append)
    assert again.read_text().split("\n", 3)[3] == text.split("\n", 3)[3]  # all but the timing line
    # with a sweep folder the page gains the grid table, its trends and its figures
    grid = _write_grid(tmp_path / "grid", {("linear2", 50, 1): 0.5, ("linear2", 50, 10): 0.02})
    with_grid = reproduce([small_run, unstable], tmp_path / "rep", page_only=True, grid=grid, progress=False,
                          say=lines.append).read_text()
    assert "## The linear-chain grid" in with_grid and "| linear2 | 50 | 10 | 0 | done | yes | 40 | 2.020 |" in with_grid
    assert "| d = 1 worst | linear2 H=50: yes | reproduced |" in with_grid
    assert (tmp_path / "rep" / "figures" / "grid_distance_linear2.png").is_file()
    with pytest.raises(hmmrnn.RunDirError, match="not a finished sweep"):
        reproduce([small_run], tmp_path / "rep", page_only=True, grid=tmp_path, progress=False)


def _write_grid(folder: Path, excess: dict[tuple[str, int, int], float]) -> Path:
    """A sweep folder holding only a summary (baseline 2.0, distance 2.0 + excess per cell) and a figure."""
    import csv

    from hmmrnn.sweep import _SUMMARY_COLUMNS, SUMMARY_FILE

    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "distance_linear2.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with (folder / SUMMARY_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_SUMMARY_COLUMNS)
        writer.writeheader()
        for (preset, hidden, d), extra in excess.items():
            writer.writerow({"cell": f"{preset}-h{hidden}-d{d}-s0", "preset": preset, "hidden": hidden, "noise_dim": d,
                             "seed": 0, "status": "done", "verdict": "yes", "epochs": 40, "n": 5000, "seq_len": 100,
                             "matched_distance": 2.0 + extra, "baseline_distance": 2.0,
                             "transition_max_abs_diff": 0.01, "loglik_gap": 0.001})
    return folder


def test_grid_trends_follow_their_stated_rules(tmp_path):
    from hmmrnn.reproduce import _grid_trends, _read_grid

    excess = {("linear2", 50, 1): 0.5, ("linear2", 150, 1): 0.3, ("linear2", 50, 10): 0.02,
              ("linear2", 150, 10): -0.01, ("linear3", 50, 1): 0.05, ("linear3", 50, 10): 0.2}
    rows = _read_grid(_write_grid(tmp_path / "grid", excess))
    assert len(rows) == 6 and rows[0]["matched_distance"] == pytest.approx(2.5)
    trends = {row[0]: row[1:] for row in _grid_trends(rows)}
    # d = 1 is the worst for linear2 at both H, not for linear3 (0.05 < 0.2)
    assert trends["d = 1 worst"] == ["linear2 H=50: yes, linear2 H=150: yes, linear3 H=50: no", "partly"]
    # d >= 10: 2 of 3 cells within 0.1 of the baseline
    assert trends["d ≥ 10 at the baseline"][0].startswith("2 of 3 cells") and trends["d ≥ 10 at the baseline"][1] == "partly"
    # across H only linear2 d=10 has two cells: spread 0.03
    assert trends["H matters little"] == ["linear2 d=10: 0.030", "reproduced"]
    only_good = {k: v for k, v in excess.items() if k[0] == "linear2"}
    good = {row[0]: row[-1] for row in _grid_trends(_read_grid(_write_grid(tmp_path / "good", only_good)))}
    assert set(good.values()) == {"reproduced"}
