"""Reward functions. Token-classification rewards follow the interface documented in `rewards/base.py`."""

from .base import RewardFunc, TokenReward, compute_token_rewards, reward_name
from .entity import EntitySpanReward, SentenceF1Reward, SpanPrecisionReward, SpanRecallReward, span_counts
from .spans import Span, extract_spans
from .token_accuracy import TokenAccuracyReward


__all__ = [
    "EntitySpanReward",
    "RewardFunc",
    "SentenceF1Reward",
    "Span",
    "SpanPrecisionReward",
    "SpanRecallReward",
    "TokenAccuracyReward",
    "TokenReward",
    "compute_token_rewards",
    "extract_spans",
    "reward_name",
    "span_counts",
]
