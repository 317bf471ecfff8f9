"""A tagger's labelling of pre-split sentences, one IOB2 tag per word: what a deployed model shows its users."""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
    outside: str = "O",
) -> list[list[str]]:
    """Labels each word by its first sub-token: the argmax, or a sample from the policy `softmax(logits / temperature)`.

    Sampling is how a tagger explores: the user then judges entities the argmax would never propose (see
    `trl_tokenlevel.data.feedback`). Words without a sub-token of their own (cut by `max_length`, or turned into no
    sub-token by the tokenizer) get `outside`: a tagger shows nothing there.

    Args:
        model (`PreTrainedModel`): A token classifier; run in eval mode (no dropout), its mode restored after.
        tokenizer (`PreTrainedTokenizerFast`): Its fast tokenizer (`word_ids()` is needed).
        sentences (`list[list[str]]`): Pre-split words.
        sample (`bool`, *optional*, defaults to `False`): Sample each word's tag instead of taking the argmax.
        generator (`torch.Generator`, *optional*): Source of the samples (on the model's device), for reproducibility.
        temperature (`float`, *optional*, defaults to `1.0`): Sampling temperature (ignored for the argmax).
        label_list (`list[str]`, *optional*): Label names by id; defaults to the model's `config.id2label`.
        batch_size (`int`, *optional*, defaults to `64`): Sentences per forward pass.
        max_length (`int`, *optional*, defaults to `512`): Sub-tokens per sentence, special tokens included.
        outside (`str`, *optional*, defaults to `"O"`): Tag of words that have no sub-token.

    Returns:
        `list[list[str]]`: one tag per word of each sentence.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    names = list(label_list) if label_list is not None else [model.config.id2label[i] for i in range(model.config.num_labels)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    labellings: list[list[str]] = []
    for start in range(0, len(sentences), batch_size):
        chunk = [list(words) for words in sentences[start : start + batch_size]]
        encoding = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                             return_tensors="pt")
        inputs = {k: v.to(device) for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        logits = model(**inputs).logits  # (B, T, C)
        if sample:
            probs = (logits.float() / temperature).softmax(-1)
            ids = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(logits.shape[:2])  # (B, T)
        else:
            ids = logits.argmax(-1)  # (B, T)
        ids = ids.tolist()
        for b, words in enumerate(chunk):
            tags = [outside] * len(words)
            previous = None
            for position, word in enumerate(encoding.word_ids(b)):
                if word is not None and word != previous:
                    tags[word] = names[ids[b][position]]
                previous = word
            labellings.append(tags)
    model.train(was_training)
    return labellings
