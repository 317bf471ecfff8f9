"""Extractive QA: the actions are the answer's start and end tokens. `spans.py` samples them (end >= start, inside
the context) and scores their log-probabilities."""

from .spans import SpanSample, best_spans, sample_spans, span_log_probs


__all__ = ["SpanSample", "best_spans", "sample_spans", "span_log_probs"]
