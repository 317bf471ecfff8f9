"""Built-in rewards by name, for recipes, benchmarks and YAML files: `get_reward("entity_span")`.

    >>> type(get_reward("entity_span", match_reward=2.0)).__name__
    'EntitySpanReward'
    >>> get_reward("f1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown reward 'f1'. Known rewards: [...]. Fix: pick one of them, or pass the callable itself to the trainer.
"""

from __future__ import annotations

from collections.abc import Callable

from .completion import (
    EntityFaithfulnessReward,
    FormatPenalty,
    LengthPenalty,
    ReferenceOverlapReward,
    RougeLReward,
    SequenceRewardModelShaping,
    TokenClassifierReward,
)
from .completion import AttentionCreditReward, BleuReward, CharNgramOverlapReward, ChrFReward
from .sequence import CorrectLabelReward, CostMatrixReward, RelationReward, SpanF1Reward
from .token import (
    EntitySpanReward,
    SentenceF1Reward,
    SentenceFeedbackReward,
    SpanFeedbackReward,
    SpanPrecisionReward,
    SpanRecallReward,
    TokenAccuracyReward,
)


REWARDS: dict[str, Callable] = {
    # token classification: (sampled_labels, gold_labels, word_mask, label_names) -> (K, B, T)
    "entity_span": EntitySpanReward,
    "token_accuracy": TokenAccuracyReward,
    "sentence_f1": SentenceF1Reward,
    "span_precision": SpanPrecisionReward,
    "span_recall": SpanRecallReward,
    "span_feedback": SpanFeedbackReward,
    "sentence_feedback": SentenceFeedbackReward,
    # generation: (prompts, completions, completion_ids) -> per completion
    "reference_overlap": ReferenceOverlapReward,
    "rouge_l": RougeLReward,
    "length_penalty": LengthPenalty,
    "format_penalty": FormatPenalty,
    "entity_faithfulness": EntityFaithfulnessReward,
    "token_classifier_reward": TokenClassifierReward,
    "sequence_reward_model_shaping": SequenceRewardModelShaping,
    "attention_credit": AttentionCreditReward,
    "char_ngram_overlap": CharNgramOverlapReward,
    "chrf": ChrFReward,
    "bleu": BleuReward,
    # one action per sequence: a class label (K, B), or an answer span
    "correct_label": CorrectLabelReward,
    "cost_matrix": CostMatrixReward,
    "relation": RelationReward,
    "span_f1": SpanF1Reward,
}


def register_reward(name: str, factory: Callable) -> None:
    """Makes `get_reward(name)` build `factory(**kwargs)`. Refuses to replace an existing name silently."""
    if name in REWARDS and REWARDS[name] is not factory:
        raise ValueError(f"A reward named {name!r} is already registered ({REWARDS[name]!r}); choose another name.")
    REWARDS[name] = factory


def get_reward(name: str, **kwargs):
    """A built-in reward by name, built with `kwargs` (e.g. `tokenizer=` for the text rewards)."""
    if name not in REWARDS:
        raise ValueError(
            f"Unknown reward {name!r}. Known rewards: {sorted(REWARDS)}. Fix: pick one of them, or pass the callable "
            "itself to the trainer."
        )
    return REWARDS[name](**kwargs)
