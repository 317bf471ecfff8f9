"""Per-example rewards for sequence classification (the action is one label per sequence).

A sequence-classification reward is any callable with this signature::

    def my_reward(sampled_labels, gold_labels, label_names, **kwargs) -> torch.Tensor | list:
        ...

- `sampled_labels` (`torch.LongTensor` of shape `(K, B)`): the label sampled for each of the B sequences, K times.
- `gold_labels` (`torch.LongTensor` of shape `(B,)`): the gold label ids.
- `label_names` (`list[str]`): `label_names[i]` is the name of label id `i`.
- `**kwargs`: the dataset's other columns for this batch, when the trainer keeps them.

It returns rewards of shape `(K, B)`. The built-in rewards here are all a table lookup `table[gold, sampled]` with a
`(C, C)` table built from `label_names` ([`LabelTableReward.reward_table`]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import torch

from ...data.semeval import SEMEVAL_OTHER, relation_and_direction


class LabelTableReward:
    """Base class: reward `table[gold, sampled]` for a `(C, C)` table from [`reward_table`]; named for logging."""

    @property
    def __name__(self) -> str:  # noqa: D401 - mirrors function objects
        return type(self).__name__

    def reward_table(self, label_names: Sequence[str]) -> torch.Tensor:
        """`(C, C)` float tensor: entry `[g, s]` is the reward of sampling label `s` when the gold label is `g`."""
        raise NotImplementedError

    def __call__(self, sampled_labels: torch.Tensor, gold_labels: torch.Tensor, label_names: Sequence[str], **kwargs):
        num_labels = len(label_names)
        if sampled_labels.dim() != 2 or gold_labels.dim() != 1 or sampled_labels.shape[1] != gold_labels.shape[0]:
            raise ValueError(
                f"{self.__name__}: expected sampled_labels (K, B) and gold_labels (B,), got "
                f"{tuple(sampled_labels.shape)} and {tuple(gold_labels.shape)}."
            )
        for name, ids in (("gold_labels", gold_labels), ("sampled_labels", sampled_labels)):
            if ids.numel() and (ids.min() < 0 or ids.max() >= num_labels):
                raise ValueError(
                    f"{self.__name__}: {name} holds ids outside 0..{num_labels - 1} ({list(label_names)})."
                )
        table = self.reward_table(list(label_names)).to(sampled_labels.device)  # (C, C)
        return table[gold_labels.unsqueeze(0).expand_as(sampled_labels), sampled_labels]  # (K, B)


class CorrectLabelReward(LabelTableReward):
    """Rewards the right label: `correct_reward` when the sampled label equals the gold one, else `incorrect_reward`.
    With the defaults the mean reward is the accuracy of the samples.

    Args:
        correct_reward (`float`, *optional*, defaults to `1.0`): Reward of a correct label.
        incorrect_reward (`float`, *optional*, defaults to `0.0`): Reward of a wrong label.

    Example:

    ```python
    >>> gold = torch.tensor([1, 0])
    >>> sampled = torch.tensor([[1, 1], [0, 0]])  # K=2 samples for B=2 sentences
    >>> CorrectLabelReward()(sampled, gold, ["negative", "positive"]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]

    ```
    """

    def __init__(self, correct_reward: float = 1.0, incorrect_reward: float = 0.0):
        self.correct_reward = float(correct_reward)
        self.incorrect_reward = float(incorrect_reward)

    def reward_table(self, label_names: Sequence[str]) -> torch.Tensor:
        eye = torch.eye(len(label_names))
        return eye * self.correct_reward + (1 - eye) * self.incorrect_reward


class CostMatrixReward(LabelTableReward):
    """Rewards minus a misclassification cost: reward `-cost[gold][sampled]`.

    Args:
        cost (`Sequence[Sequence[float]]`, `torch.Tensor` or `Mapping[str, Mapping[str, float]]`):
            Either a `(C, C)` matrix indexed `[gold][sampled]` in label-id order, or a nested mapping by label name
            `{gold: {sampled: cost}}`; pairs missing from the mapping cost `0` on the diagonal and `default_cost`
            elsewhere.
        default_cost (`float`, *optional*, defaults to `1.0`): Cost of an unlisted wrong pair (mapping form only).

    Example:

    ```python
    >>> names = ["negative", "positive"]
    >>> reward = CostMatrixReward({"positive": {"negative": 3.0}})  # calling a positive review negative costs 3
    >>> reward(torch.tensor([[0, 0, 1]]), torch.tensor([0, 1, 0]), names).tolist()
    [[0.0, -3.0, -1.0]]

    ```
    """

    def __init__(self, cost: Union[Sequence[Sequence[float]], torch.Tensor, Mapping], default_cost: float = 1.0):
        self.cost = cost
        self.default_cost = float(default_cost)

    def reward_table(self, label_names: Sequence[str]) -> torch.Tensor:
        num_labels = len(label_names)
        if isinstance(self.cost, Mapping):
            unknown = (set(self.cost) | {s for row in self.cost.values() for s in row}) - set(label_names)
            if unknown:
                raise ValueError(
                    f"CostMatrixReward: cost names unknown labels {sorted(unknown)}; known: {label_names}."
                )
            cost = torch.full((num_labels, num_labels), self.default_cost).fill_diagonal_(0.0)
            for gold, row in self.cost.items():
                for sampled, value in row.items():
                    cost[label_names.index(gold), label_names.index(sampled)] = float(value)
        else:
            cost = torch.as_tensor(self.cost, dtype=torch.float32)
            if cost.shape != (num_labels, num_labels):
                raise ValueError(
                    f"CostMatrixReward: cost has shape {tuple(cost.shape)}, expected ({num_labels}, {num_labels}) "
                    f"for labels {label_names} (rows: gold, columns: sampled)."
                )
        return 0.0 - cost  # not -cost, which turns zero costs into -0.0


class RelationReward(LabelTableReward):
    """Reward for directed relation labels such as SemEval-2010 Task 8's (`Cause-Effect(e2,e1)`, ..., `Other`).

    - `correct_reward` for the right relation in the right direction (the only case the official score counts);
    - `direction_credit` for the right relation in the wrong direction (partial credit: the relation was found);
    - `-other_cost` for predicting any relation where the gold label is `Other` (a false positive, which lowers the
      official score's precision);
    - `incorrect_reward` for anything else (a wrong relation, or `Other` where the gold is a relation).

    Args:
        direction_credit (`float`, *optional*, defaults to `0.5`): Reward of the right relation, wrong direction.
        other_cost (`float`, *optional*, defaults to `0.0`): Cost of a relation predicted for a gold `Other`; 0 makes
            it an ordinary error, a positive value discourages false positives.
        correct_reward (`float`, *optional*, defaults to `1.0`): Reward of the exact label.
        incorrect_reward (`float`, *optional*, defaults to `0.0`): Reward of the other errors.
        other_label (`str`, *optional*, defaults to `"Other"`): Name of the no-relation label.

    Example:

    ```python
    >>> names = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Other"]
    >>> gold = torch.tensor([0, 0, 2, 1])
    >>> sampled = torch.tensor([[0, 1, 0, 2]])  # right; wrong direction; relation for Other; Other for a relation
    >>> RelationReward(direction_credit=0.5, other_cost=0.25)(sampled, gold, names).tolist()
    [[1.0, 0.5, -0.25, 0.0]]

    ```
    """

    def __init__(
        self,
        direction_credit: float = 0.5,
        other_cost: float = 0.0,
        correct_reward: float = 1.0,
        incorrect_reward: float = 0.0,
        other_label: str = SEMEVAL_OTHER,
    ):
        self.direction_credit = float(direction_credit)
        self.other_cost = float(other_cost)
        self.correct_reward = float(correct_reward)
        self.incorrect_reward = float(incorrect_reward)
        self.other_label = other_label

    def _relation(self, label: str) -> str:
        if label == self.other_label:
            return label
        try:
            return relation_and_direction(label)[0]
        except ValueError as err:
            raise ValueError(f"RelationReward: {err} Fix: pass directed labels, or the right `other_label`.") from err

    def reward_table(self, label_names: Sequence[str]) -> torch.Tensor:
        relations = [self._relation(name) for name in label_names]
        table = torch.full((len(label_names), len(label_names)), self.incorrect_reward)
        for g, gold_relation in enumerate(relations):
            for s, sampled_relation in enumerate(relations):
                if g == s:
                    table[g, s] = self.correct_reward
                elif gold_relation == self.other_label:
                    table[g, s] = -self.other_cost
                elif gold_relation == sampled_relation:
                    table[g, s] = self.direction_credit
        return table
