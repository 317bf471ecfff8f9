"""Completion (generation) rewards: `(prompts, completions, completion_ids, **kwargs) -> one entry per completion`
(per-token list, float, or None)."""

from .attention_credit import AttentionCreditReward, attention_to_policy_tokens, redistribute_by_attention
from .base import PLACEMENTS, CompletionReward, SummedReward, compute_completion_rewards, place_reward
from .faithfulness import EntityFaithfulnessReward, capitalized_entities, hallucinated_entities
from .reward_models import SequenceRewardModelShaping, TokenClassifierReward
from .text import FormatPenalty, LengthPenalty, ReferenceOverlapReward, RougeLReward
from .translation import BleuReward, CharNgramOverlapReward, ChrFReward, char_ngram_credits


__all__ = [
    "PLACEMENTS",
    "AttentionCreditReward",
    "BleuReward",
    "CharNgramOverlapReward",
    "ChrFReward",
    "CompletionReward",
    "EntityFaithfulnessReward",
    "FormatPenalty",
    "LengthPenalty",
    "ReferenceOverlapReward",
    "RougeLReward",
    "SequenceRewardModelShaping",
    "SummedReward",
    "TokenClassifierReward",
    "attention_to_policy_tokens",
    "capitalized_entities",
    "char_ngram_credits",
    "compute_completion_rewards",
    "hallucinated_entities",
    "place_reward",
    "redistribute_by_attention",
]
