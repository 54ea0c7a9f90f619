"""Thread control (``hmmrnn._threads``): one setter for torch and numba, and numba's kernels leave
torch's thread count alone. Each case runs in a fresh interpreter, since thread pools start once."""

from __future__ import annotations


def test_set_threads_governs_torch_and_numba():
    import subprocess
    import sys

    script = ("import numba, torch, hmmrnn\n"
              "hmmrnn.set_threads(1)\n"
              "print(torch.get_num_threads(), numba.get_num_threads())\n"
              "hmmrnn.set_threads(10_000)\n"  # numba caps at the threads it started with
              "print(torch.get_num_threads(), numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "10000", "True"]


def test_numba_kernels_leave_torch_thread_count_alone():
    """Numba's OpenMP layer resets the OpenMP thread count when it first launches (in a fresh process)."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1)\n"
            "import numpy as np\n"
            "from hmmrnn._sinkhorn import OneHotSinkhornDivergence\n"
            "from hmmrnn.metrics import matched_distances\n"
            "matched_distances(np.zeros((6, 4), int), np.ones((6, 4), int), 3)\n"
            "x = torch.nn.functional.one_hot(torch.randint(0, 3, (6, 4)), 3).float().reshape(6, -1)\n"
            "OneHotSinkhornDivergence(3, 0.2)(x, x)\n"
            "print(torch.get_num_threads())\n")
    env = {**__import__("os").environ, "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"
