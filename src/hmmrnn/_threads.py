"""One thread count for everything that computes: torch's intra-op pool and numba's parallel
kernels (the Sinkhorn loss and the matched distances). Setting only torch's, as a sweep worker
used to, left numba using every core in every worker."""

from __future__ import annotations

__all__ = ["set_threads"]


def set_threads(threads: int | None) -> None:
    """Use ``threads`` threads in torch and in numba's kernels for the rest of the process
    (``None``: leave both as they are). Numba cannot use more threads than it started with
    (``NUMBA_NUM_THREADS``, the core count by default); a larger request is capped there.

    Parameters
    ----------
    threads : threads to use, or None.

    Returns
    -------
    None.
    """
    if threads is None:
        return
    if threads < 1:
        from .errors import ConfigError

        raise ConfigError(f"threads must be >= 1, got {threads}")
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
