"""Typed run configuration: the HMM, the model sizes and the training settings.

A ``RunConfig`` holds everything needed to rebuild the HMM and the model and to re-run the
training; it is saved as ``config.json`` in the run directory. Presets are just named configs and
every field can be overridden.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from .errors import ConfigError
from .hmm import HMM
from .presets import Preset
from .presets import preset as get_preset
from .presets import recipe as get_recipe

__all__ = ["ModelConfig", "TrainConfig", "RunConfig", "make_config", "SETTINGS", "Option", "training_options", "versions"]


def _setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None, cli: bool = True) -> Any:
    """A config field with its one-line help and allowed values, from which the training options of
    the ``train`` and ``sweep`` commands are derived (``training_options``); ``cli=False`` keeps a
    field off the command line (set by the command's own options or not at all)."""
    return field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


#: How the Sinkhorn divergence of a batch is estimated (``hmmrnn._sinkhorn.SplitBatchDivergence``).
DIVERGENCE_ESTIMATORS = ("batch", "split")

#: The settings a second training stage may change (``TrainConfig.refine``): those of the objective
#: and the optimiser. The data, the slots and the verdict stay as the run built them.
REFINABLE = ("lr", "lr_half_life", "grad_clip", "blur", "divergence_estimator", "bigram_weight", "bigram_on",
             "ngram_order", "transient_steps", "transient_weight", "pair_lags", "transition_weight",
             "likelihood_weight", "calibration_weight", "emission_weight", "change_count_weight", "run_age_weight",
             "passage_weight", "state_weight", "growth_weight", "tau", "weight_average")

#: Where a chain starts (``NoiseRNN``'s ``initial_state``, whose type lists the same names).
INITIAL_STATES = ("zero", "random", "learned", "stationary")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the ``NoiseRNN``: H hidden units, d noise inputs, K outputs."""

    hidden: int = 150
    noise_dim: int = 100
    n_outputs: int = 3
    initial_state: str = _setting(
        "zero", "h0 of every chain: zeros (the paper), N(0, I), one trained state, or the state after "
        "--burn-in noisy steps from 0 (the network's own stationary distribution).", choices=INITIAL_STATES)
    burn_in: int = _setting(100, "With --initial-state stationary: noisy steps from 0 before the first output.")

    def __post_init__(self) -> None:
        _require(self.hidden >= 1, f"hidden size must be >= 1, got {self.hidden}")
        _require(self.noise_dim >= 1, f"noise dimension must be >= 1, got {self.noise_dim}")
        _require(self.n_outputs >= 2, f"n_outputs must be >= 2, got {self.n_outputs}")
        _require(self.initial_state in INITIAL_STATES,
                 f"initial_state must be one of {', '.join(INITIAL_STATES)}, got {self.initial_state!r}")
        _require(self.burn_in >= 1, f"burn_in must be >= 1, got {self.burn_in}")


@dataclass(frozen=True)
class TrainConfig:
    """Data and optimisation settings (docs/method.md §1.4, §3).

    ``num_seq`` HMM sequences of ``seq_len`` steps are split by position into thirds: train,
    validation, unused test. Each epoch draws fresh noise, takes one Adam step per batch of
    ``batch_size`` training sequences (fixed order), clips the global gradient norm to
    ``grad_clip`` and, every ``val_every`` epochs, computes the validation loss. Every
    ``checkpoint_every`` epochs (0 = never) the full training state is saved. Every ``eval_every``
    epochs (0 = never) the verdict of ``hmmrnn.compare`` is computed on ``eval_n`` fresh RNN
    sequences and recorded in the history (a "yes" counts once the verdict on one further independent
    sample of ``confirmations`` × ``eval_n`` sequences says yes too); with ``early_stop`` training
    stops at the first epoch whose model emulates the HMM, and that model becomes
    ``model.safetensors``. With ``retries`` (needs ``eval_every``), a run that is stuck — no
    emulation and a best validation loss that improved by less than ``stuck_tolerance`` (relative)
    over the last ``stuck_patience`` epochs — is archived under ``attempts/`` and restarted with
    seed + 1000·k, at most ``retries`` times.

    With ``carry_states`` every training (and validation) sequence slot keeps its hidden state from
    one epoch to the next: each epoch's window of ``seq_len`` steps starts where the slot's previous
    window ended, and at the start of each epoch a fraction ``reset_fraction`` of the slots, drawn at
    random, restarts from h_0. The windows therefore start at every age 0, T, 2T, ... of the
    network's own chains (age ≥ kT with probability (1 − reset_fraction)^k), and they are matched
    against HMM windows started from the HMM's stationary distribution: the network is trained to be
    a stationary emulator, not one that is right only for T steps after h_0 = 0 (docs/method.md,
    "Stationary training"). No gradient flows into the carried states (truncated backpropagation).
    With ``fresh_fraction`` f > 0, a fixed share f of the slots, spread over every batch, restarts
    from h_0 every epoch and is matched separately against HMM windows from its start distribution
    (objective f · L_fresh + (1 − f) · L_carried), so the transient after h_0 is trained as much as
    the long run and neither population can make up for the other's error.

    ``divergence_estimator = "split"`` replaces the batch's divergence S(x, y) by
    ½ [S(x₁, y₁) + S(x₂, y₂)] − ½ S(x₁, x₂) − ½ S(y₁, y₂) over halves of the batch (zero in expectation
    for a model that emits the targets' distribution; ``hmmrnn._sinkhorn.SplitBatchDivergence``).

    ``likelihood_weight`` λ > 0 adds λ W₂² between the per-step HMM log-likelihoods of the emitted
    sequences and of the target sequences (``hmmrnn._likelihood``; per population, each under the
    HMM started as its targets are).

    ``calibration_weight`` λ > 0 adds λ Σ_jk (O_jk − E_jk)² / (N (O_jk + E_jk)): per cell j of the
    HMM's belief simplex, the network's expected counts of each symbol k against the HMM filter's
    prediction for the same steps (``hmmrnn._calibration``; per population, like the likelihood).

    ``emission_weight`` λ > 0 adds λ · mean_t min_z KL(E_z ‖ p_t): each step's output probabilities
    p_t = softmax(W_out h_t) held to the nearest row of the HMM's emission matrix E
    (``hmmrnn._emission``; per population).

    ``change_count_weight`` λ > 0 adds λ Σ_n (q_n − p_n)² / (q_n + p_n) between the distributions of
    the number of symbol changes per window, the network's (exact given its output probabilities)
    and the HMM's (exact): the spread of the switching across windows that no pooled statistic sees
    (``hmmrnn._dispersion``; per population).

    ``run_age_weight`` λ > 0 adds the same discrimination between the frequencies of (run age a,
    whether the next symbol differs), a = 1..10 steps the symbol has lasted (longer runs pooled):
    whether a symbol changes as often at every age of its run as the HMM's does
    (``hmmrnn._dispersion``; per population).

    ``passage_weight`` λ > 0 adds the same discrimination between the frequencies of the passages
    (x, b, a, y): a run of symbol b lasting a steps (1..30, longer runs pooled), entered from x and
    left to y: which way runs lead, given where they came from (``hmmrnn._dispersion``; per population).

    ``state_weight`` λ > 0 (with state pretraining) adds λ times the n-gram and transition penalties
    on q_t = softmax(W_s h_t), W_s (S, H) the state-pretrained network's readout (fixed), against the
    states HMM: the run keeps one region per hidden state (docs/method.md §3.5; per population).

    ``growth_weight`` γ > 0 (with ``carry_states``) adds γ · max(0, ḡ), ḡ the mean over the carried
    windows (those not restarted from h_0) of the growth rate per step (log|h_T| − log|h_0|) / T:
    zero in expectation for a stationary network, positive where chains run away. Truncated
    backpropagation through one window cannot otherwise see a growth that compounds over many
    (docs/method.md, "Stationary training").

    ``weight_average`` h > 0 keeps an exponential moving average of the weights, updated after every
    epoch: w̄ ← β w̄ + (1 − β) w with β = 2^(−1/h), started at the weights of the first epoch that
    averages. Validation, the periodic verdict, the kept weights (``model.safetensors``) and the
    final ones judge and store w̄; Adam goes on from w. Late in training the weights wander around
    the minimum from one epoch to the next, and so do the statistics that the verdict tests; the
    average sits nearer the middle (docs/method.md §3.4).

    State pretraining: with ``state_pretrain_epochs`` E > 0 the network is first trained for E epochs
    on the HMM with the same start and transitions whose state z emits symbol z (91 %; the run's
    settings and loss terms, measured against that HMM), in the run's ``pretrain``
    folder; the run then starts from its weights with a readout W_out fitted on its long run so that
    each state's region emits that state's row of the HMM (``hmmrnn._pretrain``, docs/method.md §3.5):
    one region per hidden state, which training on the symbols alone does not find where two states
    emit the same symbol mostly (``cyclic4``).

    Staged training: with ``refine_from`` E > 0, epochs E + 1, E + 2, ... train with the settings of
    ``refine`` (objective and optimiser settings, ``REFINABLE``) in place of these: the network,
    Adam's moments, the carried states and the data go on; the learning rate restarts at the stage's
    ``lr`` (``learning_rate``), and the best validation loss is compared within the stage
    (docs/method.md §3.4).
    """

    seq_len: int = _setting(30, "Sequence length T of the training windows.")
    num_seq: int = _setting(30_000, "HMM sequences sampled, split into thirds: train / validation / test.")
    epochs: int = _setting(500, "Training epochs. With --resume, a new total.")
    batch_size: int = _setting(4096, "Sequences per optimizer step.")
    lr: float = _setting(1e-3, "Adam learning rate.")
    lr_half_life: float = _setting(0.0, "Halve the learning rate every H epochs (lr * 2^(-(epoch-1)/H)); 0 keeps "
                                   "it constant.")
    betas: tuple[float, float] = _setting((0.9, 0.9), "Adam's (beta1, beta2).", cli=False)
    grad_clip: float = _setting(0.9, "Global gradient-norm clip.")
    blur: float = _setting(0.2, "Blur (entropic scale) of the Sinkhorn divergence.")
    divergence_estimator: str = _setting("batch", "batch: the Sinkhorn divergence of the whole batch (the paper); "
                                         "split: its halves against each other, less the divergence between the "
                                         "model's own halves (no finite-batch preference for less diverse output).",
                                         choices=DIVERGENCE_ESTIMATORS)
    bigram_weight: float = _setting(0.0, "Weight of the n-gram frequency penalty; 0 = the paper's loss.")
    bigram_on: str = _setting("samples", "What the n-gram penalty counts: the straight-through samples or "
                              "softmax of the logits (their exact expectation).", choices=("samples", "probabilities"))
    ngram_order: int = _setting(2, "Longest n-gram the penalty matches (2 = bigrams).")
    transient_steps: int = _setting(0, "With the n-gram penalty: also match the bigrams at each of the first K "
                                    "steps of the windows from h0, one position at a time.")
    transient_weight: float = _setting(0.0, "Weight of each of the first K positions' bigram term "
                                       "(0: the n-gram weight divided by K).")
    pair_lags: int = _setting(0, "With the n-gram penalty: also match the frequencies of the pairs "
                              "(o_t, o_t+k) for k = 2..L, the symbol memory that adjacent words miss.")
    transition_weight: float = _setting(0.0, "Weight of a penalty on the output transition probabilities "
                                        "P(o_t | o_t-1), each row weighted alike (rare symbols included).")
    likelihood_weight: float = _setting(0.0, "Weight of the penalty on the distribution of per-step HMM "
                                        "log-likelihoods.")
    calibration_weight: float = _setting(0.0, "Weight of the penalty on the calibration of the output probabilities "
                                         "against the HMM filter's prediction, per belief cell.")
    emission_weight: float = _setting(0.0, "Weight of the penalty on the KL divergence of each step's output "
                                      "probabilities from the nearest emission row of the HMM.")
    change_count_weight: float = _setting(0.0, "Weight of the penalty on the distribution of the number of symbol "
                                          "changes per window (its spread across windows).")
    run_age_weight: float = _setting(0.0, "Weight of the penalty on the change rate at each age of a symbol's run "
                                     "(1..10 steps; whether changes cluster).")
    passage_weight: float = _setting(0.0, "Weight of the penalty on the passages through a symbol's runs (entry "
                                     "symbol, run length 1..30, exit symbol).")
    state_weight: float = _setting(0.0, "With state pretraining: weight of the n-gram and transition penalties on the "
                                   "pretrained network's state readout (kept fixed) against the states HMM, so that "
                                   "the run keeps one region per hidden state.")
    growth_weight: float = _setting(0.0, "With --carry-states: weight of the penalty on the mean growth rate of "
                                    "|h| across the carried windows.")
    weight_average: float = _setting(0.0, "Half-life in epochs of an exponential moving average of the weights, "
                                     "which validation, the verdict and the saved models use while Adam trains "
                                     "the weights themselves; 0 = off.")
    init_weights: str = _setting("", "Start from the weights in this safetensors file (a run's model.safetensors or "
                                 "one of its checkpoints; the sizes must match) instead of a fresh initialisation; "
                                 "a learned h0 the file lacks starts at 0.")
    state_pretrain_epochs: int = _setting(0, "First train this many epochs on the HMM that emits its states (one "
                                          "symbol per state), then start from that network with a readout fitted "
                                          "to give each state's region its emission row; 0 = off.")
    tau: float = _setting(1.0, "Temperature of the Gumbel-softmax readout.")
    val_every: int = _setting(1, "Validate every K epochs.")
    checkpoint_every: int = _setting(10, "Save the full training state every K epochs; 0 disables.")
    eval_every: int = _setting(0, "Compute the verdict on fresh samples every K epochs and record it in "
                               "history.csv; 0 disables.")
    eval_n: int = _setting(5000, "Sequences generated for each verdict (periodic and final).")
    confirmations: int = _setting(1, "A periodic 'yes' counts once the verdict on one further independent sample "
                                  "of K times --eval-n sequences says yes too, its matched distance pooled over K "
                                  "blocks of --eval-n (0: no confirmation).")
    early_stop: bool = _setting(False, "Stop at the first confirmed periodic 'emulates: yes' (needs --eval-every).")
    retries: int = _setting(0, "Restart a stuck run (no emulation, validation loss flat for --stuck-patience "
                            "epochs) with a new seed, at most N times; needs --eval-every.")
    stuck_patience: int = _setting(100, "Epochs without --stuck-tolerance relative validation improvement that "
                                   "make a run stuck.")
    stuck_tolerance: float = _setting(0.01, "Relative validation improvement that counts as progress.")
    carry_states: bool = _setting(False, "Start each epoch's windows where the previous ones ended (a fraction "
                                  "--reset-fraction restarts from h0), against stationary HMM windows.")
    reset_fraction: float = _setting(0.2, "With --carry-states: share of the carried slots restarted from h0 at "
                                     "random each epoch.")
    fresh_fraction: float = _setting(0.0, "With --carry-states: share of the slots fresh from h0 every epoch, "
                                     "matched as their own population against HMM windows from its start.")
    refine_from: int = _setting(0, "Staged training: from the epoch after this one on (0 = never), train with the "
                                "--refine settings; the learning rate restarts at the stage's --lr.")
    refine: str = _setting("", "Staged training: the second stage's settings as KEY=VALUE pairs separated by commas, "
                           "e.g. 'divergence_estimator=split,emission_weight=1000' (objective and optimiser "
                           "settings only: " + ", ".join(REFINABLE) + ").")
    seed: int = _setting(0, "Seed of data, initialisation and noise.", cli=False)
    device: str = _setting("cpu", "cpu or cuda (cuda:N).")
    recipe: str = _setting("paper", "The recipe these settings started from.", cli=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("lr", "lr_half_life", "grad_clip", "blur", "bigram_weight", "likelihood_weight",
                     "calibration_weight", "emission_weight", "change_count_weight", "run_age_weight", "passage_weight",
                     "state_weight", "growth_weight", "transition_weight", "transient_weight", "tau", "weight_average",
                     "reset_fraction", "fresh_fraction", "stuck_tolerance", *(f"betas[{i}]" for i in (0, 1))):
            value = self.betas[int(name[-2])] if name.startswith("betas") else getattr(self, name)
            _require(isinstance(value, (int, float)) and math.isfinite(value), f"{name} must be a finite number, "
                     f"got {value!r}")
        _require(self.seq_len >= 1, f"seq_len must be >= 1, got {self.seq_len}")
        _require(self.num_seq >= 6, f"num_seq must be >= 6 (split into thirds), got {self.num_seq}")
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 2, f"batch size must be >= 2, got {self.batch_size}")
        _require(self.batch_size <= self.num_seq // 3, f"batch size {self.batch_size} exceeds the {self.num_seq // 3} "
                 "training sequences (num_seq / 3); lower --batch-size or raise --num-seq")
        _require(self.lr > 0, f"learning rate must be > 0, got {self.lr}")
        _require(self.lr_half_life >= 0, f"lr_half_life must be >= 0, got {self.lr_half_life}")
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                 f"betas must be two numbers in [0, 1), got {self.betas}")
        _require(self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}")
        _require(self.blur > 0, f"blur must be > 0, got {self.blur}")
        _require(self.bigram_weight >= 0, f"bigram_weight must be >= 0, got {self.bigram_weight}")
        _require(self.divergence_estimator in DIVERGENCE_ESTIMATORS, f"divergence_estimator must be one of "
                 f"{', '.join(DIVERGENCE_ESTIMATORS)}, got {self.divergence_estimator!r}")
        _require(self.bigram_on in ("samples", "probabilities"),
                 f"bigram_on must be 'samples' or 'probabilities', got {self.bigram_on!r}")
        _require(self.transient_steps >= 0, f"transient_steps must be >= 0, got {self.transient_steps}")
        _require(self.transient_weight >= 0, f"transient_weight must be >= 0, got {self.transient_weight}")
        _require(self.pair_lags == 0 or self.pair_lags >= 2, f"pair_lags must be 0 or >= 2, got {self.pair_lags}")
        _require(2 <= self.ngram_order <= 6, f"ngram_order must lie in [2, 6], got {self.ngram_order}")
        _require(self.likelihood_weight >= 0, f"likelihood_weight must be >= 0, got {self.likelihood_weight}")
        _require(self.calibration_weight >= 0, f"calibration_weight must be >= 0, got {self.calibration_weight}")
        _require(self.emission_weight >= 0, f"emission_weight must be >= 0, got {self.emission_weight}")
        _require(self.change_count_weight >= 0, f"change_count_weight must be >= 0, got {self.change_count_weight}")
        _require(self.run_age_weight >= 0, f"run_age_weight must be >= 0, got {self.run_age_weight}")
        _require(self.run_age_weight == 0 or self.seq_len >= 2, "run_age_weight needs seq_len >= 2")
        _require(self.passage_weight >= 0, f"passage_weight must be >= 0, got {self.passage_weight}")
        _require(self.passage_weight == 0 or self.seq_len >= 3, "passage_weight needs seq_len >= 3")
        _require(self.state_weight >= 0, f"state_weight must be >= 0, got {self.state_weight}")
        _require(self.state_weight == 0 or self.state_pretrain_epochs > 0, "state_weight needs state pretraining "
                 "(state_pretrain_epochs > 0): it holds the run to the pretrained network's state readout")
        _require(self.transition_weight >= 0, f"transition_weight must be >= 0, got {self.transition_weight}")
        _require(self.growth_weight >= 0, f"growth_weight must be >= 0, got {self.growth_weight}")
        _require(self.tau > 0, f"tau must be > 0, got {self.tau}")
        _require(self.weight_average >= 0, f"weight_average must be >= 0, got {self.weight_average}")
        _require(self.val_every >= 1, f"val_every must be >= 1, got {self.val_every}")
        _require(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _require(self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}")
        _require(self.eval_n >= 2, f"eval_n must be >= 2, got {self.eval_n}")
        _require(self.confirmations >= 0, f"confirmations must be >= 0, got {self.confirmations}")
        _require(not self.early_stop or self.eval_every > 0, "early_stop needs eval_every > 0")
        _require(self.retries >= 0, f"retries must be >= 0, got {self.retries}")
        _require(not self.retries or self.eval_every > 0, "retries need eval_every > 0 to detect a stuck run")
        _require(self.stuck_patience >= 1, f"stuck_patience must be >= 1, got {self.stuck_patience}")
        _require(0 <= self.stuck_tolerance < 1, f"stuck_tolerance must lie in [0, 1), got {self.stuck_tolerance}")
        _require(0 <= self.fresh_fraction < 1, f"fresh_fraction must lie in [0, 1), got {self.fresh_fraction}")
        _require(0 < self.reset_fraction <= 1, f"reset_fraction must lie in (0, 1], got {self.reset_fraction}")
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(self.device.split(":")[0] in ("cpu", "cuda"), f"device must be cpu or cuda, got {self.device!r}")
        _require(self.state_pretrain_epochs >= 0, f"state_pretrain_epochs must be >= 0, got {self.state_pretrain_epochs}")
        _require(not (self.state_pretrain_epochs and self.init_weights), "state pretraining and init_weights both "
                 "choose the starting weights; give one of them")
        _require(self.refine_from >= 0, f"refine_from must be >= 0, got {self.refine_from}")
        _require(bool(self.refine_from) == bool(self.refine), "staged training needs both refine_from > 0 and "
                 f"refine settings, got refine_from={self.refine_from} and refine={self.refine!r}")
        if self.refine:
            try:
                self.stage(self.refine_from + 1)  # the second stage's settings must be valid too
            except ConfigError as exc:
                raise ConfigError(f"refine: {exc}") from None

    def refine_settings(self) -> dict[str, Any]:
        """The second stage's settings, parsed from ``refine`` ("KEY=VALUE,KEY=VALUE") by field type."""
        types = {f.name: str(f.type) for f in fields(self)}
        settings: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in self.refine.split(","))):
            key, sep, text = (s.strip() for s in item.partition("="))
            _require(bool(sep) and bool(text), f"refine: expected KEY=VALUE, got {item!r}")
            _require(key in REFINABLE, f"refine: {key!r} cannot change in a second stage; allowed: "
                     f"{', '.join(REFINABLE)}")
            try:
                settings[key] = {"int": int, "float": float, "str": str}[types[key]](text)
            except ValueError:
                raise ConfigError(f"refine: {key} must be {types[key]}, got {text!r}") from None
        return settings

    def in_second_stage(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (1-based) trains with the ``refine`` settings."""
        return bool(self.refine_from) and epoch > self.refine_from

    def stage(self, epoch: int) -> "TrainConfig":
        """The settings that train epoch ``epoch`` (1-based): these, or after ``refine_from`` the
        second stage's (without a further stage)."""
        if not self.in_second_stage(epoch):
            return self
        return replace(self, refine_from=0, refine="", **self.refine_settings())

    def learning_rate(self, epoch: int) -> float:
        """Adam's learning rate in epoch ``epoch`` (1-based): lr · 2^(−(epoch − 1) / lr_half_life),
        or the constant ``lr`` when ``lr_half_life`` is 0; in a second stage (``refine_from`` = E),
        the same with the stage's settings and epoch − E."""
        if self.in_second_stage(epoch):
            return self.stage(epoch).learning_rate(epoch - self.refine_from)
        if self.lr_half_life == 0:
            return self.lr
        return self.lr * 2.0 ** (-(epoch - 1) / self.lr_half_life)

    @property
    def n_train(self) -> int:
        """Sequences in each of the train / validation / test thirds."""
        return self.num_seq // 3


def versions() -> dict[str, str]:
    """Versions of the package and of the libraries that determine the numbers."""
    import numba
    import numpy
    import torch

    from . import __version__

    return {"hmmrnn": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "numba": numba.__version__, "python": platform.python_version()}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run: HMM, model, training, the preset it came from, versions."""

    hmm: HMM
    model: ModelConfig
    train: TrainConfig
    preset: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.model.n_outputs == self.hmm.n_outputs,
                 f"model has {self.model.n_outputs} outputs but the HMM emits {self.hmm.n_outputs} symbols")

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "hmm": self.hmm.to_dict(), "model": asdict(self.model),
                "train": {**asdict(self.train), "betas": list(self.train.betas)},
                "versions": dict(self.versions)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of ``to_dict``; unknown or missing keys raise ``ConfigError``."""
        try:
            model = _dataclass_from(ModelConfig, renamed_keys(data["model"], OLD_NAMES))
            train = _dataclass_from(TrainConfig, data["train"])
            return cls(HMM.from_dict(data["hmm"]), model, train, data.get("preset"),
                       dict(data.get("versions", {})))
        except KeyError as exc:
            raise ConfigError(f"config is missing the section {exc.args[0]!r}") from None


# Names of earlier versions, wherever they stand (config.json's model section, sweep specs, cell records)
OLD_NAMES = {"outputs": "n_outputs", "input": "noise_dim"}


def renamed_keys(values: dict[str, Any], old_to_new: dict[str, str]) -> dict[str, Any]:
    """A record (config section, history row) with the keys of earlier versions under today's names,
    so that run folders of earlier versions still load."""
    return {old_to_new.get(key, key): value for key, value in values.items()}


def _dataclass_from(cls: type, values: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    _require(not unknown, f"unknown {cls.__name__} key(s): {unknown}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad {cls.__name__}: {exc}") from None


def make_config(preset: str | None = None, *, recipe: str = "fast", hmm: HMM | None = None,
                **settings: Any) -> RunConfig:
    """Resolve a preset, a training recipe (``hmmrnn.RECIPES``) and settings into a ``RunConfig``.

    Settings come from the preset, then the recipe (with its settings for this preset, when the HMM is
    the preset's own and ``settings`` set no stage of their own), then the non-None keyword ``settings``: any
    ``ModelConfig`` field but ``n_outputs`` (``hidden``, ``noise_dim``, ``initial_state``) or
    ``TrainConfig`` field but ``recipe``. ``hmm`` replaces the preset's HMM. Without a preset the
    training settings default to those of ``linear3`` (T = 30, 500 epochs, clip 0.9), which suit any
    3-output HMM. The ``fast`` recipe's stationary start (``initial_state="stationary"``) becomes
    h0 = 0 for an HMM whose start distribution is not its stationary one.

    Parameters
    ----------
    preset : a key of ``hmmrnn.PRESETS``, or None.
    recipe : a key of ``hmmrnn.RECIPES``.
    hmm : an ``HMM`` replacing the preset's.
    **settings : model and training settings by field name (``SETTINGS`` lists them).

    Returns
    -------
    The ``RunConfig``; an unknown or invalid setting raises ``ConfigError``.
    """
    if preset is None and hmm is None:
        raise ConfigError("give a preset or an HMM")
    unknown = sorted(set(settings) - set(SETTINGS))
    _require(not unknown, f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    base = get_preset(preset if preset is not None else "linear3")
    own_hmm = hmm is None
    hmm = hmm if hmm is not None else base.hmm
    given = {k: v for k, v in settings.items() if v is not None}
    recipe_settings = dict(get_recipe(recipe).settings)
    if preset is not None and own_hmm:
        # a recipe's settings for a preset were measured on that preset's HMM; a stage of the user's
        # replaces the recipe's stage
        own = dict(get_recipe(recipe).per_preset.get(preset, {}))
        if {"refine_from", "refine"} & set(given):
            own = {k: v for k, v in own.items() if k not in ("refine_from", "refine")}
        recipe_settings.update(own)
    if recipe_settings.get("initial_state") == "stationary" and not _starts_stationary(hmm):
        recipe_settings["initial_state"] = "zero"  # a stationary start would miss this HMM's start distribution
    model = ModelConfig(hidden=base.hidden, noise_dim=base.noise_dim, n_outputs=hmm.n_outputs)
    model = replace(model, **{k: v for k, v in recipe_settings.items() if SETTINGS[k] == "model"})
    model = replace(model, **{k: v for k, v in given.items() if SETTINGS[k] == "model"})
    train = TrainConfig(seq_len=base.seq_len, num_seq=base.num_seq, epochs=base.epochs,
                        batch_size=base.batch_size, lr=base.lr, grad_clip=base.grad_clip, recipe=recipe)
    train = replace(train, **{k: v for k, v in recipe_settings.items() if SETTINGS[k] == "train"})
    train = replace(train, **{k: v for k, v in given.items() if SETTINGS[k] == "train"})
    return RunConfig(hmm, model, train, preset, versions())


def _starts_stationary(hmm: HMM) -> bool:
    """Whether the HMM's start distribution is its stationary distribution π (to 1e-6)."""
    return bool(np.allclose(hmm.start, hmm.stationary_distribution(), atol=1e-6))


#: every keyword setting of ``make_config``, mapped to the config it belongs to
SETTINGS: dict[str, str] = {
    **{f.name: "model" for f in fields(ModelConfig) if f.name != "n_outputs"},
    **{f.name: "train" for f in fields(TrainConfig) if f.name != "recipe"},
}


@dataclass(frozen=True)
class Option:
    """A training setting as a command-line option: ``--name-with-dashes``, its type, help, allowed
    values and the default a user gets (which may depend on the preset and the recipe)."""

    name: str
    type: type
    help: str
    choices: tuple[str, ...] | None
    default_text: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def training_options(exclude: tuple[str, ...] = ()) -> list[Option]:
    """The settings that the ``train`` and ``sweep`` commands offer, derived from the config fields:
    every field with ``cli`` metadata, in field order (model first), less ``exclude``."""
    from .presets import PRESETS, RECIPES

    types = {"int": int, "float": float, "bool": bool, "str": str}
    preset_fields = {f.name for f in fields(Preset)}
    options = []
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if not f.metadata.get("cli", False) or f.name in exclude:
                continue
            per_preset = sorted({getattr(p, f.name) for p in PRESETS.values()}) if f.name in preset_fields else []
            base = per_preset[0] if len(per_preset) == 1 else f.default
            per_recipe = {r.name: r.settings.get(f.name, base) for r in RECIPES.values()}
            if len(per_preset) > 1:
                text = "preset: " + " / ".join(_shown(v) for v in per_preset)
            elif len(set(map(repr, per_recipe.values()))) > 1:
                text = ", ".join(f"{name}: {_shown(v)}" for name, v in per_recipe.items())
            else:
                text = _shown(base) if base != "" else "none"
            text += "".join(f"; {r.name} on {name}: {_shown(values[f.name])}" for r in RECIPES.values()
                            for name, values in r.per_preset.items() if f.name in values)
            options.append(Option(f.name, types[str(f.type)], f.metadata["help"], f.metadata["choices"], text))
    return options


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
