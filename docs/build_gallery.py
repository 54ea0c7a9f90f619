"""Build docs/gallery.md and docs/gallery/*.png from analysed run folders: each analysis from the
first folder where it found something (the zoo's linear3 has no kick units, its linear2 has).

    hmmrnn zoo get linear3 --out /tmp/gallery && hmmrnn analyze /tmp/gallery
    hmmrnn zoo get linear2 --out /tmp/gallery2
    hmmrnn analyze /tmp/gallery2 --only kick_neurons,connectivity,ablation,gain_sweep,transition_points,noise_sensitivity
    python docs/build_gallery.py /tmp/gallery /tmp/gallery2
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hmmrnn.analysis import ANALYSES
from hmmrnn.runs import ANALYSIS_DIR, load_run, read_json

DOCS = Path(__file__).parent


def _found(result: dict) -> bool:
    """Whether a stored result found its object (kick units with no units, an ablation with nothing to
    silence, count as nothing)."""
    if "nothing_found" in result:
        return False
    if result.get("analysis") == "kick_neurons" and not any(d["units"] for d in result["directions"]):
        return False
    return result.get("per_direction", [None]) != []


def build(run_dirs: list[Path]) -> None:
    runs = {run_dir: load_run(run_dir) for run_dir in run_dirs}
    (DOCS / "gallery").mkdir(exist_ok=True)
    models = "; ".join(f"`{r.config.preset}` (H = {r.config.model.hidden}, d = {r.config.model.noise_dim}, "
                       f"{len(r.history)} epochs of the `{r.config.train.recipe}` recipe)" for r in runs.values())
    lines = ["# Gallery of analyses", "",
             f"Every figure `hmmrnn analyze` draws, on packaged models: {models}; default settings, seed 0. "
             "Each analysis is shown on the first of these models where it found something. Made by "
             "`docs/build_gallery.py` (its docstring has the commands); what each analysis computes is in "
             "[the method](method.md), §5.", ""]
    for name, entry in ANALYSES.items():
        found = [d for d in run_dirs if (d / ANALYSIS_DIR / f"{name}.json").exists()]
        found = [d for d in found if _found(read_json(d / ANALYSIS_DIR / f"{name}.json"))] or found
        lines += [f"## {name}", "", entry.reading, ""]
        if not found:
            lines += ["(not run on these models)", ""]
            continue
        source = found[0]
        result = read_json(source / ANALYSIS_DIR / f"{name}.json")
        lines += [f"On `{runs[source].config.preset}`:", "", f"> {result['summary']}", ""]
        figure = source / ANALYSIS_DIR / f"{name}.png"
        if figure.exists() and "nothing_found" not in result:
            shutil.copyfile(figure, DOCS / "gallery" / f"{name}.png")
            lines += [f"![{name}](gallery/{name}.png)", ""]
    (DOCS / "gallery.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    build([Path(a) for a in sys.argv[1:]])
