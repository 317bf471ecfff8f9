"""Evaluation of generated text: corpus BLEU and chrF from `sacrebleu`, ROUGE-L, and lengths.

BLEU (Papineni et al., 2002) and chrF (Popović, 2015) are computed by `sacrebleu` (Post, 2018) with its defaults
(BLEU: `13a` tokenization, exponential smoothing; chrF: character order 6, word order 0, beta 2); report
[`metric_signatures`] with the scores so they can be reproduced. ROUGE-L is the project's own word-level ROUGE
(`trl_tokenlevel.generation.text_metrics`: lower-cased `\\w+` words, no stemming), a corpus mean of sentence F1.
"""

from __future__ import annotations

from .text import rouge_l


def _check(predictions: list[str], references: list[str]) -> None:
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"Need one reference per prediction and at least one pair; got {len(predictions)} predictions and "
            f"{len(references)} references."
        )
    for i, (p, r) in enumerate(zip(predictions, references)):
        if not isinstance(p, str) or not isinstance(r, str):
            raise TypeError(
                f"Pair {i}: prediction is {type(p).__name__} and reference is {type(r).__name__}; both must be str "
                "(decode generated ids first; for several references per sentence call sacrebleu directly)."
            )


def metric_signatures() -> dict[str, str]:
    """The sacreBLEU signatures (version, tokenization, smoothing, orders) of the BLEU and chrF that
    [`generation_scores`] reports, one reference per sentence. Store them next to the scores.

    Example:
        >>> metric_signatures()["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no")
        True
    """
    return _sacrebleu_scores(["x"], ["x"])[1]


def _sacrebleu_scores(predictions: list[str], references: list[str]):
    from sacrebleu.metrics import BLEU, CHRF

    bleu_metric, chrf_metric = BLEU(), CHRF()
    bleu = bleu_metric.corpus_score(predictions, [references])
    chrf = chrf_metric.corpus_score(predictions, [references])
    signatures = {"bleu": str(bleu_metric.get_signature()), "chrf": str(chrf_metric.get_signature())}
    return (bleu, chrf), signatures


def generation_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus scores of `predictions` against one reference each.

    Args:
        predictions (`list[str]`): generated texts.
        references (`list[str]`): one reference per prediction, in the same order.

    Returns:
        `dict[str, float]`:
        - `bleu`: corpus BLEU (sacreBLEU, 0-100), `bleu_brevity_penalty` and `length_ratio` (hypothesis / reference
          length in BLEU's tokens);
        - `chrf`: corpus chrF (sacreBLEU, 0-100);
        - `rougeL`: mean sentence ROUGE-L F1, in percent;
        - `mean_words`, `mean_reference_words`: mean whitespace-separated words per prediction and per reference;
        - `num_examples`, `empty_fraction`: number of pairs and the share of predictions that are empty or blank.

    Example:
        >>> scores = generation_scores(["Ein Hund läuft im Schnee."], ["Ein Hund läuft im Schnee."])
        >>> round(scores["bleu"], 6), scores["chrf"], scores["rougeL"], scores["mean_words"]
        (100.0, 100.0, 100.0, 5.0)
    """
    _check(predictions, references)
    (bleu, chrf), _ = _sacrebleu_scores(predictions, references)
    count = len(predictions)
    return {
        "bleu": float(bleu.score),
        "bleu_brevity_penalty": float(bleu.bp),
        "length_ratio": float(bleu.ratio),
        "chrf": float(chrf.score),
        "rougeL": 100.0 * sum(rouge_l(p, r) for p, r in zip(predictions, references)) / count,
        "mean_words": sum(len(p.split()) for p in predictions) / count,
        "mean_reference_words": sum(len(r.split()) for r in references) / count,
        "num_examples": float(count),
        "empty_fraction": sum(not p.strip() for p in predictions) / count,
    }


__all__ = ["generation_scores", "metric_signatures"]
