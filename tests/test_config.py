"""make_config: settings by name, checked; the command-line options derived from the fields."""

from __future__ import annotations

import pytest

from hmmrnn import ConfigError, make_config
from hmmrnn.config import SETTINGS, training_options
from hmmrnn.presets import PRESETS, RECIPES


def test_settings_override_preset_and_recipe_and_unknown_names_are_refused():
    config = make_config("fully3", recipe="fast", hidden=20, growth_weight=5.0, lr=0.01)
    assert (config.model.hidden, config.train.growth_weight, config.train.lr) == (20, 5.0, 0.01)
    assert config.train.grad_clip == PRESETS["fully3"].grad_clip  # the preset's value
    assert config.train.bigram_weight == RECIPES["fast"].settings["bigram_weight"]  # the recipe's value
    assert make_config("fully3", recipe="paper", bigram_weight=None).train.bigram_weight == 0.0  # None: not given
    with pytest.raises(ConfigError, match="unknown setting.*hiden"):
        make_config("linear3", hiden=20)
    assert SETTINGS["hidden"] == "model" and SETTINGS["growth_weight"] == "train" and "n_outputs" not in SETTINGS


def test_option_defaults_say_where_a_value_comes_from():
    shown = {o.name: o.default_text for o in training_options()}
    assert shown["seq_len"] == "preset: " + " / ".join(str(v) for v in sorted({p.seq_len for p in PRESETS.values()}))
    assert shown["bigram_weight"] == "fast: 1000, paper: 0"  # the recipes differ
    assert shown["blur"] == "0.2"  # one value everywhere
    assert shown["carry_states"] == "fast: on, paper: off"


def test_initial_states_and_burn_in_are_checked():
    from typing import get_args

    from hmmrnn.config import INITIAL_STATES
    from hmmrnn.rnn import InitialState

    assert get_args(InitialState) == INITIAL_STATES  # the model's type and the config's choices agree
    for start in ("zero", "random", "learned", "stationary"):
        assert make_config("linear2", initial_state=start).model.initial_state == start
    assert make_config("linear2", initial_state="stationary", burn_in=30).model.burn_in == 30
    with pytest.raises(ConfigError, match="initial_state must be one of zero, random, learned, stationary"):
        make_config("linear2", initial_state="ones")
    with pytest.raises(ConfigError, match="burn_in must be >= 1, got 0"):
        make_config("linear2", burn_in=0)


def test_the_fast_recipe_starts_stationary_only_where_the_hmm_does():
    from hmmrnn import HMM

    assert make_config("cyclic4").model.initial_state == "stationary"  # every preset starts from pi
    assert make_config("cyclic4", recipe="paper").model.initial_state == "zero"
    assert make_config("cyclic4", initial_state="learned").model.initial_state == "learned"  # the user's wins
    preset_hmm = make_config("linear2").hmm
    first_state = HMM(start=[1.0, 0.0], transition=preset_hmm.transition, emission=preset_hmm.emission)
    assert make_config("linear2", hmm=first_state).model.initial_state == "zero"
    shown = {o.name: o.default_text for o in training_options()}
    assert shown["initial_state"] == "fast: stationary, paper: zero"
