"""Metrics as each field reports them: entity-level NER (seqeval), classification accuracy/macro-F1, the official
SemEval-2010 Task 8 score, official SQuAD EM/F1, sacreBLEU BLEU/chrF and ROUGE, with Trainer glue."""

from pathlib import Path

from .classification import build_classification_compute_metrics, classification_scores
from .semeval import build_semeval_compute_metrics, semeval_official_scores
from .squad import build_squad_compute_metrics, exact_match_score, f1_score, normalize_answer, squad_scores
from .text import rouge_l, rouge_scores
from .text_generation import generation_scores, metric_signatures
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
    "build_classification_compute_metrics",
    "build_compute_metrics",
    "build_semeval_compute_metrics",
    "build_squad_compute_metrics",
    "classification_scores",
    "entity_scores",
    "exact_match_score",
    "f1_score",
    "generation_scores",
    "load_ner_metric",
    "metric_signatures",
    "normalize_answer",
    "preprocess_logits_for_metrics",
    "rouge_l",
    "rouge_scores",
    "semeval_official_scores",
    "squad_scores",
    "token_accuracy",
    "token_classification_report",
    "write_report",
]
