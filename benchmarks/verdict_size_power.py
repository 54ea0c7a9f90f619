"""Size and power of the verdict: how often it says "yes" to sequences from the true HMM and from HMMs
whose stay probabilities are shifted.

    python benchmarks/verdict_size_power.py [--presets linear2,...] [--reps 20] [--out benchmarks/runs/verdict]
        [--full-reps 5] [--parts compare,judge,distance] [--distance-reps 5] [--distance-n 2000,5000]
        [--distance-lengths 30,100]

Part 1 (``compare``, one window): for each preset, T in {30, 100}, N in {2000, 5000} and shift in
{0, ±0.02, ±0.05, ±0.1}, ``--reps`` candidate sets are drawn from the shifted HMM and judged against
the true one (evaluation seed = replicate); the rates of yes / no / inconclusive are recorded.
Without the matched distance (its O(N²) cost would multiply the run time by ~20; it is one-sided and
the least sensitive check); z is Bonferroni over the 14 tests of one window. Shifts that would push
a stay probability outside [0, 1] are skipped (n/a).

Part 2 (``judge``, every horizon): the full verdict (training window, long run, stationary windows of
T, 100, 300) on :class:`~hmmrnn.evaluation.HMMCandidate` for the true HMM at N = 2000 and the ±0.05
shifts at N = 5000, ``--full-reps`` replicates each, without the matched distance.

Part 3 (``--parts distance``, the matched distance alone): ``compare`` with the matched distance
on candidates from the true HMM (N = 2000 and 5000) and the ±0.05 shifts (N = 2000), T in
``--distance-lengths`` (30 and 100; the verdict's longest window is 300); the rates
record the status of the matched-distance check (pass / fail / undecided), not the verdict.

Results are appended to ``<out>/size_power.jsonl`` (one line per cell; cells already there are
skipped, so the script resumes), and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hmmrnn import HMM, HMMSpecError, compare, judge, preset
from hmmrnn.evaluation import HMMCandidate

SHIFTS = (0.0, -0.02, 0.02, -0.05, 0.05, -0.1, 0.1)


def shifted(hmm: HMM, shift: float) -> HMM | None:
    """:meth:`HMM.with_stay_shift`, or None where a stay probability would leave [0, 1] (n/a)."""
    try:
        return hmm.with_stay_shift(shift)
    except HMMSpecError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="linear2,linear3,linear4,linear5,fully3,cyclic4")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--full-reps", type=int, default=5)
    parser.add_argument("--parts", default="compare,judge", help="which of compare, judge, distance to run")
    parser.add_argument("--distance-reps", type=int, default=5, help="replicates of part 3")
    parser.add_argument("--distance-n", default="2000,5000", help="part 3's N (the shifts at 2000 only)")
    parser.add_argument("--distance-lengths", default="30,100", help="part 3's window lengths T")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/runs/verdict")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "size_power.jsonl"
    done = {json.dumps(r["cell"]) for r in map(json.loads, log.read_text().splitlines())} if log.exists() else set()

    def record(cell: dict, verdicts: list[str], seconds: float) -> None:
        """``verdicts``: yes / no / inconclusive, or (part 3) pass / fail / undecided, stored under the
        same three names."""
        verdicts = [{"pass": "yes", "fail": "no", "undecided": "inconclusive"}.get(v, v) for v in verdicts]
        row = {"cell": cell, "yes": verdicts.count("yes") / len(verdicts), "no": verdicts.count("no") / len(verdicts),
               "inconclusive": verdicts.count("inconclusive") / len(verdicts), "reps": len(verdicts),
               "seconds": round(seconds, 1)}
        with log.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    parts = set(args.parts.split(","))
    for name in args.presets.split(","):
        truth = preset(name).hmm
        for length in (30, 100) if "compare" in parts else ():
            for n in (2000, 5000):
                for shift in SHIFTS:
                    cell = {"part": "compare", "preset": name, "T": length, "N": n, "shift": shift}
                    source = shifted(truth, shift)
                    if json.dumps(cell) in done or source is None:
                        continue
                    started = time.perf_counter()
                    verdicts = [compare(truth, source.sample(n, length, seed=1000 + rep)[0], seed=rep, refit=False,
                                        matching=False).verdict for rep in range(args.reps)]
                    record(cell, verdicts, time.perf_counter() - started)
        seq_len = preset(name).seq_len
        for n, shift in ((2000, 0.0), (5000, -0.05), (5000, 0.05)) if "judge" in parts else ():
            cell = {"part": "judge", "preset": name, "T": seq_len, "N": n, "shift": shift}
            source = shifted(truth, shift)
            if json.dumps(cell) in done or source is None:
                continue
            started = time.perf_counter()
            verdicts = [judge(HMMCandidate(source), truth, n=n, seq_len=seq_len, seed=rep, matching=False,
                              refit=False).verdict for rep in range(args.full_reps)]
            record(cell, verdicts, time.perf_counter() - started)
        for length in map(int, args.distance_lengths.split(",")) if "distance" in parts else ():
            for n in map(int, args.distance_n.split(",")):
                for shift in (0.0, -0.05, 0.05) if n == 2000 else (0.0,):
                    cell = {"part": "distance", "preset": name, "T": length, "N": n, "shift": shift}
                    source = shifted(truth, shift)
                    if json.dumps(cell) in done or source is None:
                        continue
                    started = time.perf_counter()
                    statuses = [next(c.status for c in compare(truth, source.sample(n, length, seed=2000 + rep)[0],
                                                               seed=rep, refit=False).checks
                                     if c.name.startswith("matched distance")) for rep in range(args.distance_reps)]
                    record(cell, statuses, time.perf_counter() - started)
    table(log)


def table(log: Path) -> None:
    """Markdown: rate of "yes" per preset and setting, one column per shift."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    print("| part | preset | T | N | " + " | ".join(f"{s:+.2f}" for s in SHIFTS) + " |")
    print("|---" * (4 + len(SHIFTS)) + "|")
    keys = sorted({(r["cell"]["part"], r["cell"]["preset"], r["cell"]["T"], r["cell"]["N"]) for r in rows},
                  key=lambda k: (["compare", "judge", "distance"].index(k[0]), k[1], k[2], k[3]))
    for key in keys:
        cells = {r["cell"]["shift"]: r for r in rows
                 if (r["cell"]["part"], r["cell"]["preset"], r["cell"]["T"], r["cell"]["N"]) == key}
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | "
              + " | ".join(f"{cells[s]['yes']:.2f}" if s in cells else "" for s in SHIFTS) + " |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
