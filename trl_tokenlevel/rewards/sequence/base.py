"""Calling and checking sequence-classification rewards (the interface is in `classification.py`: one label per
sequence, rewards of shape `(K, B)`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..common import RewardFunc, check_finite, reward_name, unique_reward_names


def compute_sequence_rewards(
    reward_funcs: Sequence[RewardFunc],
    reward_weights: Sequence[float],
    sampled_labels: torch.Tensor,
    gold_labels: torch.Tensor,
    label_names: Sequence[str],
    **kwargs,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Calls every reward on `(sampled_labels (K, B), gold_labels (B,), label_names, **kwargs)`, checks the shape and
    finiteness of what it returns, and adds the rewards up with their weights.

    Returns:
        `(total, per_reward)`: the weighted sum `(K, B)` and `{name: unweighted (K, B) rewards}`.

    Raises:
        `ValueError` naming the reward when its output has the wrong shape or holds NaN or +-inf (with the sample and
        the example), `TypeError` when it is not a tensor or nested list of numbers.

    Example:

    ```python
    >>> from trl_tokenlevel.rewards.sequence import CorrectLabelReward
    >>> total, per_reward = compute_sequence_rewards(
    ...     [CorrectLabelReward()], [2.0], torch.tensor([[1, 0]]), torch.tensor([1, 1]), ["negative", "positive"]
    ... )
    >>> total.tolist(), per_reward["CorrectLabelReward"].tolist()
    ([[2.0, 0.0]], [[1.0, 0.0]])

    ```
    """
    if len(reward_funcs) != len(reward_weights):
        raise ValueError(f"Got {len(reward_funcs)} reward functions but {len(reward_weights)} reward weights.")
    shape = sampled_labels.shape
    total = torch.zeros(shape, dtype=torch.float32, device=sampled_labels.device)
    per_reward: dict[str, torch.Tensor] = {}
    for func, weight, name in zip(reward_funcs, reward_weights, unique_reward_names([reward_name(f) for f in reward_funcs])):
        value = func(sampled_labels, gold_labels, list(label_names), **kwargs)
        try:
            rewards = torch.as_tensor(value, dtype=torch.float32, device=total.device)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"Reward {name!r} returned {type(value).__name__}, not a tensor or nested list of numbers of shape "
                f"{tuple(shape)} (K samples, B sequences): {err}"
            ) from err
        if rewards.shape != shape:
            raise ValueError(
                f"Reward {name!r} returned shape {tuple(rewards.shape)}, expected {tuple(shape)} (K samples, B "
                "sequences: one reward per sampled label)."
            )
        # check_finite names (sample, sequence) for 3-D input: view the rewards as (K, B, 1)
        check_finite(rewards.unsqueeze(-1), torch.ones_like(rewards, dtype=torch.bool).unsqueeze(-1), name, "sequence")
        per_reward[name] = rewards
        total = total + float(weight) * rewards
    return total, per_reward
