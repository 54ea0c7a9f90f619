"""Reading the settings files users write (HMM specs, sweep specs): JSON or TOML, chosen by suffix."""

from __future__ import annotations

import json
from typing import Any


def loads_settings(text: str, suffix: str) -> Any:
    """Parse ``text`` as TOML when ``suffix`` is ``.toml`` and as JSON otherwise; a malformed text
    raises ValueError (``json.JSONDecodeError`` and ``tomllib.TOMLDecodeError`` both are)."""
    if suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    return json.loads(text)
