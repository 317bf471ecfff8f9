"""Tier 1: the completion-reward interface (placement, None, errors that name the reward)."""

import math

import pytest
import torch

from trl_tokenlevel.rewards.completion.base import compute_completion_rewards, place_reward


IDS = [[5, 6, 3], [7]]


def call(func, placement="last"):
    return compute_completion_rewards([func], [2.0], ["p", "q"], ["a b", "c"], IDS, (2, 4), placement)


def test_dense_sequence_and_none():
    def mixed(prompts, completions, completion_ids, **kwargs):
        return [[1.0, 0.0, -1.0], None]

    total, per = call(mixed)
    assert total.tolist() == [[2.0, 0.0, -2.0, 0.0], [0.0] * 4]
    assert per["mixed"][1].tolist() == [True, False]
    assert per["mixed"][2].tolist() == [[True, True, True, False], [False] * 4]  # the tokens that carry it

    def sequence(prompts, completions, completion_ids, **kwargs):
        return [3.0, 1.0]

    assert call(sequence)[0].tolist() == [[0.0, 0.0, 6.0, 0.0], [2.0, 0.0, 0.0, 0.0]]
    assert call(sequence)[1]["sequence"][2].tolist() == [[False, False, True, False], [True, False, False, False]]
    assert call(sequence, "spread")[0].tolist() == [[2.0, 2.0, 2.0, 0.0], [2.0, 0.0, 0.0, 0.0]]
    assert call(sequence, "spread")[1]["sequence"][2].tolist() == [[True, True, True, False], [True, False, False, False]]


def test_wrong_length_type_and_nan_name_the_reward():
    def too_short(prompts, completions, completion_ids, **kwargs):
        return [[1.0, 2.0], [0.0]]

    with pytest.raises(ValueError, match=r"'too_short' returned 2 values for completion 0, which has 3 tokens"):
        call(too_short)

    def nan_reward(prompts, completions, completion_ids, **kwargs):
        return [math.nan, 1.0]

    with pytest.raises(ValueError, match="'nan_reward' returned nan for completion 0 at token 2"):
        call(nan_reward)

    def inf_reward(prompts, completions, completion_ids, **kwargs):
        return [[0.0, -math.inf, 1.0], 1.0]

    with pytest.raises(ValueError, match="'inf_reward' returned -inf for completion 0 at token 1"):
        call(inf_reward)

    def one_for_all(prompts, completions, completion_ids, **kwargs):
        return [1.0]

    with pytest.raises(ValueError, match="'one_for_all' returned 1 entries for 2 completions"):
        call(one_for_all)
    with pytest.raises(TypeError, match="'r' returned str"):
        place_reward("1", "r", 0, 3, "last")


def test_kwargs_reach_the_reward():
    seen = {}

    def spy(prompts, completions, completion_ids, reference, **kwargs):
        seen.update(reference=reference, completion_ids=completion_ids)
        return [torch.tensor(1.0), torch.ones(1)]

    compute_completion_rewards([spy], [1.0], ["p", "q"], ["a", "b"], IDS, (2, 3), reference=["x", "y"])
    assert seen == {"reference": ["x", "y"], "completion_ids": IDS}
