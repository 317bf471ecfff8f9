"""SQuAD v1.1 exact match and F1, as defined by the official evaluation script (Rajpurkar et al., 2016).

Both answers are normalised first ([`normalize_answer`]: lower case, punctuation removed, the articles `a`/`an`/`the`
removed, whitespace collapsed). Exact match is 1 when the normalised strings are equal; F1 is the harmonic mean of
precision and recall of the bag of normalised tokens (a multiset: a repeated token counts as often as it is shared).
Each question takes the maximum over its reference answers; the corpus scores are means over questions, reported in
percent (0-100) like the official script and `evaluate`'s `squad` metric.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..data.qa_features import postprocess_qa_predictions

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation (`string.punctuation`), drop the articles a/an/the, collapse whitespace.

    Example:

    ```python
    >>> normalize_answer("The  Denver Broncos!")
    'denver broncos'

    ```
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 if the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Token-overlap F1 of the normalised answers (0.0 when they share no token).

    Example:

    ```python
    >>> f1_score("the Denver Broncos team", "Denver Broncos")  # P = 2/3, R = 1
    0.8

    ```
    """
    prediction_tokens = normalize_answer(prediction).split()
    reference_tokens = normalize_answer(reference).split()
    shared = sum((Counter(prediction_tokens) & Counter(reference_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def max_over_references(metric: Callable[[str, str], float], prediction: str, references: Sequence[str]) -> float:
    """The best score of `prediction` against any of `references` (the official scoring of several references)."""
    if isinstance(references, str):
        references = [references]
    if len(references) == 0:
        raise ValueError("A question needs at least one reference answer to be scored (SQuAD v1.1 has 1-6).")
    return max(metric(prediction, reference) for reference in references)


def _reference_texts(answers: Any) -> Sequence[str]:
    return answers["text"] if isinstance(answers, Mapping) else answers


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Any]) -> dict[str, float]:
    """Official SQuAD v1.1 scores: mean exact match and mean F1 over the questions of `references`, in percent.

    Args:
        predictions (`Mapping[str, str]`): Question id to predicted answer text.
        references (`Mapping[str, Any]`): Question id to its reference answers, either a list of texts or a SQuAD
            `answers` dict (`{"text": [...], "answer_start": [...]}`).

    Returns:
        `dict[str, float]`: `exact_match` and `f1` in [0, 100].

    Raises:
        `ValueError`: when a question of `references` has no prediction (the official script counts it as 0 and
            warns; a missing prediction here is a bug in the caller).

    Example:

    ```python
    >>> squad_scores({"q1": "Denver Broncos", "q2": "in 1850"}, {"q1": ["Denver Broncos"], "q2": ["1850", "1851"]})
    {'exact_match': 50.0, 'f1': 83.33333333333333}

    ```
    """
    missing = [question_id for question_id in references if question_id not in predictions]
    if missing:
        raise ValueError(
            f"No prediction for {len(missing)} questions, e.g. {missing[:3]}. Fix: predict every question."
        )
    if not references:
        raise ValueError("No reference answers given.")
    exact, f1 = 0.0, 0.0
    for question_id, answers in references.items():
        texts = _reference_texts(answers)
        exact += max_over_references(exact_match_score, predictions[question_id], texts)
        f1 += max_over_references(f1_score, predictions[question_id], texts)
    return {"exact_match": 100.0 * exact / len(references), "f1": 100.0 * f1 / len(references)}


def build_squad_compute_metrics(
    eval_examples, eval_features, n_best: int = 20, max_answer_length: int = 30
) -> Callable[..., dict[str, float]]:
    """Returns a `compute_metrics` for [`~transformers.Trainer`] on QA windows: post-processes the start/end logits
    with [`postprocess_qa_predictions`] and scores the texts with [`squad_scores`].

    Args:
        eval_examples (`Dataset`): The examples (`id`, `context`, `answers`) the features were built from.
        eval_features (`Dataset`): From `prepare_qa_eval_features`, in the order the Trainer evaluates them.
        n_best (`int`, *optional*, defaults to `20`): Candidates per side and window.
        max_answer_length (`int`, *optional*, defaults to `30`): Longest answer in tokens.

    Returns:
        `Callable[[EvalPrediction], dict[str, float]]`: `{"exact_match", "f1"}` in percent, from
        `eval_prediction.predictions == (start_logits, end_logits)`.
    """
    references = dict(zip(eval_examples["id"], eval_examples["answers"]))

    def compute_metrics(eval_prediction) -> dict[str, float]:
        start_logits, end_logits = eval_prediction.predictions[:2]
        predictions = postprocess_qa_predictions(
            eval_examples, eval_features, start_logits, end_logits, n_best=n_best, max_answer_length=max_answer_length
        )
        return squad_scores(predictions, references)

    return compute_metrics
