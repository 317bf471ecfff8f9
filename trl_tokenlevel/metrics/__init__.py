"""Metrics for token-level tasks: entity-level NER scores, token-level reports and Trainer glue."""

from pathlib import Path

from .ner import (
    align_predictions,
    build_compute_metrics,
    entity_scores,
    preprocess_logits_for_metrics,
    token_accuracy,
    token_classification_report,
    write_report,
)


NER_METRIC_PATH = str(Path(__file__).resolve().parent / "ner_seqeval")
"""Folder of the offline `evaluate` metric module `ner_seqeval`."""


def load_ner_metric(**kwargs):
    """Loads the entity-level NER metric as an `evaluate.Metric`, offline, from the module shipped in this package.

    Args:
        **kwargs: Passed to `evaluate.load` (for example `experiment_id` for several concurrent evaluations).

    Returns:
        `evaluate.Metric`: its `compute(predictions=..., references=...)` returns [`entity_scores`].
    """
    import evaluate

    return evaluate.load(NER_METRIC_PATH, **kwargs)


__all__ = [
    "NER_METRIC_PATH",
    "align_predictions",
    "build_compute_metrics",
    "entity_scores",
    "load_ner_metric",
    "preprocess_logits_for_metrics",
    "token_accuracy",
    "token_classification_report",
    "write_report",
]
