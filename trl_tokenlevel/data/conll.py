"""Reading CoNLL-style NER files (one token per line) into `datasets.Dataset` objects.

The reader accepts any number of whitespace-separated columns (`token POS chunk NER` for CoNLL-2003), treats a
blank line as a sentence boundary, skips `-DOCSTART-` lines and a leading byte order mark, and returns IOB2 tags
(IOB1 input is converted, and the conversion logged with its count), so that the result has the same schema as the
Hub dataset `eriktks/conll2003` (`id`, `tokens`, `ner_tags` as `ClassLabel` ids). Nothing is dropped silently: bad
bytes, bad columns, unknown tags and (under `scheme="IOB2"`) `I-` entity starts raise `ConllFormatError` naming the
file and the line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from .shared import find_shared_data_dir


logger = logging.getLogger(__name__)

CONLL2003_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
"""NER labels of CoNLL-2003 in the order of the Hub dataset `eriktks/conll2003` (the `ClassLabel` ids)."""

# Candidate file names per split, tried in order. `eng.testa`/`eng.testb` are the names of the original release.
SPLIT_FILE_CANDIDATES = {
    "train": ("train.txt", "train.conll", "eng.train"),
    "validation": ("valid.txt", "validation.txt", "dev.txt", "valid.conll", "validation.conll", "dev.conll",
                   "eng.testa"),  # fmt: skip
    "test": ("test.txt", "test.conll", "eng.testb"),
}
_SCHEMES = ("auto", "IOB1", "IOB2")


class ConllFormatError(ValueError):
    """Raised when a CoNLL file cannot be parsed; the message names the file, the line and the fix."""


def _entity_type(tag: str) -> Optional[str]:
    return tag[2:] if tag[:2] in ("B-", "I-") else None


def _inside_starts(tags: list[str]) -> list[int]:
    """Positions of tags `I-X` that start an entity (not preceded by `B-X`/`I-X`): legal in IOB1, an error in IOB2."""
    previous_types = [None] + [_entity_type(tag) for tag in tags[:-1]]
    return [i for i, tag in enumerate(tags) if tag.startswith("I-") and previous_types[i] != tag[2:]]


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Converts one sentence of IOB1 (or IOB2) tags to IOB2: every entity starts with `B-`.

    Example:

    ```python
    >>> iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC']

    ```
    """
    converted = list(tags)
    for i in _inside_starts(tags):
        converted[i] = "B-" + tags[i][2:]
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


