"""Extractive QA: the actions are the answer's start and end tokens. `spans.py` samples them (end >= start, inside
the context) and scores their log-probabilities; `data.py` cuts SQuAD-format examples into windows; the trainer
mixes cross-entropy with span-level policy gradient (DCN+)."""

from .config import QuestionAnsweringRLConfig
from .data import answer_questions
from .spans import (
    SpanSample,
    best_spans,
    context_entropy,
    context_kl,
    sample_spans,
    span_cross_entropy,
    span_log_probs,
)
from .trainer import QuestionAnsweringPrediction, QuestionAnsweringRLTrainer


__all__ = [
    "QuestionAnsweringPrediction",
    "QuestionAnsweringRLConfig",
    "QuestionAnsweringRLTrainer",
    "SpanSample",
    "answer_questions",
    "best_spans",
    "context_entropy",
    "context_kl",
    "sample_spans",
    "span_cross_entropy",
    "span_log_probs",
]
