"""Reward functions. Token-classification rewards follow the interface documented in `rewards/base.py`;
completion (generation) rewards the one in `rewards/completion.py`."""

from .completion import compute_completion_rewards
from .faithfulness import EntityFaithfulnessReward, capitalized_entities, hallucinated_entities
from .generation import FormatPenalty, LengthPenalty, ReferenceOverlapReward, RougeLReward
from .reward_models import SequenceRewardModelShaping, TokenClassifierReward
from .base import RewardFunc, TokenReward, compute_token_rewards, reward_name
from .entity import EntitySpanReward, SentenceF1Reward, SpanPrecisionReward, SpanRecallReward, span_counts
from .spans import Span, extract_spans
from .token_accuracy import TokenAccuracyReward


__all__ = [
    "EntityFaithfulnessReward",
    "FormatPenalty",
    "LengthPenalty",
    "ReferenceOverlapReward",
    "RougeLReward",
    "SequenceRewardModelShaping",
    "TokenClassifierReward",
    "capitalized_entities",
    "compute_completion_rewards",
    "hallucinated_entities",
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