def _read_lines(path: str, encoding: str) -> list[str]:
    """Decodes the file and splits it into lines (universal newlines); a byte order mark at the start is dropped."""
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        head = data[: error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line_number = head.count(b"\n") + 1
        line = head.rsplit(b"\n", 1)[-1] + data[error.start :].replace(b"\r", b"\n").split(b"\n", 1)[0]
        raise ConllFormatError(
            f"{path}, line {line_number}: byte {data[error.start]:#04x} at byte offset {error.start} is not "
            f"valid {encoding} ({error.reason}) in {line!r}. Fix: re-encode the file as UTF-8 (e.g. `iconv -f latin1 "
            "-t utf-8`), or pass the file's encoding, e.g. `encoding='latin-1'`."
        ) from None
    # A BOM (written by some Windows editors) would otherwise glue itself to the first token, e.g. `-DOCSTART-`.
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _parse_lines(path: str, encoding: str, token_column: int, tag_column: int, skip_docstart: bool):
    """Yields sentences as lists of `(token, tag, line_number)`; checks the column layout line by line."""
    needed = _min_columns(token_column, tag_column)
    expected_columns, first_line = None, None
    sentence: list[tuple[str, str, int]] = []
    for line_number, line in enumerate(_read_lines(path, encoding), start=1):
        columns = line.split()
        if not columns or (columns[0] == "-DOCSTART-" and skip_docstart):
            if sentence:
                yield sentence
            sentence = []
            continue
        if len(columns) < needed:
            raise ConllFormatError(
                f"{path}, line {line_number}: expected at least {needed} whitespace-separated columns "
                f"(token_column={token_column}, tag_column={tag_column}), found {len(columns)}: {line.rstrip()!r}. "
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


def _apply_scheme(path: str, sentences: list, scheme: str) -> list[list[str]]:
    """Returns IOB2 tags per sentence: checks them (`"IOB2"`) or converts `I-` entity starts and logs how many."""
    all_tags = [[tag for _, tag, _ in sentence] for sentence in sentences]
    starts = [(sentence, i) for sentence, tags in zip(sentences, all_tags) for i in _inside_starts(tags)]
    if not starts:
        return all_tags
    sentence, i = starts[0]
    first_line, first_tag = sentence[i][2], sentence[i][1]
    if scheme == "IOB2":
        after = repr(sentence[i - 1][1]) if i else "the start of the sentence"
        raise ConllFormatError(
            f"{path}, line {first_line}: tag {first_tag!r} follows {after}, so it starts an entity with I-, which "
            f"scheme='IOB2' forbids ({len(starts)} such tags in the file). Fix: pass scheme='IOB1' (or 'auto') to "
            f"convert IOB1 tags to IOB2, or correct the tag to {'B-' + first_tag[2:]!r}."
        )
    num_entity_tags = sum(tag[:2] in ("B-", "I-") for tags in all_tags for tag in tags)
    summary = (
        f"{path}: converted {len(starts)} of {num_entity_tags} entity tags from I- to B- (IOB1 -> IOB2), "
        f"first on line {first_line} ({first_tag!r})"
    )
    if scheme == "IOB1":
        logger.info("%s.", summary)
    else:  # "auto" guessed: an IOB2 file with stray I- tags lands here too, so say it loudly.
        logger.warning("%s. scheme='auto' took the file for IOB1; pass scheme='IOB1' to confirm, or scheme='IOB2' "
                       "to make such tags an error.", summary)  # fmt: skip
    return [iob1_to_iob2(tags) for tags in all_tags]


def read_conll(
    path: Union[str, os.PathLike],
    *,
    tag_column: int = -1,
    token_column: int = 0,
    scheme: str = "auto",
    label_names: Optional[list[str]] = None,
    skip_docstart: bool = True,
    encoding: str = "utf-8",
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
            Tagging scheme of the file: `"IOB2"` (every entity starts with `B-`; an `I-X` that does not continue a
            `B-X`/`I-X` is an error), `"IOB1"` (`B-` only between adjacent entities of one type; converted to IOB2,
            logged at INFO with the count) or `"auto"` (IOB2 if no entity starts with `I-`, else converted as IOB1
            with a warning naming the count and the first line: an IOB2 file with stray `I-` tags is repaired so).
        label_names (`list[str]`, *optional*):
            Names of the `ClassLabel` ids. Defaults to [`CONLL2003_LABELS`].
        skip_docstart (`bool`, *optional*, defaults to `True`):
            Whether to drop `-DOCSTART-` lines (document boundaries, not sentences).
        encoding (`str`, *optional*, defaults to `"utf-8"`):
            Text encoding of the file (e.g. `"latin-1"` for the original CoNLL-2003 release); a leading byte order
            mark is dropped.

    Returns:
        `datasets.Dataset`: one row per sentence; `id` is the sentence index as a string.

    Raises:
        `ConllFormatError`: on bytes that are not valid `encoding`, a line with too few or an inconsistent number
            of columns, an unknown tag, an `I-` entity start under `scheme="IOB2"`, or a file without sentences. The
            message names the file, the line and the fix.
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not supported; choose one of {_SCHEMES}.")
    label_names = list(label_names) if label_names is not None else list(CONLL2003_LABELS)
    label_to_id = {label: i for i, label in enumerate(label_names)}
    path = str(path)

    sentences = list(_parse_lines(path, encoding, token_column, tag_column, skip_docstart))
    if not sentences:
        raise ConllFormatError(
            f"{path}: no sentences found (the file is empty or holds only blank and -DOCSTART- lines). "
            "Fix: check that this is a CoNLL file with one `token ... tag` line per word."
        )
    all_tags = _apply_scheme(path, sentences, scheme)

    tokens, ner_tags = [], []
    for sentence, tags in zip(sentences, all_tags):
        ids = []
        for (_, original_tag, line_number), tag in zip(sentence, tags):
            if tag not in label_to_id:
                converted = f" (converted from IOB1 {original_tag!r})" if tag != original_tag else ""
                raise ConllFormatError(
                    f"{path}, line {line_number}: unknown tag {tag!r}{converted}. Known labels: {label_names}. "
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
    return find_shared_data_dir("conll2003")


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
        if len(ds) == 0:
            raise ValueError(f"Dataset {dataset_name!r} split {split!r} has no rows. Fix: use a dataset whose "
                             "train, validation and test splits all hold sentences.")  # fmt: skip
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
    scheme: str = "auto",
    encoding: str = "utf-8",
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
        scheme (`str`, *optional*, defaults to `"auto"`):
            Tagging scheme of local files, see [`read_conll`]; the shared CoNLL-2003 files are IOB2, the original
            `eng.*` release is IOB1.
        encoding (`str`, *optional*, defaults to `"utf-8"`):
            Text encoding of local files, see [`read_conll`].

    Returns:
        `datasets.DatasetDict`: splits `train`, `validation`, `test` with columns `id`, `tokens`, `ner_tags`.
    """
    for name, limit in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"{name}={limit!r} would leave a split empty; it must be a positive integer, or None "
                             "to keep every sentence.")  # fmt: skip
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
        files = {split: _find_split_file(dataset_dir, split) for split in ("train", "validation", "test")}
        dataset = DatasetDict({split: read_conll(f, scheme=scheme, encoding=encoding) for split, f in files.items()})

    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset
