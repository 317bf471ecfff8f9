"""What every reward shares, whatever its interface: its name in logs, unique names, weights, and the check that
its values are finite."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from trl.trainer.utils import get_callable_name


RewardFunc = Callable[..., Any]

reward_name = get_callable_name
"""The name a reward is logged under: `__name__` for functions (unwrapping `functools.partial`), the class name for
callable objects. TRL's helper, so names match GRPO's `rewards/<name>/mean`."""


def unique_reward_names(names: Sequence[str]) -> list[str]:
    """Reward names made unique: a repeated name gets the suffix `_<index>`.

        >>> unique_reward_names(["f1", "len", "f1"])
        ['f1', 'len', 'f1_2']
    """
    out: list[str] = []
    for name in names:
        out.append(f"{name}_{len(out)}" if name in out else name)
    return out


def resolve_reward_weights(reward_funcs, reward_weights=None, config_weights=None) -> list[float]:
    """The weight of each reward: `reward_weights` if given, else the config's, else 1.0 each. Lengths must match and
    every weight must be a finite number."""
    weights = reward_weights if reward_weights is not None else config_weights
    weights = [float(w) for w in weights] if weights is not None else [1.0] * len(reward_funcs)
    names = [reward_name(f) for f in reward_funcs]
    if len(weights) != len(reward_funcs):
        raise ValueError(f"Got {len(reward_funcs)} reward functions ({names}) but {len(weights)} reward weights.")
    for name, weight in zip(names, weights):
        if not math.isfinite(weight):
            raise ValueError(f"The weight of reward {name!r} is {weight}: reward weights must be finite numbers.")
    return weights


def check_finite(rewards: torch.Tensor, counted: torch.Tensor, name: str, unit: str = "example") -> None:
    """Raises if `rewards` holds NaN or +-inf where `counted` is true, naming the reward, the first bad example (the
    first dimension's index, or the `(sample, example)` pair for 3-D rewards) and the position.

    Args:
        rewards (`torch.Tensor`): `(N, T)` or `(K, B, T)` rewards.
        counted (`torch.Tensor`): bool, same shape: the positions the trainer uses.
        name (`str`): the reward's name.
        unit (`str`, defaults to `"example"`): what the first index counts, for the message (`"completion"`, ...).
    """
    bad = counted & ~torch.isfinite(rewards)
    if bool(bad.any()):
        index = [int(i) for i in bad.nonzero()[0]]
        where = f"sample {index[0]}, {unit} {index[1]}" if len(index) == 3 else f"{unit} {index[0]}"
        raise ValueError(
            f"Reward {name!r} returned {float(rewards[tuple(index)])} at {where}, position {index[-1]} "
            f"({int(bad.sum())} non-finite values in all): rewards must be finite numbers. Fix the reward function "
            "(clip or guard the division/log that produced it)."
        )


class NamedReward:
    """Base class of the built-in rewards: gives callable objects a `__name__` (their class name) for logging."""

    @property
    def __name__(self) -> str:  # noqa: D401 - mirrors function objects
        return type(self).__name__
