"""Is the RNN statistically indistinguishable from its HMM? (SPEC §6 and beyond)

:func:`compare` judges any (N, T) set of symbol sequences against an HMM; :func:`evaluate` first
generates the sequences from a trained run. Every statistic comes with its HMM-vs-HMM baseline
(independent HMM samples of the same size), so sampling noise is visible next to the model's error.

HMM reference statistics (frequencies, transition matrix, volatility, likelihood, dwell times,
n-grams) use three independent HMM sets of N sequences together; the baselines compare two of
them. The verdict ``emulates`` requires every check:

* output transition matrix: max |Δ| ≤ 0.03, each entry allowed at least ``sampling_z`` standard
  errors of its row's count (the rare symbol's row rests on few transitions);
* output frequencies: max |Δ| of the mean frequencies ≤ 0.03;
* volatility: |mean changes RNN − HMM| / HMM ≤ 10 %;
* matched distance (HMM vs RNN) ≤ baseline (HMM vs HMM) + 0.1;
* log-likelihood under the true HMM: |per-step mean RNN − HMM| ≤ 0.02 nats.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M
from .hmm import HMM

__all__ = ["Thresholds", "Check", "Evaluation", "compare", "evaluate", "refit_hmm", "METRICS_FILE"]

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Thresholds:
    """Limits of the verdict; every one is printed with the result and can be changed."""

    transition_max_abs: float = 0.03
    frequency_max_abs: float = 0.03
    volatility_rel: float = 0.10
    distance_margin: float = 0.1
    loglik_gap: float = 0.02
    sampling_z: float = 3.0


@dataclass
class Check:
    """One verdict line: the measured value, its limit, and whether it passed."""

    name: str
    value: float
    limit: float
    passed: bool
    detail: str = ""


@dataclass
class Evaluation:
    """Metrics (a JSON-ready dict), the verdict checks, and ``emulates``."""

    metrics: dict[str, Any]
    checks: list[Check]
    thresholds: Thresholds
    emulates: bool = field(init=False)

    def __post_init__(self) -> None:
        self.emulates = all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"emulates": self.emulates, "checks": [asdict(c) for c in self.checks],
                "thresholds": asdict(self.thresholds), **self.metrics}

    def save(self, path: str | Path) -> None:
        from .runs import json_ready, write_json

        write_json(Path(path), json_ready(self.to_dict()))

    def summary(self) -> str:
        """A readable table of the key numbers and the verdict."""
        m = self.metrics
        lines = [f"N = {m['n']} sequences x T = {m['seq_len']}, seed {m['seed']}",
                 f"{'statistic':<34}{'HMM':>12}{'candidate':>12}{'HMM vs HMM':>14}"]

        def row(label: str, hmm: str, cand: str, base: str = "") -> None:
            lines.append(f"{label:<34}{hmm:>12}{cand:>12}{base:>14}")

        f = m["frequencies"]
        for k in range(len(f["hmm_mean"])):
            row(f"frequency of symbol {k}", f"{f['hmm_mean'][k]:.4f}", f"{f['candidate_mean'][k]:.4f}")
        v = m["volatility"]
        row("changes per sequence (mean)", f"{v['hmm_mean']:.2f}", f"{v['candidate_mean']:.2f}",
            f"{v['baseline_mean']:.2f}")
        d = m.get("matched_distance")
        if d:
            row("matched distance (mean)", "", f"{d['candidate']['mean']:.4f}", f"{d['baseline']['mean']:.4f}")
        ll = m["log_likelihood"]
        row("log-likelihood per step", f"{ll['hmm_per_step']:.4f}", f"{ll['candidate_per_step']:.4f}",
            f"{ll['baseline_per_step']:.4f}")
        for n, ng in m["ngrams"].items():
            row(f"{n}-gram total variation", "", f"{ng['tv']:.4f}", f"{ng['baseline_tv']:.4f}")
        for k, dw in m["dwell_times"]["per_symbol"].items():
            row(f"dwell time of symbol {k} (mean)", f"{dw['hmm_mean']:.2f}", _fmt(dw["candidate_mean"], 2),
                "")
        t = m["transition_matrix"]
        lines.append("output transition matrix P(o_t | o_t-1): HMM | candidate | difference")
        for k in range(len(t["hmm"])):
            lines.append("  " + " ".join(f"{x:6.3f}" for x in t["hmm"][k]) + "  | "
                         + " ".join(_fmt(x, 3, 6) for x in t["candidate"][k]) + "  | "
                         + " ".join(_fmt(x, 3, 6) for x in t["difference"][k]))
        if "refit" in m:
            r = m["refit"]
            lines.append(f"EM re-fit ({r['n_states']} states, best of {r['restarts']} restarts): max |error| "
                         f"transition {r['transition_max_abs_error']:.3f}, emission {r['emission_max_abs_error']:.3f}")
        lines.append("verdict checks:")
        for c in self.checks:
            lines.append(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.value:.4f} (limit {c.limit:.4f})"
                         + (f" {c.detail}" if c.detail else ""))
        lines.append(f"emulates: {'yes' if self.emulates else 'no'}")
        return "\n".join(lines)


def _fmt(x: float | None, digits: int, width: int = 0) -> str:
    text = "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"
    return text.rjust(width)


# --------------------------------------------------------------------------- EM re-fit


def refit_hmm(obs: np.ndarray, n_states: int, n_symbols: int, *, restarts: int = 3, seed: int = 0,
              n_iter: int = 200, max_sequences: int = 2000) -> tuple[HMM, float]:
    """Fit an ``n_states`` categorical HMM to symbol sequences by EM (:meth:`HMM.fit`).

    At most ``max_sequences`` sequences are used (EM cost is linear in the data). Our batched EM
    reproduces hmmlearn's ``CategoricalHMM`` update to 1e-15 (tested) at a fraction of its time.

    Returns
    -------
    The best of ``restarts`` seeded fits and its total log-likelihood.
    """
    return HMM.fit(np.asarray(obs)[:max_sequences], n_states, n_symbols, seed=seed, restarts=restarts,
                   n_iter=n_iter)


def align_states(transition: np.ndarray, emission: np.ndarray, true: HMM) -> np.ndarray:
    """Permutation of fitted states that best matches the true HMM (least summed absolute error of
    both matrices); exhaustive for M ≤ 7, otherwise by the Hungarian method on emission rows."""
    m = true.n_states
    if m <= 7:
        def error(perm: tuple[int, ...]) -> float:
            p = list(perm)
            return float(np.abs(transition[np.ix_(p, p)] - true.transition).sum()
                         + np.abs(emission[p] - true.emission).sum())

        return np.array(min(itertools.permutations(range(m)), key=error))
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(emission[:, None, :] - true.emission[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(m, dtype=int)
    perm[cols] = rows
    return perm


# --------------------------------------------------------------------------- comparison


def compare(hmm: HMM, candidate: np.ndarray, *, seed: int = 0, thresholds: Thresholds | None = None,
            matching: bool = True, refit: bool = True, refit_restarts: int = 3,
            info: dict[str, Any] | None = None) -> Evaluation:
    """Judge candidate sequences against ``hmm``.

    Parameters
    ----------
    hmm : the true HMM.
    candidate : (N, T) int symbols (an RNN's sampled outputs, or anything else).
    seed : seed of the HMM reference samples and of the EM restarts.
    matching : compute the matched Euclidean distance (the slowest metric: O(N²)).
    refit : fit an M-state HMM to the candidate with EM and report its matrices.
    info : extra entries stored in the metrics (e.g. how the candidate was generated).
    """
    thresholds = thresholds or Thresholds()
    candidate = np.asarray(candidate)
    n, length = candidate.shape
    k = hmm.n_outputs
    if length < 2:
        raise ValueError("sequences need at least 2 steps to measure transitions")
    seeds = np.random.SeedSequence(seed).spawn(3)
    hmm_sets = [hmm.sample(n, length, seed=np.random.default_rng(s))[0] for s in seeds]
    reference = np.concatenate(hmm_sets)
    metrics: dict[str, Any] = {"n": n, "seq_len": length, "seed": seed, "hmm": hmm.name, **(info or {})}

    # output frequencies, mean +- std over sequences
    freq_ref = M.output_frequencies(reference, k)
    freq_cand = M.output_frequencies(candidate, k)
    freq_diff = freq_cand.mean(0) - freq_ref.mean(0)
    metrics["frequencies"] = {
        "hmm_mean": freq_ref.mean(0), "hmm_std": freq_ref.std(0),
        "candidate_mean": freq_cand.mean(0), "candidate_std": freq_cand.std(0),
        "baseline_max_abs_diff": float(np.abs(M.output_frequencies(hmm_sets[0], k).mean(0)
                                              - M.output_frequencies(hmm_sets[1], k).mean(0)).max()),
        "stationary": hmm.output_frequencies(), "max_abs_diff": float(np.abs(freq_diff).max())}

    # volatility: symbol changes per sequence
    vol_ref, vol_cand, vol_base = M.volatility(reference), M.volatility(candidate), M.volatility(hmm_sets[1])
    metrics["volatility"] = {
        "hmm_histogram": np.bincount(vol_ref, minlength=length) / len(vol_ref),
        "candidate_histogram": np.bincount(vol_cand, minlength=length) / len(vol_cand),
        "hmm_mean": vol_ref.mean(), "hmm_std": vol_ref.std(),
        "candidate_mean": vol_cand.mean(), "candidate_std": vol_cand.std(),
        "baseline_mean": vol_base.mean(), "baseline_std": vol_base.std(),
        "relative_diff": float(abs(vol_cand.mean() - vol_ref.mean()) / max(vol_ref.mean(), 1e-12))}

    # output transition matrices, with a sampling allowance per entry
    t_ref, t_cand = M.transition_matrix(reference, k), M.transition_matrix(candidate, k)
    t_diff = t_cand - t_ref
    row_counts = M.transition_counts(candidate, k).sum(axis=1, keepdims=True)
    ref_counts = M.transition_counts(reference, k).sum(axis=1, keepdims=True)
    p = np.nan_to_num(t_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        stderr = np.sqrt(p * (1 - p) * (1 / row_counts + 1 / ref_counts))
    allowed = np.maximum(thresholds.transition_max_abs,
                         np.where(np.isfinite(stderr), thresholds.sampling_z * stderr, np.inf))
    defined = np.isfinite(t_diff)
    metrics["transition_matrix"] = {
        "hmm": t_ref, "candidate": t_cand, "difference": t_diff, "squared_difference": t_diff**2,
        "analytic": hmm.output_transition_matrix(), "candidate_row_counts": row_counts[:, 0],
        "baseline_max_abs_diff": float(np.nanmax(np.abs(M.transition_matrix(hmm_sets[0], k)
                                                        - M.transition_matrix(hmm_sets[1], k)))),
        "max_abs_diff": float(np.abs(t_diff[defined]).max()) if defined.any() else float("nan"),
        "undefined_rows": [int(r) for r in np.flatnonzero(~np.isfinite(t_cand).all(axis=1))]}

    # log-likelihood under the true HMM, nats per step
    ll_sets = [hmm.log_likelihood(x) / length for x in hmm_sets]
    ll_ref = np.concatenate(ll_sets).mean()
    ll_cand = hmm.log_likelihood(candidate) / length
    metrics["log_likelihood"] = {
        "hmm_per_step": ll_ref, "candidate_per_step": ll_cand.mean(), "baseline_per_step": ll_sets[1].mean(),
        "gap": float(ll_ref - ll_cand.mean()), "baseline_gap": float(ll_sets[0].mean() - ll_sets[1].mean()),
        "candidate_impossible_sequences": int(np.isinf(ll_cand).sum())}

    # dwell times per symbol
    dwell = {name: M.dwell_distribution(x, k) for name, x in
             (("hmm", reference), ("candidate", candidate), ("baseline", hmm_sets[1]))}
    runs = {name: M.dwell_times(x) for name, x in (("hmm", reference), ("candidate", candidate))}
    metrics["dwell_times"] = {
        "per_symbol": {s: {"hmm_mean": _mean_of(*runs["hmm"], s), "candidate_mean": _mean_of(*runs["candidate"], s),
                           "tv": M.total_variation(dwell["hmm"][s], dwell["candidate"][s]),
                           "baseline_tv": M.total_variation(dwell["hmm"][s], dwell["baseline"][s])}
                       for s in range(k)},
        "hmm": dwell["hmm"], "candidate": dwell["candidate"]}

    # n-grams up to 3
    metrics["ngrams"] = {}
    for order in range(1, min(3, length) + 1):
        p_ref, p_cand, p_base = (M.ngram_distribution(x, k, order) for x in (reference, candidate, hmm_sets[1]))
        metrics["ngrams"][order] = {"tv": M.total_variation(p_ref, p_cand), "baseline_tv": M.total_variation(p_ref, p_base)}

    # matched Euclidean distance through the entropic OT plan (reference semantics)
    if matching:
        model = M.matched_distances(hmm_sets[0], candidate, k)
        base = _baseline_matching(hmm, hmm_sets, seed)
        metrics["matched_distance"] = {"candidate": model.summary(), "baseline": base.summary(),
                                       # distances are sqrt(2 m) for m mismatching steps: store P(m)
                                       "candidate_mismatch_histogram": _mismatch_histogram(model.distances, length),
                                       "baseline_mismatch_histogram": _mismatch_histogram(base.distances, length)}

    if refit:
        fitted, score = refit_hmm(candidate, hmm.n_states, k, restarts=refit_restarts, seed=seed)
        perm = align_states(fitted.transition, fitted.emission, hmm)
        trans, emis = fitted.transition[np.ix_(perm, perm)], fitted.emission[perm]
        metrics["refit"] = {"n_states": hmm.n_states, "restarts": refit_restarts, "log_likelihood": score,
                            "start": fitted.start[perm], "transition": trans, "emission": emis,
                            "true_transition": hmm.transition, "true_emission": hmm.emission,
                            "transition_max_abs_error": float(np.abs(trans - hmm.transition).max()),
                            "emission_max_abs_error": float(np.abs(emis - hmm.emission).max())}

    checks = _verdict(metrics, thresholds, np.where(defined, np.abs(t_diff) <= allowed, True), allowed)
    return Evaluation(metrics, checks, thresholds)


_BASELINES: dict[tuple, M.MatchingResult] = {}


def _baseline_matching(hmm: HMM, hmm_sets: list[np.ndarray], seed: int) -> M.MatchingResult:
    """HMM-vs-HMM matched distances; cached, since the same HMM, N, T and seed give the same sets
    (periodic verdicts during training compare fresh RNN samples with one fixed HMM reference)."""
    key = (hmm.start.tobytes(), hmm.transition.tobytes(), hmm.emission.tobytes(), hmm_sets[1].shape, seed)
    if key not in _BASELINES:
        if len(_BASELINES) >= 8:
            _BASELINES.pop(next(iter(_BASELINES)))
        _BASELINES[key] = M.matched_distances(hmm_sets[1], hmm_sets[2], hmm.n_outputs)
    return _BASELINES[key]


def _mean_of(lengths: np.ndarray, symbols: np.ndarray, symbol: int) -> float:
    chosen = lengths[symbols == symbol]
    return float(chosen.mean()) if chosen.size else float("nan")


def _mismatch_histogram(distances: np.ndarray, length: int) -> np.ndarray:
    mismatches = np.rint(distances**2 / 2).astype(int)
    return np.bincount(mismatches, minlength=length + 1) / len(mismatches)


def _verdict(metrics: dict, th: Thresholds, transition_ok: np.ndarray, allowed: np.ndarray) -> list[Check]:
    t = metrics["transition_matrix"]
    worst = np.unravel_index(np.nanargmax(np.abs(t["difference"]) - allowed), allowed.shape)
    checks = [Check("output transition matrix max |diff|", t["max_abs_diff"], th.transition_max_abs,
                    bool(transition_ok.all()) and not t["undefined_rows"],
                    f"(tightest entry {worst[0]}->{worst[1]} allowed {allowed[worst]:.4f} with "
                    f"{th.sampling_z:g} standard errors"
                    + (f"; symbols never followed: {t['undefined_rows']})" if t["undefined_rows"] else ")")),
              Check("output frequencies max |diff|", metrics["frequencies"]["max_abs_diff"], th.frequency_max_abs,
                    metrics["frequencies"]["max_abs_diff"] <= th.frequency_max_abs),
              Check("volatility relative diff", metrics["volatility"]["relative_diff"], th.volatility_rel,
                    metrics["volatility"]["relative_diff"] <= th.volatility_rel)]
    if "matched_distance" in metrics:
        d = metrics["matched_distance"]
        limit = d["baseline"]["mean"] + th.distance_margin
        checks.append(Check("matched distance", d["candidate"]["mean"], limit, d["candidate"]["mean"] <= limit,
                            f"(HMM-vs-HMM baseline {d['baseline']['mean']:.4f} + {th.distance_margin:g})"))
    gap = metrics["log_likelihood"]["gap"]
    checks.append(Check("log-likelihood gap (nats/step)", abs(gap) if np.isfinite(gap) else float("inf"),
                        th.loglik_gap, bool(np.isfinite(gap) and abs(gap) <= th.loglik_gap)))
    return checks


# --------------------------------------------------------------------------- runs


def evaluate(run: Any, *, n: int = 5000, seq_len: int | None = None, seed: int = 0,
             thresholds: Thresholds | None = None, semantics: str = "training", matching: bool = True,
             refit: bool = True, save: bool = True, figures: bool = True) -> Evaluation:
    """Generate ``n`` sequences from a trained run and :func:`compare` them with its HMM.

    Parameters
    ----------
    run : a :class:`~hmmrnn.runs.Run` or a run folder.
    seq_len : T (default: the run's training T).
    seed : seeds the RNN's noise and, through :func:`compare`, the HMM samples.
    semantics : ``"training"`` (outputs from h_1..h_T) or ``"reference"`` (the authors' generator).
    save, figures : write ``metrics.json`` and ``figures/evaluation_*`` into the run folder.
    """
    from .runs import load_run

    if isinstance(run, (str, Path)):
        run = load_run(run)
    length = seq_len or run.config.train.seq_len
    if n < 2:
        raise ValueError(f"need at least 2 sequences, got n={n}")
    candidate = run.model.sample(n, length, seed=seed, semantics=semantics)
    result = compare(run.hmm, candidate, seed=seed, thresholds=thresholds, matching=matching, refit=refit,
                     info={"semantics": semantics, "weights": str(run.weights_file)})
    if save:
        result.save(Path(run.path) / METRICS_FILE)
    if figures:
        from .plots import save_evaluation_figures

        save_evaluation_figures(result, Path(run.path) / "figures")
    return result
