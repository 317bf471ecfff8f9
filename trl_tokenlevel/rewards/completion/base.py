"""The reward interface for generation (causal LMs), and the code that calls, checks and places the rewards.

A completion reward is any callable with this signature::

    def my_reward(prompts, completions, completion_ids, **kwargs) -> list:
        ...

- `prompts` (`list`): the prompt of every completion (text or chat messages, as in the dataset), repeated K times.
- `completions` (`list[str]`): the completions decoded with `skip_special_tokens=True` (for reading only).
- `completion_ids` (`list[list[int]]`): the sampled token ids, up to and including EOS when one was sampled.
- `**kwargs`: the dataset's other columns (each a list aligned with `prompts`), plus `prompt_ids` (`list[list[int]]`,
  the prompt tokens without padding) and `trainer_state`.

It returns a list with one entry per completion, each either

- a list (or 1-D tensor) of floats, one per id in `completion_ids[i]`: a **dense** reward;
- a float: a **sequence** reward, placed on the last token (`sequence_reward_placement="last"`) or spread evenly
  over the completion's tokens (`"spread"`);
- `None`: the reward does not apply to this completion (it contributes 0 and is left out of its logged mean, its
  running statistics and its constraint measurement).

A wrong length, a wrong type or NaN raise an error that names the reward and the completion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..common import NamedReward, RewardFunc, check_finite, reward_name, unique_reward_names


PLACEMENTS = ("last", "spread")


def _dense_values(value, name: str, index: int, length: int) -> list[float]:
    values = value.detach().float().cpu().tolist() if isinstance(value, torch.Tensor) else list(value)
    if len(values) != length:
        raise ValueError(
            f"Reward {name!r} returned {len(values)} values for completion {index}, which has {length} tokens "
            f"(len(completion_ids[{index}])). Return one float per completion token (dense), one float per "
            "completion (sequence), or None."
        )
    return [float(v) for v in values]


def _is_sequence_reward(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, torch.Tensor) and value.dim() == 0
    )


def place_reward(value, name: str, index: int, length: int, placement: str) -> list[float] | None:
    """Turn one reward-function output into `length` per-token rewards (`None` stays `None`).

    Example:
        >>> place_reward(3.0, "r", 0, 3, "last"), place_reward(3.0, "r", 0, 3, "spread")
        ([0.0, 0.0, 3.0], [1.0, 1.0, 1.0])
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if placement == "last":
            values = [0.0] * (length - 1) + [float(value)]
        elif placement == "spread":
            values = [float(value) / length] * length
        else:
            raise ValueError(f"sequence_reward_placement must be one of {PLACEMENTS}, got {placement!r}.")
    elif isinstance(value, (list, tuple, torch.Tensor)):
        values = _dense_values(value, name, index, length)
    else:
        raise TypeError(
            f"Reward {name!r} returned {type(value).__name__} for completion {index}; expected a float (sequence "
            "reward), a list of floats (one per completion token) or None."
        )
    for position, v in enumerate(values):
        if not math.isfinite(v):
            raise ValueError(
                f"Reward {name!r} returned {v} for completion {index} at token {position}: rewards must be finite "
                "numbers (return None if the reward does not apply to a completion)."
            )
    return values


class CompletionReward(NamedReward):
    """Base class for the built-in completion rewards (the interface of this module)."""

    def __call__(self, prompts: list, completions: list[str], completion_ids: list[list[int]], **kwargs) -> list:
        raise NotImplementedError


