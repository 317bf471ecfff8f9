"""Reading CoNLL-style NER files (one token per line) into `datasets.Dataset` objects.

The reader accepts any number of whitespace-separated columns (`token POS chunk NER` for CoNLL-2003), treats a
blank line as a sentence boundary, skips `-DOCSTART-` lines and normalises IOB1 tags to IOB2, so that the result has
the same schema as the Hub dataset `eriktks/conll2003` (`id`, `tokens`, `ner_tags` as `ClassLabel` ids).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value


logger = logging.getLogger(__name__)

CONLL2003_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
"""NER labels of CoNLL-2003 in the order of the Hub dataset `eriktks/conll2003` (the `ClassLabel` ids)."""

# Candidate file names per split, tried in order. `eng.testa`/`eng.testb` are the names of the original release.
SPLIT_FILE_CANDIDATES = {
    "train": ("train.txt", "train.conll", "eng.train"),
    "validation": (
        "valid.txt",
        "validation.txt",
        "dev.txt",
        "valid.conll",
        "validation.conll",
        "dev.conll",
        "eng.testa",
    ),
    "test": ("test.txt", "test.conll", "eng.testb"),
}
_SCHEMES = ("auto", "IOB1", "IOB2")


class ConllFormatError(ValueError):
    """Raised when a CoNLL file cannot be parsed; the message names the file, the line and the fix."""


def _entity_type(tag: str) -> Optional[str]:
    return tag[2:] if tag[:2] in ("B-", "I-") else None


def _starts_entity_with_inside(tags: list[str]) -> bool:
    """True if some entity starts with `I-X` (not preceded by `B-X`/`I-X`): the signature of IOB1."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and _entity_type(previous) != _entity_type(tag):
            return True
        previous = tag
    return False


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Converts one sentence of IOB1 (or IOB2) tags to IOB2: every entity starts with `B-`.

    Example:

    ```python
    >>> iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC']

    ```
    """
    converted = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and _entity_type(previous) != _entity_type(tag):
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def _conll_features(label_names: list[str]) -> Features:
    return Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=list(label_names))),
        }
    )


def _min_columns(token_column: int, tag_column: int) -> int:
    """Smallest number of columns for which `token_column` and `tag_column` are valid, distinct indices."""
    for n in range(1, 1000):
        indices = [c if c >= 0 else n + c for c in (token_column, tag_column)]
        if all(0 <= i < n for i in indices) and indices[0] != indices[1]:
            return n
    raise ValueError(f"token_column={token_column} and tag_column={tag_column} must name two different columns.")


def _parse_lines(path: str, token_column: int, tag_column: int, skip_docstart: bool):
    """Yields sentences as lists of `(token, tag, line_number)`; checks the column layout line by line."""
    needed = _min_columns(token_column, tag_column)
    expected_columns, first_line = None, None
    sentence: list[tuple[str, str, int]] = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            columns = line.split()
            if not columns:
                if sentence:
                    yield sentence
                sentence = []
                continue
            if columns[0] == "-DOCSTART-" and skip_docstart:
                if sentence:
                    yield sentence
                sentence = []
                continue
            if len(columns) < needed:
                raise ConllFormatError(
                    f"{path}, line {line_number}: expected at least {needed} whitespace-separated columns "
                    f"(token_column={token_column}, tag_column={tag_column}), "
                    f"found {len(columns)}: {line.rstrip()!r}. "
                    "Fix: write one token per line as `token ... tag`, separate sentences with a blank line, "
                    "or pass the right `token_column`/`tag_column`."
                )
            if expected_columns is None:
                expected_columns, first_line = len(columns), line_number
            elif len(columns) != expected_columns:
                raise ConllFormatError(
                    f"{path}, line {line_number}: expected {expected_columns} whitespace-separated columns "
                    f"(as on line {first_line}), found {len(columns)}: {line.rstrip()!r}. "
                    "Fix: give every token line the same columns; a token must not contain whitespace."
                )
            sentence.append((columns[token_column], columns[tag_column], line_number))
    if sentence:
        yield sentence


def read_conll(
    path: Union[str, os.PathLike],
    *,
    tag_column: int = -1,
    token_column: int = 0,
    scheme: str = "auto",
    label_names: Optional[list[str]] = None,
    skip_docstart: bool = True,
) -> Dataset:
    """Reads a CoNLL-format NER file into a `Dataset` with columns `id`, `tokens` and `ner_tags`.

    Args:
        path (`str` or `os.PathLike`):
            File with one token per line and whitespace-separated columns; a blank line ends a sentence.
        tag_column (`int`, *optional*, defaults to `-1`):
            Column holding the NER tag (Python indexing, so `-1` is the last column).
        token_column (`int`, *optional*, defaults to `0`):
            Column holding the token.
        scheme (`str`, *optional*, defaults to `"auto"`):
            Tagging scheme of the file: `"IOB2"` (every entity starts with `B-`, kept as is), `"IOB1"` (`B-` only
            between adjacent entities of one type; converted to IOB2) or `"auto"` (IOB1 if any entity starts with
            `I-X` not following a tag of type `X`, else IOB2).
        label_names (`list[str]`, *optional*):
            Names of the `ClassLabel` ids. Defaults to [`CONLL2003_LABELS`].
        skip_docstart (`bool`, *optional*, defaults to `True`):
            Whether to drop `-DOCSTART-` lines (document boundaries, not sentences).

    Returns:
        `datasets.Dataset`: one row per sentence; `id` is the sentence index as a string.

    Raises:
        `ConllFormatError`: on a line with too few or an inconsistent number of columns, an unknown tag, or a file
            without sentences. The message names the file, the line and the fix.
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not supported; choose one of {_SCHEMES}.")
    label_names = list(label_names) if label_names is not None else list(CONLL2003_LABELS)
    label_to_id = {label: i for i, label in enumerate(label_names)}
    path = str(path)

    sentences = list(_parse_lines(path, token_column, tag_column, skip_docstart))
    if not sentences:
        raise ConllFormatError(f"{path}: no sentences found. Fix: check that this is a CoNLL file (token ... tag).")

    all_tags = [[tag for _, tag, _ in sentence] for sentence in sentences]
    convert = scheme == "IOB1" or (scheme == "auto" and any(_starts_entity_with_inside(t) for t in all_tags))
    if convert:
        logger.info("%s: converting IOB1 tags to IOB2 (scheme=%r).", path, scheme)
        all_tags = [iob1_to_iob2(tags) for tags in all_tags]

    tokens, ner_tags = [], []
    for sentence, tags in zip(sentences, all_tags):
        ids = []
        for (_, original_tag, line_number), tag in zip(sentence, tags):
            if tag not in label_to_id:
                raise ConllFormatError(
                    f"{path}, line {line_number}: unknown tag {original_tag!r}. Known labels: {label_names}. "
                    "Fix: pass `label_names` with every tag of the file, or the right `tag_column`."
                )
            ids.append(label_to_id[tag])
        tokens.append([token for token, _, _ in sentence])
        ner_tags.append(ids)

    data = {"id": [str(i) for i in range(len(tokens))], "tokens": tokens, "ner_tags": ner_tags}
    return Dataset.from_dict(data, features=_conll_features(label_names))


