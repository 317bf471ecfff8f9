"""Built-in completion rewards from text: reference n-gram overlap (dense), ROUGE-L (sequence), length and format
penalties. Interface: `rewards/completion.py`. All are callable objects with a `__name__` for logging.
"""

from __future__ import annotations

import re

from ...metrics.text import ngrams, rouge_l, word_spans, words
from .alignment import token_char_spans, tokens_overlapping
from .base import CompletionReward


class ReferenceOverlapReward(CompletionReward):
    """Dense: a token earns reward when the word it belongs to completes an n-gram found in the reference.

    Each reference n-gram can be earned as many times as it occurs there (clipped counts, as in ROUGE/BLEU), and
    is worth `1 / (number of reference n-grams)`, shared evenly by the tokens of the completing word. A
    completion's total reward is therefore its ROUGE-N recall, but the credit sits on the tokens that earned it.

    Args:
        tokenizer: the policy's tokenizer (to map sampled ids to characters; see `rewards/alignment.py`).
        n (`int`, defaults to `2`): n-gram order. 1 rewards every reference word, 2 rewards reference phrases.
        reference_column (`str`, defaults to `"reference"`): dataset column with the reference text.

    Example (a tokenizer with one token per word):
        >>> from types import SimpleNamespace
        >>> vocab = ["", "amanda", "bakes", "cookies", "now"]
        >>> tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: " ".join(vocab[i] for i in ids))
        >>> reward = ReferenceOverlapReward(tok, n=2)
        >>> reward(["p"], ["amanda bakes now"], [[1, 2, 4]], reference=["Amanda bakes cookies"])
        [[0.0, 0.5, 0.0]]
    """

    def __init__(self, tokenizer, n: int = 2, reference_column: str = "reference"):
        self.tokenizer, self.n, self.reference_column = tokenizer, int(n), reference_column

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        references = _column(kwargs, self.reference_column, type(self).__name__)
        out = []
        for ids, reference in zip(completion_ids, references):
            rewards = [0.0] * len(ids)
            available = ngrams(words(reference), self.n)
            total = sum(available.values())
            if total == 0:
                out.append(None)
                continue
            text, spans = token_char_spans(self.tokenizer, ids)
            found = word_spans(text)
            for j in range(self.n - 1, len(found)):
                gram = tuple(w for _, _, w in found[j - self.n + 1 : j + 1])
                if available[gram] > 0:
                    available[gram] -= 1
                    tokens = tokens_overlapping(spans, found[j][0], found[j][1])
                    for t in tokens:
                        rewards[t] += 1.0 / total / len(tokens)
            out.append(rewards)
        return out


class RougeLReward(CompletionReward):
    """Sequence: ROUGE-L F1 (in [0, 1]) of the completion against the reference column.

    Example:
        >>> RougeLReward()(["p"], ["amanda brings cookies"], [[1, 2, 3]], reference=["Amanda brings cookies"])
        [1.0]
    """

    def __init__(self, reference_column: str = "reference"):
        self.reference_column = reference_column

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        references = _column(kwargs, self.reference_column, type(self).__name__)
        return [rouge_l(c, r) for c, r in zip(completions, references)]


class LengthPenalty(CompletionReward):
    """Dense: `-penalty` on every completion token after the first `max_tokens` (EOS included), 0 before.

    Example:
        >>> LengthPenalty(max_tokens=2, penalty=0.5)(["p"], ["a b c"], [[4, 5, 6, 3]])
        [[0.0, 0.0, -0.5, -0.5]]
    """

    def __init__(self, max_tokens: int, penalty: float = 0.1):
        self.max_tokens, self.penalty = int(max_tokens), float(penalty)

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        return [[0.0 if t < self.max_tokens else -self.penalty for t in range(len(ids))] for ids in completion_ids]


class FormatPenalty(CompletionReward):
    """Sequence: `penalty` (negative) when the completion breaks the format, else 0.

    The format is broken when `pattern` (a regex, searched in the completion text) does not match, or when
    `eos_token_id` is given and the completion does not end with it (it was cut at `max_new_tokens`).

    Example:
        >>> FormatPenalty(pattern=r"\\.$", eos_token_id=3)(["p", "p"], ["Done.", "Done"], [[7, 3], [7, 8]])
        [0.0, -1.0]
    """

    def __init__(self, pattern: str | None = None, eos_token_id: int | None = None, penalty: float = -1.0):
        self.pattern = re.compile(pattern) if pattern else None
        self.eos_token_id, self.penalty = eos_token_id, float(penalty)

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        out = []
        for text, ids in zip(completions, completion_ids):
            broken = self.pattern is not None and not self.pattern.search(text.strip())
            broken |= self.eos_token_id is not None and (not ids or ids[-1] != self.eos_token_id)
            out.append(self.penalty if broken else 0.0)
        return out


def _column(kwargs: dict, name: str, reward: str) -> list:
    if name not in kwargs:
        found = sorted(k for k in kwargs if k not in ("prompt_ids", "trainer_state"))
        raise KeyError(f"Reward {reward!r} needs the dataset column {name!r}; the dataset has {found}. Pass "
                       "reference_column=... (or source_column=...) to point it at the right column.")
    return kwargs[name]


__all__ = ["FormatPenalty", "LengthPenalty", "ReferenceOverlapReward", "RougeLReward"]
