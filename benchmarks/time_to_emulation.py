"""Wall time and epochs until `emulates: yes` (N = 5000, the preset's T), per preset.

    python benchmarks/time_to_emulation.py --presets linear3 [--max-epochs 300] [--eval-every 10]
        [--seed 0] [--out benchmarks/runs]

Trains with the paper's recipe plus the periodic verdict (every ``--eval-every`` epochs, N = 5000)
and early stopping, then re-checks the stored model with `hmmrnn.evaluate` (N = 5000, seed 0,
default thresholds, no EM re-fit). Prints one line per preset and appends
a JSON line to ``<out>/time_to_emulation.jsonl``. Each preset runs in this process; peak memory
is the process's max RSS so far.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

import hmmrnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="linear2,linear3")
    parser.add_argument("--max-epochs", type=int, default=None, help="default: the preset's epochs")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.presets.split(","):
        run_dir = out / f"{name}-s{args.seed}"
        start = time.perf_counter()
        run = hmmrnn.train(name, out=run_dir, force=True, seed=args.seed, eval_every=args.eval_every,
                           early_stop=True, evaluate=False, progress=True,
                           **({"epochs": args.max_epochs} if args.max_epochs else {}))
        trained = time.perf_counter() - start
        final = hmmrnn.evaluate(run, n=5000, seed=0, refit=False)
        m = final.metrics
        record = {
            "preset": name, "seed": args.seed, "threads": torch.get_num_threads(),
            "stopped_early": bool(run.status.get("stopped_early")), "epochs": run.status["epoch"],
            "train_minutes": round(trained / 60, 2), "emulates_final_check": final.emulates,
            "transition_max_abs_diff": m["transition_matrix"]["max_abs_diff"],
            "frequency_max_abs_diff": m["frequencies"]["max_abs_diff"],
            "volatility_relative_diff": m["volatility"]["relative_diff"],
            "matched_distance": m["matched_distance"]["candidate"]["mean"],
            "baseline_distance": m["matched_distance"]["baseline"]["mean"],
            "loglik_gap": m["log_likelihood"]["gap"],
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)}
        print(json.dumps(record), flush=True)
        with open(out / "time_to_emulation.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
