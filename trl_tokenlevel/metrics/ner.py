"""NER metrics: entity-level scores (seqeval, strict IOB2) and a token-level report, plus Trainer glue.

Entity-level F1 is the number reported for CoNLL-2003. It uses seqeval's strict mode: an entity counts only if it
is well formed in IOB2 (starts with `B-X`) and both its boundaries and type match. The `conlleval` script is lenient
(it treats a stray `I-X` as the start of an entity), so strict scores can be slightly lower for a model that emits
invalid transitions. Token-level accuracy includes `O` tokens and is dominated by them; it is never an F1.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable, Union

import numpy as np
from seqeval.metrics import classification_report as seqeval_classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import classification_report as sklearn_classification_report

from ..core import IGNORE_INDEX




def _check_lengths(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> None:
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"Got {len(true_tags)} gold sentences but {len(pred_tags)} predicted sentences.")
    for i, (true, pred) in enumerate(zip(true_tags, pred_tags)):
        if len(true) != len(pred):
            raise ValueError(f"Sentence {i}: {len(true)} gold tags but {len(pred)} predicted tags.")


def token_accuracy(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens (including `O`) whose predicted tag equals the gold tag; `0.0` when there are no tokens."""
    _check_lengths(true_tags, pred_tags)
    total = sum(len(sentence) for sentence in true_tags)
    correct = sum(t == p for true, pred in zip(true_tags, pred_tags) for t, p in zip(true, pred))
    return correct / max(total, 1)


