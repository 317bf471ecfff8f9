"""Word-to-sub-token label alignment for token classification (as in transformers' `run_ner.py`).

Each word's label goes on its first sub-token; special tokens and continuation sub-tokens get `-100`, the index that
PyTorch's cross-entropy (and hence every Hugging Face token classifier) ignores. Alignment uses the tokenizer's
`word_ids()`, so the text is never re-tokenized to recover words.
"""

from __future__ import annotations

import copy
import json
import logging
from functools import partial
from typing import Optional

from datasets import ClassLabel, Dataset
from tokenizers import Tokenizer


logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
MODEL_INPUT_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "labels")


def _byte_level_nodes(node: Optional[dict]) -> list[dict]:
    """All `ByteLevel` pre-tokenizer nodes in a serialized (possibly nested `Sequence`) pre-tokenizer."""
    if not node:
        return []
    if node.get("type") == "ByteLevel":
        return [node]
    return [found for child in node.get("pretokenizers", []) for found in _byte_level_nodes(child)]


def _pre_tokenizer_state(tokenizer) -> Optional[dict]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.pre_tokenizer is None:
        return None
    return json.loads(backend.pre_tokenizer.__getstate__())


def check_prefix_space_for_words(tokenizer) -> None:
    """Raises if a byte-level BPE tokenizer would glue pre-split words together.

    With `is_split_into_words=True`, a byte-level BPE (GPT-2, Llama-3, SmolLM2) tokenizes each word without the
    leading space it has in running text (`"Ġcat"` becomes `"c" "at"`) unless its `ByteLevel` pre-tokenizer has
    `add_prefix_space=True`. transformers 5 no longer refuses such input, so the model would silently see
    out-of-distribution sub-tokens.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]): The tokenizer to check.

    Raises:
        `ValueError`: if the tokenizer has a `ByteLevel` pre-tokenizer without `add_prefix_space=True`.
    """
    nodes = _byte_level_nodes(_pre_tokenizer_state(tokenizer))
    if nodes and not all(node.get("add_prefix_space") for node in nodes):
        raise ValueError(
            f"{type(tokenizer).__name__} ({tokenizer.name_or_path!r}) is a byte-level BPE tokenizer without "
            "add_prefix_space=True, so words passed with is_split_into_words=True lose their leading space. Fix: "
            "load it with `AutoTokenizer.from_pretrained(..., add_prefix_space=True)`, or, where that keyword is "
            "ignored (GGUF files, tokenizers with a Sequence pre-tokenizer), use "
            "`trl_tokenlevel.data.with_prefix_space(tokenizer)`."
        )


def with_prefix_space(tokenizer):
    """Returns a copy of `tokenizer` whose `ByteLevel` pre-tokenizer(s) add a space before every word.

    Needed for word-split input with byte-level BPE tokenizers loaded in ways that ignore the `add_prefix_space`
    keyword (for example SmolLM2 from a GGUF file). The original tokenizer is left unchanged, so running text (chat
    prompts) keeps its usual tokenization.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]): A fast tokenizer.

    Returns:
        A deep copy of `tokenizer` with `add_prefix_space=True` on every `ByteLevel` pre-tokenizer.
    """
    tokenizer = copy.deepcopy(tokenizer)
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    for node in _byte_level_nodes(state.get("pre_tokenizer")):
        node["add_prefix_space"] = True
    tokenizer.backend_tokenizer.pre_tokenizer = Tokenizer.from_str(json.dumps(state)).pre_tokenizer
    tokenizer.add_prefix_space = True
    return tokenizer


def _b_to_i_ids(label_names: list[str]) -> list[int]:
    """Maps each label id to the id of its `I-` form (`B-X` -> `I-X`); other labels map to themselves."""
    mapping = []
    for name in label_names:
        inside = "I-" + name[2:] if name.startswith("B-") else name
        mapping.append(label_names.index(inside) if inside in label_names else label_names.index(name))
    return mapping


