"""Wall time and epochs until `emulates: yes` (N = 5000, the preset's T), per preset.

    python benchmarks/time_to_emulation.py --presets linear2,linear3 [--recipe fast] [--max-minutes 20]
        [--seed 0] [--threads 2] [--device cpu] [--out benchmarks/runs]
    python benchmarks/time_to_emulation.py --recheck RUN [--threads 2]

Trains each preset with the recipe (default ``fast``: verdict every 10 epochs, early stop; with
``--recipe paper`` the verdict every 10 epochs and early stopping are switched on as well; ``--set
eval_every=N`` and any other ``--set KEY=VALUE`` win), stopping
at the first periodic verdict that says "emulates: yes" or at ``--max-minutes`` of wall time
(SIGALRM; SIGTERM from ``timeout`` is handled the same way). Then re-checks the stored model with
:func:`hmmrnn.evaluate` (every horizon, default thresholds, no EM re-fit) at N = 5000 for seeds 0-4,
at N = 2000, and with training windows of 100 and 300 steps, printing each as a JSON line once it is
judged. Prints one JSON line per preset and appends it to ``<out>/time_to_emulation.jsonl``. With ``--recheck RUN`` it trains
nothing and prints the re-checks of a finished run folder, one JSON line each. Peak memory is the process's max
RSS so far (run one preset per process for its own figure).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import torch

import hmmrnn
from hmmrnn.runs import read_history


_clock = {"up": False}


def _time_up(signum, frame):
    """Stop the training the way Ctrl-C does, so that it writes an ``interrupted`` status and stays
    resumable (``hmmrnn train --resume``)."""
    _clock["up"] = True
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="linear2,linear3")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--max-minutes", type=float, default=45.0)
    parser.add_argument("--max-epochs", type=int, default=None, help="default: the preset's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra training setting, e.g. --set lr_half_life=100 or --set bigram_on=probabilities")
    parser.add_argument("--tag", default="", help="suffix of the run folder names")
    parser.add_argument("--recheck", default=None, metavar="RUN",
                        help="train nothing: only the re-checks of this finished run folder (its model.safetensors)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.recheck:
        _printed_final_checks(hmmrnn.load_run(args.recheck))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {key: _number_or_text(value) for key, value in (item.split("=", 1) for item in args.set)}
    seed = settings.pop("seed", args.seed)
    signal.signal(signal.SIGALRM, _time_up)
    signal.signal(signal.SIGTERM, _time_up)
    for name in args.presets.split(","):
        run_dir = out / f"{name}-{args.recipe}-s{seed}{args.tag}"
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.max_minutes * 60)
        _clock["up"] = False
        try:
            hmmrnn.train(name, recipe=args.recipe, out=run_dir, force=True, seed=seed, early_stop=True,
                         evaluate=False, progress=False, device=args.device,
                         **{"eval_every": 10, **({"epochs": args.max_epochs} if args.max_epochs else {}), **settings})
        except (KeyboardInterrupt, hmmrnn.errors.Interrupted):
            if not _clock["up"]:
                raise  # a real Ctrl-C
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        timed_out = _clock["up"]
        trained = time.perf_counter() - start
        history = read_history(run_dir / "history.csv")
        verdicts = [row for row in history if row.get("emulates") is not None]
        first = next((row["epoch"] for row in verdicts if row["emulates"]), None)
        record = {"preset": name, "recipe": args.recipe, "settings": settings, "seed": seed, "device": args.device,
                  "threads": torch.get_num_threads(), "emulated": first is not None, "emulating_epoch": first,
                  "epochs_run": history[-1]["epoch"] if history else 0, "timed_out": timed_out,
                  "train_minutes": round(trained / 60, 2),
                  "seconds_per_epoch": round(sum(r["seconds"] for r in history) / max(len(history), 1), 2),
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)}
        if verdicts:
            last = verdicts[-1]
            record["last_verdict"] = {k: last.get(k) for k in ("epoch", "emulates", "transition_max_abs_diff", "loglik_gap",
                                                               "matched_distance", "growth", "long_loglik_gap")}
        if first is not None:
            record["final_checks"] = _printed_final_checks(hmmrnn.load_run(run_dir))
        print(json.dumps(record), flush=True)
        with open(out / "time_to_emulation.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _printed_final_checks(run: hmmrnn.Run) -> list[dict]:
    """``_final_checks``, each printed as a JSON line the moment it is judged (the eight take an hour
    or more beside other work, and the timing run's record is printed only after all of them)."""
    checks = []
    for check in _final_checks(run):
        print(json.dumps(check), flush=True)
        checks.append(check)
    return checks


def _final_checks(run: hmmrnn.Run) -> Iterator[dict]:
    """The issue's "done when": the verdict at N = 5000 for seeds 0-4, at N = 2000, and with training
    windows of 100 and 300 steps (no EM re-fit), each with the checks it did not pass; one at a time,
    as each is judged (a few minutes each on one thread)."""
    for n, seed, seq_len in [(5000, 0, None), (5000, 1, None), (5000, 2, None), (5000, 3, None),
                             (5000, 4, None), (2000, 0, None), (5000, 0, 100), (5000, 0, 300)]:
        final = hmmrnn.evaluate(run, n=n, seed=seed, seq_len=seq_len, refit=False, save=False, figures=False)
        yield {
            "n": n, "seed": seed, "seq_len": seq_len or run.config.train.seq_len, "verdict": final.verdict,
            "not_passed": [f"{c.window}: {c.name} {c.value:.4f} (allowed {c.limit:.4f})"
                           for c in final.checks if c.status != "pass"],
            "loglik_gaps": {w.name: round(w.metrics["log_likelihood"]["gap"], 4) for w in final.windows}}


def _number_or_text(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


if __name__ == "__main__":
    main()
