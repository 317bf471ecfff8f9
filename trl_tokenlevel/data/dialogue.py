"""Next-turn dialogue examples from SAMSum (Gliwa et al., 2019) chats, as multi-turn chat prompts.

A dialogue of `n` turns (lines `Speaker: text`) gives `n - 1` examples: for `i = 1 .. n-1` it is cut after turn
`i`, turn `i + 1`'s text is the reference and its speaker the role the model plays. SAMSum validation has 8,860
turns in 818 dialogues (8,042 examples); test 9,212 lines in 819 dialogues, one of them malformed (see
`malformed_turns`), so 8,392 examples once it is skipped. Examples of one dialogue share their context: split data
into train and test by dialogue, never by example.

Role mapping: the model is the played speaker. That speaker's earlier turns become `assistant` messages holding the
bare text (what the model is asked to write); every other speaker's turn becomes a `user` message `"Name: text"`,
since a chat can have several other speakers. A system message first names the speaker to play. In validation
1.7% of references are attachment placeholders such as `<file_photo>`; they are kept (filter on `reference`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import Dataset

from .shared import find_shared_data_dir


logger = logging.getLogger(__name__)

SAMSUM_HUB_ID = "Samsung/samsum"
SPEAKER_TURN = re.compile(r"^\s*([^:\s][^:]{0,49}?)\s*:(.*)$")
"""A turn: a speaker name (1-50 characters, no colon), a colon, the text. `"JUAN : hi"` and `"Simon:8 sharp"`, both
in SAMSum, parse; text is stripped."""
SYSTEM_TEMPLATE = "You are {speaker} in a chat conversation. Reply with {speaker}'s next message only."


class DialogueFormatError(ValueError):
    """A dialogue turn that cannot be read; the message names the file, the line and the turn."""


def parse_turns(dialogue: str, where: str, malformed_turns: str = "raise") -> list[tuple[str, str]]:
    """Splits a SAMSum dialogue into `(speaker, text)` turns, one per non-blank line (`\\r\\n` or `\\n`).

    Args:
        dialogue (`str`): lines `Speaker: text`.
        where (`str`): where the dialogue comes from, for messages (`"path:line"`).
        malformed_turns (`str`, defaults to `"raise"`): for a line without a `Speaker: ` prefix or without text,
            `"raise"` a [`DialogueFormatError`], or `"skip"` the line with a logged warning.

    Example:
        >>> parse_turns("Amanda: Hi!\\r\\nJUAN : Hello", "example")
        [('Amanda', 'Hi!'), ('JUAN', 'Hello')]
    """
    turns = []
    for number, line in enumerate(dialogue.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        match = SPEAKER_TURN.match(line)
        if match is None or not match.group(2).strip():
            problem = "has no 'Speaker: ' prefix" if match is None else "has a speaker but no text"
            message = f"{where}: turn {number} of the dialogue {problem}: {line!r}."
            if malformed_turns == "skip":
                logger.warning("%s Skipped.", message)
                continue
            raise DialogueFormatError(
                f"{message} Every line must read 'Name: text'. Fix: correct the line, or pass "
                "malformed_turns='skip' to leave such lines out (each is logged)."
            )
        turns.append((match.group(1).strip(), match.group(2).strip()))
    return turns


def _message(turn: tuple[str, str], speaker: str) -> dict:
    name, text = turn
    return {"role": "assistant", "content": text} if name == speaker else {"role": "user", "content": f"{name}: {text}"}


def _merge_consecutive(messages: list[dict]) -> list[dict]:
    merged = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"] != "system":
            merged[-1] = {"role": message["role"], "content": merged[-1]["content"] + "\n" + message["content"]}
        else:
            merged.append(dict(message))
    return merged


def next_turn_examples(
    turns: list[tuple[str, str]], dialogue_id: str, max_context_turns: Optional[int] = None,
    merge_consecutive: bool = False,
) -> list[dict]:
    """The `len(turns) - 1` next-turn examples of one dialogue (see the module docstring for the role mapping).

    Args:
        turns (`list[tuple[str, str]]`): `(speaker, text)` pairs from [`parse_turns`].
        dialogue_id (`str`): copied to every example.
        max_context_turns (`int`, *optional*): keep only the last N turns before the reference in the prompt and
            in `context` (the example count does not change).
        merge_consecutive (`bool`, defaults to `False`): join consecutive messages of one role with a newline,
            for chat templates that require alternating roles.

    Example:
        >>> rows = next_turn_examples([("Ann", "Hi"), ("Bob", "Hey"), ("Ann", "Lunch?")], "d1")
        >>> rows[1]["prompt"][1:], rows[1]["reference"], rows[1]["speaker"], rows[1]["turn_index"]
        ([{'role': 'assistant', 'content': 'Hi'}, {'role': 'user', 'content': 'Bob: Hey'}], 'Lunch?', 'Ann', 2)
    """
    if max_context_turns is not None and max_context_turns < 1:
        raise ValueError(
            f"max_context_turns must be at least 1 (or None for the whole dialogue), got {max_context_turns}."
        )
    rows = []
    for index in range(1, len(turns)):
        speaker, reference = turns[index]
        context = turns[:index] if max_context_turns is None else turns[max(0, index - max_context_turns) : index]
        prompt = [{"role": "system", "content": SYSTEM_TEMPLATE.format(speaker=speaker)}]
        prompt += [_message(turn, speaker) for turn in context]
        rows.append({
            "prompt": _merge_consecutive(prompt) if merge_consecutive else prompt,
            "reference": reference,
            "speaker": speaker,
            "context": "\n".join(f"{name}: {text}" for name, text in context),
            "dialogue_id": dialogue_id,
            "turn_index": index,
        })
    return rows


def _local_dialogues(data_dir: Path, split: str):
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: file not found. The shared SAMSum folder holds validation.jsonl and test.jsonl only. Fix: pass "
            f"split='validation' or 'test', another data_dir, or dataset_name={SAMSUM_HUB_ID!r} for the train split."
        )
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DialogueFormatError(
                    f"{path}:{number}: not a JSON object ({err}). Fix: one JSON object per line."
                ) from err
            if not isinstance(row, dict) or not isinstance(row.get("context"), str):
                raise DialogueFormatError(f"{path}:{number}: no string field 'context' (the dialogue). Fix: add it.")
            yield f"{path}:{number}", f"{split}-{number}", row["context"]


def _hub_dialogues(dataset_name: str, split: str):
    ds = datasets.load_dataset(dataset_name, split=split)
    column = "dialogue" if "dialogue" in ds.column_names else "context"
    if column not in ds.column_names:
        raise ValueError(f"Dataset {dataset_name!r} split {split!r} has no 'dialogue' or 'context' column "
                         f"(has {ds.column_names}). Fix: use {SAMSUM_HUB_ID!r} or rename the dialogue column.")
    ids = ds["id"] if "id" in ds.column_names else [f"{split}-{i}" for i in range(len(ds))]
    for row, (dialogue_id, dialogue) in enumerate(zip(ids, ds[column])):
        yield f"{dataset_name} split {split!r} row {row} (id {dialogue_id})", str(dialogue_id), dialogue


def load_samsum_turns(
    data_dir: Optional[Union[str, os.PathLike]] = None,
    split: str = "validation",
    max_context_turns: Optional[int] = None,
    *,
    dataset_name: Optional[str] = None,
    merge_consecutive: bool = False,
    malformed_turns: str = "raise",
    max_dialogues: Optional[int] = None,
) -> Dataset:
    """Next-turn examples from SAMSum dialogues, in dialogue order, then turn order.

    Args:
        data_dir (`str` or `os.PathLike`, *optional*): folder with `<split>.jsonl` (`{"context": dialogue, ...}` per
            line). Default: `../shared/data/samsum` when it exists, else the Hub dataset `Samsung/samsum`.
        split (`str`, defaults to `"validation"`): `validation` or `test` locally; `train` too on the Hub.
        max_context_turns (`int`, *optional*): keep only the last N turns in each prompt (all by default).
        dataset_name (`str`, *optional*): Hub dataset with a `dialogue` column (and `id`), e.g. `Samsung/samsum`.
        merge_consecutive (`bool`, defaults to `False`): see [`next_turn_examples`].
        malformed_turns (`str`, defaults to `"raise"`): see [`parse_turns`]. SAMSum test has one such line
            (`test.jsonl` line 582, turn 4 is a lone `":"`): load it with `"skip"`.
        max_dialogues (`int`, *optional*): read only the first N dialogues.

    Returns:
        `datasets.Dataset` with columns `prompt` (chat messages), `reference` (the next turn's text), `speaker` (who
        says it), `context` (the prompt's turns as `Name: text` lines, a source for faithfulness rewards),
        `dialogue_id` (`<split>-<line>` locally, the Hub `id` otherwise) and `turn_index` (0-based index of the
        reference turn, >= 1).

    Raises:
        [`DialogueFormatError`] naming the file, the 1-based JSONL line and the turn of a malformed turn.
    """
    if malformed_turns not in ("raise", "skip"):
        raise ValueError(f"malformed_turns must be 'raise' or 'skip', got {malformed_turns!r}.")
    if data_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `data_dir` (local JSONL files) or `dataset_name` (Hub dataset), not both.")
    if data_dir is None and dataset_name is None:
        data_dir = find_shared_data_dir("samsum")
        if data_dir is None:
            logger.info("No ../shared/data/samsum folder; loading %s from the Hub.", SAMSUM_HUB_ID)
            dataset_name = SAMSUM_HUB_ID
    source = _hub_dialogues(dataset_name, split) if dataset_name else _local_dialogues(Path(data_dir), split)
    rows = []
    for count, (where, dialogue_id, dialogue) in enumerate(source):
        if max_dialogues is not None and count >= max_dialogues:
            break
        turns = parse_turns(dialogue, where, malformed_turns)
        rows.extend(next_turn_examples(turns, dialogue_id, max_context_turns, merge_consecutive))
    if not rows:
        raise ValueError(f"No next-turn examples in split {split!r}: every dialogue has fewer than two turns.")
    return Dataset.from_list(rows)


__all__ = [
    "DialogueFormatError",
    "SAMSUM_HUB_ID",
    "SYSTEM_TEMPLATE",
    "load_samsum_turns",
    "next_turn_examples",
    "parse_turns",
]
