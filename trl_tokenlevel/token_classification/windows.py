"""Sliding windows over sentences longer than `max_length` sub-tokens, for evaluation and prediction.

A sentence that does not fit is cut by the fast tokenizer (`return_overflowing_tokens=True`) into windows of
`max_length` sub-tokens (special tokens included) that overlap by `stride` sub-tokens. Each labelled sub-token is then
read from one window only: the one where it is farthest from an edge, i.e. with the largest
`min(sub-tokens before it, sub-tokens after it)` inside the window, ties to the earlier window. This is the "max
context" rule of BERT's SQuAD code (`_check_is_max_context`), used by transformers' `run_qa.py`.

- [`max_context_windows`]: the rule, on window lengths only (pure).
- [`read_positions`]: for one sentence's windows, each sub-token's word and the (window, position) it is read from.
- [`prepare_eval_windows`]: a raw `tokens`/`ner_tags` dataset as windows, each word labelled in one window only, with
  a `sentence_index` column; [`merge_windows`] lays the windows of each sentence end to end again for the metric.

Training does not use windows: a word's feedback columns must match the k-th labelled position of its row.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from functools import partial

import numpy as np
from datasets import ClassLabel, Dataset

from ..data.alignment import IGNORE_INDEX, _b_to_i_ids, check_prefix_space_for_words


logger = logging.getLogger(__name__)

SENTENCE_COLUMN = "sentence_index"
"""Row of the raw dataset each window comes from."""


def check_stride(tokenizer, max_length: int, stride: int) -> None:
    """Refuses a stride the tokenizer cannot use (it would panic in Rust) with the range that works."""
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if room < 1:
        raise ValueError(f"max_length={max_length} leaves no room for words next to the tokenizer's special tokens.")
    if not 0 <= stride < room:
        raise ValueError(
            f"stride={stride} must be >= 0 and smaller than max_length={max_length} minus the tokenizer's "
            f"{max_length - room} special tokens ({room}). Fix: pass a stride in [0, {room - 1}], e.g. "
            f"{room // 4} (a quarter of a window), or raise max_length."
        )


def max_context_windows(window_lengths: Sequence[int], stride: int) -> list[int]:
    """The window each sub-token of a sentence is read from, by the max-context rule (module docstring).

    Args:
        window_lengths (`list[int]`): Sub-tokens of each window, special tokens excluded; consecutive windows share
            `stride` sub-tokens.
        stride (`int`): The overlap.

    Returns:
        `list[int]`: one window index per sub-token of the sentence.

    Example:

    ```python
    >>> max_context_windows([4, 4, 2], stride=2)  # windows cover sub-tokens 0-3, 2-5, 4-5
    [0, 0, 0, 1, 1, 1]

    ```
    """
    starts = [0]
    for length in window_lengths[:-1]:
        starts.append(starts[-1] + length - stride)
    owners = []
    for position in range(starts[-1] + window_lengths[-1]):
        best, best_context = -1, -1
        for window, (start, length) in enumerate(zip(starts, window_lengths)):
            if start <= position < start + length:
                context = min(position - start, start + length - 1 - position)
                if context > best_context:
                    best, best_context = window, context
        owners.append(best)
    return owners


def read_positions(encoding, rows: Sequence[int], stride: int) -> tuple[list[int], list[tuple[int, int]]]:
    """For one sentence split into windows (rows `rows` of a batch `encoding`): the word of each of its sub-tokens,
    and the `(row, position)` each sub-token is read from.

    Raises:
        `RuntimeError`: if consecutive windows do not share `stride` sub-tokens (a tokenizer that cuts differently).
    """
    content = [[t for t, w in enumerate(encoding.word_ids(row)) if w is not None] for row in rows]  # no specials
    words: list[int] = []
    start = 0
    for row, positions in zip(rows, content):
        window_words = [encoding.word_ids(row)[t] for t in positions]
        overlap = len(words) - start
        if words[start:] != window_words[:overlap]:
            raise RuntimeError(
                f"{type(encoding).__name__} windows do not overlap by stride={stride} sub-tokens as expected; "
                "sliding windows need a fast tokenizer from the `tokenizers` library."
            )
        words.extend(window_words[overlap:])
        start += len(positions) - stride
    owners = max_context_windows([len(c) for c in content], stride)
    starts = [0]
    for positions in content[:-1]:
        starts.append(starts[-1] + len(positions) - stride)
    sources = [(rows[k], content[k][p - starts[k]]) for p, k in enumerate(owners)]
    return words, sources


def tokenize_windows(
    examples: dict[str, list], indices: list[int], tokenizer, *, max_length: int, stride: int,
    label_all_tokens: bool = False, label_column: str = "ner_tags", label_names: Sequence[str] | None = None,
) -> dict[str, list]:
    """`Dataset.map(batched=True, with_indices=True)` function: one row per window; the other columns repeated.

    A sub-token is labelled (as in [`~trl_tokenlevel.data.tokenize_and_align_labels`]) only in the window it is read
    from, so every word of a sentence is labelled exactly once over its windows.
    """
    b_to_i = _b_to_i_ids(list(label_names)) if label_all_tokens else None
    encoding = tokenizer(examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_length,
                         stride=stride, return_overflowing_tokens=True)
    sentence_of_row = list(encoding["overflow_to_sample_mapping"])
    labels = [[IGNORE_INDEX] * len(ids) for ids in encoding["input_ids"]]
    rows_of = {}
    for row, sentence in enumerate(sentence_of_row):
        rows_of.setdefault(sentence, []).append(row)
    for sentence, word_labels in enumerate(examples[label_column]):
        words, sources = read_positions(encoding, rows_of[sentence], stride)
        for p, (row, t) in enumerate(sources):
            if p == 0 or words[p - 1] != words[p]:
                labels[row][t] = word_labels[words[p]]
            elif label_all_tokens:
                labels[row][t] = b_to_i[word_labels[words[p]]]
    outputs = {name: [values[s] for s in sentence_of_row] for name, values in examples.items()}
    outputs.update({k: v for k, v in encoding.items() if k != "overflow_to_sample_mapping"})
    outputs["labels"] = labels
    outputs["num_words"] = [len(examples[label_column][s]) for s in sentence_of_row]
    outputs["num_words_kept"] = outputs["num_words"]  # across its windows a sentence keeps every word
    outputs[SENTENCE_COLUMN] = [indices[s] for s in sentence_of_row]
    return outputs


def prepare_eval_windows(
    dataset: Dataset, tokenizer, *, max_length: int, stride: int, label_all_tokens: bool = False,
    label_column: str = "ner_tags",
) -> Dataset:
    """Tokenizes a raw word-level NER dataset for evaluation or prediction: one row per window, every word labelled
    once (in the window where it has the most context), and a `sentence_index` column for [`merge_windows`].

    Sentences that fit in `max_length` give one row, as [`~trl_tokenlevel.data.prepare_token_classification_dataset`]
    would; longer ones are counted in one warning.

    Args:
        dataset (`datasets.Dataset`): Rows with `tokens` and `label_column` (label ids); other columns are repeated.
        tokenizer ([`~transformers.PreTrainedTokenizerFast`]): A fast tokenizer.
        max_length (`int`): Sub-tokens per window, special tokens included.
        stride (`int`): Sub-tokens shared by consecutive windows of a sentence ([`check_stride`]).
        label_all_tokens (`bool`, *optional*, defaults to `False`): Label continuation sub-tokens too (`B-X` -> `I-X`).
        label_column (`str`, *optional*, defaults to `"ner_tags"`): Column holding the label ids.

    Returns:
        `datasets.Dataset` with the original columns, the tokenizer outputs, `labels`, `num_words`,
        `num_words_kept` and `sentence_index`.
    """
    check_prefix_space_for_words(tokenizer)
    check_stride(tokenizer, max_length, stride)
    label_names = None
    if label_all_tokens:
        feature = dataset.features.get(label_column)
        if not isinstance(getattr(feature, "feature", None), ClassLabel):
            raise ValueError(f"label_all_tokens=True needs `{label_column}` to be a sequence of ClassLabel.")
        label_names = feature.feature.names
    windows = dataset.map(
        partial(tokenize_windows, tokenizer=tokenizer, max_length=max_length, stride=stride,
                label_all_tokens=label_all_tokens, label_column=label_column, label_names=label_names),
        batched=True, with_indices=True, remove_columns=dataset.column_names, desc="Tokenizing into windows",
    )
    counts = Counter(windows[SENTENCE_COLUMN])
    split = sum(n > 1 for n in counts.values())
    if split:
        logger.warning(
            "%d of %d sentences are longer than max_length=%d sub-tokens: split into %d windows overlapping by "
            "stride=%d sub-tokens for evaluation/prediction. Every word is still scored once, from the window where "
            "it has the most context.",
            split, len(dataset), max_length, sum(n for n in counts.values() if n > 1), stride,
        )
    return windows


def split_sentences(dataset) -> list[int] | None:
    """The `sentence_index` column of an evaluation dataset if some sentence spans several rows, else `None`."""
    if SENTENCE_COLUMN not in (getattr(dataset, "column_names", None) or []):
        return None
    sentence_index = list(dataset[SENTENCE_COLUMN])
    return sentence_index if len(set(sentence_index)) < len(sentence_index) else None


def merge_windows(array, sentence_index: Sequence[int], width: int | None = None) -> np.ndarray | None:
    """Lays the rows of each sentence's windows end to end: `(N windows, T, ...)` -> `(S sentences, T', ...)`,
    padded with -100, sentences in order of first appearance.

    Labels mark each word in one window only, so a merged row holds every word once, in order.

    Args:
        array (`np.ndarray`): Predictions (ids or logits) or label ids, one row per window.
        sentence_index (`list[int]`): Sentence of each row.
        width (`int`, *optional*): Keep only the last `width` positions of each row first (the labels' width, when
            prompt tuning prepends virtual tokens to the predictions).
    """
    if array is None:
        return None
    if isinstance(array, (tuple, list)):
        array = array[0]
    array = np.asarray(array)
    if array.shape[0] != len(sentence_index):
        raise ValueError(
            f"Got {array.shape[0]} evaluation rows for {len(sentence_index)} windows: every window must be evaluated "
            "to merge the windows of a sentence. Fix: set dataloader_drop_last=False for evaluation."
        )
    if width is not None:
        array = array[:, array.shape[1] - width :]
    rows_of: dict[int, list[int]] = {}
    for row, sentence in enumerate(sentence_index):
        rows_of.setdefault(sentence, []).append(row)
    merged = [np.concatenate([array[r] for r in rows], axis=0) for rows in rows_of.values()]
    out = np.full((len(merged), max(len(m) for m in merged), *array.shape[2:]), IGNORE_INDEX, dtype=array.dtype)
    for i, row in enumerate(merged):
        out[i, : len(row)] = row
    return out
