"""Entity faithfulness: penalise the tokens of named entities that the source does not contain.

Entities come either from a token-classification (NER) model, for instance one trained with the NER recipe, or,
without one, from the capitalised-span heuristic [`capitalized_entities`]. An entity "occurs in the source" when
its words (lower-cased, a trailing possessive 's dropped) appear contiguously in the source's words.
"""

from __future__ import annotations

import re

import torch

from ...metrics.text import words
from .alignment import token_char_spans, tokens_overlapping
from .base import CompletionReward
from ..token.spans import extract_spans


# Capitalised words that start sentences without naming anything: never entities on their own.
SENTENCE_STARTERS = frozenset(
    "a an the he she it they we i you his her its their our my your this that these those there then when while "
    "after before if in on at for and but so as both all some everyone nobody someone somebody everybody none no "
    "yes ok okay today tomorrow yesterday".split()
)
CAPITALISED_RUN = re.compile(r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")


def capitalized_entities(text: str) -> list[tuple[int, int]]:
    """Heuristic entity spans: maximal runs of capitalised words, as `(start_char, end_char)`.

    A run is dropped when it is a single word from `SENTENCE_STARTERS` (such as "The" or "She"). The heuristic
    misses lower-cased names and counts capitalised common nouns at sentence starts ("Dinner is at 8") as
    entities; an NER model avoids both.

    Example:
        >>> text = "She will meet Tom Hanks in Paris."
        >>> [text[s:e] for s, e in capitalized_entities(text)]
        ['Tom Hanks', 'Paris']
    """
    spans = []
    for match in CAPITALISED_RUN.finditer(text):
        if " " not in match.group().strip() and match.group().lower() in SENTENCE_STARTERS:
            continue
        spans.append((match.start(), match.end()))
    return spans


class NEREntityExtractor:
    """Entity spans from an `AutoModelForTokenClassification` with IOB2 labels in `config.id2label`.

    The text is split into words (the same word regex as ROUGE), the words are encoded with
    `is_split_into_words=True`, and each word takes the label of its first sub-token.
    """

    def __init__(self, model, tokenizer, max_length: int = 256):
        self.model, self.tokenizer, self.max_length = model.eval(), tokenizer, max_length

    @torch.no_grad()
    def __call__(self, text: str) -> list[tuple[int, int]]:
        found = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\w+(?:['’]\w+)*|[^\w\s]", text)]
        if not found:
            return []
        encoding = self.tokenizer(
            [w for _, _, w in found], is_split_into_words=True, truncation=True, max_length=self.max_length,
            return_tensors="pt",
        )
        predictions = self.model(**encoding.to(self.model.device)).logits.argmax(-1)[0].tolist()
        tags, previous = ["O"] * len(found), None
        for position, word in enumerate(encoding.word_ids()):
            if word is not None and word != previous:
                tags[word] = self.model.config.id2label[predictions[position]]
            previous = word
        return [(found[s.start][0], found[s.end - 1][1]) for s in extract_spans(tags)]


def entity_in_source(entity: str, source_words: list[str]) -> bool:
    """Whether the entity's words occur contiguously in the source words (`"Tom's"` counts as `"tom"`)."""
    target = [re.sub(r"['’]s$", "", w) for w in words(entity)]
    target = [w for w in target if w]
    if not target:
        return True
    stripped = [re.sub(r"['’]s$", "", w) for w in source_words]
    return any(stripped[i : i + len(target)] == target for i in range(len(stripped) - len(target) + 1))


def hallucinated_entities(text: str, source: str, extractor=capitalized_entities) -> tuple[int, int]:
    """`(number of entities in text, number of them absent from source)`; the recipes' hallucination metric."""
    source_words = words(source)
    spans = extractor(text)
    return len(spans), sum(not entity_in_source(text[s:e], source_words) for s, e in spans)


class EntityFaithfulnessReward(CompletionReward):
    """Dense: `penalty` (negative) on every generated token inside a named entity that the source does not contain.

    Tokens outside entities, and inside entities found in the source, get 0. A completion without entities gets
    all zeros (it is not "not applicable": staying faithful is what the reward asks).

    Args:
        tokenizer: the policy's tokenizer (maps sampled ids to characters, see `rewards/alignment.py`).
        source_column (`str`, defaults to `"source"`): dataset column with the source text (SAMSum: `"context"`).
        ner_model, ner_tokenizer (*optional*): a token classifier (IOB2 `id2label`) and its tokenizer. Without
            them the capitalised-span heuristic [`capitalized_entities`] is used.
        penalty (`float`, defaults to `-1.0`): reward of each token of an unfaithful entity.

    Example (a tokenizer with one token per word):
        >>> from types import SimpleNamespace
        >>> vocab = ["", "Amanda", "meets", "Boris", "."]
        >>> tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: " ".join(vocab[i] for i in ids))
        >>> reward = EntityFaithfulnessReward(tok, source_column="context")
        >>> reward(["p"], ["Amanda meets Boris ."], [[1, 2, 3, 4]], context=["Amanda: hi Tom"])
        [[0.0, 0.0, -1.0, 0.0]]
    """

    def __init__(self, tokenizer, source_column: str = "source", ner_model=None, ner_tokenizer=None, penalty: float = -1.0):
        self.tokenizer, self.source_column, self.penalty = tokenizer, source_column, float(penalty)
        if (ner_model is None) != (ner_tokenizer is None):
            raise ValueError("Pass both ner_model and ner_tokenizer, or neither (then capitalised spans are used).")
        self.extractor = NEREntityExtractor(ner_model, ner_tokenizer) if ner_model is not None else capitalized_entities

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        if self.source_column not in kwargs:
            raise KeyError(
                f"EntityFaithfulnessReward needs the dataset column {self.source_column!r}; the dataset has "
                f"{sorted(k for k in kwargs if k not in ('prompt_ids', 'trainer_state'))}. Set source_column=..."
            )
        out = []
        for ids, source in zip(completion_ids, kwargs[self.source_column]):
            text, spans = token_char_spans(self.tokenizer, ids)
            source_words, rewards = words(source), [0.0] * len(ids)
            for start, end in self.extractor(text):
                if not entity_in_source(text[start:end], source_words):
                    for t in tokens_overlapping(spans, start, end):
                        rewards[t] = self.penalty
            out.append(rewards)
        return out
