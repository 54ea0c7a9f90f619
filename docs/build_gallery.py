"""Build docs/gallery.md and docs/gallery/*.png from an analysed run folder.

    hmmrnn zoo get linear3 --out /tmp/gallery && hmmrnn analyze /tmp/gallery
    python docs/build_gallery.py /tmp/gallery
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hmmrnn.analysis import ANALYSES
from hmmrnn.runs import ANALYSIS_DIR, load_run, read_json

DOCS = Path(__file__).parent


def build(run_dir: Path) -> None:
    run = load_run(run_dir)
    (DOCS / "gallery").mkdir(exist_ok=True)
    lines = ["# Gallery of analyses", "",
             f"Every figure `hmmrnn analyze` draws, on the packaged `{run.config.preset}` model (H = "
             f"{run.config.model.hidden}, d = {run.config.model.noise_dim}, {len(run.history)} epochs of the "
             f"`{run.config.train.recipe}` recipe), at the default settings and seed 0. Made by "
             "`docs/build_gallery.py` (its docstring has the commands); what each analysis computes is in "
             "[the method](method.md), §5.", ""]
    for name, entry in ANALYSES.items():
        result = read_json(run_dir / ANALYSIS_DIR / f"{name}.json")
        lines += [f"## {name}", "", entry.reading, "", f"> {result['summary']}", ""]
        figure = run_dir / ANALYSIS_DIR / f"{name}.png"
        if figure.exists():
            shutil.copyfile(figure, DOCS / "gallery" / f"{name}.png")
            lines += [f"![{name}](gallery/{name}.png)", ""]
    (DOCS / "gallery.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
