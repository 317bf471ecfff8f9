"""The official score of SemEval-2010 Task 8 (Hendrickx et al., 2010), written after the task's scorer
`semeval2010_task8_scorer-v1.2.pl`, evaluation (iii): "(9+1)-way evaluation with directionality taken into account".

What is computed, for every relation type `R` of the 9 (directions pooled) that occurs in the gold labels:

- `correct_R`: examples whose gold relation is `R` and whose prediction is exactly the gold label (relation *and*
  direction). A prediction of `R` with the wrong direction is not correct.
- `predicted_R`: predictions whose relation is `R`, in either direction, wrong-direction ones included (the scorer's
  `P = correct / (proposed + xDIRx)`).
- `gold_R`: gold labels whose relation is `R`, in either direction.
- `P_R = correct_R / predicted_R`, `R_R = correct_R / gold_R` (0 when the denominator is 0), `F1_R = 2PR / (P + R)`.

The official score is the macro average `mean_R F1_R` over the relation types other than `Other` that occur in the
gold labels (9 on the official test set). `Other` is never averaged, but a relation predicted for a gold `Other`
lowers that relation's precision and a gold relation predicted as `Other` lowers its recall. As in the scorer, a
relation type predicted but absent from the gold labels is not averaged (so its false positives are not counted),
macro precision and recall are means of the per-relation values (the macro F1 is not computed from them), and
everything is in percent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from ..data.semeval import SEMEVAL_OTHER, relation_and_direction
from .classification import predicted_ids


def _relation(label: str) -> str:
    return relation_and_direction(label)[0]


def _percent(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def semeval_official_scores(gold_labels: Sequence[str], predicted_labels: Sequence[str]) -> dict[str, float]:
    """SemEval-2010 Task 8 official scores (evaluation (iii) of the task's scorer), in percent.

    Args:
        gold_labels (`Sequence[str]`): Gold directed labels, e.g. `"Cause-Effect(e2,e1)"` or `"Other"`.
        predicted_labels (`Sequence[str]`): Predicted directed labels, one per gold label.

    Returns:
        `dict[str, float]`: `macro_f1` (the official score), `macro_precision`, `macro_recall`, `micro_precision`,
        `micro_recall`, `micro_f1` (all over the relations other than `Other`), `accuracy` (19-way exact match,
        `Other` included) and `<Relation>_precision`, `<Relation>_recall`, `<Relation>_f1` per gold relation type.

    Example:

    ```python
    >>> gold = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Other", "Entity-Origin(e1,e2)"]
    >>> pred = ["Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)", "Entity-Origin(e1,e2)", "Entity-Origin(e1,e2)"]
    >>> scores = semeval_official_scores(gold, pred)  # C-E: P = R = 1/2; E-O: P = 1/2, R = 1
    >>> round(scores["Cause-Effect_f1"], 2), round(scores["Entity-Origin_f1"], 2), round(scores["macro_f1"], 2)
    (50.0, 66.67, 58.33)

    ```
    """
    if len(gold_labels) != len(predicted_labels):
        raise ValueError(f"Got {len(gold_labels)} gold labels but {len(predicted_labels)} predictions.")
    gold_relations = [_relation(label) for label in gold_labels]
    predicted_relations = [_relation(label) for label in predicted_labels]
    scored = sorted(set(gold_relations) - {SEMEVAL_OTHER})
    if not scored:
        raise ValueError("The gold labels hold no relation other than `Other`; the official score is undefined.")
    correct = Counter(g for g, gold, pred in zip(gold_relations, gold_labels, predicted_labels) if gold == pred)
    predicted, gold = Counter(predicted_relations), Counter(gold_relations)

    scores: dict[str, float] = {}
    for relation in scored:
        precision = _percent(correct[relation], predicted[relation])
        recall = _percent(correct[relation], gold[relation])
        scores[f"{relation}_precision"] = precision
        scores[f"{relation}_recall"] = recall
        scores[f"{relation}_f1"] = _f1(precision, recall)
    micro_correct = sum(correct[r] for r in scored)
    micro_precision = _percent(micro_correct, sum(predicted[r] for r in scored))
    micro_recall = _percent(micro_correct, sum(gold[r] for r in scored))
    exact = sum(gold_label == pred for gold_label, pred in zip(gold_labels, predicted_labels))
    summary = {
        "macro_f1": float(np.mean([scores[f"{r}_f1"] for r in scored])),
        "macro_precision": float(np.mean([scores[f"{r}_precision"] for r in scored])),
        "macro_recall": float(np.mean([scores[f"{r}_recall"] for r in scored])),
        "micro_precision": micro_precision,
        "micro_recall": micro_recall,
        "micro_f1": _f1(micro_precision, micro_recall),
        "accuracy": _percent(exact, len(gold_labels)),
    }
    return {**summary, **scores}


def build_semeval_compute_metrics(label_names: Sequence[str]) -> Callable[..., dict[str, float]]:
    """Returns a `compute_metrics` function for [`~transformers.Trainer`] reporting [`semeval_official_scores`].

    Args:
        label_names (`Sequence[str]`): Directed label name of each class id (e.g. `SEMEVAL2010_TASK8_LABELS`).

    Returns:
        `Callable[[EvalPrediction], dict[str, float]]`: takes logits `(N, C)` or ids `(N,)` as `predictions`;
        `macro_f1` is the official score.
    """
    names = list(label_names)
    for name in names:
        relation_and_direction(name)  # fail early on a label the scorer would not know

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions = predicted_ids(eval_prediction.predictions)
        gold = [names[int(i)] for i in np.asarray(eval_prediction.label_ids)]
        return semeval_official_scores(gold, [names[int(i)] for i in predictions])

    return compute_metrics
