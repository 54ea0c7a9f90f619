"""Training a NoiseRNN to emulate an HMM with the Sinkhorn divergence (docs/method.md §3).

Each sequence of T one-hot outputs is a point in R^{T K}. Per batch, the loss is the debiased
Sinkhorn divergence (GeomLoss, ``p = 2``, ``blur = 0.2``, i.e. ε = 0.04 with cost ½‖x − y‖²)
between the B RNN sequences, sampled from fresh noise, and B HMM sequences:

    S_ε(α, β) = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β).

The default recipe (``fast``) adds λ Σ_ab (q_ab − p_ab)² / (q_ab + p_ab) on pooled bigram
frequencies (``hmmrnn._bigram``: the finite-batch divergence is minimised by suppressing rare
symbols), computes the verdict every 10 epochs and stops at the first "emulates: yes"; the
``paper`` recipe is docs/method.md §3 unchanged.

Adam (betas 0.9, 0.9) with global gradient-norm clipping; batches in fixed order; validation
every ``val_every`` epochs with the same loss on held-out HMM sequences; the weights with the
lowest validation loss are kept as a true copy (the reference code kept a reference to the live
weights, so it saved the last epoch).

Training is reproducible and resumable: all randomness comes from one seeded ``torch.Generator``
whose state is stored, with the weights, the optimizer and the best-so-far copy, in every
checkpoint. A run killed at any moment and resumed ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from geomloss import SamplesLoss
from tqdm.auto import tqdm

from .config import RunConfig, TrainConfig, make_config
from .errors import ConfigError, Interrupted, RunDirError, TrainingDivergedError
from ._bigram import BigramPenalty, HMMWindows
from ._calibration import CalibrationPenalty
from ._dispersion import ChangeCountPenalty, RunAgePenalty, RunPassagePenalty
from ._emission import EmissionRowPenalty
from ._likelihood import LikelihoodPenalty
from ._seeds import stream
from ._sinkhorn import OneHotSinkhornDivergence, SplitBatchDivergence
from .hmm import HMM
from .rnn import NoiseRNN
from ._pretrain import fitted_readout, pretraining_config, states_hmm
from .runs import (ATTEMPTS_FILE, CHECKPOINT_DIR, CONFIG_FILE, FIGURES_DIR, FINAL_WEIGHTS_FILE, HISTORY_FILE, PRETRAIN_DIR,
                   STATUS_FILE, WEIGHTS_FILE, Run,
                   check_memory, check_run_files, checkpoint_path, checkpoint_paths, load_config, load_run, load_tensors, run_lock,
                   model_from_weights, prepare_run_dir, read_history, read_json, save_tensors, weights_of,
                   tensor_section, write_history, write_json)

__all__ = ["train", "train_config", "resume", "sinkhorn_divergence"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: A carried state above this norm restarts from h_0 (float32 overflows near 3e38; a chain growing by
#: a factor g per step reaches that in log(3e38 / 1e6) / log(g) steps, 108 for g = 2).
MAX_CARRIED_NORM = 1e6
#: f(outputs (B, T, K), logits (B, T, K), target (B, T K), fresh (B,) bool[, hidden (B, T, H)]) -> scalar loss
Objective = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class _Batch:
    """What the objective's terms see of one population's windows: the straight-through samples
    ``outputs``, the ``logits`` and their softmax ``probabilities`` (B, T, K), and the ``hidden``
    states (B, T, H; None where the caller has none)."""

    outputs: torch.Tensor
    logits: torch.Tensor
    probabilities: torch.Tensor
    hidden: torch.Tensor | None


def _divergence(t: TrainConfig, n_outputs: int, device: torch.device) -> LossFn:
    """The batch divergence of ``t``: the Sinkhorn divergence, or its split estimate."""
    divergence = sinkhorn_divergence(t.blur, n_outputs, device)
    if t.divergence_estimator == "split":
        divergence = SplitBatchDivergence(divergence, sinkhorn_divergence(t.blur, n_outputs, device,
                                                                          cache_targets=False))
    return divergence


def sinkhorn_divergence(blur: float = 0.2, n_outputs: int = 3, device: torch.device | str = "cpu",
                        cache_targets: bool = True) -> LossFn:
    """Debiased Sinkhorn divergence (p = 2, ε = blur²) between two batches of flattened one-hot
    sequences (B, T K) and (B', T K), uniform weights: the paper's loss.

    On the CPU: ``OneHotSinkhornDivergence``, GeomLoss's algorithm computed
    for one-hot points (same value and gradient, about 9x faster per batch of 4096 on this 2-core
    machine; see BENCHMARKS.md). On a GPU: GeomLoss's ``SamplesLoss("sinkhorn", p=2, blur=blur)``
    with the dense backend, which GPUs run well; GeomLoss switches autograd on globally when it
    returns, so the wrapper restores the caller's grad mode.
    """
    if torch.device(device).type == "cpu":
        return OneHotSinkhornDivergence(n_outputs, blur, cache_targets=cache_targets)
    loss = SamplesLoss("sinkhorn", p=2, blur=blur, backend="tensorized")

    def divergence(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grad_mode = torch.is_grad_enabled()
        try:
            return loss(x, y)
        finally:
            torch.set_grad_enabled(grad_mode)

    return divergence


# --------------------------------------------------------------------------- public entry points


def train(preset: str | None = None, *, recipe: str = "fast", hmm: HMM | str | Path | None = None,
          out: str | Path | None = None, force: bool = False, progress: bool = True, evaluate: bool = True,
          **overrides) -> Run:
    """Train a NoiseRNN on a preset (or a custom HMM) and return the loaded run.

    Parameters
    ----------
    preset : name from ``hmmrnn.PRESETS``; its training settings are the defaults.
    recipe : ``"fast"`` (default: bigram penalty, periodic verdict, early stop) or ``"paper"``
        (docs/method.md §3 unchanged); see ``hmmrnn.RECIPES``.
    hmm : an ``HMM`` or a path to a JSON/TOML HMM file, replacing the preset's HMM.
    out : run folder (default ``runs/<preset>-h<H>-d<d>-s<seed>``).
    force : overwrite an existing run folder.
    progress : show a progress bar.
    evaluate : run ``hmmrnn.evaluate`` (N = 5000, the run's T) at the end, writing metrics.json.
    **overrides : any keyword of ``hmmrnn.make_config`` (``hidden, noise_dim, seed, epochs, lr,
        val_every, eval_every, early_stop, bigram_weight, retries, ...``); they win over the recipe.

    Returns
    -------
    The loaded ``Run``.
    """
    if isinstance(hmm, (str, Path)):
        hmm = HMM.from_file(hmm)
    config = make_config(preset, recipe=recipe, hmm=hmm, **overrides)
    return train_config(config, out if out is not None else default_run_dir(config),
                        force=force, progress=progress, evaluate=evaluate)


def default_run_dir(config: RunConfig) -> Path:
    """``runs/<preset or HMM name>-h<H>-d<d>-s<seed>``."""
    label = config.preset or config.hmm.name
    return Path("runs") / f"{label}-h{config.model.hidden}-d{config.model.noise_dim}-s{config.train.seed}"


def train_config(config: RunConfig, out: str | Path, *, force: bool = False, progress: bool = True,
                 evaluate: bool = True) -> Run:
    """Train from a resolved ``RunConfig`` into a new run folder ``out``, holding its write lock.

    Parameters
    ----------
    config : the settings (``hmmrnn.make_config``).
    out : the new run folder.
    force : overwrite an existing run folder.
    progress : show a progress bar.
    evaluate : as in ``train``.

    Returns
    -------
    The loaded ``Run``.
    """
    device = _check_device(config.train.device)
    check_memory(config)
    with run_lock(out, create=True):
        run_dir = prepare_run_dir(Path(out), force=force)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
        state = _TrainingState.fresh(config, device, _pretrained(config, run_dir, progress))
        return _evaluated(_fit_with_retries(run_dir, config, state, progress, config_saved=True), evaluate)


def _evaluated(run: Run, evaluate: bool) -> Run:
    if evaluate:
        final_evaluation(run)
    return run


def final_evaluation(run: Run, **options):
    """The evaluation after training (``train(evaluate=True)``, ``hmmrnn train``, sweep cells):
    ``hmmrnn.evaluate`` with N = the run's ``eval_n`` and a seed derived from the run's seed (its
    own stream, so that runs of different seeds are judged on independent HMM samples). ``options``
    go to ``hmmrnn.evaluate`` and win."""
    from .evaluation import evaluate as evaluate_run

    t = run.config.train
    return evaluate_run(run, **{"n": t.eval_n, "seed": stream(t.seed, "final_evaluation"), **options})


def resume(run_dir: str | Path, *, epochs: int | None = None, progress: bool = True, evaluate: bool = True) -> Run:
    """Continue a run from its last checkpoint (or from the start if it has none).

    ``epochs`` may raise the total number of epochs of a finished or unfinished run; ``evaluate``
    as in ``train`` (a finished run that is not extended is returned as it is).

    Parameters
    ----------
    run_dir : the run folder.
    epochs : new total number of epochs (default: the run's).
    progress : show a progress bar.
    evaluate : as in ``train``.

    Returns
    -------
    The loaded ``Run``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run folder not found: {run_dir}")
    with run_lock(run_dir):
        config = load_config(run_dir)
        check_run_files(run_dir)
        status = read_json(run_dir / STATUS_FILE) if (run_dir / STATUS_FILE).exists() else {}
        done = int(status.get("epoch", 0))
        saved_epochs = config.train.epochs
        if epochs is not None and epochs != saved_epochs:
            if epochs < done:
                raise ConfigError(f"--epochs {epochs} is below the {done} epochs this run has done")
            # the new total lands in config.json with the first epoch trained under it (_fit)
            config = replace(config, train=replace(config.train, epochs=epochs))
        device = _check_device(config.train.device)
        if status.get("state") == "completed" and (done >= config.train.epochs or status.get("stopped_early")):
            return load_run(run_dir)
        checkpoints = checkpoint_paths(run_dir)
        if checkpoints:
            state = _TrainingState.from_checkpoint(config, checkpoints[-1][1], device)
        else:
            state = _TrainingState.fresh(config, device, _pretrained(config, run_dir, progress))
        state.history = [row for row in read_history(run_dir / HISTORY_FILE) if row["epoch"] <= state.epoch]
        return _evaluated(_fit_with_retries(run_dir, config, state, progress,
                                            config_saved=config.train.epochs == saved_epochs), evaluate)


def _check_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch.cuda.is_available() is False")
    return device


# --------------------------------------------------------------------------- training state


class _TrainingState:
    """Everything that evolves during training; what a checkpoint stores."""

    def __init__(self, model: NoiseRNN, optimizer: torch.optim.Adam, generator: torch.Generator,
                 epoch: int = 0, best_val: float = float("inf"), best_epoch: int = 0,
                 best_weights: dict[str, torch.Tensor] | None = None,
                 pools: dict[str, torch.Tensor] | None = None,
                 average: dict[str, torch.Tensor] | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.generator = generator
        self.epoch = epoch
        self.best_val = best_val
        self.best_epoch = best_epoch
        self.best_weights = best_weights
        #: with ``carry_states``: the hidden state of every training / validation slot, (n_train, H)
        self.pools = pools if pools is not None else {}
        #: with ``weight_average``: the moving average of the weights (CPU), what the run judges and keeps
        self.average = average
        self.emulating_epoch: int | None = None
        self.history: list[dict] = []

    @staticmethod
    def _optimizer(model: NoiseRNN, config: RunConfig) -> torch.optim.Adam:
        return torch.optim.Adam(model.parameters(), lr=config.train.lr, betas=config.train.betas)

    @staticmethod
    def _generator(config: RunConfig, device: torch.device) -> torch.Generator:
        generator = torch.Generator(device=device)
        generator.manual_seed(_derived_seed(config.train.seed, "noise"))
        return generator

    @classmethod
    def fresh(cls, config: RunConfig, device: torch.device,
              pretrained: dict[str, torch.Tensor] | None = None) -> "_TrainingState":
        """A new training state; the model starts from ``pretrained`` weights (state pretraining),
        else from ``init_weights``, else from a fresh initialisation."""
        m = config.model
        model = NoiseRNN(m.hidden, m.noise_dim, m.n_outputs, initial_state=m.initial_state, burn_in=m.burn_in,
                         seed=_derived_seed(config.train.seed, "init"))
        if pretrained is not None:
            model = model_from_weights(m, pretrained, "the state pretraining")
        elif config.train.init_weights:
            model = _initial_weights(config, model)
        model = model.to(device)
        return cls(model, cls._optimizer(model, config), cls._generator(config, device))

    @classmethod
    def from_checkpoint(cls, config: RunConfig, path: Path, device: torch.device) -> "_TrainingState":
        tensors, meta = load_tensors(path)
        try:
            model = model_from_weights(config.model, tensor_section(tensors, "model"), str(path)).to(device)
            optimizer = cls._optimizer(model, config)
            groups = json.loads(meta["param_groups"])
            optim_state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensor_section(tensors, "optim").items():
                index, name = key.split(".", 1)
                optim_state.setdefault(int(index), {})[name] = value.to(device)
            for group in groups:
                group["betas"] = tuple(group["betas"])
            optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
            generator = cls._generator(config, device)
            generator.set_state(tensors["rng"])
            best = tensor_section(tensors, "best") or None
            pools = {name: value.to(device) for name, value in tensor_section(tensors, "pool").items()}
            return cls(model, optimizer, generator, int(meta["epoch"]), float(meta["best_val"]),
                       int(meta["best_epoch"]), best, pools, tensor_section(tensors, "average") or None)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise RunDirError(f"checkpoint {path} is incomplete or corrupt: {exc}") from None

    def save_checkpoint(self, path: Path) -> None:
        tensors = {f"model.{k}": v for k, v in weights_of(self.model).items()}
        if self.best_weights is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_weights.items()})
        optim = self.optimizer.state_dict()
        for index, entries in optim["state"].items():
            for name, value in entries.items():
                tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
        tensors["rng"] = self.generator.get_state()
        tensors.update({f"pool.{name}": value for name, value in self.pools.items()})
        if self.average is not None:
            tensors.update({f"average.{k}": v for k, v in self.average.items()})
        path.parent.mkdir(exist_ok=True)
        save_tensors(path, tensors, {"epoch": str(self.epoch), "best_val": repr(self.best_val),
                                     "best_epoch": str(self.best_epoch),
                                     "param_groups": json.dumps(optim["param_groups"])})

    def result_weights(self) -> dict[str, torch.Tensor]:
        """The weights the run judges and keeps: the moving average while one is kept, else the model's."""
        if self.average is None:
            return weights_of(self.model)
        return {name: value.clone() for name, value in self.average.items()}

    def judged_model(self, config: RunConfig) -> NoiseRNN:
        """The network the run judges: the model itself, or a copy holding the moving average."""
        if self.average is None:
            return self.model
        device = next(self.model.parameters()).device
        return model_from_weights(config.model, self.average, "the averaged weights").to(device)

    def average_epoch(self, half_life: float) -> None:
        """After an epoch: w̄ ← β w̄ + (1 − β) w, β = 2^(−1/half_life), starting at w (``TrainConfig.weight_average``);
        ``half_life`` 0 drops the average.

        Our own few lines rather than ``torch.optim.swa_utils.AveragedModel``: the average must change its
        decay between training stages and live in our safetensors checkpoints as plain tensors,
        where AveragedModel keeps a deep copy of the module with its own counter."""
        if half_life <= 0:
            self.average = None
            return
        weights = weights_of(self.model)
        if self.average is None:
            self.average = weights
            return
        keep = 2.0 ** (-1.0 / half_life)
        self.average = {name: keep * self.average[name] + (1 - keep) * weights[name] for name in weights}


def _initial_weights(config: RunConfig, model: NoiseRNN) -> NoiseRNN:
    """The model with the weights of ``config.train.init_weights`` (a weights file, or a checkpoint's
    ``model.`` section); a learned h_0 the file lacks keeps its initial 0. Names, shapes and
    finiteness are checked; a mismatch raises ``RunDirError`` naming it."""
    path = Path(config.train.init_weights)
    if not path.is_file():
        raise RunDirError(f"--init-weights: no such file: {path}")
    tensors, _ = load_tensors(path)
    weights = tensor_section(tensors, "model") or tensors
    if model.initial_state == "learned" and "h0" not in weights:
        weights = {**weights, "h0": model.h0.detach().clone()}
    elif model.initial_state != "learned":
        weights = {k: v for k, v in weights.items() if k != "h0"}  # a learned start is dropped, not used
    return model_from_weights(config.model, weights, str(path))


def _pretrained(config: RunConfig, run_dir: Path, progress: bool) -> dict[str, torch.Tensor] | None:
    """The starting weights of a run with state pretraining (``hmmrnn._pretrain``), None without: the
    network trained on the HMM's states in ``run_dir/pretrain`` (a run folder of its own, trained or
    resumed there; its kept weights), with the symbol readout fitted on its long run."""
    if not config.train.state_pretrain_epochs:
        return None
    folder = run_dir / PRETRAIN_DIR
    try:
        if (folder / CONFIG_FILE).exists():
            pretrained = resume(folder, progress=progress, evaluate=False)
        else:
            pretrained = train_config(pretraining_config(config), folder, progress=progress, evaluate=False)
    except Interrupted:
        raise Interrupted(f"interrupted in the state pretraining; continue with: hmmrnn train --resume {run_dir}"
                          ) from None
    readout, _ = fitted_readout(pretrained.model, config.hmm.emission,
                                seed=_derived_seed(config.train.seed, "pretrain readout"))
    return {**weights_of(pretrained.model), "w_out": readout}


def _state_readout(run_dir: Path, device: torch.device) -> torch.Tensor:
    """(S, H): the state readout of the network pretrained in ``run_dir/pretrain`` (the weights the
    run started from), which ``state_weight`` holds the run's states to."""
    folder = run_dir / PRETRAIN_DIR
    if not (folder / WEIGHTS_FILE).exists():
        raise RunDirError(f"state_weight needs the state-pretrained network, missing: {folder / WEIGHTS_FILE}")
    return load_run(folder).model.w_out.detach().to(device)


def _derived_seed(seed: int, purpose: str) -> int:
    """Independent 63-bit seeds for each purpose (data, init, noise, eval, confirm, fresh, the HMM
    references of eval and confirm, the pretrained readout's fit) from one user seed."""
    return stream(seed, {"data": 1, "init": 2, "noise": 3, "eval": 4, "confirm": 5, "fresh": 6,
                         "eval reference": 7, "confirm reference": 8, "pretrain readout": 9}[purpose])


# --------------------------------------------------------------------------- the loop


def _fresh_slots(n: int, fraction: float) -> torch.Tensor:
    """(n,) bool: the slots restarted from h_0 every epoch, spread evenly (slot i is fresh when
    ⌊(i + 1) f⌋ > ⌊i f⌋), so that every batch holds its share."""
    index = torch.arange(n, dtype=torch.float64)
    return torch.floor((index + 1) * fraction) > torch.floor(index * fraction)


def _targets(config: RunConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot HMM sequences flattened to (n, T K): the training and validation thirds.

    With ``carry_states`` the windows of carried slots are matched with HMM windows from its
    stationary distribution (windows of a long run), those of fresh slots (``fresh_fraction``) with
    HMM windows from its start distribution, drawn with their own seed."""
    t = config.train

    def thirds(hmm: HMM, purpose: str) -> torch.Tensor:
        obs, _ = hmm.sample(t.num_seq, t.seq_len, seed=_derived_seed(t.seed, purpose))
        onehot = torch.nn.functional.one_hot(torch.from_numpy(obs), config.hmm.n_outputs).float()
        return onehot.reshape(t.num_seq, -1).to(device)

    if not t.carry_states:
        flat = thirds(config.hmm, "data")
    else:
        flat = thirds(config.hmm.stationary(), "data")
        if t.fresh_fraction > 0:
            fresh = _fresh_slots(t.n_train, t.fresh_fraction).repeat(3)[:, None].to(device)
            flat = torch.where(fresh[: t.num_seq], thirds(config.hmm, "fresh")[: 3 * t.n_train],
                               flat[: 3 * t.n_train])
    return flat[: t.n_train], flat[t.n_train: 2 * t.n_train]


def _objective(divergence: LossFn, targets: torch.Tensor, config: RunConfig,
               state_readout: torch.Tensor | None = None) -> Objective:
    """The training objective on one target set, as f(outputs, logits, target, fresh, hidden) with outputs and
    logits (B, T, K), target (B, T K), fresh (B,) the batch's fresh slots and hidden (B, T, H): the divergence of the
    flattened outputs, plus the bigram penalty against the pooled bigram frequencies of the HMM's
    windows (computed exactly, ``HMMWindows``) when ``bigram_weight`` > 0 (``hmmrnn._bigram``; for
    windows from h_0 also per position over
    the first ``transient_steps`` steps), on the straight-through samples or on
    softmax(logits) (``bigram_on``), plus the log-likelihood penalty when ``likelihood_weight`` > 0
    (``hmmrnn._likelihood``, on the samples), plus the calibration penalty when ``calibration_weight``
    > 0 (``hmmrnn._calibration``, on softmax(logits) in the cells of the samples' beliefs), plus the
    emission-row penalty when ``emission_weight`` > 0 (``hmmrnn._emission``, on the logits), plus the
    change-count, run-age and run-passage penalties when ``change_count_weight``, ``run_age_weight``
    or ``passage_weight`` > 0 (``hmmrnn._dispersion``, on softmax(logits)), plus, when ``state_weight``
    > 0, the n-gram and transition penalties on the states q_t = softmax(``state_readout`` h_t)
    ((S, H), the state-pretrained network's readout, fixed) against the states HMM
    (``hmmrnn._pretrain.states_hmm``): the run keeps one region per hidden state.

    With ``fresh_fraction`` f > 0 (and ``carry_states``) the fresh and the carried windows are two
    populations, each matched with its own targets: f · objective(fresh) + (1 − f) · objective(carried),
    so that neither can make up for the other's error in the pooled statistics. The carried windows'
    likelihood is that of the HMM started from its stationary distribution, like their targets.
    """
    t = config.train
    fraction = t.fresh_fraction if t.carry_states else 0.0
    fresh_rows = _fresh_slots(len(targets), fraction).to(targets.device)

    def single(rows: torch.Tensor, hmm: HMM, from_h0: bool):
        terms = []
        if t.bigram_weight > 0 or t.transition_weight > 0:
            windows = HMMWindows(hmm, targets.shape[1] // config.hmm.n_outputs)  # exact, not counted on targets
            bigram = BigramPenalty(windows, config.hmm.n_outputs, t.bigram_weight, t.ngram_order,
                                   positions=t.transient_steps if from_h0 else 0, lags=t.pair_lags,
                                   conditional_weight=t.transition_weight,
                                   position_weight=t.transient_weight or None)
            if t.bigram_on == "probabilities":
                terms.append(lambda b: bigram(b.probabilities if t.tau == 1 else torch.softmax(b.logits / t.tau, -1)))
            else:
                terms.append(lambda b: bigram(b.outputs))
        if t.likelihood_weight > 0:
            likelihood = LikelihoodPenalty(hmm, targets[rows], t.likelihood_weight)
            terms.append(lambda b: likelihood(b.outputs.flatten(1)))
        if t.calibration_weight > 0:
            calibration = CalibrationPenalty(hmm, targets[rows], t.calibration_weight, seed=t.seed)
            terms.append(lambda b: calibration(b.outputs, b.probabilities))
        if t.emission_weight > 0:
            rows_penalty = EmissionRowPenalty(hmm.emission, t.emission_weight)
            terms.append(lambda b: rows_penalty(b.logits))
        if t.change_count_weight > 0:
            changes = ChangeCountPenalty(hmm, targets.shape[1] // config.hmm.n_outputs, t.change_count_weight)
            terms.append(lambda b: changes(b.probabilities))
        if t.run_age_weight > 0:
            ages = RunAgePenalty(hmm, targets.shape[1] // config.hmm.n_outputs, t.run_age_weight)
            terms.append(lambda b: ages(b.probabilities))
        if t.passage_weight > 0:
            passages = RunPassagePenalty(hmm, targets.shape[1] // config.hmm.n_outputs, t.passage_weight)
            terms.append(lambda b: passages(b.probabilities))
        if t.state_weight > 0:
            states = states_hmm(hmm)
            kept = BigramPenalty(HMMWindows(states, targets.shape[1] // config.hmm.n_outputs), states.n_outputs,
                                 t.state_weight, t.ngram_order, lags=t.pair_lags, conditional_weight=t.state_weight)
            terms.append(lambda b: kept(torch.softmax(b.hidden @ state_readout.T, dim=-1)))

        def part(outputs: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                 hidden: torch.Tensor | None) -> torch.Tensor:
            total = divergence(outputs.flatten(1), target)
            # one softmax shared by every term on p_t
            batch = _Batch(outputs, logits, torch.softmax(logits, dim=-1) if terms else None, hidden)
            for term in terms:
                total = total + term(batch)
            return total

        return part

    carried_hmm = config.hmm.stationary() if t.carry_states else config.hmm
    if fraction == 0:
        whole = single(torch.ones(len(targets), dtype=torch.bool, device=targets.device), carried_hmm,
                       from_h0=not t.carry_states)
        return lambda outputs, logits, target, fresh, hidden=None: whole(outputs, logits, target, hidden)
    on_fresh, on_carried = single(fresh_rows, config.hmm, True), single(~fresh_rows, carried_hmm, False)

    def objective(outputs: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, fresh: torch.Tensor,
                  hidden: torch.Tensor | None = None):
        total = outputs.new_zeros(())
        for weight, part, rows in ((fraction, on_fresh, fresh), (1 - fraction, on_carried, ~fresh)):
            if rows.any():  # a small last batch may hold no slot of one population
                total = total + weight * part(outputs[rows], logits[rows], target[rows],
                                              None if hidden is None else hidden[rows])
        return total

    return objective


def _epoch_loss(model: NoiseRNN, targets: torch.Tensor, config: RunConfig, generator: torch.Generator,
                loss_fn: Objective, optimizer: torch.optim.Optimizer | None,
                pool: torch.Tensor | None = None) -> float:
    """Mean batch loss over ``targets``; takes an optimizer step per batch when given one.

    ``pool`` (n, H), with ``carry_states``: the state each slot's window starts from. The fresh slots
    (``fresh_fraction``), a random fraction ``reset_fraction`` of the others and any slot whose state
    is non-finite or has a norm above ``MAX_CARRIED_NORM`` are first reset to h_0; afterwards
    each slot holds the last state of its window, where the next epoch continues.

    A non-finite loss or weight raises ``_NonFinite`` carrying the last finite weights.
    """
    t = config.train
    fresh = _fresh_slots(targets.shape[0], t.fresh_fraction if pool is not None else 0.0).to(targets.device)
    restarted = fresh
    if pool is not None:
        # a chain that diverged during training (non-finite, or so large that the next window would
        # overflow) restarts from h_0; the verdict's long run is what judges divergence
        diverged = ~torch.isfinite(pool).all(dim=1) | (torch.linalg.vector_norm(pool, dim=1) > MAX_CARRIED_NORM)
        reset = (torch.rand(pool.shape[0], generator=generator, device=pool.device) < t.reset_fraction) | fresh
        reset |= diverged
        pool[reset] = model.initial_hidden(int(reset.sum()), generator).detach()
        restarted = reset
    losses = []
    for start in range(0, targets.shape[0], t.batch_size):
        target = targets[start: start + t.batch_size]
        noise = torch.randn(target.shape[0], t.seq_len, model.noise_dim, generator=generator,
                            device=target.device)
        h0 = None if pool is None else pool[start: start + t.batch_size].clone()
        with torch.set_grad_enabled(optimizer is not None):
            if h0 is not None and model.initial_state == "learned":
                # the restarted windows start from the trained h_0 itself, so its gradient reaches it
                rows = restarted[start: start + t.batch_size]
                h0 = torch.where(rows[:, None], model.initial_hidden(len(rows)), h0)
            outputs, hidden, logits = model(noise, generator, t.tau, h0)
            loss = loss_fn(outputs, logits, target, fresh[start: start + t.batch_size], hidden)
            if h0 is not None and t.growth_weight > 0:
                carried = ~restarted[start: start + t.batch_size]
                loss = loss + t.growth_weight * _growth_rate(h0, hidden, carried).clamp(min=0)
        if pool is not None:
            pool[start: start + t.batch_size] = hidden[:, -1].detach()
        if not torch.isfinite(loss):
            raise _NonFinite(f"non-finite loss {loss.item()}", weights_of(model))
        if optimizer is not None:
            last_good = weights_of(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise _NonFinite("non-finite weights after an optimizer step", last_good)
        losses.append(loss.item())
    return float(np.mean(losses))


def _growth_rate(h0: torch.Tensor, hidden: torch.Tensor, carried: torch.Tensor) -> torch.Tensor:
    """ḡ = mean over the carried chains of (log|h_T| − log|h_0|) / T, a scalar; h0 (B, H) the states
    the windows start from, hidden (B, T, H) the window's states, carried (B,) the chains not
    restarted from h_0 this epoch. A chain at |h_0| = 0 has no growth rate and is left out too; 0 if
    none is left."""
    start = torch.linalg.vector_norm(h0, dim=1)
    carried = carried & (start > 0)
    if not carried.any():
        return hidden.new_zeros(())
    end = torch.linalg.vector_norm(hidden[carried, -1], dim=1)
    # a chain that dies (|h_T| = 0) counts as shrinking by the smallest positive float, not -inf
    tiny = torch.finfo(hidden.dtype).tiny
    return (torch.log(end.clamp(min=tiny)) - torch.log(start[carried])).mean() / hidden.shape[1]


class _NonFinite(Exception):
    def __init__(self, what: str, last_good: dict[str, torch.Tensor]) -> None:
        super().__init__(what)
        self.last_good = last_good


class _Stuck(Exception):
    """The run plateaued without emulating; carries what the attempts record keeps."""

    def __init__(self, record: dict) -> None:
        super().__init__(record["reason"])
        self.record = record


def _fit_with_retries(run_dir: Path, config: RunConfig, state: _TrainingState, progress: bool,
                      config_saved: bool) -> Run:
    """``_fit``, restarting a stuck run with a new seed at most ``retries`` times.

    Each abandoned attempt's files move to ``attempts/attempt_<k>/`` and its record (seed, epochs,
    best validation loss, last verdict, reason) is appended to ``attempts.json``; ``config.json``
    always describes the current attempt.
    """
    attempts_file = run_dir / ATTEMPTS_FILE
    attempts = read_json(attempts_file) if attempts_file.exists() else []
    first_seed = attempts[0]["seed"] if attempts else config.train.seed
    while True:
        try:
            return _fit(run_dir, config, state, progress, config_saved, can_retry=len(attempts) < config.train.retries)
        except _Stuck as stuck:
            attempts.append({"attempt": len(attempts), "seed": config.train.seed, **stuck.record})
            archive = run_dir / "attempts" / f"attempt_{len(attempts) - 1}"
            archive.mkdir(parents=True, exist_ok=True)
            for name in (WEIGHTS_FILE, FINAL_WEIGHTS_FILE, HISTORY_FILE, STATUS_FILE, CHECKPOINT_DIR, FIGURES_DIR,
                         PRETRAIN_DIR):
                if (run_dir / name).exists():
                    os.replace(run_dir / name, archive / name)
            write_json(attempts_file, attempts)
            config = replace(config, train=replace(config.train, seed=first_seed + 1000 * len(attempts)))
            write_json(run_dir / CONFIG_FILE, config.to_dict())
            state = _TrainingState.fresh(config, next(state.model.parameters()).device,
                                         _pretrained(config, run_dir, progress))


def _is_stuck(history: list[dict], patience: int, tolerance: float) -> bool:
    """No relative improvement of at least ``tolerance`` in the best validation loss over the last
    ``patience`` epochs."""
    losses = [(row["epoch"], row["val_loss"]) for row in history if row["val_loss"] is not None]
    if not losses or losses[-1][0] <= patience:
        return False
    cutoff = losses[-1][0] - patience
    before = min(loss for epoch, loss in losses if epoch <= cutoff)
    recent = min(loss for epoch, loss in losses if epoch > cutoff)
    return recent > (1 - tolerance) * before


def _fit(run_dir: Path, config: RunConfig, state: _TrainingState, progress: bool, config_saved: bool,
         can_retry: bool = False) -> Run:
    """Train until ``config.train.epochs`` (or an early stop); ``config_saved`` False: config.json
    does not yet hold ``config`` (a resume with a new total) and is written with the first epoch."""
    t = config.train
    device = next(state.model.parameters()).device
    train_targets, val_targets = _targets(config, device)
    stages: dict[int, tuple[RunConfig, Objective, Objective]] = {}

    def stage(epoch: int) -> tuple[RunConfig, Objective, Objective]:
        """The run config of the stage that trains ``epoch`` and its training and validation objectives."""
        number = 2 if t.in_second_stage(epoch) else 1
        if number not in stages:
            staged = replace(config, train=t.stage(epoch))
            divergence = _divergence(staged.train, config.hmm.n_outputs, device)
            readout = _state_readout(run_dir, device) if staged.train.state_weight > 0 else None
            stages[number] = (staged, _objective(divergence, train_targets, staged, readout),
                              _objective(divergence, val_targets, staged, readout))
        return stages[number]

    if t.carry_states and not state.pools:
        state.pools = {name: state.model.initial_hidden(len(targets), state.generator).detach()
                       for name, targets in (("train", train_targets), ("val", val_targets))}
    bar = tqdm(total=t.epochs, initial=state.epoch, desc=run_dir.name, unit="epoch", disable=not progress,
               dynamic_ncols=True)
    try:
        while state.epoch < t.epochs:
            epoch = state.epoch + 1
            started = time.perf_counter()
            for group in state.optimizer.param_groups:
                group["lr"] = t.learning_rate(epoch)
            staged, train_loss_fn, val_loss_fn = stage(epoch)
            if t.in_second_stage(epoch) and state.best_epoch <= t.refine_from:
                state.best_val = float("inf")  # the second stage's loss is another objective
            validate_now = epoch % t.val_every == 0 or epoch == t.epochs
            judge_now = t.eval_every > 0 and epoch % t.eval_every == 0
            try:
                train_loss = _epoch_loss(state.model, train_targets, staged, state.generator, train_loss_fn,
                                         state.optimizer, state.pools.get("train"))
                state.average_epoch(staged.train.weight_average)
                # the network that validation and the verdict see, built only in the epochs that use it
                judged = state.judged_model(config) if validate_now or judge_now else None
                val_loss = None
                if validate_now:
                    val_loss = _epoch_loss(judged, val_targets, staged, state.generator, val_loss_fn, None,
                                           state.pools.get("val"))
            except _NonFinite as exc:
                message = (f"training diverged at epoch {epoch}: {exc}; last finite weights saved to "
                           f"{run_dir / FINAL_WEIGHTS_FILE}")
                _finish(run_dir, config, state, "diverged", message, last_good=exc.last_good)
                raise TrainingDivergedError(message) from None
            state.epoch = epoch
            verdict = _periodic_verdict(judged, config, epoch) if judge_now else {}
            if val_loss is not None and val_loss < state.best_val:
                state.best_val, state.best_epoch = val_loss, epoch
                state.best_weights = state.result_weights()
                save_tensors(run_dir / WEIGHTS_FILE, state.best_weights,
                             {"epoch": str(epoch), "val_loss": repr(val_loss)})
            state.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                  "seconds": round(time.perf_counter() - started, 4),
                                  "lr": state.optimizer.param_groups[0]["lr"], **verdict})
            write_history(run_dir / HISTORY_FILE, state.history)
            if not config_saved:  # a resume's new total epochs lands only once an epoch trained under it
                write_json(run_dir / CONFIG_FILE, config.to_dict())
                config_saved = True
            stop = t.early_stop and bool(verdict.get("emulates"))
            if stop:  # the emulating model is the result, whatever its validation loss
                state.best_weights = state.result_weights()
                save_tensors(run_dir / WEIGHTS_FILE, state.best_weights, {"epoch": str(epoch), "emulates": "1"})
                state.emulating_epoch = epoch
            if t.checkpoint_every and (epoch % t.checkpoint_every == 0 or stop):
                state.save_checkpoint(checkpoint_path(run_dir, epoch))
            _write_status(run_dir, state, "running")
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}" if val_loss is not None else "-",
                            **({"emulates": "yes" if verdict["emulates"] else "no"} if verdict else {}),
                            refresh=False)
            if stop:
                break
            if can_retry and verdict and not verdict["emulates"] and _is_stuck(state.history, t.stuck_patience,
                                                                              t.stuck_tolerance):
                raise _Stuck({"epochs": epoch, "best_val_loss": state.best_val, "last_verdict": verdict,
                              "reason": f"no emulation and < {t.stuck_tolerance:g} relative improvement of the "
                                        f"validation loss in {t.stuck_patience} epochs"})
    except KeyboardInterrupt:
        message = (f"interrupted after epoch {state.epoch}; continue with: hmmrnn train --resume {run_dir}")
        _write_status(run_dir, state, "interrupted", message)
        raise Interrupted(message) from None
    except OSError as exc:  # a full disk, a folder made read-only under us, ...
        where = f" ({exc.filename})" if exc.filename else ""
        saved = checkpoint_paths(run_dir)
        message = (f"training failed: {exc.strerror or exc}{where}; hmmrnn train --resume {run_dir} continues "
                   f"from epoch {saved[-1][0] if saved else 0}")
        try:
            _write_status(run_dir, state, "failed", message)
        except OSError:
            pass  # the status cannot be written either; the last one on disk says "running"
        raise RunDirError(message) from None
    finally:
        bar.close()
    _finish(run_dir, config, state, "completed")
    return load_run(run_dir)


def _periodic_verdict(model: NoiseRNN, config: RunConfig, epoch: int) -> dict:
    """The full verdict (``hmmrnn.judge``: training window, long run, stationary windows) on
    ``eval_n`` fresh sequences per horizon, without the EM re-fit, as history columns.

    The matched distances (O(N²) per window) are computed only when no other check fails
    (``matching="if-passing"``): the verdict is the same, and most epochs before emulation fail a
    cheap check. A "yes" is recorded as ``emulates = 1`` only if the verdict on one further,
    independent and larger sample of k = ``confirmations`` × ``eval_n`` sequences per horizon says
    yes too, its matched distance pooled over k fresh blocks of ``eval_n`` (the mean of an
    ``eval_n`` matching, a standard error √k smaller, at k times its cost). A network whose error
    sits just above a check's tolerance passes one sample of N by luck now and then, and a run
    judged every 10 epochs offers many tries: stopping at the first of them that also passes a few
    more samples of N picked such networks (a linear4 network that then failed five re-checks of
    five, a linear5 one that failed six of eight; and a fully3 one whose confirmation left the
    matched distance out, which failed the T = 30 matched distance in five re-checks at N = 5000 of
    five; BENCHMARKS.md). The larger sample shrinks the sampling allowance towards the tolerance
    itself, so it rejects them, while a network inside the tolerance passes it as surely as the
    first. The network's samples are seeded by (run seed, purpose, epoch), the HMM reference sets by
    (run seed, purpose) alone: every verdict of the run compares fresh network samples with the same
    HMM sets, whose HMM-vs-HMM matchings are then computed once. Training's own generator is
    untouched, so judging does not change the training trajectory.
    """
    from .evaluation import judge

    t = config.train

    def verdict(purpose: str, n: int):
        return judge(model, config.hmm, n=n, seq_len=t.seq_len, seed=_derived_seed(t.seed, purpose) + epoch,
                     reference_seed=_derived_seed(t.seed, f"{purpose} reference"), refit=False,
                     matching="if-passing", matching_block=t.eval_n)

    result = verdict("eval", t.eval_n)
    emulates = result.emulates and (t.confirmations == 0 or verdict("confirm", t.confirmations * t.eval_n).emulates)
    m = result.metrics
    distance = m["matched_distance"]["candidate"]["mean"] if "matched_distance" in m else None
    longest = result.windows[-1].metrics if len(result.windows) > 1 else None
    return {"emulates": int(emulates), "transition_max_abs_diff": m["transition_matrix"]["max_abs_diff"],
            "loglik_gap": m["log_likelihood"]["gap"], "matched_distance": distance,
            "growth": result.long_run["growth"] if result.long_run else None,
            "long_loglik_gap": longest["log_likelihood"]["gap"] if longest else None}


def _write_status(run_dir: Path, state: _TrainingState, status: str, message: str | None = None) -> None:
    payload = {"state": status, "epoch": state.epoch, "best_epoch": state.best_epoch,
               "best_val_loss": state.best_val if np.isfinite(state.best_val) else None}
    if state.emulating_epoch is not None:
        payload["stopped_early"] = True
        payload["emulating_epoch"] = state.emulating_epoch
    if message:
        payload["message"] = message
    write_json(run_dir / STATUS_FILE, payload)


def _finish(run_dir: Path, config: RunConfig, state: _TrainingState, status: str, message: str | None = None,
            last_good: dict[str, torch.Tensor] | None = None) -> None:
    """Write the final weights (or the last finite ones) and the status; keep a best model on disk."""
    final = last_good if last_good is not None else state.result_weights()
    save_tensors(run_dir / FINAL_WEIGHTS_FILE, final, {"epoch": str(state.epoch)})
    if not (run_dir / WEIGHTS_FILE).exists():
        save_tensors(run_dir / WEIGHTS_FILE, final, {"epoch": str(state.epoch)})
    if state.history:
        from .plots import plot_history, save_figure

        ylabel = "Sinkhorn divergence" + (" + bigram penalty" if config.train.bigram_weight else "")
        save_figure(plot_history(state.history, title=run_dir.name, ylabel=ylabel), run_dir / FIGURES_DIR / "loss")
    _write_status(run_dir, state, status, message)
