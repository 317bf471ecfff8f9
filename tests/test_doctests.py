"""The worked examples in the library's docstrings are tests too: every module with a `>>>` example runs it."""

import doctest
import importlib
import pathlib

import pytest


PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "trl_tokenlevel"
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if ">>>" in p.read_text()
)


def test_the_examples_were_found():
    assert {"trl_tokenlevel.core", "trl_tokenlevel.rewards.token.entity", "trl_tokenlevel.dynamic.schedules"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": importlib.import_module("torch")})
    assert result.attempted > 0 and result.failed == 0, result
