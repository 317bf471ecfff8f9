"""SQuAD v1.1 extractive QA (Rajpurkar et al., 2016): reading the official JSON, re-split by article.

Only the official **dev** file is available here (`../shared/data/squad/dev-v1.1.json`, 10,570 questions), so it is
divided by whole articles into `train` (36 articles), `validation` (6) and `test` (6): the 48 titles in file order,
shuffled once with `random.Random(2016)`, then the first 36 / next 6 / last 6 ([`squad_article_splits`]; the folder's
`splits.json` holds the result and is used when present). From the Hub (`rajpurkar/squad`) the same re-split is
applied to its `validation` split (the official dev set), so both sources give the same three splits. Scores on this
split compare methods with each other; they are not comparable with published SQuAD dev scores.

Columns follow the Hub dataset: `id`, `title`, `context`, `question`, `answers` (`{"text": [...],
"answer_start": [...]}`, 1-6 references). Every reference is checked: `context[answer_start:][:len(text)] == text`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import Dataset, DatasetDict, Features, Value

from .shared import find_shared_data_dir

SQUAD_SPLIT_SEED = 2016
SQUAD_SPLIT_SIZES = {"train": 36, "validation": 6, "test": 6}
"""Articles per split of the re-split official dev set (48 articles)."""


class SquadFormatError(ValueError):
    """Raised when a SQuAD file or example is malformed; the message names the file, the question id and the fix."""


def _squad_features() -> Features:
    return Features(
        {
            "id": Value("string"),
            "title": Value("string"),
            "context": Value("string"),
            "question": Value("string"),
            "answers": {"text": datasets.Sequence(Value("string")), "answer_start": datasets.Sequence(Value("int32"))},
        }
    )


def squad_article_splits(titles: Sequence[str], seed: int = SQUAD_SPLIT_SEED) -> dict[str, list[str]]:
    """Divides article titles into `train`/`validation`/`test` as `splits.json` does: shuffle the titles (in file
    order) once with `random.Random(seed)`, then take 36 / 6 / 6 ([`SQUAD_SPLIT_SIZES`]).

    Args:
        titles (`Sequence[str]`): The 48 article titles of the official dev file, in file order.
        seed (`int`, *optional*, defaults to `2016`): Seed of the shuffle.

    Returns:
        `dict[str, list[str]]`: titles per split.
    """
    if len(titles) != sum(SQUAD_SPLIT_SIZES.values()) or len(set(titles)) != len(titles):
        raise ValueError(
            f"Expected the {sum(SQUAD_SPLIT_SIZES.values())} distinct article titles of the official SQuAD v1.1 dev "
            f"file, got {len(titles)} ({len(set(titles))} distinct). Fix: pass a `splits.json` for other data."
        )
    shuffled = list(titles)
    random.Random(seed).shuffle(shuffled)
    splits, start = {}, 0
    for split, size in SQUAD_SPLIT_SIZES.items():
        splits[split] = shuffled[start : start + size]
        start += size
    return splits


def check_answers(example: Mapping, source: str) -> None:
    """Raises [`SquadFormatError`] unless every reference answer of `example` is found at its `answer_start`.

    Args:
        example (`Mapping`): One row with `id`, `context` and `answers` (`{"text": [...], "answer_start": [...]}`).
        source (`str`): Where the example comes from (a file or Hub split), for the message.
    """
    context, answers = example["context"], example["answers"]
    if len(answers["text"]) != len(answers["answer_start"]):
        raise SquadFormatError(
            f"{source}, question id {example['id']!r}: {len(answers['text'])} answer texts but "
            f"{len(answers['answer_start'])} answer_start values. Fix: give each answer both."
        )
    for k, (text, start) in enumerate(zip(answers["text"], answers["answer_start"])):
        found = context[start : start + len(text)]
        if start < 0 or found != text:
            occurrences = [i for i in range(len(context)) if context.startswith(text, i)][:5]
            hint = (f"set answer_start to one of {occurrences}, where the text occurs" if occurrences
                    else "the text does not occur in the context; correct the text")  # fmt: skip
            raise SquadFormatError(
                f"{source}, question id {example['id']!r}, answer {k}: context[{start}:{start + len(text)}] is "
                f"{found!r}, not the answer text {text!r}. Fix: {hint} (answer_start is a character offset)."
            )


def _iter_squad_json(path: str) -> Iterable[dict]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFormatError(f"{path}: expected a JSON object with a `data` list (SQuAD v1.1 format).")
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield {
                    "id": qa["id"],
                    "title": article["title"],
                    "context": paragraph["context"],
                    "question": qa["question"],
                    "answers": {
                        "text": [a["text"] for a in qa["answers"]],
                        "answer_start": [a["answer_start"] for a in qa["answers"]],
                    },
                }


def read_squad_json(path: Union[str, os.PathLike]) -> Dataset:
    """Reads a SQuAD v1.1 JSON file into a `Dataset` with one row per question, checking every answer offset.

    Args:
        path (`str` or `os.PathLike`): The JSON file (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`).

    Returns:
        `datasets.Dataset`: columns `id`, `title`, `context`, `question`, `answers`, in file order.

    Raises:
        `SquadFormatError`: on a repeated question id or an answer whose `answer_start` does not point at its text.
    """
    path = str(path)
    rows, seen = [], set()
    for row in _iter_squad_json(path):
        if row["id"] in seen:
            raise SquadFormatError(f"{path}: question id {row['id']!r} appears twice. Fix: make ids unique.")
        seen.add(row["id"])
        check_answers(row, path)
        rows.append(row)
    if not rows:
        raise SquadFormatError(f"{path}: no questions found. Fix: check that this is a SQuAD v1.1 file.")
    return Dataset.from_list(rows, features=_squad_features())


def default_squad_dir() -> Optional[Path]:
    """Returns the shared folder `../shared/data/squad` (relative to the working directory, then to the repository
    root), or `None` if it does not exist."""
    return find_shared_data_dir("squad")


def _split_by_article(dataset: Dataset, splits: Mapping[str, Sequence[str]], source: str) -> DatasetDict:
    titles = list(dict.fromkeys(dataset["title"]))
    split_of = {}
    for split, split_titles in splits.items():
        for title in split_titles:
            if title in split_of:
                raise SquadFormatError(f"{source}: article {title!r} is in both {split_of[title]!r} and {split!r}.")
            split_of[title] = split
    unassigned, unknown = set(titles) - set(split_of), set(split_of) - set(titles)
    if unassigned or unknown:
        raise SquadFormatError(
            f"{source}: articles without a split: {sorted(unassigned)}; split titles not in the data: "
            f"{sorted(unknown)}. Fix: list every article title of the JSON file in exactly one split."
        )
    rows_of = {split: [] for split in ("train", "validation", "test")}
    for i, title in enumerate(dataset["title"]):
        rows_of[split_of[title]].append(i)
    return DatasetDict({split: dataset.select(rows) for split, rows in rows_of.items()})


def _read_splits_file(path: Path) -> dict[str, list[str]]:
    splits = json.loads(path.read_text(encoding="utf-8"))
    if set(splits) != {"train", "validation", "test"}:
        raise SquadFormatError(
            f"{path}: expected keys train/validation/test with lists of titles, got {sorted(splits)}. "
            "Fix: write `{\"train\": [titles], \"validation\": [titles], \"test\": [titles]}`."
        )
    return splits


def load_squad(
    dataset_dir: Optional[Union[str, os.PathLike]] = None,
    dataset_name: Optional[str] = None,
    *,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> DatasetDict:
    """Loads the official SQuAD v1.1 dev set re-split by article into `train` (8,195 questions), `validation` (1,145)
    and `test` (1,230).

    Args:
        dataset_dir (`str` or `os.PathLike`, *optional*):
            Folder with `dev-v1.1.json` and optionally `splits.json` (`{"train": [titles], ...}`; without it the
            split is [`squad_article_splits`]). If neither `dataset_dir` nor `dataset_name` is given,
            [`default_squad_dir`] is used.
        dataset_name (`str`, *optional*):
            Hub dataset (`rajpurkar/squad`): its `validation` split is re-split with [`squad_article_splits`].
        max_train_samples (`int`, *optional*): Keep only the first `max_train_samples` training questions.
        max_eval_samples (`int`, *optional*): Keep only the first `max_eval_samples` of `validation` and `test`.

    Returns:
        `datasets.DatasetDict`: columns `id`, `title`, `context`, `question`, `answers`.
    """
    if dataset_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `dataset_dir` (local JSON) or `dataset_name` (Hub dataset), not both.")
    if dataset_name is not None:
        raw = datasets.load_dataset(dataset_name, split="validation")
        source = f"{dataset_name} (validation)"
        raw = raw.select_columns(list(_squad_features())).cast(_squad_features())
        for example in raw:
            check_answers(example, source)
        splits = squad_article_splits(list(dict.fromkeys(raw["title"])))
    else:
        dataset_dir = dataset_dir if dataset_dir is not None else default_squad_dir()
        if dataset_dir is None:
            raise FileNotFoundError("No SQuAD folder found at ../shared/data/squad. Fix: pass `dataset_dir` (a folder "
                                    "with dev-v1.1.json) or `dataset_name='rajpurkar/squad'`.")  # fmt: skip
        dataset_dir = Path(dataset_dir)
        path = dataset_dir / "dev-v1.1.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found. Fix: put the official SQuAD v1.1 dev file there.")
        raw, source = read_squad_json(path), str(path)
        splits_file = dataset_dir / "splits.json"
        if splits_file.is_file():
            splits = _read_splits_file(splits_file)
        else:
            splits = squad_article_splits(list(dict.fromkeys(raw["title"])))
    dataset = _split_by_article(raw, splits, source)
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset
