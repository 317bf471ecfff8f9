"""Extractive-QA features as `run_qa.py` users expect: sliding windows over long contexts, start/end token targets,
and post-processing of start/end logits back to answer texts.

A context longer than `max_length` (with its question) is cut into several windows ("features") that overlap by
`doc_stride` tokens, so every answer lies whole in at least one window. For training, each window's targets are the
token positions of the first reference answer, or the `[CLS]` index when the answer is not inside that window. For
evaluation, each window keeps `example_id` and an offset mapping in which every position outside the context is
`None`, and [`postprocess_qa_predictions`] picks, per example, the best-scoring valid span over all its windows.

Usage:

```python
train_features = squad["train"].map(
    prepare_qa_train_features, batched=True, remove_columns=squad["train"].column_names,
    fn_kwargs={"tokenizer": tokenizer, "max_length": 256, "doc_stride": 64},
)
eval_features = squad["validation"].map(
    prepare_qa_eval_features, batched=True, remove_columns=squad["validation"].column_names,
    fn_kwargs={"tokenizer": tokenizer, "max_length": 256, "doc_stride": 64},
)
```
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

NO_OFFSET = (-1, -1)
"""Offset stored for positions outside the context by `prepare_qa_train_features(..., keep_offsets=True)`: unlike
`None` it batches into a tensor, and `offset_mapping[..., 0] >= 0` is then the context mask."""


def _tokenize_windows(examples: Mapping[str, Sequence], tokenizer, max_length: int, doc_stride: int, padding):
    """Tokenizes (question, context) pairs into overlapping windows; returns the encoding and the context's
    sequence index (1 when the question comes first, i.e. right padding, else 0)."""
    if not 0 <= doc_stride < max_length:
        raise ValueError(f"doc_stride={doc_stride} must be >= 0 and smaller than max_length={max_length}.")
    question_first = tokenizer.padding_side == "right"
    # Some SQuAD questions start with many spaces; they would only eat into the window.
    questions = [question.lstrip() for question in examples["question"]]
    contexts = list(examples["context"])
    first, second = (questions, contexts) if question_first else (contexts, questions)
    encoding = tokenizer(
        first,
        second,
        truncation="only_second" if question_first else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=padding,
    )
    return encoding, 1 if question_first else 0


def _cls_index(input_ids: Sequence[int], tokenizer) -> int:
    cls_id = tokenizer.cls_token_id
    return input_ids.index(cls_id) if cls_id is not None and cls_id in input_ids else 0


def answer_token_span(
    offsets: Sequence[Sequence[int]], context_positions: Sequence[int], start_char: int, end_char: int
) -> Optional[tuple[int, int]]:
    """Token positions `(start, end)` (inclusive) covering the characters `[start_char, end_char)` of the context,
    or `None` when the window's context tokens do not cover them all.

    Args:
        offsets (`Sequence[Sequence[int]]`): `(char_start, char_end)` of every token of the window.
        context_positions (`Sequence[int]`): Positions of the window's context tokens, ascending.
        start_char (`int`): First character of the answer.
        end_char (`int`): One past its last character.

    Example:

    ```python
    >>> offsets = [(0, 0), (0, 3), (4, 9), (10, 13), (0, 0)]  # [CLS] The quick fox [SEP]
    >>> answer_token_span(offsets, [1, 2, 3], 4, 13)  # "quick fox"
    (2, 3)
    >>> answer_token_span(offsets, [1, 2], 4, 13) is None  # "fox" is outside this window
    True

    ```
    """
    if not context_positions:
        return None
    first, last = context_positions[0], context_positions[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    start = max(j for j in context_positions if offsets[j][0] <= start_char)
    end = min(j for j in context_positions if offsets[j][1] >= end_char)
    return start, end


def prepare_qa_train_features(
    examples: Mapping[str, Sequence],
    tokenizer,
    max_length: int = 256,
    doc_stride: int = 64,
    padding: Any = "max_length",
    keep_offsets: bool = False,
) -> dict[str, list]:
    """Turns a batch of QA examples into training windows with `start_positions`/`end_positions`.

    Args:
        examples (`Mapping[str, Sequence]`): A batch with `question`, `context`, `answers` (and `id` when
            `keep_offsets`), as given by `Dataset.map(..., batched=True)`.
        tokenizer (`PreTrainedTokenizerFast`): A fast tokenizer (offset mappings are needed). The question comes
            first when `tokenizer.padding_side == "right"`, as in `run_qa.py`.
        max_length (`int`, *optional*, defaults to `256`): Tokens per window, question and special tokens included.
        doc_stride (`int`, *optional*, defaults to `64`): Tokens shared by consecutive windows of one context.
        padding (`str` or `bool`, *optional*, defaults to `"max_length"`): Passed to the tokenizer; use `False` with
            a padding collator.
        keep_offsets (`bool`, *optional*, defaults to `False`): Also keep `example_id` and `offset_mapping` (with
            [`NO_OFFSET`] outside the context), which span rewards need to turn sampled tokens into text.

    Returns:
        `dict[str, list]`: the tokenizer's columns plus `start_positions` and `end_positions` (the `[CLS]` index when
        the first answer is not inside the window, or the example has no answer), one row per window.
    """
    encoding, context_index = _tokenize_windows(examples, tokenizer, max_length, doc_stride, padding)
    sample_map = encoding.pop("overflow_to_sample_mapping")
    all_offsets = encoding.pop("offset_mapping")
    starts, ends, example_ids, kept_offsets = [], [], [], []
    for i, offsets in enumerate(all_offsets):
        sequence_ids = encoding.sequence_ids(i)
        context_positions = [j for j, s in enumerate(sequence_ids) if s == context_index]
        cls_index = _cls_index(encoding["input_ids"][i], tokenizer)
        answers = examples["answers"][sample_map[i]]
        span = None
        if len(answers["answer_start"]) > 0:
            start_char = answers["answer_start"][0]
            span = answer_token_span(offsets, context_positions, start_char, start_char + len(answers["text"][0]))
        start, end = span if span is not None else (cls_index, cls_index)
        starts.append(start)
        ends.append(end)
        if keep_offsets:
            example_ids.append(examples["id"][sample_map[i]])
            kept_offsets.append([tuple(o) if s == context_index else NO_OFFSET for o, s in zip(offsets, sequence_ids)])
    features = dict(encoding)
    features["start_positions"], features["end_positions"] = starts, ends
    if keep_offsets:
        features["example_id"], features["offset_mapping"] = example_ids, kept_offsets
    return features


def prepare_qa_eval_features(
    examples: Mapping[str, Sequence],
    tokenizer,
    max_length: int = 256,
    doc_stride: int = 64,
    padding: Any = "max_length",
) -> dict[str, list]:
    """Turns a batch of QA examples into evaluation windows that remember their example and character offsets.

    Args:
        examples (`Mapping[str, Sequence]`): A batch with `id`, `question` and `context`.
        tokenizer (`PreTrainedTokenizerFast`): A fast tokenizer, as for [`prepare_qa_train_features`].
        max_length (`int`, *optional*, defaults to `256`): Tokens per window.
        doc_stride (`int`, *optional*, defaults to `64`): Tokens shared by consecutive windows.
        padding (`str` or `bool`, *optional*, defaults to `"max_length"`): Passed to the tokenizer.

    Returns:
        `dict[str, list]`: the tokenizer's columns plus `example_id` and `offset_mapping` (`None` at every position
        outside the context: question, special and padding tokens), one row per window.
    """
    encoding, context_index = _tokenize_windows(examples, tokenizer, max_length, doc_stride, padding)
    sample_map = encoding.pop("overflow_to_sample_mapping")
    features = dict(encoding)
    features["example_id"] = [examples["id"][s] for s in sample_map]
    features["offset_mapping"] = [
        [tuple(o) if s == context_index else None for o, s in zip(offsets, encoding.sequence_ids(i))]
        for i, offsets in enumerate(encoding["offset_mapping"])
    ]
    return features


def _best_span_in_window(offsets, start_logits, end_logits, n_best: int, max_answer_length: int):
    """Best `(score, char_start, char_end)` among the top `n_best` starts x ends of one window, or `None`."""
    length = min(len(offsets), len(start_logits))
    start_logits, end_logits = np.asarray(start_logits[:length]), np.asarray(end_logits[:length])
    in_context = np.array([o is not None and o[0] >= 0 for o in offsets[:length]], dtype=bool)
    top_starts = np.argsort(start_logits)[::-1][:n_best]
    top_ends = np.argsort(end_logits)[::-1][:n_best]
    span_lengths = top_ends[None, :] - top_starts[:, None] + 1  # (n, n)
    valid = in_context[top_starts][:, None] & in_context[top_ends][None, :]
    valid &= (span_lengths >= 1) & (span_lengths <= max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[top_starts][:, None] + end_logits[top_ends][None, :], -np.inf)
    s, e = np.unravel_index(np.argmax(scores), scores.shape)
    return float(scores[s, e]), offsets[top_starts[s]][0], offsets[top_ends[e]][1]


def postprocess_qa_predictions(
    examples,
    features,
    start_logits,
    end_logits,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Turns per-window start/end logits into one answer text per example, as `run_qa.py` does.

    For every window of an example, the `n_best` highest start and end logits are paired; a pair counts if both
    tokens are in the context, `end >= start` and the span has at most `max_answer_length` tokens. Its score is
    `start_logit + end_logit`; the best pair over all windows gives `context[offsets[start][0]:offsets[end][1]]`.

    Args:
        examples (`Dataset` or `Mapping[str, Sequence]`): Columns `id` and `context`.
        features (`Dataset` or `Mapping[str, Sequence]`): From [`prepare_qa_eval_features`]: `example_id` and
            `offset_mapping` (`None`, or [`NO_OFFSET`], outside the context).
        start_logits (`np.ndarray` of shape `(num_features, T)`): Start logits (extra padded columns are ignored).
        end_logits (`np.ndarray` of shape `(num_features, T)`): End logits.
        n_best (`int`, *optional*, defaults to `20`): Candidates per side and window.
        max_answer_length (`int`, *optional*, defaults to `30`): Longest answer in tokens.

    Returns:
        `dict[str, str]`: example id to predicted text (`""` when no window has a valid span).

    Raises:
        `ValueError`: when the numbers of features and logit rows differ, or an example has no window.
    """
    if len(start_logits) != len(features["example_id"]) or len(end_logits) != len(start_logits):
        raise ValueError(
            f"Got {len(start_logits)} start-logit rows and {len(end_logits)} end-logit rows for "
            f"{len(features['example_id'])} features; they must match (one row per window, in feature order)."
        )
    windows_of = defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        windows_of[example_id].append(i)
    all_offsets = features["offset_mapping"]
    predictions = {}
    for example_id, context in zip(examples["id"], examples["context"]):
        if example_id not in windows_of:
            raise ValueError(f"Example {example_id!r} has no feature. Fix: build features from these examples.")
        best = None
        for i in windows_of[example_id]:
            candidate = _best_span_in_window(all_offsets[i], start_logits[i], end_logits[i], n_best, max_answer_length)
            if candidate is not None and (best is None or candidate[0] > best[0]):
                best = candidate
        predictions[example_id] = context[best[1] : best[2]] if best is not None else ""
    return predictions
