"""Span feedback on a tagger's shown entities: the record format, its reader, a simulated annotator, and targets.

A deployed tagger shows its entities to a user, who accepts or rejects each one (one bit per shown entity) and never
writes the missed entities or the right boundaries. This module turns such feedback into training data: for
[`~trl_tokenlevel.rewards.SpanFeedbackReward`] (token-level RL) and for cross-entropy on partial labels
([`partial_label_targets`], [`accepted_span_targets`]).

Record format: JSON Lines, one JSON object per line, one line per sentence (blank lines are skipped):

```json
{"id": "doc3-s7", "tokens": ["John", "Smith", "visited", "Paris"], "shown_labels": ["B-PER", "I-PER", "O", "B-ORG"],
 "feedback": [{"start": 0, "end": 2, "type": "PER", "accepted": true},
              {"start": 3, "end": 4, "type": "ORG", "accepted": false}],
 "missed": 1}
```

- `tokens` (`list[str]`, required): the words of the sentence.
- `shown_labels` (`list[str]`, required): the labelling the user saw, one IOB2 tag per word (same length as
  `tokens`), each one of the label list.
- `feedback` (`list[object]`, required, may be empty): one entry per judged shown entity, with `start` (`int`, first
  word, 0-based), `end` (`int`, one past the last word), `type` (`str`, the entity type without `B-`/`I-`) and
  `accepted` (`bool`). `(start, end, type)` must be exactly an entity of `shown_labels` as
  [`~trl_tokenlevel.rewards.extract_spans`] reads it: a `B-X` followed by its `I-X` run, or a run opened by a stray
  `I-X` (the user saw it as an entity too). At most one entry per entity; shown entities without an entry are
  *unjudged* and carry no information.
- `missed` (`int >= 0` or `null`, optional): how many gold entities the shown labelling did not contain exactly
  (their positions are unknown). Absent or `null` means unknown.
- `id` (`str` or `int`, optional): defaults to `"<file name>:<line>"`.

No other field is allowed (a typo such as `"acepted"` would otherwise lose the bit silently).

A shown entity is accepted when it is exactly a gold entity: the same words and type, i.e. exactly the predicted
entities seqeval counts as true positives in strict IOB2 mode ([`simulate_feedback`]). An entity opened by a stray
`I-X` is never one (strict IOB2 does not count it), so the simulated annotator rejects it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, Features, Value
from datasets import Sequence as SequenceFeature

from ..core import IGNORE_INDEX
from ..rewards.token.spans import extract_spans

ACCEPTED, REJECTED, NO_FEEDBACK = 1, -1, 0  # values of the per-word `feedback_word` column
RECORD_FIELDS = ("id", "tokens", "shown_labels", "feedback", "missed")
SPAN_FIELDS = ("start", "end", "type", "accepted")


class FeedbackFormatError(ValueError):
    """Raised for a bad feedback record; the message names the file, the line (1-based), the field and the fix."""


def _check(condition: bool, where: str, field: str, problem: str, fix: str) -> None:
    if not condition:
        raise FeedbackFormatError(f"{where}, field {field!r}: {problem}. Fix: {fix}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_span(entry: Any, index: int, shown: dict, num_words: int, where: str) -> tuple:
    field = f"feedback[{index}]"
    _check(isinstance(entry, dict), where, field, f"expected an object, found {entry!r}",
           'write {"start": i, "end": j, "type": "PER", "accepted": true}')
    _check(set(entry) == set(SPAN_FIELDS), where, field, f"has fields {sorted(entry)}, expected {list(SPAN_FIELDS)}",
           "give exactly start, end, type and accepted")
    start, end = entry["start"], entry["end"]
    _check(_is_int(start) and _is_int(end) and 0 <= start < end <= num_words, where, f"{field}.start/end",
           f"span [{start!r}, {end!r}) is not inside the sentence's {num_words} words",
           "use 0-based word indices with start < end <= len(tokens)")
    _check(isinstance(entry["accepted"], bool), where, f"{field}.accepted", f"found {entry['accepted']!r}",
           "write true or false")
    key = (start, end, entry["type"])
    found = shown.get((start, end))
    _check(found == entry["type"], where, field,
           f"no shown entity {entry['type']!r} over words [{start}, {end})"
           + (f" (the shown entity there is {found!r})" if found else "")
           + f"; shown entities: {[(s, e, t) for (s, e), t in shown.items()]}",
           "give feedback on the entities of shown_labels only, with their exact boundaries and type")
    return key


def validate_feedback_record(record: Any, label_list: Sequence[str], where: str = "record") -> dict:
    """Checks one feedback record (format in the module docstring) and returns it normalised.

    Args:
        record (`dict`): A parsed record.
        label_list (`list[str]`): The model's label names; every shown tag must be one of them.
        where (`str`, *optional*, defaults to `"record"`): Where the record comes from, e.g. `"f.jsonl, line 3"`.

    Returns:
        `dict` with `id` (`str` or `None`), `tokens`, `shown_labels`, `feedback` (entries in sentence order) and
        `missed` (`int` or `None`).

    Raises:
        [`FeedbackFormatError`] naming `where`, the field and the fix.
    """
    _check(isinstance(record, dict), where, "<record>", f"expected a JSON object, found {type(record).__name__}",
           "write one JSON object per line")
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    _check(not unknown, where, unknown[0] if unknown else "", "unknown field", f"use only {list(RECORD_FIELDS)}")
    for field in ("tokens", "shown_labels", "feedback"):
        _check(field in record, where, field, "missing field", f"add {field!r} (see the record format)")
        _check(isinstance(record[field], list), where, field, f"expected a list, found {record[field]!r}",
               "write a JSON list")
    tokens, shown_labels = record["tokens"], record["shown_labels"]
    bad_token = next((t for t in tokens if not isinstance(t, str)), None)
    _check(bad_token is None, where, "tokens", f"found a non-string token {bad_token!r}",
           "write every word as a string")
    _check(len(shown_labels) == len(tokens), where, "shown_labels",
           f"{len(shown_labels)} labels for {len(tokens)} tokens", "give exactly one IOB2 tag per word")
    known = set(label_list)
    for position, tag in enumerate(shown_labels):
        _check(tag in known, where, f"shown_labels[{position}]", f"unknown label {tag!r}",
               f"use one of {list(label_list)}")
    shown = {(s.start, s.end): s.type for s in extract_spans(shown_labels)}
    seen: set = set()
    for index, entry in enumerate(record["feedback"]):
        key = _check_span(entry, index, shown, len(tokens), where)
        _check(key not in seen, where, f"feedback[{index}]", f"second entry for entity {key}", "judge each entity once")
        seen.add(key)
    missed = record.get("missed")
    _check(missed is None or (_is_int(missed) and missed >= 0), where, "missed", f"found {missed!r}",
           "write a count >= 0, or null when unknown")
    record_id = record.get("id")
    _check(record_id is None or isinstance(record_id, (str, int)), where, "id", f"found {record_id!r}",
           "write a string or an integer")
    feedback = sorted((dict(e) for e in record["feedback"]), key=lambda e: e["start"])
    return {"id": None if record_id is None else str(record_id), "tokens": list(tokens),
            "shown_labels": list(shown_labels), "feedback": feedback, "missed": missed}


def _feedback_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".jsonl")
        if not files:
            raise FeedbackFormatError(f"{path}: no *.jsonl files in this folder. Fix: point to a feedback file or a "
                                      "folder of them (JSON Lines, one record per line).")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feedback file or folder.")
    return [path]


def read_feedback_records(path: str | os.PathLike, label_list: Sequence[str]) -> list[dict]:
    """Reads and validates feedback records (format in the module docstring).

    Args:
        path (`str` or `os.PathLike`): A JSON Lines file, or a folder whose `*.jsonl` files are read in name order.
        label_list (`list[str]`): The model's label names (IOB2).

    Returns:
        `list[dict]`: normalised records ([`validate_feedback_record`]); a missing `id` becomes `"<file>:<line>"`.

    Raises:
        [`FeedbackFormatError`] for invalid JSON, a missing or unknown field, an unknown label, a span out of range
        or not matching a shown entity, or lengths that differ, naming the file, the 1-based line and the field.
    """
    records = []
    for file in _feedback_files(Path(path)):
        with open(file, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}, line {line_number}"
                try:
                    parsed = json.loads(line)
                except json.JSONDecodeError as err:
                    raise FeedbackFormatError(
                        f"{where}, field '<record>': invalid JSON ({err.msg} at column {err.colno}). "
                        "Fix: write one complete JSON object per line."
                    ) from err
                record = validate_feedback_record(parsed, label_list, where)
                record["id"] = record["id"] if record["id"] is not None else f"{file.name}:{line_number}"
                records.append(record)
    return records


def feedback_word_values(num_words: int, feedback: Sequence[Mapping]) -> list[int]:
    """Per-word feedback: `1` on the words of an accepted entity, `-1` on those of a rejected one, `0` elsewhere
    (words outside every shown entity, and words of unjudged entities).

    Example:
        >>> feedback_word_values(5, [{"start": 0, "end": 2, "type": "PER", "accepted": True},
        ...                          {"start": 3, "end": 4, "type": "LOC", "accepted": False}])
        [1, 1, 0, -1, 0]
    """
    values = [NO_FEEDBACK] * num_words
    for entry in feedback:
        for word in range(entry["start"], entry["end"]):
            values[word] = ACCEPTED if entry["accepted"] else REJECTED
    return values


def feedback_dataset(records: Sequence[Mapping], label_list: Sequence[str], where: str = "record",
                     ce_weight: bool = False) -> Dataset:
    """Feedback records as a dataset the trainer can use with [`~trl_tokenlevel.rewards.SpanFeedbackReward`].

    Args:
        records (`list[dict]`): Records in the documented format (validated again here, so in-memory records from
            [`simulate_feedback`] are checked too).
        label_list (`list[str]`): The model's label names.
        where (`str`, *optional*, defaults to `"record"`): Prefix of error messages (`"<where> 3"` for the 4th).
        ce_weight (`bool`, *optional*, defaults to `False`): Add a `ce_weight` column for the trainer's
            `ce_weight_column`: per word 1.0 where [`partial_label_targets`] has a label (accepted entities and the
            shown `O`), 0.0 on the words of rejected and unjudged entities (and on the first word of an accepted
            stray `I-X` run, whose right tag `B-X` is not the shown one). CE on the shown labelling with these
            weights is partial-label CE up to that word and the normaliser (the trainer divides by every word, so
            the CE term is scaled by the share of weighted words), and it can be mixed with the policy gradient of
            `SpanFeedbackReward`.

    Returns:
        `datasets.Dataset` with `id`, `tokens`, `ner_tags` (the *shown* labelling as a `ClassLabel` sequence, so the
        usual pipeline aligns it to sub-tokens and the reward receives it as `gold_labels`), `feedback_word`
        ([`feedback_word_values`]), `missed` (`None` when unknown), `feedback_bits` (judged entities) and, with
        `ce_weight=True`, `ce_weight`.
    """
    label_to_id = {name: i for i, name in enumerate(label_list)}
    columns: dict[str, list] = {k: [] for k in ("id", "tokens", "ner_tags", "feedback_word", "missed", "feedback_bits")}
    if ce_weight:
        columns["ce_weight"] = []
    for index, raw in enumerate(records):
        record = validate_feedback_record(dict(raw), label_list, f"{where} {index}")
        columns["id"].append(record["id"] if record["id"] is not None else str(index))
        columns["tokens"].append(record["tokens"])
        columns["ner_tags"].append([label_to_id[t] for t in record["shown_labels"]])
        columns["feedback_word"].append(feedback_word_values(len(record["tokens"]), record["feedback"]))
        columns["missed"].append(record["missed"])
        columns["feedback_bits"].append(len(record["feedback"]))
        if ce_weight:  # 1 where partial-label CE has a target and it is the shown tag (CE reads the shown tags);
            # an accepted stray `I-X` run, whose partial-label target is `B-X`, gets 0 on that word instead
            targets = partial_label_targets(record["shown_labels"], record["feedback"], label_list)
            shown = columns["ner_tags"][-1]
            columns["ce_weight"].append([1.0 if t != IGNORE_INDEX and t == s else 0.0 for t, s in zip(targets, shown)])
    features = Features({
        "id": Value("string"), "tokens": SequenceFeature(Value("string")),
        "ner_tags": SequenceFeature(ClassLabel(names=list(label_list))),
        "feedback_word": SequenceFeature(Value("int8")),
        "missed": Value("int32"), "feedback_bits": Value("int32"),
        **({"ce_weight": SequenceFeature(Value("float32"))} if ce_weight else {}),
    })
    return Dataset.from_dict(columns, features=features)


def simulate_feedback(
    shown_tags: Sequence[str], gold_tags: Sequence[str], noise: float = 0.0, rng: random.Random | None = None
) -> dict:
    """A simulated annotator: judges every shown entity against the gold labelling.

    A shown entity is accepted iff it is exactly a gold entity (same words, same type): exactly the predicted
    entities seqeval counts as true positives in strict IOB2 mode; an entity opened by a stray `I-X` is rejected.
    `missed` counts the gold entities not shown exactly. With `noise > 0` each accept/reject bit is flipped with
    that probability (`missed` stays exact).

    Args:
        shown_tags (`list[str]`): The IOB2 labelling shown to the annotator.
        gold_tags (`list[str]`): The gold IOB2 labelling, same length.
        noise (`float`, *optional*, defaults to `0.0`): Flip probability of each bit, in `[0, 1]`.
        rng (`random.Random`, *optional*): Source of the flips; required when `noise > 0`.

    Returns:
        `dict` with `shown_labels`, `feedback` and `missed` (add `tokens`, and optionally `id`, to get a record).

    Example:
        >>> record = simulate_feedback(["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-PER", "I-PER", "O", "B-ORG", "B-LOC"])
        >>> [(e["start"], e["end"], e["type"], e["accepted"]) for e in record["feedback"]], record["missed"]
        ([(0, 2, 'PER', True), (3, 4, 'LOC', False)], 2)
    """
    if len(shown_tags) != len(gold_tags):
        raise ValueError(f"{len(shown_tags)} shown tags but {len(gold_tags)} gold tags: give one of each per word.")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {noise}.")
    if noise > 0 and rng is None:
        raise ValueError("noise > 0 needs `rng` (e.g. random.Random(seed)) so that the flips are reproducible.")
    gold = {s for s in extract_spans(gold_tags) if s.valid}
    feedback, true_positives = [], 0
    for span in extract_spans(shown_tags):
        correct = span.valid and span in gold
        true_positives += correct
        accepted = (not correct) if noise > 0 and rng.random() < noise else correct
        feedback.append({"start": span.start, "end": span.end, "type": span.type, "accepted": accepted})
    return {"shown_labels": list(shown_tags), "feedback": feedback, "missed": len(gold) - true_positives}


def _accepted_tags(shown_tags: Sequence[str], feedback: Sequence[Mapping]) -> list[str | None]:
    """Per word: the IOB2 tag of its accepted entity (`B-X` first, `I-X` after, even for a shown stray `I-X` run),
    `"O"` outside every shown entity, `None` on words of rejected or unjudged entities."""
    tags: list[str | None] = ["O" if tag == "O" else None for tag in shown_tags]
    for entry in feedback:
        if entry["accepted"]:
            for word in range(entry["start"], entry["end"]):
                tags[word] = ("B-" if word == entry["start"] else "I-") + entry["type"]
    return tags


def _ids(tags: Sequence[str | None], label_list: Sequence[str], missing: int) -> list[int]:
    label_to_id = {name: i for i, name in enumerate(label_list)}
    unknown = sorted({t for t in tags if t is not None and t not in label_to_id})
    if unknown:
        raise ValueError(f"Tags {unknown} are not in label_list {list(label_list)}: add them to the label list.")
    return [missing if tag is None else label_to_id[tag] for tag in tags]


def partial_label_targets(
    shown_tags: Sequence[str], feedback: Sequence[Mapping], label_list: Sequence[str], outside: str = "O"
) -> list[int]:
    """Per-word label ids for cross-entropy on partial labels: accepted entities labelled, the words of rejected (and
    unjudged) entities `-100` (left out of the loss: their right label is unknown), the other words `O` or `-100`.

    Args:
        shown_tags (`list[str]`): The shown IOB2 labelling.
        feedback (`list[dict]`): The record's `feedback` entries.
        label_list (`list[str]`): Label names by id.
        outside (`str`, *optional*, defaults to `"O"`): `"O"` trusts the shown `O` of words outside every shown entity
            (wrong where an entity was missed); `"ignore"` leaves them out too (no signal for `O` at all).

    Example:
        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> fb = [{"start": 0, "end": 2, "type": "PER", "accepted": True},
        ...       {"start": 3, "end": 4, "type": "LOC", "accepted": False}]
        >>> partial_label_targets(["B-PER", "I-PER", "O", "B-LOC", "O"], fb, names)
        [1, 2, 0, -100, 0]
        >>> partial_label_targets(["B-PER", "I-PER", "O", "B-LOC", "O"], fb, names, outside="ignore")
        [1, 2, -100, -100, -100]
    """
    if outside not in ("O", "ignore"):
        raise ValueError(f"outside must be 'O' or 'ignore', got {outside!r}.")
    tags = _accepted_tags(shown_tags, feedback)
    if outside == "ignore":
        tags = [None if tag == "O" else tag for tag in tags]
    return _ids(tags, label_list, IGNORE_INDEX)


def accepted_span_targets(
    shown_tags: Sequence[str], feedback: Sequence[Mapping], label_list: Sequence[str]
) -> list[int]:
    """Per-word label ids with the accepted entities labelled and every other word `O` (rejected entities included).

    Example:
        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> fb = [{"start": 0, "end": 2, "type": "PER", "accepted": True},
        ...       {"start": 3, "end": 4, "type": "LOC", "accepted": False}]
        >>> accepted_span_targets(["B-PER", "I-PER", "O", "B-LOC", "O"], fb, names)
        [1, 2, 0, 0, 0]
    """
    return _ids([tag or "O" for tag in _accepted_tags(shown_tags, feedback)], label_list, IGNORE_INDEX)
