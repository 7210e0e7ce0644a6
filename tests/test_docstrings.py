"""Every `Example:` in a public docstring runs and prints what it says."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import mmquant

ALL_MODULES = [m.name for m in pkgutil.walk_packages(mmquant.__path__, "mmquant.")]


def _has_examples(name: str) -> bool:
    """Whether the module's source holds a doctest prompt (read as text: collecting imports nothing)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as f:
        return ">>> " in f.read()


MODULES = [name for name in ALL_MODULES if _has_examples(name)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    assert any(t.examples for t in finder.find(module)), f"{name}: no doctest found"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_every_module_with_examples_is_collected():
    assert MODULES, "no module has a docstring example"
    assert len(MODULES) < len(ALL_MODULES)  # the modules without examples are not parametrized
