"""hmmrnn: train noise-driven RNNs to emulate hidden Markov models, then reverse-engineer them.

The public API::

    import hmmrnn
    hmm = hmmrnn.preset("linear2").hmm                  # or hmmrnn.HMM.linear_chain(3), HMM.from_file(...)
    obs, states = hmm.sample(n=1000, length=100, seed=0)
    run = hmmrnn.train("linear2", hidden=150, noise_dim=100, seed=0, out="runs/l2")
    run = hmmrnn.load_run("runs/l2")                     # .hmm, .model, .config, .history
    result = hmmrnn.evaluate(run, n=5000, seed=0)        # verdict at every horizon, saved to metrics.json
"""

__version__ = "0.1.0"

from .config import ModelConfig, RunConfig, TrainConfig, make_config
from .errors import (ConfigError, HmmrnnError, HMMSpecError, RunDirError, TrainingDivergedError,
                     UnknownPresetError)
from .evaluation import Evaluation, Horizons, Thresholds, compare, evaluate, judge
from .hmm import HMM
from .presets import PRESETS, RECIPES, Preset, Recipe, preset
from .rnn import NoiseRNN
from ._threads import set_threads
from .runs import Run, load_run
from .training import resume, train, train_config

__all__ = [
    "__version__",
    "HMM",
    "NoiseRNN",
    "Preset",
    "PRESETS",
    "preset",
    "Recipe",
    "RECIPES",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "make_config",
    "train",
    "train_config",
    "resume",
    "Run",
    "load_run",
    "evaluate",
    "judge",
    "compare",
    "Evaluation",
    "Thresholds",
    "Horizons",
    "HmmrnnError",
    "HMMSpecError",
    "UnknownPresetError",
    "ConfigError",
    "RunDirError",
    "TrainingDivergedError",
    "set_threads",
]
