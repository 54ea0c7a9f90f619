"""Fill the packaged model zoo from time-to-emulation runs (the maintainers' step).

    python benchmarks/time_to_emulation.py --presets linear2,linear3,... --threads 2 --out benchmarks/runs/tte2
    python benchmarks/build_zoo.py --runs benchmarks/runs/tte2

For each preset's run folder ``<runs>/<preset>-fast-s0`` (default recipe, H = 150, d = 100, seed 0,
stopped at its first confirmed verdict): evaluate it as ``hmmrnn evaluate`` does (N = 5000, the
preset's T, seed 0, writing metrics.json) and copy it into ``src/hmmrnn/zoo_models/<preset>`` if and
only if that evaluation says ``emulates: yes``.

    python benchmarks/build_zoo.py --reevaluate

re-judges the packaged models in place instead (a copy of each is evaluated as above and its
metrics.json replaces the packaged one), e.g. after a change to the generator or the verdict.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import hmmrnn
from hmmrnn.presets import PRESETS
from hmmrnn.zoo import ZOO_DIR, add, list_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="benchmarks/runs/tte2")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--reevaluate", action="store_true", help="re-judge the packaged models in place")
    args = parser.parse_args()
    if args.reevaluate:
        reevaluate([n for n in args.presets.split(",") if n in {e["name"] for e in list_models()}])
        return
    for name in args.presets.split(","):
        run_dir = Path(args.runs) / f"{name}-fast-s0"
        if not run_dir.is_dir():
            print(f"{name}: no run folder {run_dir}")
            continue
        result = hmmrnn.evaluate(run_dir, n=5000, seed=0)
        config = hmmrnn.load_run(run_dir).config
        if (config.model.hidden, config.model.noise_dim, config.train.recipe) != (150, 100, "fast"):
            print(f"{name}: not a default-recipe H = 150, d = 100 run; skipped")
            continue
        if result.emulates:
            print(f"{name}: emulates: yes -> {add(run_dir, name)}")
        else:
            print(f"{name}: emulates: no; not added\n{result.summary()}")


def reevaluate(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            copy = shutil.copytree(ZOO_DIR / name, Path(tmp) / name)
            result = hmmrnn.evaluate(copy, n=5000, seed=0, figures=False)
            shutil.copy2(copy / "metrics.json", ZOO_DIR / name / "metrics.json")
            print(f"{name}: {result.verdict}; not passed: {[f'{c.window}: {c.name}' for c in result.checks if c.status != 'pass']}")


if __name__ == "__main__":
    main()
