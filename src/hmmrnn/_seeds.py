"""One seed scheme: every stochastic step draws from a stream derived from the user's seed and a
name for its purpose, so that no two purposes share random numbers and adding a draw in one place
changes no other.

    stream(seed, "residency", "rollouts") -> a 63-bit seed

The derivation is numpy's ``SeedSequence`` over [seed, key₁, key₂, …], with a string key replaced by
its CRC-32 and an integer key used as is (training's purposes are the small integers 1–6, which keeps
its streams, and so every trained run, unchanged).
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["stream"]


def stream(seed: int, *purpose: str | int) -> int:
    """The seed of the stream named ``purpose`` under the user's ``seed``; a non-negative 63-bit int
    (valid for numpy, torch.Generator.manual_seed and Python's random)."""
    key = [int(seed)] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in purpose]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0] >> 1)