def entity_scores(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (seqeval, strict IOB2), overall and per entity type.

    Args:
        true_tags (`list[list[str]]`): Gold IOB2 tags, one list per sentence.
        pred_tags (`list[list[str]]`): Predicted IOB2 tags, same shape as `true_tags`.

    Returns:
        `dict[str, float]`: `precision`, `recall`, `f1` (micro-averaged over entities), `<TYPE>_precision`,
        `<TYPE>_recall`, `<TYPE>_f1`, `<TYPE>_support` (number of gold entities) for every type seen in gold or
        predictions, and `token_accuracy` (token level, `O` included).

    Example:

    ```python
    >>> scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    >>> scores["precision"], scores["recall"], scores["PER_f1"], scores["token_accuracy"]
    (0.5, 0.5, 1.0, 0.75)

    ```
    """
    _check_lengths(true_tags, pred_tags)
    true_tags, pred_tags = [list(s) for s in true_tags], [list(s) for s in pred_tags]
    with warnings.catch_warnings():  # without any entity, seqeval's averages are means of empty arrays
        warnings.simplefilter("ignore", RuntimeWarning)
        report = seqeval_classification_report(
            true_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
        )
    overall = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    scores = {
        "precision": float(overall["precision"]),
        "recall": float(overall["recall"]),
        "f1": float(overall["f1-score"]),
    }
    for entity_type, values in sorted(report.items()):
        if entity_type.endswith(" avg"):
            continue
        scores[f"{entity_type}_precision"] = float(values["precision"])
        scores[f"{entity_type}_recall"] = float(values["recall"])
        scores[f"{entity_type}_f1"] = float(values["f1-score"])
        scores[f"{entity_type}_support"] = float(values["support"])
    scores["token_accuracy"] = token_accuracy(true_tags, pred_tags)
    return scores


def token_classification_report(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], label_names: Sequence[str]
) -> tuple[dict[str, dict[str, float]], str]:
    """Per-tag precision, recall, F1 and support over all tokens (`O` included), with micro/macro/weighted averages.

    This is a token-level diagnostic (which tags the model confuses), not the entity-level score of CoNLL-2003.

    Args:
        true_tags (`list[list[str]]`): Gold tags, one list per sentence.
        pred_tags (`list[list[str]]`): Predicted tags, same shape as `true_tags`.
        label_names (`list[str]`): Tags to report, in this order (tags seen but not listed are appended).

    Returns:
        `tuple[dict, str]`: `{tag or "micro avg"/"macro avg"/"weighted avg": {"precision", "recall", "f1-score",
        "support"}}` and the same as a printable table.
    """
    _check_lengths(true_tags, pred_tags)
    flat_true = [t for sentence in true_tags for t in sentence]
    flat_pred = [p for sentence in pred_tags for p in sentence]
    labels = list(label_names) + sorted(set(flat_true + flat_pred) - set(label_names))
    raw = sklearn_classification_report(flat_true, flat_pred, labels=labels, output_dict=True, zero_division=0)
    report = {label: {k: float(v) for k, v in raw[label].items()} for label in labels}
    if "micro avg" in raw:
        report["micro avg"] = {k: float(v) for k, v in raw["micro avg"].items()}
    else:  # sklearn reports "accuracy" instead when every label is listed; for single-label tags they are equal
        accuracy = float(raw.get("accuracy", 0.0))
        report["micro avg"] = {"precision": accuracy, "recall": accuracy, "f1-score": accuracy}
        report["micro avg"]["support"] = float(len(flat_true))
    for average in ("macro avg", "weighted avg"):
        report[average] = {k: float(v) for k, v in raw[average].items()}
    return report, _format_report("Token-level classification report (every token, O included)", report)


def _format_report(title: str, report: Mapping[str, Mapping[str, float]]) -> str:
    width = max(len(name) for name in report) + 2
    lines = [title, "=" * len(title), f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}"]
    for name, values in report.items():
        if name == "micro avg":
            lines.append("")
        lines.append(
            f"{name:<{width}}{values['precision']:>10.4f}{values['recall']:>10.4f}"
            f"{values['f1-score']:>10.4f}{int(values['support']):>10d}"
        )
    return "\n".join(lines) + "\n"


def align_predictions(
    predictions: np.ndarray, label_ids: np.ndarray, id2label: Union[Mapping[int, str], Sequence[str]]
) -> tuple[list[list[str]], list[list[str]]]:
    """Turns model outputs into tag strings, keeping only positions with a label (not `-100`).

    Args:
        predictions (`np.ndarray`):
            Logits of shape `(N, T', C)` or predicted ids of shape `(N, T')`, with `T' >= T`. When `T' > T` (prompt
            tuning prepends virtual tokens), the last `T` positions are kept.
        label_ids (`np.ndarray`): Label ids of shape `(N, T)`, `-100` where there is no label.
        id2label (`Mapping[int, str]` or `Sequence[str]`): Tag name of each id.

    Returns:
        `tuple[list[list[str]], list[list[str]]]`: gold tags and predicted tags per sentence.
    """
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    predictions, label_ids = np.asarray(predictions), np.asarray(label_ids)
    if predictions.ndim == 3:
        predictions = predictions.argmax(axis=-1)
    if predictions.shape[0] != label_ids.shape[0] or predictions.shape[1] < label_ids.shape[1]:
        raise ValueError(
            f"predictions of shape {predictions.shape} do not cover labels of shape {label_ids.shape}: expected "
            "(N, T') with T' >= T."
        )
    predictions = predictions[:, predictions.shape[1] - label_ids.shape[1] :]  # (N, T)
    true_tags, pred_tags = [], []
    for pred_row, label_row in zip(predictions, label_ids):
        keep = label_row != IGNORE_INDEX
        true_tags.append([id2label[int(i)] for i in label_row[keep]])
        pred_tags.append([id2label[int(i)] for i in pred_row[keep]])
    return true_tags, pred_tags


def build_compute_metrics(label_names: Sequence[str]) -> Callable[..., dict[str, float]]:
    """Returns a `compute_metrics` function for [`~transformers.Trainer`] reporting [`entity_scores`].

    Args:
        label_names (`list[str]`): Tag name of each label id.

    Returns:
        `Callable[[EvalPrediction], dict[str, float]]`: a flat dict of floats (`precision`, `recall`, `f1`,
        per-type scores and `token_accuracy`).
    """
    id2label = list(label_names)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        true_tags, pred_tags = align_predictions(eval_prediction.predictions, eval_prediction.label_ids, id2label)
        return entity_scores(true_tags, pred_tags)

    return compute_metrics


def preprocess_logits_for_metrics(logits, labels):
    """Argmax over the label dimension before the Trainer gathers outputs, so evaluation stores `(N, T)` ids.

    Args:
        logits (`torch.Tensor` or `tuple`): Logits `(B, T, C)`, or a tuple whose first element they are.
        labels (`torch.Tensor`): Unused; part of the Trainer hook's signature.

    Returns:
        `torch.Tensor`: predicted ids of shape `(B, T)`.
    """
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return logits.argmax(dim=-1)


def write_report(path_prefix: Union[str, os.PathLike], metrics: Mapping[str, float], token_report_text: str) -> None:
    """Writes `<path_prefix>.json` (the metrics) and `<path_prefix>.txt` (entity scores and the token-level table).

    Args:
        path_prefix (`str` or `os.PathLike`): Output path without extension; missing folders are created.
        metrics (`Mapping[str, float]`): Typically [`entity_scores`] output.
        token_report_text (`str`): The table from [`token_classification_report`].
    """
    path_prefix = Path(path_prefix)
    path_prefix.parent.mkdir(parents=True, exist_ok=True)
    serializable = {key: float(value) if isinstance(value, (np.floating, np.integer)) else value
                    for key, value in metrics.items()}  # fmt: skip
    Path(f"{path_prefix}.json").write_text(json.dumps(serializable, indent=2, sort_keys=True) + "\n")

    title = "Entity-level scores (seqeval, strict IOB2)"
    lines = [title, "=" * len(title)]
    lines += [
        f"{key:<24}{value:.4f}" if isinstance(value, float) else f"{key:<24}{value}" for key, value in metrics.items()
    ]
    Path(f"{path_prefix}.txt").write_text("\n".join(lines) + "\n\n" + token_report_text)
