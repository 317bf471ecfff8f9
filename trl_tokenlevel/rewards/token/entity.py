"""Entity-level rewards: credit for whole spans, given to the tokens of each span."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import TokenReward
from .spans import Span, extract_spans


def _word_rows(sampled_labels, gold_labels, word_mask, label_names):
    """Yield `(k, b, positions, sampled_tags, gold_tags)` with tags over word positions only."""
    names = list(label_names)
    sampled = sampled_labels.tolist()
    gold = gold_labels.tolist()
    mask = word_mask.tolist()
    for b in range(len(gold)):
        positions = [t for t, keep in enumerate(mask[b]) if keep]
        gold_tags = [names[gold[b][t]] for t in positions]
        for k in range(len(sampled)):
            yield k, b, positions, [names[sampled[k][b][t]] for t in positions], gold_tags


class EntitySpanReward(TokenReward):
    """Entity-level credit assigned to tokens.

    Spans are read from the sampled and the gold IOB2 tags of the words of a sentence. Then, for every span:

    - a predicted span that matches a gold span exactly (same boundaries, same type) adds `+match_reward` to its tokens;
    - a predicted span with no exact match (wrong boundary, wrong type, or an illegal span opened by `I-`) adds
      `-false_positive_penalty` to its tokens;
    - a gold span that no predicted span matches adds `-false_negative_penalty` to the tokens it covers.

    With `normalize_by_length=True` (default) each span's credit is divided by its length, so every span is worth
    the same in total and long spans do not dominate. Tokens outside every span get 0. Raising
    `false_positive_penalty` favours precision; raising `false_negative_penalty` favours recall.

    Args:
        match_reward (`float`, defaults to `1.0`), false_positive_penalty (`float`, defaults to `1.0`),
        false_negative_penalty (`float`, defaults to `1.0`), normalize_by_length (`bool`, defaults to `True`).

    Example:
        Gold `B-PER I-PER O B-LOC`, sampled `B-PER I-PER O B-ORG`: the PER span matches (+1 split over 2 tokens),
        the ORG span is a false positive (-1) and the LOC span is missed (-1), both on the last token.

        >>> names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
        >>> gold = torch.tensor([[1, 2, 0, 5]])
        >>> sampled = torch.tensor([[[1, 2, 0, 3]]])
        >>> EntitySpanReward()(sampled, gold, gold != -100, names).tolist()
        [[[0.5, 0.5, 0.0, -2.0]]]
    """

    def __init__(
        self,
        match_reward: float = 1.0,
        false_positive_penalty: float = 1.0,
        false_negative_penalty: float = 1.0,
        normalize_by_length: bool = True,
    ):
        self.match_reward = match_reward
        self.false_positive_penalty = false_positive_penalty
        self.false_negative_penalty = false_negative_penalty
        self.normalize_by_length = normalize_by_length

    def _credit(self, row: list[float], positions: list[int], span: Span, value: float) -> None:
        if self.normalize_by_length:
            value = value / (span.end - span.start)
        for word in range(span.start, span.end):
            row[positions[word]] += value

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs) -> torch.Tensor:
        num_samples, batch, length = sampled_labels.shape
        out = [[[0.0] * length for _ in range(batch)] for _ in range(num_samples)]
        gold_cache: dict[int, set] = {}
        for k, b, positions, sampled_tags, gold_tags in _word_rows(sampled_labels, gold_labels, word_mask, label_names):
            if b not in gold_cache:
                gold_cache[b] = set(extract_spans(gold_tags))
            gold_spans = gold_cache[b]
            predicted = extract_spans(sampled_tags)
            row = out[k][b]
            for span in predicted:
                matched = span.valid and span in gold_spans
                self._credit(row, positions, span, self.match_reward if matched else -self.false_positive_penalty)
            for span in gold_spans - set(predicted):
                self._credit(row, positions, span, -self.false_negative_penalty)
        return torch.tensor(out, dtype=torch.float32, device=sampled_labels.device)

    def statistics(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs):
        """Micro precision, recall and F1 of the sampled sequences as `(numerator, denominator)` pairs, so they add
        up over micro-batches and processes. Used as the measured value of a constraint (see `multi_objective.py`).

        Example:
            >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
            >>> gold = torch.tensor([[1, 0, 3]])
            >>> EntitySpanReward().statistics(torch.tensor([[[1, 3, 0]]]), gold, gold != -100, names)
            {'precision': (1.0, 2.0), 'recall': (1.0, 2.0), 'f1': (2.0, 4.0)}
        """
        tp, fp, fn = span_counts(sampled_labels, gold_labels, word_mask, label_names)
        return {"precision": (tp, tp + fp), "recall": (tp, tp + fn), "f1": (2 * tp, 2 * tp + fp + fn)}


def span_counts(sampled_labels, gold_labels, word_mask, label_names: Sequence[str]) -> tuple[float, float, float]:
    """True positives, false positives and false negatives of exact-match spans, summed over the K samples and the
    B sentences (`(K, B, T)` sampled labels against `(B, T)` gold). Illegal spans opened by `I-` are false positives."""
    tp = fp = fn = 0
    gold_cache: dict[int, set] = {}
    for _, b, _, sampled_tags, gold_tags in _word_rows(sampled_labels, gold_labels, word_mask, label_names):
        if b not in gold_cache:
            gold_cache[b] = set(extract_spans(gold_tags))
        predicted = extract_spans(sampled_tags)
        hits = sum(1 for s in predicted if s.valid and s in gold_cache[b])
        tp, fp, fn = tp + hits, fp + len(predicted) - hits, fn + len(gold_cache[b]) - hits
    return float(tp), float(fp), float(fn)


class SpanPrecisionReward(EntitySpanReward):
    """The precision half of [`EntitySpanReward`]: `+match_reward` on the tokens of a correct predicted span,
    `-false_positive_penalty` on those of a wrong one, nothing for a missed gold span. Its measured statistic is the
    micro span precision of the samples.

    Example:
        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> gold = torch.tensor([[1, 0, 3]])
        >>> SpanPrecisionReward()(torch.tensor([[[1, 3, 0]]]), gold, gold != -100, names).tolist()  # LOC missed: 0
        [[[1.0, -1.0, 0.0]]]
    """

    def __init__(self, match_reward: float = 1.0, false_positive_penalty: float = 1.0, normalize_by_length: bool = True):
        super().__init__(match_reward, false_positive_penalty, 0.0, normalize_by_length)


class SpanRecallReward(EntitySpanReward):
    """The recall half of [`EntitySpanReward`]: `+match_reward` on the tokens of a correct predicted span,
    `-false_negative_penalty` on the tokens of a missed gold span, nothing for a wrong prediction. Its measured
    statistic is the micro span recall of the samples.

    Example:
        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> gold = torch.tensor([[1, 0, 3]])
        >>> SpanRecallReward()(torch.tensor([[[1, 3, 0]]]), gold, gold != -100, names).tolist()  # spurious LOC: 0
        [[[1.0, 0.0, -1.0]]]
    """

    def __init__(self, match_reward: float = 1.0, false_negative_penalty: float = 1.0, normalize_by_length: bool = True):
        super().__init__(match_reward, 0.0, false_negative_penalty, normalize_by_length)


class SentenceF1Reward(TokenReward):
    """Sequence-level comparison point: the entity F1 of the whole sentence, given to each of its word tokens.

    F1 = 2 TP / (2 TP + FP + FN) over exact-match spans (illegal spans opened by `I-` count as false positives);
    a sentence with no gold and no predicted entity scores 1. Every token of a sentence gets the same reward, so
    credit is not assigned to the tokens that earned it: compare with [`EntitySpanReward`].

    Example:
        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> gold = torch.tensor([[1, 0, 3]])
        >>> sampled = torch.tensor([[[1, 0, 0]]])  # finds PER, misses LOC: P=1, R=0.5
        >>> [round(x, 4) for x in SentenceF1Reward()(sampled, gold, gold != -100, names)[0, 0].tolist()]
        [0.6667, 0.6667, 0.6667]
    """

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs) -> torch.Tensor:
        num_samples, batch, length = sampled_labels.shape
        f1 = torch.zeros(num_samples, batch, 1)
        gold_cache: dict[int, set] = {}
        for k, b, _, sampled_tags, gold_tags in _word_rows(sampled_labels, gold_labels, word_mask, label_names):
            if b not in gold_cache:
                gold_cache[b] = set(extract_spans(gold_tags))
            predicted = set(extract_spans(sampled_tags))
            true_positives = sum(1 for s in predicted if s.valid and s in gold_cache[b])
            denominator = len(predicted) + len(gold_cache[b])
            f1[k, b, 0] = 1.0 if denominator == 0 else 2.0 * true_positives / denominator
        return f1.to(sampled_labels.device).expand(num_samples, batch, length) * word_mask.unsqueeze(0)
