"""The per-token reward interface for token classification, and the code that calls and checks rewards.

A token-classification reward is any callable with this signature::

    def my_reward(sampled_labels, gold_labels, word_mask, label_names, **kwargs) -> torch.Tensor | list:
        ...

- `sampled_labels` (`torch.LongTensor` of shape `(K, B, T)`): the label id chosen at every position by each of the
  K sampled label sequences (the trainer also passes the greedy sequence as one more row of K).
- `gold_labels` (`torch.LongTensor` of shape `(B, T)`): gold label ids, -100 where no label applies (special
  tokens, continuation sub-tokens, padding).
- `word_mask` (`torch.BoolTensor` of shape `(B, T)`): positions that count, i.e. `gold_labels != -100`.
- `label_names` (`list[str]`): `label_names[i]` is the name of label id `i` (IOB2 tags such as `"B-PER"`).
- `**kwargs`: the dataset's other columns for this batch (for instance `tokens` or `id`), when the trainer keeps
  them, plus `trainer_state`.

It returns per-token rewards of shape `(K, B, T)` (a tensor or nested lists). Values outside `word_mask` are
ignored. The name used in logs is `reward.__name__`, or the class name for callable objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..common import NamedReward, RewardFunc, check_finite, reward_name, unique_reward_names


class TokenReward(NamedReward):
    """Base class for the built-in token-classification rewards (the interface of this module)."""

    def __call__(
        self,
        sampled_labels: torch.Tensor,
        gold_labels: torch.Tensor,
        word_mask: torch.Tensor,
        label_names: Sequence[str],
        **kwargs,
    ) -> torch.Tensor:
        raise NotImplementedError


def _as_reward_tensor(value: Any, name: str, shape: torch.Size, device: torch.device) -> torch.Tensor:
    try:
        rewards = torch.as_tensor(value, dtype=torch.float32, device=device)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"Reward {name!r} returned {type(value).__name__}, which is not a tensor or nested list of floats of "
            f"shape {tuple(shape)} (K, B, T): {err}"
        ) from err
    if rewards.shape != shape:
        raise ValueError(
            f"Reward {name!r} returned shape {tuple(rewards.shape)}, expected {tuple(shape)} "
            "(K samples, B sentences, T positions: one reward per position of every sampled label sequence)."
        )
    return rewards


def compute_token_rewards(
    reward_funcs: Sequence[RewardFunc],
    reward_weights: Sequence[float],
    sampled_labels: torch.Tensor,
    gold_labels: torch.Tensor,
    word_mask: torch.Tensor,
    label_names: Sequence[str],
    **kwargs,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Call every reward, check what it returns, and combine the rewards with their weights.

    Returns:
        `(total, per_reward)`: the weighted sum of shape `(K, B, T)` (zero outside `word_mask`) and a dict from
        reward name to that reward's unweighted `(K, B, T)` tensor.

    Raises:
        `ValueError` naming the reward when its output has the wrong shape or holds NaN or +-inf at a counted position.
    """
    if len(reward_funcs) != len(reward_weights):
        raise ValueError(f"Got {len(reward_funcs)} reward functions but {len(reward_weights)} reward weights.")
    shape = sampled_labels.shape
    mask = word_mask.bool().unsqueeze(0).expand(shape)
    total = torch.zeros(shape, dtype=torch.float32, device=sampled_labels.device)
    per_reward: dict[str, torch.Tensor] = {}
    names = unique_reward_names([reward_name(f) for f in reward_funcs])
    for func, weight, name in zip(reward_funcs, reward_weights, names):
        rewards = _as_reward_tensor(
            func(sampled_labels, gold_labels, word_mask, list(label_names), **kwargs), name, shape, total.device
        )
        check_finite(rewards, mask, name, unit="sentence")
        rewards = rewards.masked_fill(~mask, 0.0)
        per_reward[name] = rewards
        total = total + float(weight) * rewards
    return total, per_reward
