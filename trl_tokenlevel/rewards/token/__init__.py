"""Token-classification rewards: `(sampled_labels, gold_labels, word_mask, label_names, **kwargs) -> (K, B, T)`."""

from .base import TokenReward, compute_token_rewards
from .entity import EntitySpanReward, SentenceF1Reward, SpanPrecisionReward, SpanRecallReward, span_counts
from .sentence_feedback import SentenceFeedbackReward
from .span_feedback import SpanFeedbackReward, words_to_positions
from .spans import Span, extract_spans, split_tag
from .token_accuracy import TokenAccuracyReward


__all__ = [
    "EntitySpanReward",
    "SentenceF1Reward",
    "SentenceFeedbackReward",
    "Span",
    "SpanFeedbackReward",
    "SpanPrecisionReward",
    "SpanRecallReward",
    "TokenAccuracyReward",
    "TokenReward",
    "compute_token_rewards",
    "extract_spans",
    "span_counts",
    "split_tag",
    "words_to_positions",
]
