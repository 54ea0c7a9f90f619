"""Settings files (``hmmrnn._textfiles``): TOML and JSON give the same settings; malformed text is a
ValueError, which the callers turn into one line naming the file."""

from __future__ import annotations

import pytest

from hmmrnn._textfiles import loads_settings

SETTINGS = {"presets": ["linear2", "linear3"], "hidden": [50, 150], "overrides": {"epochs": 40, "lr": 0.001}}


def test_toml_and_json_give_the_same_settings():
    toml = 'presets = ["linear2", "linear3"]\nhidden = [50, 150]\n[overrides]\nepochs = 40\nlr = 0.001\n'
    json = '{"presets": ["linear2", "linear3"], "hidden": [50, 150], "overrides": {"epochs": 40, "lr": 0.001}}'
    assert loads_settings(toml, ".toml") == SETTINGS
    assert loads_settings(toml, ".TOML") == SETTINGS  # the suffix's case does not matter
    assert loads_settings(json, ".json") == SETTINGS
    assert loads_settings(json, "") == SETTINGS  # anything but .toml is read as JSON


@pytest.mark.parametrize("text, suffix", [("presets = [", ".toml"), ('{"presets": ', ".json"),
                                          ('{"a": 1}', ".toml"), ("a = 1", ".json")])
def test_malformed_text_is_a_value_error(text, suffix):
    with pytest.raises(ValueError):
        loads_settings(text, suffix)