def default_conll2003_dir() -> Optional[Path]:
    """Returns the shared CoNLL-2003 folder `../shared/data/conll2003`, or `None` if it does not exist.

    The folder is looked up relative to the current working directory first, then relative to the repository root
    (the parent of the `trl_tokenlevel` package folder).
    """
    candidates = [
        Path.cwd() / ".." / "shared" / "data" / "conll2003",
        Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "conll2003",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _find_split_file(dataset_dir: Path, split: str) -> Path:
    for name in SPLIT_FILE_CANDIDATES[split]:
        if (dataset_dir / name).is_file():
            return dataset_dir / name
    raise FileNotFoundError(
        f"No {split} file in {dataset_dir}: looked for {list(SPLIT_FILE_CANDIDATES[split])}. "
        "Fix: put the CoNLL files there under one of these names, or pass `dataset_name` to load from the Hub."
    )


def _load_from_hub(dataset_name: str) -> DatasetDict:
    raw = datasets.load_dataset(dataset_name)
    renames = {"valid": "validation", "dev": "validation"}
    splits = {}
    for split, ds in raw.items():
        split = renames.get(split, split)
        missing = {"tokens", "ner_tags"} - set(ds.column_names)
        if missing:
            raise ValueError(
                f"Dataset {dataset_name!r} split {split!r} lacks columns {sorted(missing)} (has {ds.column_names}). "
                "Fix: use a dataset with `tokens` and `ner_tags` columns, such as `eriktks/conll2003`."
            )
        tag_feature = ds.features["ner_tags"].feature
        names = getattr(tag_feature, "names", None)
        if names != CONLL2003_LABELS:
            raise ValueError(
                f"Dataset {dataset_name!r} split {split!r}: `ner_tags` labels are {names}, expected ClassLabel "
                f"names {CONLL2003_LABELS}. Fix: map the tags to this order, or read local files with `read_conll`."
            )
        if "id" not in ds.column_names:
            ds = ds.add_column("id", [str(i) for i in range(len(ds))])
        ds = ds.select_columns(["id", "tokens", "ner_tags"])
        splits[split] = ds.cast(_conll_features(CONLL2003_LABELS))
    missing_splits = {"train", "validation", "test"} - set(splits)
    if missing_splits:
        raise ValueError(f"Dataset {dataset_name!r} has splits {sorted(splits)}; missing {sorted(missing_splits)}.")
    return DatasetDict({split: splits[split] for split in ("train", "validation", "test")})


def load_conll2003(
    dataset_dir: Optional[Union[str, os.PathLike]] = None,
    dataset_name: Optional[str] = None,
    *,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> DatasetDict:
    """Loads CoNLL-2003 as a `DatasetDict` with splits `train`, `validation` and `test`.

    Args:
        dataset_dir (`str` or `os.PathLike`, *optional*):
            Folder with `train.txt`, `valid.txt` and `test.txt` (also accepted: `validation.txt`, `dev.txt`, `.conll`
            variants and the original `eng.train`/`eng.testa`/`eng.testb`). If neither `dataset_dir` nor
            `dataset_name` is given, [`default_conll2003_dir`] is used.
        dataset_name (`str`, *optional*):
            Hub dataset to load with `datasets.load_dataset` (e.g. `"eriktks/conll2003"`); only `id`, `tokens` and
            `ner_tags` are kept, and the tag names must equal [`CONLL2003_LABELS`].
        max_train_samples (`int`, *optional*):
            Keep only the first `max_train_samples` training sentences (deterministic, for quick runs).
        max_eval_samples (`int`, *optional*):
            Keep only the first `max_eval_samples` sentences of `validation` and of `test`.

    Returns:
        `datasets.DatasetDict`: splits `train`, `validation`, `test` with columns `id`, `tokens`, `ner_tags`.
    """
    if dataset_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `dataset_dir` (local CoNLL files) or `dataset_name` (Hub dataset), not both.")
    if dataset_name is not None:
        dataset = _load_from_hub(dataset_name)
    else:
        if dataset_dir is None:
            dataset_dir = default_conll2003_dir()
            if dataset_dir is None:
                raise FileNotFoundError(
                    "No CoNLL-2003 folder found at ../shared/data/conll2003. Fix: pass `dataset_dir` (a folder with "
                    "train.txt/valid.txt/test.txt) or `dataset_name='eriktks/conll2003'`."
                )
        dataset_dir = Path(dataset_dir)
        if not dataset_dir.is_dir():
            raise FileNotFoundError(f"dataset_dir={str(dataset_dir)!r} is not a folder.")
        dataset = DatasetDict(
            {split: read_conll(_find_split_file(dataset_dir, split)) for split in ("train", "validation", "test")}
        )

    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset
