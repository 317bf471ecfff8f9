"""Rewards for extractive QA: the SQuAD token-overlap F1 of a sampled answer span (the reward of DCN+, Xiong et al.,
ICLR 2018), credited by the trainer to the span's start and end actions.

A span reward is called as::

    reward(sampled_starts, sampled_ends, offset_mapping=..., context=..., answers=..., **kwargs) -> (K, B)

- `sampled_starts`, `sampled_ends` (`torch.LongTensor` of shape `(K, B)`): token positions of K sampled spans per
  window (see `trl_tokenlevel.qa_math.sample_spans`).
- `offset_mapping`: per window, the `(char_start, char_end)` of each token in the context, and `None` or `(-1, -1)`
  elsewhere (as `prepare_qa_eval_features`, or `prepare_qa_train_features(..., keep_offsets=True)`, give it).
- `context` (`list[str]`): the window's context, `answers`: its references (a SQuAD `answers` dict or a list of texts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import torch

from ...metrics.squad import f1_score, max_over_references


def span_f1(prediction: str, references: Union[str, Sequence[str]]) -> float:
    """The official SQuAD v1.1 F1 of one predicted answer against its references (max over them), in [0, 1].

    Example:

    ```python
    >>> span_f1("the Denver Broncos", ["Denver Broncos", "Broncos"])
    1.0
    >>> round(span_f1("Broncos won", ["Denver Broncos"]), 4)  # P = 1/2, R = 1/2
    0.5

    ```
    """
    return max_over_references(f1_score, prediction, references)


def _offset(offsets: Any, position: int):
    value = offsets[position]
    if value is None:
        return None
    start, end = (int(v) for v in value)
    return None if start < 0 else (start, end)


def span_text(context: str, offsets: Any, start: int, end: int) -> str:
    """The context text of tokens `start..end` (inclusive): `context[offsets[start][0]:offsets[end][1]]`.

    Raises:
        `ValueError`: when `end < start` or a position is outside the context (offset `None` or `(-1, -1)`).
    """
    first, last = _offset(offsets, start), _offset(offsets, end)
    if end < start or first is None or last is None:
        raise ValueError(
            f"Span (start={start}, end={end}) is not a context span: need end >= start and both tokens in the context "
            "(sample spans with `sample_spans`, which guarantees this)."
        )
    return context[first[0] : last[1]]


def _reference_texts(answers: Any) -> Sequence[str]:
    return answers["text"] if isinstance(answers, Mapping) else answers


class SpanF1Reward:
    """Rewards a sampled answer span with its SQuAD F1 against the best reference: the word-overlap F1 after the
    official normalisation, so a span that overlaps the answer gets partial credit, unlike cross-entropy on the gold
    start/end positions. The same value is the reward of the start and the end action.

    Example:

    ```python
    >>> context = ["Denver Broncos won Super Bowl 50"]
    >>> offsets = [[None, (0, 6), (7, 14), (15, 18), (19, 24), (25, 29), (30, 32), None]]  # [CLS] ... [SEP]
    >>> starts = torch.tensor([[1], [2], [3]])  # K=3 spans for one window
    >>> ends = torch.tensor([[2], [3], [3]])  # "Denver Broncos", "Broncos won", "won"
    >>> rewards = SpanF1Reward()(starts, ends, offset_mapping=offsets, context=context, answers=[["Denver Broncos"]])
    >>> [[round(r, 4) for r in row] for row in rewards.tolist()]
    [[1.0], [0.5], [0.0]]

    ```
    """

    @property
    def __name__(self) -> str:  # noqa: D401 - mirrors function objects
        return type(self).__name__

    def __call__(
        self,
        sampled_starts: torch.Tensor,
        sampled_ends: torch.Tensor,
        *,
        offset_mapping: Any,
        context: Sequence[str],
        answers: Sequence[Any],
        **kwargs,
    ) -> torch.Tensor:
        if sampled_starts.shape != sampled_ends.shape or sampled_starts.dim() != 2:
            raise ValueError(f"Expected sampled_starts and sampled_ends of one shape (K, B), got "
                             f"{tuple(sampled_starts.shape)} and {tuple(sampled_ends.shape)}.")  # fmt: skip
        num_samples, batch = sampled_starts.shape
        if not len(offset_mapping) == len(context) == len(answers) == batch:
            raise ValueError(f"Got {batch} windows but {len(offset_mapping)} offset mappings, {len(context)} contexts "
                             f"and {len(answers)} answers; pass one of each per window.")  # fmt: skip
        starts, ends = sampled_starts.tolist(), sampled_ends.tolist()
        rewards = torch.zeros(num_samples, batch)
        for b in range(batch):
            references = _reference_texts(answers[b])
            scored: dict[tuple[int, int], float] = {}  # the K samples often repeat a span
            for k in range(num_samples):
                span = (starts[k][b], ends[k][b])
                if span not in scored:
                    try:
                        text = span_text(context[b], offset_mapping[b], *span)
                    except ValueError as err:
                        raise ValueError(f"SpanF1Reward, sample {k}, window {b}: {err}") from err
                    scored[span] = span_f1(text, references)
                rewards[k, b] = scored[span]
        return rewards.to(sampled_starts.device)
