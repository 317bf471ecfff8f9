"""SemEval-2010 Task 8 relation classification (Hendrickx et al., 2010): reading the organisers' files.

The organisers' format has four lines per example (CRLF in the official release; LF copies read the same)::

    8<TAB>"The <e1>surgeon</e1> cuts a small <e2>hole</e2> in the skull."
    Product-Producer(e2,e1)
    Comment: an optional note for human readers
    <empty line>

The result has the schema of the Hub dataset `SemEvalWorkshop/sem_eval_2010_task_8` plus an `id`: `id` (the file's
id, a string), `sentence` (entity markers `<e1>..</e1>` and `<e2>..</e2>` kept) and `relation`, a `ClassLabel` over
[`SEMEVAL2010_TASK8_LABELS`]. The official data has only train (ids 1-8000) and test (8001-10717); the validation
split here is every tenth training example (ids divisible by [`SEMEVAL_VALIDATION_EVERY`], 800 examples), not the
last 800, because the last 891 training examples come from SemEval-2007 Task 4 and are skewed towards five relations.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .shared import find_shared_data_dir

logger = logging.getLogger(__name__)

SEMEVAL2010_TASK8_RELATIONS = [
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
]
"""The 9 relation types, alphabetical."""

SEMEVAL_OTHER = "Other"

SEMEVAL2010_TASK8_LABELS = [
    f"{relation}({direction})" for relation in SEMEVAL2010_TASK8_RELATIONS for direction in ("e1,e2", "e2,e1")
] + [SEMEVAL_OTHER]
"""The 19 directed labels in the `ClassLabel` order of the Hub dataset: each relation with `(e1,e2)` then `(e2,e1)`,
relations alphabetical, `Other` last (id 18)."""

ENTITY_MARKERS = ("<e1>", "</e1>", "<e2>", "</e2>")
"""The entity marker strings kept in `sentence`; [`add_entity_marker_tokens`] makes them special tokens."""

SEMEVAL_VALIDATION_EVERY = 10
"""Training examples whose id is divisible by this number form the validation split (800 of 8,000)."""

_LABEL_PATTERN = re.compile(r"^(?P<relation>[A-Za-z-]+)\((?P<direction>e1,e2|e2,e1)\)$")


class SemEvalFormatError(ValueError):
    """Raised when a SemEval-2010 Task 8 file cannot be parsed; the message names the file, the line and the fix."""


def relation_and_direction(label: str) -> tuple[str, Optional[str]]:
    """Splits a directed label into its relation and direction (`None` for `Other`), as the official scorer does.

    Example:

    ```python
    >>> relation_and_direction("Cause-Effect(e2,e1)")
    ('Cause-Effect', 'e2,e1')
    >>> relation_and_direction("Other")
    ('Other', None)

    ```
    """
    if label == SEMEVAL_OTHER:
        return SEMEVAL_OTHER, None
    match = _LABEL_PATTERN.match(label)
    if match is None:
        raise ValueError(
            f"Label {label!r} is neither {SEMEVAL_OTHER!r} nor of the form `Relation(e1,e2)` / `Relation(e2,e1)`."
        )
    return match["relation"], match["direction"]


def _semeval_features() -> Features:
    return Features(
        {
            "id": Value("string"),
            "sentence": Value("string"),
            "relation": ClassLabel(names=list(SEMEVAL2010_TASK8_LABELS)),
        }
    )


def check_entity_markers(sentence: str) -> Optional[str]:
    """Returns what is wrong with the entity markers of `sentence`, or `None` when each of `<e1>`, `</e1>`, `<e2>`,
    `</e2>` occurs exactly once and each entity opens before it closes."""
    counts = {marker: sentence.count(marker) for marker in ENTITY_MARKERS}
    wrong = {marker: n for marker, n in counts.items() if n != 1}
    if wrong:
        return f"each entity marker must occur exactly once, found counts {wrong}"
    for opening, closing in (("<e1>", "</e1>"), ("<e2>", "</e2>")):
        if sentence.index(opening) > sentence.index(closing):
            return f"{closing} comes before {opening}"
    return None


def _format_error(path: str, line_number: int, problem: str, fix: str) -> SemEvalFormatError:
    return SemEvalFormatError(f"{path}, line {line_number}: {problem}. Fix: {fix}.")


def _parse_record(path: str, lines: list[tuple[int, str]]) -> tuple[str, str, str]:
    """Parses one 4-line block `[(line_number, text), ...]` into `(id, sentence, label)`."""
    (n1, first), (n2, label), (n3, comment), (n4, blank) = lines
    expected_layout = "write each example as `<id><TAB>\"<sentence>\"`, the label, `Comment: ...`, an empty line"
    id_text, tab, quoted = first.partition("\t")
    if not tab or not id_text.strip().isdigit():
        raise _format_error(path, n1, f"expected `<id><TAB>\"<sentence>\"`, found {first!r}", expected_layout)
    if len(quoted) < 2 or not (quoted.startswith('"') and quoted.endswith('"')):
        raise _format_error(path, n1, f"the sentence must be in double quotes, found {quoted!r}", expected_layout)
    sentence = quoted[1:-1]  # strip only the outer pair: sentences may contain quotes themselves
    problem = check_entity_markers(sentence)
    if problem is not None:
        raise _format_error(
            path, n1, f"record {id_text.strip()}: {problem} in {sentence!r}",
            "mark the first nominal as <e1>...</e1> and the second as <e2>...</e2>, once each",
        )  # fmt: skip
    if label not in SEMEVAL2010_TASK8_LABELS:
        raise _format_error(
            path, n2, f"record {id_text.strip()}: unknown label {label!r}",
            f"use one of the 19 labels {SEMEVAL2010_TASK8_LABELS}",
        )  # fmt: skip
    if not comment.startswith("Comment:"):
        raise _format_error(path, n3, f"expected a line starting with `Comment:`, found {comment!r}", expected_layout)
    if blank.strip():
        raise _format_error(path, n4, f"expected an empty line ending the record, found {blank!r}", expected_layout)
    return id_text.strip(), sentence, label


def read_semeval2010_task8(path: Union[str, os.PathLike]) -> Dataset:
    """Reads one file of the organisers' release (`TRAIN_FILE.TXT` or `TEST_FILE_FULL.TXT`) into a `Dataset`.

    Args:
        path (`str` or `os.PathLike`): The file; CRLF or LF line endings.

    Returns:
        `datasets.Dataset`: columns `id`, `sentence` (markers kept, outer quotes removed) and `relation`
        (`ClassLabel` over [`SEMEVAL2010_TASK8_LABELS`]), in file order.

    Raises:
        `SemEvalFormatError`: on a malformed block, a sentence whose markers are missing or repeated, an unknown
            label, a repeated id or a file without examples; the message names the file, the line and the fix.
    """
    path = str(path)
    with open(path, encoding="utf-8") as f:
        numbered = [(i, line.rstrip("\r\n")) for i, line in enumerate(f, start=1)]
    while numbered and not numbered[-1][1].strip():
        numbered.pop()  # trailing empty lines after the last record's own empty line
    numbered.append((len(numbered) + 1, ""))  # the last record's empty line, removed just above
    ids, sentences, labels, first_line_of = [], [], [], {}
    for start in range(0, len(numbered), 4):
        block = numbered[start : start + 4]
        if len(block) < 4:
            raise _format_error(path, block[0][0], "incomplete record at the end of the file",
                                "give every example its four lines")  # fmt: skip
        record_id, sentence, label = _parse_record(path, block)
        if record_id in first_line_of:
            raise _format_error(path, block[0][0], f"id {record_id} already used on line {first_line_of[record_id]}",
                                "give every example its own id")  # fmt: skip
        first_line_of[record_id] = block[0][0]
        ids.append(record_id)
        sentences.append(sentence)
        labels.append(SEMEVAL2010_TASK8_LABELS.index(label))
    if not ids:
        raise SemEvalFormatError(f"{path}: no examples found. Fix: check that this is a SemEval-2010 Task 8 file.")
    return Dataset.from_dict({"id": ids, "sentence": sentences, "relation": labels}, features=_semeval_features())


def default_semeval2010_task8_dir() -> Optional[Path]:
    """Returns the shared folder `../shared/data/semeval2010_task8` (relative to the working directory, then to the
    repository root), or `None` if it does not exist."""
    return find_shared_data_dir("semeval2010_task8")


def _split_train(train: Dataset) -> tuple[Dataset, Dataset]:
    is_validation = [int(i) % SEMEVAL_VALIDATION_EVERY == 0 for i in train["id"]]
    keep = [i for i, v in enumerate(is_validation) if not v]
    held_out = [i for i, v in enumerate(is_validation) if v]
    return train.select(keep), train.select(held_out)


def _load_from_hub(dataset_name: str) -> dict[str, Dataset]:
    raw = datasets.load_dataset(dataset_name)
    splits = {}
    for split, first_id in (("train", 1), ("test", 8001)):
        if split not in raw:
            raise ValueError(f"Dataset {dataset_name!r} has splits {sorted(raw)}; missing {split!r}.")
        ds = raw[split]
        names = getattr(ds.features.get("relation"), "names", None)
        if names != SEMEVAL2010_TASK8_LABELS:
            raise ValueError(
                f"Dataset {dataset_name!r} split {split!r}: `relation` labels are {names}, expected ClassLabel names "
                f"{SEMEVAL2010_TASK8_LABELS}. Fix: use `SemEvalWorkshop/sem_eval_2010_task_8` or read local files."
            )
        for row, sentence in enumerate(ds["sentence"]):
            problem = check_entity_markers(sentence)
            if problem is not None:
                raise ValueError(f"Dataset {dataset_name!r} split {split!r} row {row}: {problem} in {sentence!r}.")
        if "id" not in ds.column_names:  # the Hub copy keeps file order, so the position gives the file's id
            ds = ds.add_column("id", [str(first_id + i) for i in range(len(ds))])
        splits[split] = ds.select_columns(["id", "sentence", "relation"]).cast(_semeval_features())
    return splits


def load_semeval2010_task8(
    dataset_dir: Optional[Union[str, os.PathLike]] = None,
    dataset_name: Optional[str] = None,
    *,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> DatasetDict:
    """Loads SemEval-2010 Task 8 as a `DatasetDict` with splits `train` (7,200), `validation` (800) and `test` (2,717).

    Args:
        dataset_dir (`str` or `os.PathLike`, *optional*):
            Folder with `TRAIN_FILE.TXT` and `TEST_FILE_FULL.TXT`. If neither `dataset_dir` nor `dataset_name` is
            given, [`default_semeval2010_task8_dir`] is used.
        dataset_name (`str`, *optional*):
            Hub dataset with `train`/`test` splits and columns `sentence`, `relation` (e.g.
            `"SemEvalWorkshop/sem_eval_2010_task_8"`).
        max_train_samples (`int`, *optional*): Keep only the first `max_train_samples` training examples.
        max_eval_samples (`int`, *optional*): Keep only the first `max_eval_samples` of `validation` and of `test`.

    Returns:
        `datasets.DatasetDict`: columns `id`, `sentence`, `relation`. `validation` holds the training examples whose
        id is divisible by [`SEMEVAL_VALIDATION_EVERY`]; `train` the others; `test` the official test set.
    """
    if dataset_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `dataset_dir` (local files) or `dataset_name` (Hub dataset), not both.")
    if dataset_name is not None:
        official = _load_from_hub(dataset_name)
    else:
        dataset_dir = dataset_dir if dataset_dir is not None else default_semeval2010_task8_dir()
        if dataset_dir is None:
            raise FileNotFoundError(
                "No SemEval-2010 Task 8 folder found at ../shared/data/semeval2010_task8. Fix: pass `dataset_dir` "
                "(a folder with TRAIN_FILE.TXT and TEST_FILE_FULL.TXT) or "
                "`dataset_name='SemEvalWorkshop/sem_eval_2010_task_8'`."
            )
        dataset_dir = Path(dataset_dir)
        files = {"train": dataset_dir / "TRAIN_FILE.TXT", "test": dataset_dir / "TEST_FILE_FULL.TXT"}
        for path in files.values():
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found. Fix: put the organisers' files in {dataset_dir}.")
        official = {split: read_semeval2010_task8(path) for split, path in files.items()}
    train, validation = _split_train(official["train"])
    dataset = DatasetDict({"train": train, "validation": validation, "test": official["test"]})
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset


def add_entity_marker_tokens(tokenizer, model=None) -> int:
    """Adds [`ENTITY_MARKERS`] to `tokenizer` as special tokens, so each marker stays one token and is never split.

    The new tokens need rows in the model's embedding matrix: pass `model` to resize it here, or call
    `model.resize_token_embeddings(len(tokenizer))` yourself before training. Adding is idempotent.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): The tokenizer to extend (in place).
        model (`PreTrainedModel`, *optional*): If given, its token embeddings are resized to `len(tokenizer)`.

    Returns:
        `int`: the number of tokens added to the vocabulary (0 when they were there already).
    """
    added = tokenizer.add_special_tokens({"extra_special_tokens": list(ENTITY_MARKERS)},
                                         replace_extra_special_tokens=False)  # fmt: skip
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    elif added:
        logger.info("Added %d entity marker tokens; call model.resize_token_embeddings(len(tokenizer)).", added)
    return added
