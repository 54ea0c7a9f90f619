"""Every public function and class has a NumPy-style docstring: each function a Parameters section
naming every parameter and a Returns section; each class a docstring naming its constructor's
parameters (dataclass results: their fields are documented by their own summaries)."""

from __future__ import annotations

import inspect
import re

import pytest

import hmmrnn
import hmmrnn.analysis


def _public():
    for module in (hmmrnn, hmmrnn.analysis):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj


def _documented_names(doc: str) -> set[str]:
    """Names in the ``name : ...`` lines of the Parameters section (``a, b : ...`` names both)."""
    section = re.split(r"\n(?:Returns|Yields|Raises|Notes|Examples)\n-+\n", doc.split("Parameters\n----------\n", 1)[1])[0]
    names = set()
    for line in section.splitlines():
        match = re.match(r"^(\*{0,2}[\w, *]+?) :", line)
        if match:
            names |= {n.strip().lstrip("*") for n in match.group(1).split(",")}
    return names


def _parameters(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.name not in ("self", "cls") and p.kind is not inspect.Parameter.VAR_POSITIONAL]


@pytest.mark.parametrize("name, obj", list(_public()), ids=[n for n, _ in _public()])
def test_public_name_has_a_numpy_docstring(name, obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"{name} has no docstring"
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        if init is None or hasattr(obj, "__dataclass_fields__"):
            return
        documented = set(re.findall(r"\b(\w+)\b", doc))
        missing = [p for p in _parameters(init) if p not in documented and p != "kwargs"]
        assert not missing, f"{name}: constructor parameters not in the docstring: {missing}"
        return
    parameters = _parameters(obj)
    if parameters:
        assert "Parameters\n----------\n" in doc, f"{name}: no Parameters section"
        missing = [p for p in parameters if p not in _documented_names(doc)]
        assert not missing, f"{name}: parameters not documented: {missing}"
    assert re.search(r"\nReturns\n-------\n", doc) or inspect.signature(obj).return_annotation in (None, "None"), \
        f"{name}: no Returns section"