def compute_completion_rewards(
    reward_funcs: Sequence[RewardFunc],
    reward_weights: Sequence[float],
    prompts: list,
    completions: list[str],
    completion_ids: list[list[int]],
    shape: tuple[int, int],
    placement: str = "last",
    device=None,
    **kwargs,
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Call every reward, check and place its output, and combine the rewards with their weights.

    Args:
        shape (`tuple[int, int]`): `(N, T)`, the padded completion tensor shape.

    Returns:
        `(total, per_reward)`: the weighted per-token sum of shape `(N, T)` and, for each reward name, a triple
        `(rewards, applies, support)`: its unweighted `(N, T)` rewards, a `(N,)` bool tensor of the completions it
        applied to, and a `(N, T)` bool tensor of the tokens that carry it (every token of the completion for a dense
        or spread reward, the last token for a sequence reward placed there, none where it returned `None`). The
        trainer computes running statistics and constraint measurements over `support`, so a sequence reward on the
        last token is averaged per completion, not diluted by the zeros before it.

    Example:
        >>> def mixed(prompts, completions, completion_ids, **kwargs):
        ...     return [5.0, None, [1.0, 2.0]]
        >>> _, per = compute_completion_rewards([mixed], [1.0], ["p"] * 3, ["a b", "c", "d e"], [[4, 5], [6], [7, 8]], (3, 3))
        >>> per["mixed"][2].int().tolist()
        [[0, 1, 0], [0, 0, 0], [1, 1, 0]]
    """
    if len(reward_funcs) != len(reward_weights):
        raise ValueError(f"Got {len(reward_funcs)} reward functions but {len(reward_weights)} reward weights.")
    total = torch.zeros(shape, dtype=torch.float32, device=device)
    per_reward: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    names = unique_reward_names([reward_name(f) for f in reward_funcs])
    for func, weight, name in zip(reward_funcs, reward_weights, names):
        outputs = func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        if outputs is None or len(outputs) != len(completions):
            found = "None" if outputs is None else f"{len(outputs)} entries"
            raise ValueError(f"Reward {name!r} returned {found} for {len(completions)} completions; return one per completion.")
        rewards = torch.zeros(shape, dtype=torch.float32)
        applies = torch.zeros(shape[0], dtype=torch.bool)
        support = torch.zeros(shape, dtype=torch.bool)
        for i, (value, ids) in enumerate(zip(outputs, completion_ids)):
            values = place_reward(value, name, i, len(ids), placement)
            if values is not None:
                rewards[i, : len(values)] = torch.tensor(values)
                applies[i] = True
                if _is_sequence_reward(value) and placement == "last":
                    support[i, len(values) - 1] = True
                else:
                    support[i, : len(values)] = True
        per_reward[name] = (rewards.to(device), applies.to(device), support.to(device))
        rewards = per_reward[name][0]
        total = total + float(weight) * rewards
    return total, per_reward


class SummedReward(CompletionReward):
    """The sequence-level version of a dense reward: one float per completion, the sum of `reward`'s per-token
    values, which the trainer then places like any sequence reward (on the last token by default).

    Use it to ask whether per-token credit matters: the same signal, once token by token and once summed into one
    number per completion. Sequence values (floats) and `None` pass through unchanged. Logged as
    `<name of reward>_summed`.

    Example:
        >>> def dense(prompts, completions, completion_ids, **kwargs):
        ...     return [[0.0, -1.0, -1.0], 0.5, None]
        >>> SummedReward(dense)(["p"] * 3, ["a", "b", "c"], [[1, 2, 3], [4], [5]])
        [-2.0, 0.5, None]
        >>> SummedReward(dense).__name__
        'dense_summed'
    """

    def __init__(self, reward):
        if not callable(reward):
            raise TypeError(f"SummedReward wraps a reward function; got {type(reward).__name__}.")
        self.reward = reward

    @property
    def __name__(self) -> str:
        return f"{reward_name(self.reward)}_summed"

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        # by keyword, as the trainer calls rewards: TRL-style `def r(completions, **kwargs)` works wrapped too
        values = self.reward(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        name = reward_name(self.reward)
        if values is None or len(values) != len(completion_ids):
            found = "None" if values is None else f"{len(values)} entries"
            raise ValueError(f"Reward {name!r} (in SummedReward) returned {found} for {len(completion_ids)} "
                             "completions; return one per completion.")
        out = []
        for index, (value, ids) in enumerate(zip(values, completion_ids)):
            if value is None or _is_sequence_reward(value):
                out.append(None if value is None else float(value))
            else:
                out.append(float(sum(_dense_values(value, name, index, len(ids)))))
        return out
