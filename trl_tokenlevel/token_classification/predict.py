"""A tagger's labelling of pre-split sentences, one IOB2 tag per word: what a deployed model shows its users."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .windows import check_stride, read_positions


@torch.no_grad()
def predict_word_labels(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    sample: bool = False,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    label_list: Sequence[str] | None = None,
    batch_size: int = 64,
    max_length: int = 512,
    stride: int | None = None,
    outside: str | None = "O",
) -> list[list[str]]:
    """Labels each word by its first sub-token: the argmax, or a sample from the policy `softmax(logits / temperature)`.

    Sampling is how a tagger explores: the user then judges entities the argmax would never propose (see
    `trl_tokenlevel.data.feedback`). A sentence longer than `max_length` sub-tokens is cut into windows that overlap by
    `stride` sub-tokens, and each word is read from the window where its first sub-token has the most context
    (`windows.py`), so every word is labelled by the model. Only a word the tokenizer turns into no sub-token gets
    `outside`: a tagger shows nothing there.

    Args:
        model (`PreTrainedModel`): A token classifier; run in eval mode (no dropout), its mode restored after.
        tokenizer (`PreTrainedTokenizerFast`): Its fast tokenizer (`word_ids()` and overflowing windows are needed).
        sentences (`list[list[str]]`): Pre-split words.
        sample (`bool`, *optional*, defaults to `False`): Sample each word's tag (one draw per word, from the logits
            of the window it is read from) instead of taking the argmax.
        generator (`torch.Generator`, *optional*): Source of the samples (on the model's device), for reproducibility.
        temperature (`float`, *optional*, defaults to `1.0`): Sampling temperature (ignored for the argmax).
        label_list (`list[str]`, *optional*): Label names by id; defaults to the model's `config.id2label`.
        batch_size (`int`, *optional*, defaults to `64`): Sentences tokenized together, and windows per forward pass.
        max_length (`int`, *optional*, defaults to `512`): Sub-tokens per window, special tokens included.
        stride (`int`, *optional*): Sub-tokens shared by consecutive windows of a long sentence (as `doc_stride` in
            transformers' `run_qa.py`); must be smaller than `max_length` minus the special tokens. Defaults to a
            quarter of `max_length` (128 for 512). More overlap gives words near a window's edge more context, at the cost of more windows.
        outside (`str`, *optional*, defaults to `"O"`): Tag of words that have no sub-token.

    Returns:
        `list[list[str]]`: one tag per word of each sentence.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if stride is None:
        stride = max_length // 4
    check_stride(tokenizer, max_length, stride)
    names = list(label_list) if label_list is not None else [model.config.id2label[i] for i in range(model.config.num_labels)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    labellings: list[list[str]] = []
    for start in range(0, len(sentences), batch_size):
        chunk = [list(words) for words in sentences[start : start + batch_size]]
        encoding = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length, stride=stride,
                             return_overflowing_tokens=True, padding=True, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        num_windows, length = inputs["input_ids"].shape
        logits = torch.cat([  # prompt tuning prepends virtual tokens: keep the last `length` positions
            model(**{k: v[row : row + batch_size] for k, v in inputs.items()}).logits[:, -length:]
            for row in range(0, num_windows, batch_size)
        ])  # (windows, T, C)
        sources = word_sources(encoding, [len(words) for words in chunk], stride)
        read = [source for sentence in sources for source in sentence if source is not None]
        word_logits = logits[[r for r, _ in read], [t for _, t in read]]  # (words, C)
        if sample:
            probs = (word_logits.float() / temperature).softmax(-1)
            ids = torch.multinomial(probs, 1, generator=generator).squeeze(-1) if len(read) else word_logits[:, 0]
        else:
            ids = word_logits.argmax(-1)  # (words,)
        ids = iter(ids.tolist())
        labellings += [[outside if source is None else names[next(ids)] for source in sentence] for sentence in sources]
    model.train(was_training)
    return labellings


def word_sources(encoding, num_words: Sequence[int], stride: int) -> list[list[tuple[int, int] | None]]:
    """The `(window, position)` of the sub-token each word is labelled by: its first, in the window where that
    sub-token has the most context; `None` for a word with no sub-token."""
    rows_of: dict[int, list[int]] = {}
    for row, sentence in enumerate(encoding["overflow_to_sample_mapping"].tolist()):
        rows_of.setdefault(sentence, []).append(row)
    sources = []
    for sentence, count in enumerate(num_words):
        first: list[tuple[int, int] | None] = [None] * count
        words, read_from = read_positions(encoding, rows_of[sentence], stride)
        for p, word in enumerate(words):
            if p == 0 or words[p - 1] != word:
                first[word] = read_from[p]
        sources.append(first)
    return sources
