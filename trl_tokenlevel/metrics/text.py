"""ROUGE-1/2/L on lower-cased word tokens (no `rouge_score`, no downloads), as used by the rewards and recipes.

Words are `\\w+` runs (apostrophes inside words kept), lower-cased, without stemming; scores are F1 in [0, 1].
They follow Lin (2004) and agree with `rouge_score` without the Porter stemmer up to tokenization details, so
compare numbers from this module with each other, not with published SAMSum tables.
"""

from __future__ import annotations

import re
from collections import Counter


WORD_RE = re.compile(r"\w+(?:['’]\w+)*")


def words(text: str) -> list[str]:
    """Lower-cased words of `text`. Example: `words("Tom's cat, Bob!")` -> `["tom's", "cat", "bob"]`."""
    return [w.lower() for w in WORD_RE.findall(text)]


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """`(start_char, end_char, lower-cased word)` for every word of `text`."""
    return [(m.start(), m.end(), m.group().lower()) for m in WORD_RE.finditer(text)]


def ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: float, predicted: int, reference: int) -> float:
    if overlap == 0 or predicted == 0 or reference == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / reference
    return 2 * precision * recall / (precision + recall)


def rouge_n(prediction: str, reference: str, n: int) -> float:
    """ROUGE-N F1 with clipped n-gram counts.

    Example:
        >>> round(rouge_n("the cat sat", "the cat sat down", 2), 4)
        0.8
    """
    pred, ref = ngrams(words(prediction), n), ngrams(words(reference), n)
    return _f1(sum((pred & ref).values()), sum(pred.values()), sum(ref.values()))


def lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (longest common subsequence of words).

    Example:
        >>> round(rouge_l("amanda will bring cookies", "Amanda baked cookies and will bring them"), 4)
        0.5455
    """
    pred, ref = words(prediction), words(reference)
    return _f1(lcs_length(pred, ref), len(pred), len(ref))


def rouge_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus means of ROUGE-1/2/L F1, in percent."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"Need as many predictions as references (>0), got {len(predictions)} and {len(references)}.")
    count = len(predictions)
    return {
        "rouge1": 100 * sum(rouge_n(p, r, 1) for p, r in zip(predictions, references)) / count,
        "rouge2": 100 * sum(rouge_n(p, r, 2) for p, r in zip(predictions, references)) / count,
        "rougeL": 100 * sum(rouge_l(p, r) for p, r in zip(predictions, references)) / count,
    }
