"""The worked examples in the library's docstrings are tests too."""

import doctest
import importlib

import pytest


MODULES = [
    "trl_tokenlevel.generation.advantages", "trl_tokenlevel.generation.rollout", "trl_tokenlevel.generation.text_metrics",
    "trl_tokenlevel.rewards.completion", "trl_tokenlevel.rewards.generation", "trl_tokenlevel.rewards.faithfulness",
    "trl_tokenlevel.core", "trl_tokenlevel.kl_control", "trl_tokenlevel.rewards.spans", "trl_tokenlevel.rewards.entity",
    "trl_tokenlevel.rewards.token_accuracy", "trl_tokenlevel.metrics.ner",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": importlib.import_module("torch")})
    assert result.attempted > 0 and result.failed == 0, result
