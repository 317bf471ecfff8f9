"""Map sampled token ids to character spans of the decoded completion, without re-tokenizing.

Rewards that judge words or entities in the text need to know which tokens produced which characters. Decoding
growing prefixes of the sampled ids gives, for token `t`, the characters it added: `[len(decode(ids[:t])),
len(decode(ids[:t+1])))`. The ids stay the ones the policy sampled; nothing is encoded again.
"""

from __future__ import annotations


def token_char_spans(tokenizer, ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text of `ids` (special tokens skipped) and the `(start, end)` characters each token added.

    A token that adds no characters (EOS, or the first bytes of a multi-byte character) gets an empty span.
    """
    spans, previous = [], ""
    for t in range(len(ids)):
        text = tokenizer.decode(ids[: t + 1], skip_special_tokens=True)
        start = len(previous) if text.startswith(previous) else min(len(previous), len(text))
        spans.append((start, max(start, len(text))))
        previous = text
    return previous, spans


def tokens_overlapping(spans: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of the tokens whose character span overlaps `[start, end)`."""
    return [t for t, (s, e) in enumerate(spans) if s < end and start < e and e > s]
