"""Every `Example:` in a public docstring runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import mmquant

MODULES = [m.name for m in pkgutil.walk_packages(mmquant.__path__, "mmquant.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
