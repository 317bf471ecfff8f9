"""Sequence-level action rewards: one action per sequence (a class label: `(K, B)`), or one span per sequence
(extractive QA: sampled start/end tokens)."""

from .base import compute_sequence_rewards
from .classification import CorrectLabelReward, CostMatrixReward, LabelTableReward, RelationReward
from .qa import SpanF1Reward, span_f1, span_text


__all__ = ["CorrectLabelReward", "CostMatrixReward", "LabelTableReward", "RelationReward", "SpanF1Reward", "span_f1", "compute_sequence_rewards", "span_text"]
