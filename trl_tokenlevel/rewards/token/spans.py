"""IOB2 span extraction, shared by the entity rewards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Span(NamedTuple):
    """An entity span over word positions `[start, end)`. `valid` is false for a span opened by an `I-` tag that
    does not continue an entity of the same type (illegal in IOB2; seqeval's strict mode does not count it)."""

    start: int
    end: int
    type: str
    valid: bool = True


def split_tag(tag: str) -> tuple[str, str]:
    """`"B-PER"` -> `("B", "PER")`, `"O"` -> `("O", "")`. Also accepts `E-`/`S-`-free IOB1/IOB2 tags only."""
    if tag == "O":
        return "O", ""
    prefix, sep, entity_type = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not entity_type:
        raise ValueError(f"Tag {tag!r} is not an IOB2 tag (expected 'O', 'B-<TYPE>' or 'I-<TYPE>').")
    return prefix, entity_type


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of an IOB2 tag sequence.

    Example:
        >>> extract_spans(["B-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC"])
        [Span(start=0, end=2, type='PER', valid=True), Span(start=3, end=4, type='LOC', valid=False), Span(start=4, end=5, type='ORG', valid=True), Span(start=5, end=6, type='LOC', valid=False)]
    """
    spans: list[Span] = []
    start, current, valid = None, "", True
    for position, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        continues = prefix == "I" and start is not None and entity_type == current
        if start is not None and not continues:
            spans.append(Span(start, position, current, valid))
            start = None
        if prefix != "O" and not continues:
            start, current, valid = position, entity_type, prefix == "B"
    if start is not None:
        spans.append(Span(start, len(tags), current, valid))
    return spans
