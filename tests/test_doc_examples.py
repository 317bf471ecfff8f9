"""The worked examples in the docstrings of the dynamic-reward modules and the span rewards are run as doctests."""

import doctest

import pytest

import trl_tokenlevel.multi_objective
import trl_tokenlevel.online
import trl_tokenlevel.reward_normalization
import trl_tokenlevel.rewards.entity
import trl_tokenlevel.schedules


@pytest.mark.parametrize(
    "module",
    [trl_tokenlevel.schedules, trl_tokenlevel.reward_normalization, trl_tokenlevel.multi_objective,
     trl_tokenlevel.online, trl_tokenlevel.rewards.entity],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": __import__("torch")})
    assert result.attempted > 0 and result.failed == 0, result