def tokenize_and_align_labels(
    examples: dict[str, list],
    tokenizer,
    *,
    max_length: int = 128,
    label_all_tokens: bool = False,
    label_column: str = "ner_tags",
    label_names: Optional[list[str]] = None,
) -> dict[str, list]:
    """Tokenizes pre-split words and puts each word's label on its first sub-token (for `Dataset.map(batched=True)`).

    Args:
        examples (`dict[str, list]`):
            A batch with `tokens` (list of word lists) and `label_column` (list of label-id lists).
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            A fast tokenizer (`word_ids()` is needed).
        max_length (`int`, *optional*, defaults to `128`):
            Sub-tokens beyond this length (special tokens included) are truncated away.
        label_all_tokens (`bool`, *optional*, defaults to `False`):
            If `True`, continuation sub-tokens get the word's label with `B-X` turned into `I-X`; if `False` they get
            `-100` and are ignored by the loss and by the metrics (the usual choice: one prediction per word).
        label_column (`str`, *optional*, defaults to `"ner_tags"`):
            Column holding the label ids.
        label_names (`list[str]`, *optional*):
            Names of the label ids; required only with `label_all_tokens=True`.

    Returns:
        `dict[str, list]`: the tokenizer outputs plus `labels` (same length as `input_ids`), `num_words` and
        `num_words_kept`. A sentence lost words to truncation when `num_words_kept < num_words`; words that vanish
        in tokenization (zero sub-tokens) are not counted as lost unless the sentence also hit `max_length`.
    """
    if label_all_tokens and label_names is None:
        raise ValueError("label_all_tokens=True needs `label_names` to turn B-X labels into I-X.")
    b_to_i = _b_to_i_ids(list(label_names)) if label_all_tokens else None
    encoding = tokenizer(examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)

    all_labels, num_words, num_words_kept = [], [], []
    for i, word_labels in enumerate(examples[label_column]):
        word_ids = encoding.word_ids(batch_index=i)
        labels, previous_word = [], None
        for word_id in word_ids:
            if word_id is None:
                labels.append(IGNORE_INDEX)
            elif word_id != previous_word:
                labels.append(word_labels[word_id])
            else:
                labels.append(b_to_i[word_labels[word_id]] if label_all_tokens else IGNORE_INDEX)
            if word_id is not None:
                previous_word = word_id
        seen = [w for w in word_ids if w is not None]
        hit_max_length = len(word_ids) >= max_length
        kept = (max(seen) + 1 if seen else 0) if hit_max_length else len(word_labels)
        all_labels.append(labels)
        num_words.append(len(word_labels))
        num_words_kept.append(kept)

    outputs = dict(encoding)
    outputs["labels"] = all_labels
    outputs["num_words"] = num_words
    outputs["num_words_kept"] = num_words_kept
    return outputs


def prepare_token_classification_dataset(
    dataset: Dataset,
    tokenizer,
    *,
    max_length: int = 128,
    label_all_tokens: bool = False,
    label_column: str = "ner_tags",
    remove_columns: bool = True,
    return_stats: bool = False,
) -> Dataset | tuple[Dataset, dict[str, int]]:
    """Tokenizes a word-level NER dataset into model inputs with aligned `labels`, and reports truncation.

    Logs one warning if any sentence lost words to truncation: those words get no label, so they are neither trained
    on nor scored.

    Args:
        dataset (`datasets.Dataset`):
            Rows with `tokens` (list of words) and `label_column` (label ids, ideally a `ClassLabel` sequence).
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            A fast tokenizer. Byte-level BPE tokenizers must add a prefix space (see [`check_prefix_space_for_words`]).
        max_length (`int`, *optional*, defaults to `128`):
            Maximum sub-tokens per sentence. With MiniLM's uncased WordPiece, 128 truncates 1 / 3 / 1 CoNLL-2003
            sentences of train / validation / test (the longest needs 164); raise it if the warning reports any.
        label_all_tokens (`bool`, *optional*, defaults to `False`):
            See [`tokenize_and_align_labels`].
        label_column (`str`, *optional*, defaults to `"ner_tags"`):
            Column holding the label ids.
        remove_columns (`bool`, *optional*, defaults to `True`):
            If `True`, keep only the model inputs (`input_ids`, `attention_mask`, `token_type_ids` if the tokenizer
            makes them, `labels`); if `False`, keep the original columns and `num_words`/`num_words_kept` too.
        return_stats (`bool`, *optional*, defaults to `False`):
            If `True`, also return `{"truncated_sentences": n, "truncated_words": m}`.

    Returns:
        `datasets.Dataset`, or `(Dataset, dict)` if `return_stats=True`.
    """
    check_prefix_space_for_words(tokenizer)
    label_names = None
    feature = dataset.features.get(label_column)
    if label_all_tokens:
        if not isinstance(getattr(feature, "feature", None), ClassLabel):
            raise ValueError(f"label_all_tokens=True needs `{label_column}` to be a sequence of ClassLabel.")
        label_names = feature.feature.names

    align = partial(
        tokenize_and_align_labels,
        tokenizer=tokenizer,
        max_length=max_length,
        label_all_tokens=label_all_tokens,
        label_column=label_column,
        label_names=label_names,
    )
    processed = dataset.map(align, batched=True, desc="Tokenizing and aligning labels")

    num_words, num_words_kept = processed["num_words"], processed["num_words_kept"]
    truncated_sentences = sum(kept < total for total, kept in zip(num_words, num_words_kept))
    truncated_words = sum(total - kept for total, kept in zip(num_words, num_words_kept))
    if truncated_sentences:
        logger.warning(
            "Truncation at max_length=%d dropped %d words from %d of %d sentences; those words get no label. "
            "TokenClassificationRLTrainer truncates only for training (the cut words are not trained on); its "
            "evaluation and prediction use a sliding window and score every word. Fix: raise max_length.",
            max_length,
            truncated_words,
            truncated_sentences,
            len(processed),
        )
    if remove_columns:
        processed = processed.select_columns([c for c in MODEL_INPUT_COLUMNS if c in processed.column_names])
    stats = {"truncated_sentences": int(truncated_sentences), "truncated_words": int(truncated_words)}
    return (processed, stats) if return_stats else processed
