"""`TokenAccuracyReward`: +1 for each correctly labelled word, -1 for each wrong one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .base import TokenReward


class TokenAccuracyReward(TokenReward):
    """Rewards every word position for its own label: `correct_reward` if the sampled label equals the gold one,
    `-incorrect_penalty` otherwise, optionally scaled by a weight for the gold class.

    Args:
        correct_reward (`float`, defaults to `1.0`): reward for a correct label.
        incorrect_penalty (`float`, defaults to `1.0`): penalty (subtracted) for a wrong label.
        class_weights (`Mapping[str, float]`, *optional*): multiplies the reward of positions whose *gold* label has
            this name, e.g. `{"O": 0.2}` so the many `O` tokens do not dominate. Unlisted labels weigh 1.

    Example:
        >>> names = ["O", "B-PER", "I-PER"]
        >>> gold = torch.tensor([[1, 2, 0]])
        >>> sampled = torch.tensor([[[1, 0, 0]]])  # K=1: B-PER O O
        >>> TokenAccuracyReward()(sampled, gold, gold != -100, names).tolist()
        [[[1.0, -1.0, 1.0]]]
    """

    def __init__(
        self,
        correct_reward: float = 1.0,
        incorrect_penalty: float = 1.0,
        class_weights: Mapping[str, float] | None = None,
    ):
        self.correct_reward = correct_reward
        self.incorrect_penalty = incorrect_penalty
        self.class_weights = dict(class_weights or {})

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs) -> torch.Tensor:
        correct = sampled_labels == gold_labels.unsqueeze(0)
        rewards = torch.where(correct, self.correct_reward, -self.incorrect_penalty).float()
        if self.class_weights:
            unknown = set(self.class_weights) - set(label_names)
            if unknown:
                raise ValueError(f"class_weights names unknown labels {sorted(unknown)}; known: {list(label_names)}.")
            table = torch.tensor([self.class_weights.get(n, 1.0) for n in label_names], device=rewards.device)
            rewards = rewards * table[gold_labels.clamp(min=0)].unsqueeze(0)
        return rewards * word_mask.unsqueeze(0)
