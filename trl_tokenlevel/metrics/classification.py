"""Sequence-classification metrics (accuracy, macro-F1, per-class F1) and their Trainer glue, via scikit-learn.

Accuracy and F1 are fractions in [0, 1], as `evaluate`'s `accuracy` and `f1` metrics and `run_glue.py` report them.
Macro-F1 is the unweighted mean of the per-class F1 over *all* classes of `label_names` (a class never predicted nor
present scores 0), so it does not change with which classes a small evaluation slice happens to contain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def predicted_ids(predictions) -> np.ndarray:
    """Predicted class ids `(N,)` from logits `(N, C)` (argmax), ids `(N,)`, or a tuple whose first element is one."""
    if isinstance(predictions, (tuple, list)) and len(predictions) > 0 and not np.isscalar(predictions[0]):
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        return predictions.argmax(axis=-1)
    if predictions.ndim != 1:
        raise ValueError(f"Expected logits (N, C) or class ids (N,), got an array of shape {predictions.shape}.")
    return predictions


def classification_scores(
    labels: Sequence[int], predictions: Sequence[int], label_names: Optional[Sequence[str]] = None
) -> dict[str, float]:
    """Accuracy, macro-averaged F1 and per-class F1 of predicted class ids against gold ids.

    Args:
        labels (`Sequence[int]`): Gold class ids.
        predictions (`Sequence[int]`): Predicted class ids, same length.
        label_names (`Sequence[str]`, *optional*): Class names; the macro average runs over all of them, and
            per-class scores are keyed `f1_<name>`. Without names, the classes seen in labels or predictions count.

    Returns:
        `dict[str, float]`: `accuracy`, `macro_f1`, `macro_precision`, `macro_recall` and `f1_<name>` per class.

    Example:

    ```python
    >>> scores = classification_scores([0, 0, 1, 1], [0, 1, 1, 1], ["negative", "positive"])
    >>> scores["accuracy"], round(scores["macro_f1"], 4), round(scores["f1_positive"], 4)
    (0.75, 0.7333, 0.8)

    ```
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be 1-D and of equal length.")
    if labels.size == 0:
        raise ValueError("Nothing to score: no labels.")
    classes = list(range(len(label_names))) if label_names is not None else sorted(set(labels) | set(predictions))
    names = list(label_names) if label_names is not None else [str(c) for c in classes]
    out_of_range = sorted({int(v) for v in np.concatenate([labels, predictions]) if v not in set(classes)})
    if out_of_range:
        raise ValueError(f"Class ids {out_of_range} are not in 0..{len(classes) - 1} ({names}).")
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=classes, average=None, zero_division=0
    )
    scores = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(np.mean(f1)),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
    }
    scores.update({f"f1_{name}": float(value) for name, value in zip(names, f1)})
    return scores


def build_classification_compute_metrics(label_names: Sequence[str]) -> Callable[..., dict[str, float]]:
    """Returns a `compute_metrics` function for [`~transformers.Trainer`] reporting [`classification_scores`].

    Args:
        label_names (`Sequence[str]`): Name of each class id (e.g. `SST2_LABELS`).

    Returns:
        `Callable[[EvalPrediction], dict[str, float]]`: takes logits `(N, C)` or ids `(N,)` as `predictions`.
    """
    names = list(label_names)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions = predicted_ids(eval_prediction.predictions)
        return classification_scores(np.asarray(eval_prediction.label_ids), predictions, names)

    return compute_metrics
