"""Translation rewards: per-token credit from character n-grams shared with the reference (dense), and sentence-level
chrF / BLEU from `sacrebleu` (sequence). Interface: `rewards/completion.py`.

The dense reward spreads a chrF-style recall over the tokens that earned it. chrF (Popović, WMT 2015) compares the
character n-grams (n = 1..6) of hypothesis and reference after removing all whitespace; the n-grams cross word
boundaries. Here each matched n-gram is credited to the token that produced its last character. Token-level rewards
for MT are motivated by Ramos et al. (2024, arXiv 2411.05986): credit placed on tokens trains more steadily than one
sentence score.
"""

from __future__ import annotations

from collections import Counter

from .alignment import token_char_spans
from .base import CompletionReward
from .text import _column


def _references(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def char_owners(spans: list[tuple[int, int]], length: int) -> list[int]:
    """For every character of the decoded completion, the token that produced it: the first token whose span (from
    [`token_char_spans`]) ends after that character. A character whose bytes a byte-level tokenizer split over
    several tokens belongs to the token that began it (its prefix already decodes to U+FFFD in that place).

    Example:
        >>> char_owners([(0, 3), (3, 3), (3, 5)], 5)
        [0, 0, 0, 2, 2]
    """
    owners, position = [], 0
    for t, (_, end) in enumerate(spans):
        while position < min(end, length):
            owners.append(t)
            position += 1
    return owners + [len(spans) - 1] * (length - position)


def char_ngram_credits(
    text: str, owners: list[int], num_tokens: int, reference: str, n_max: int = 6, lowercase: bool = False
) -> list[float]:
    """Per-token credit of `text` (the decoded completion, `owners[p]` the token of character `p`); see
    [`CharNgramOverlapReward`] for the definition. Returns `num_tokens` floats that sum to the documented recall.

    Example (characters owned by tokens 0,0,0 | 1,1,1,1):
        >>> [round(c, 4) for c in char_ngram_credits("ein Hut", [0, 0, 0, 1, 1, 1, 1], 2, "ein Hund", n_max=2)]
        [0.381, 0.3095]
    """
    if lowercase:
        text, reference = text.lower(), reference.lower()
    kept = [p for p, c in enumerate(text) if not c.isspace()]  # str.split() and chrF drop exactly these characters
    hypothesis = "".join(text[p] for p in kept)
    target = "".join(reference.split())
    orders = [n for n in range(1, n_max + 1) if len(target) >= n]
    credits = [0.0] * num_tokens
    for n in orders:
        available = Counter(target[i : i + n] for i in range(len(target) - n + 1))
        worth = 1.0 / (len(orders) * (len(target) - n + 1))
        for end in range(n, len(hypothesis) + 1):  # left to right: the first occurrences of an n-gram are paid
            gram = hypothesis[end - n : end]
            if available[gram] > 0:
                available[gram] -= 1
                credits[owners[kept[end - 1]]] += worth
    return credits


class CharNgramOverlapReward(CompletionReward):
    """Dense: each completion token earns the reference character n-grams it completes (chrF-style recall).

    Definition. Let `h` be the decoded completion and `r` the reference, each with all whitespace removed (as chrF
    does by default; n-grams therefore cross word boundaries), and `R_n = len(r) - n + 1` the number of reference
    n-grams of order `n`. For every order `n` in `1..n_max` with `R_n > 0`, the n-grams of `h` are read left to
    right; one whose reference count is not yet used up is *matched* and uses one occurrence (clipped counts: each
    reference occurrence is matched at most once, and the first occurrences in `h` are the ones paid). A matched
    n-gram is worth `1 / (N * R_n)`, `N` being the number of orders with `R_n > 0`, and is credited to the token
    that produced its last character (the first token whose decoded prefix reaches past that character, see
    [`char_owners`]; the sampled ids are decoded, never re-encoded). Hence the credits of a completion sum to

        sum_n matched_n / (N * R_n) = mean over orders of the character n-gram recall, in [0, 1],

    which is chrF's averaged recall (`avg_rec` in `sacrebleu`'s CHRF with `word_order=0`) whenever the completion
    has at least `n_max` non-space characters; sacreBLEU leaves out of the mean an order the hypothesis is too short
    for, where this reward counts it as 0 recall. A token that completes no matched n-gram (EOS included) gets 0.
    Recall alone does not punish extra text: pair it with a length penalty or the sequence [`ChrFReward`].

    Args:
        tokenizer: the policy's tokenizer (maps sampled ids to characters; see `rewards/alignment.py`).
        n_max (`int`, defaults to `6`): highest character n-gram order (chrF's default, Popović 2015).
        reference_column (`str`, defaults to `"target"`): dataset column with the reference (a string, or a list of
            strings, of which the first is used). `load_multi30k` names it `target`; SAMSum turns use `reference`.
        lowercase (`bool`, defaults to `False`): compare lower-cased text (chrF is case-sensitive by default).

    Returns `None` for a completion whose reference has no non-space character.

    Example (a tokenizer that decodes one piece per id; `ein Hut` against `ein Hund`, n_max=2): `r = "einHund"`
    has 7 unigrams and 6 bigrams. Token `ein` completes e, i, n (3 matched unigrams) and ei, in (2 bigrams):
    (3/7 + 2/6) / 2 = 0.381. Token ` Hu` completes H, u and the bigrams nH, Hu: (2/7 + 2/6) / 2 = 0.3095. Token
    `t` completes `t` and `ut`, absent from the reference: 0.
        >>> from types import SimpleNamespace
        >>> pieces = ["", "ein", " Hu", "t"]
        >>> tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: "".join(pieces[i] for i in ids))
        >>> [[round(v, 4) for v in row] for row in CharNgramOverlapReward(tok, n_max=2)(
        ...     ["p"], ["ein Hut"], [[1, 2, 3]], target=["ein Hund"])]
        [[0.381, 0.3095, 0.0]]
    """

    def __init__(self, tokenizer, n_max: int = 6, reference_column: str = "target", lowercase: bool = False):
        if int(n_max) < 1:
            raise ValueError(f"n_max must be at least 1 (character unigrams), got {n_max}.")
        self.tokenizer, self.n_max = tokenizer, int(n_max)
        self.reference_column, self.lowercase = reference_column, bool(lowercase)

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        references = _column(kwargs, self.reference_column, type(self).__name__)
        out = []
        for ids, reference in zip(completion_ids, references):
            reference = _references(reference)[0]
            if not reference.split():
                out.append(None)
                continue
            text, spans = token_char_spans(self.tokenizer, ids)
            owners = char_owners(spans, len(text))
            out.append(char_ngram_credits(text, owners, len(ids), reference, self.n_max, self.lowercase))
        return out


class ChrFReward(CompletionReward):
    """Sequence: sentence-level chrF from `sacrebleu` (`CHRF.sentence_score`), divided by 100 to lie in [0, 1].

    Args:
        reference_column (`str`, defaults to `"target"`): dataset column with the reference (a string or a list of
            strings; with several, sacreBLEU keeps the best-matching one).
        **chrf_kwargs: passed to `sacrebleu.metrics.CHRF` (for instance `word_order=2` for chrF++, `beta=2`).

    Example:
        >>> [round(v, 4) for v in ChrFReward()(["p", "p"], ["ein Hund", "xyz"], [[1], [2]], target=["ein Hund"] * 2)]
        [1.0, 0.0]
    """

    def __init__(self, reference_column: str = "target", **chrf_kwargs):
        from sacrebleu.metrics import CHRF

        self.reference_column, self.metric = reference_column, CHRF(**chrf_kwargs)

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        references = _column(kwargs, self.reference_column, type(self).__name__)
        return [self.metric.sentence_score(c, _references(r)).score / 100.0 for c, r in zip(completions, references)]


class BleuReward(CompletionReward):
    """Sequence: sentence-level BLEU from `sacrebleu` (`BLEU.sentence_score`, exponential smoothing and effective
    order, as `sacrebleu.sentence_bleu` does), divided by 100 to lie in [0, 1].

    Sentence BLEU is a noisy reward: most short hypotheses share no 4-gram with the reference, so the smoothing
    decides much of the value. It is given for the sequence-level baseline; chrF is the steadier choice.

    Args:
        reference_column (`str`, defaults to `"target"`): dataset column with the reference (string or list).
        **bleu_kwargs: passed to `sacrebleu.metrics.BLEU` (for instance `tokenize="intl"`); `effective_order`
            defaults to `True`.

    Example:
        >>> [round(v, 4) for v in BleuReward()(["p", "p"], ["ein Hund läuft", "xyz"], [[1], [2]],
        ...                                     target=["ein Hund läuft"] * 2)]
        [1.0, 0.0]
    """

    def __init__(self, reference_column: str = "target", **bleu_kwargs):
        from sacrebleu.metrics import BLEU

        bleu_kwargs.setdefault("effective_order", True)
        self.reference_column, self.metric = reference_column, BLEU(**bleu_kwargs)

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        references = _column(kwargs, self.reference_column, type(self).__name__)
        return [self.metric.sentence_score(c, _references(r)).score / 100.0 for c, r in zip(completions, references)]


__all__ = ["BleuReward", "CharNgramOverlapReward", "ChrFReward", "char_ngram_credits", "char_owners"]
