"""Every example in a docstring of the package runs and prints what it says."""

import doctest
import importlib
import pkgutil
import warnings

import matplotlib
import pytest

import skshortcut

MODULES = sorted(info.name for info in pkgutil.walk_packages(skshortcut.__path__, "skshortcut."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    matplotlib.use("Agg")
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"


def test_every_public_object_has_an_example():
    missing = []
    for name in skshortcut.__all__:
        doc = getattr(skshortcut, name).__doc__ or ""
        if "Examples" not in doc:
            missing.append(name)
    assert not missing, missing
