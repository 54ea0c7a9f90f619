"""Exceptions with one-line messages that name the problem; the CLI prints them as ``error: ...``."""

from __future__ import annotations

__all__ = ["HmmrnnError", "HMMSpecError", "UnknownPresetError", "ConfigError", "RunDirError", "TrainingDivergedError",
           "Interrupted", "NothingFound"]


class HmmrnnError(Exception):
    """Base class: a user-facing problem with a clear one-line message."""


class HMMSpecError(HmmrnnError, ValueError):
    """An HMM specification is malformed (shape, sign, normalisation, unknown key or file)."""


class UnknownPresetError(HmmrnnError, ValueError):
    """A preset name that does not exist."""


class ConfigError(HmmrnnError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class RunDirError(HmmrnnError):
    """A run directory is missing, incomplete, corrupt, inconsistent or not writable."""


class TrainingDivergedError(HmmrnnError):
    """Training produced a non-finite loss or weight; the last good weights are on disk."""


class Interrupted(HmmrnnError):
    """The user stopped a command (Ctrl-C); what was written so far is consistent and resumable."""


class NothingFound(HmmrnnError):
    """An analysis found nothing of its kind in this network (no usable transition, no kick neurons, a
    model with the wrong number of outputs): a finding, reported as such, not a failure."""
