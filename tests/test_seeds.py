"""The seed scheme (hmmrnn._seeds): named streams, independent and stable."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import hmmrnn.analysis
from hmmrnn._seeds import stream


def test_streams_are_deterministic_distinct_and_keep_trainings_numbers():
    assert stream(3, "residency", "rollouts") == stream(3, "residency", "rollouts")
    seeds = {stream(s, *p) for s in (0, 1) for p in [("residency", "orbit"), ("residency", "rollouts"),
                                                     ("kick_neurons", "orbit"), ("noise_drift", "point", 0),
                                                     ("noise_drift", "point", 1), (1,), (2,)]}
    assert len(seeds) == 14 and all(0 <= s < 2 ** 63 for s in seeds)
    # training's purposes are the integers 1-6 of the scheme it had before: its runs are unchanged
    old = int(np.random.SeedSequence([5, 3]).generate_state(1, dtype=np.uint64)[0] >> 1)
    assert stream(5, 3) == old


def test_every_analysis_draws_only_from_streams_named_after_it():
    """No two analyses share random numbers: each stream an analysis module derives from the user's
    seed is named after an analysis, or is the one reference orbit whose PCA basis they all share."""
    allowed = set(hmmrnn.analysis.ANALYSES) | {"reference_orbit"}
    names = []
    for path in Path(hmmrnn.analysis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "stream":
                first = node.args[1]
                assert isinstance(first, ast.Constant), f"{path.name}: a stream must be named by a literal"
                names.append(first.value)
    assert set(names) <= allowed, set(names) - allowed
    assert len(set(names)) >= 15  # the streams are spread over the analyses, not shared
