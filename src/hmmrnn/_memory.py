"""How much memory a new allocation may take: sizes are checked against it before anything big is
allocated, so an absurd size is one clear error instead of a crash or a swapping machine."""

from __future__ import annotations

import os

__all__ = ["available_memory", "gigabytes"]


def available_memory() -> int:
    """Bytes available to a new allocation now (MemAvailable of /proc/meminfo; without it, the
    physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gigabytes(n_bytes: float) -> str:
    """``n_bytes`` as a short text in GB, e.g. '1.6e+08 GB' or '22.7 GB'."""
    return f"{n_bytes / 1e9:.3g} GB"
