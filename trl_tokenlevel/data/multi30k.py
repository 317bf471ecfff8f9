"""Multi30k task 1 (Elliott et al., 2016) for translation: raw parallel text files or the Hub copy, and prompts.

Local layout (`../shared/data/multi30k`, see its SOURCE.md): `{train,val,test_2016_flickr}.{en,de}`, one sentence
per line, line `i` of the two language files a translation pair. On the Hub, `bentrevett/multi30k` has the same
splits as JSON with `en` and `de` columns. Its German `val`/`test` references predate revisions in the official
repository (SOURCE.md: 61 and 150 lines differ), so scores on the two copies are not comparable.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import Dataset, DatasetDict

from .shared import find_shared_data_dir


logger = logging.getLogger(__name__)

MULTI30K_HUB_ID = "bentrevett/multi30k"
MULTI30K_SPLIT_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
"""File stem of each split in the official repository's `data/task1/raw` folder."""
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}
"""The Multi30k languages, by the ISO 639-1 code used in file names."""


def _read_lines(path: Path, unescape_html: bool) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: file not found. Fix: put the Multi30k raw files `<split>.<lang>` there (names: "
            f"{sorted(MULTI30K_SPLIT_FILES.values())}), or pass dataset_name={MULTI30K_HUB_ID!r}."
        )
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line.rstrip("\n").rstrip("\r") for line in handle]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(
                f"{path}:{number}: empty line. Every line must hold one sentence (line i of the source file is "
                "translated by line i of the target file). Fix: remove the line from both files, or fill it in."
            )
    return [html.unescape(line) for line in lines] if unescape_html else lines


def read_parallel_files(source_path, target_path, unescape_html: bool = True) -> Dataset:
    """Reads two line-aligned text files into a `Dataset` with columns `source` and `target`.

    Args:
        source_path, target_path (`str` or `os.PathLike`): UTF-8 files, one sentence per line.
        unescape_html (`bool`, defaults to `True`): turn HTML entities such as `&amp;` into characters.

    Raises:
        `ValueError` naming the file and line of an empty line, or both files and their line counts (and the first
        line without a counterpart) when the counts differ.
    """
    source_path, target_path = Path(source_path), Path(target_path)
    sources, targets = _read_lines(source_path, unescape_html), _read_lines(target_path, unescape_html)
    if len(sources) != len(targets):
        longer = source_path if len(sources) > len(targets) else target_path
        raise ValueError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; line "
            f"{min(len(sources), len(targets)) + 1} of {longer} has no counterpart. The files must be line-aligned "
            "translations. Fix: remove the extra lines, or check that the two files belong to the same split."
        )
    return Dataset.from_dict({"source": sources, "target": targets})


def _check_languages(source_lang: str, target_lang: str) -> None:
    for lang in (source_lang, target_lang):
        if lang not in LANGUAGE_NAMES:
            raise ValueError(f"Unknown language code {lang!r}; Multi30k has {sorted(LANGUAGE_NAMES)}.")
    if source_lang == target_lang:
        raise ValueError(f"source_lang and target_lang are both {source_lang!r}; choose two different languages.")


def _load_from_hub(dataset_name: str, source_lang: str, target_lang: str, unescape_html: bool) -> DatasetDict:
    raw = datasets.load_dataset(dataset_name)
    renames = {"val": "validation", "valid": "validation", "dev": "validation", "test_2016_flickr": "test"}
    splits = {}
    for split, ds in raw.items():
        split = renames.get(split, split)
        missing = {source_lang, target_lang} - set(ds.column_names)
        if missing:
            raise ValueError(
                f"Dataset {dataset_name!r} split {split!r} lacks the language column(s) {sorted(missing)} (has "
                f"{ds.column_names}). Fix: use a dataset with one column per language code, such as "
                f"{MULTI30K_HUB_ID!r}."
            )
        sources, targets = ds[source_lang], ds[target_lang]
        for row, (s, t) in enumerate(zip(sources, targets)):
            if not (s or "").strip() or not (t or "").strip():
                field = source_lang if not (s or "").strip() else target_lang
                raise ValueError(f"Dataset {dataset_name!r} split {split!r} row {row}: empty {field!r} sentence. "
                                 "Fix: filter such rows out of the dataset before loading.")
        if unescape_html:
            sources, targets = [html.unescape(s) for s in sources], [html.unescape(t) for t in targets]
        splits[split] = Dataset.from_dict({"source": sources, "target": targets})
    missing_splits = set(MULTI30K_SPLIT_FILES) - set(splits)
    if missing_splits:
        raise ValueError(f"Dataset {dataset_name!r} has splits {sorted(splits)}; missing {sorted(missing_splits)}.")
    return DatasetDict({split: splits[split] for split in MULTI30K_SPLIT_FILES})


def load_multi30k(
    data_dir: Optional[Union[str, os.PathLike]] = None,
    dataset_name: Optional[str] = None,
    source_lang: str = "en",
    target_lang: str = "de",
    *,
    unescape_html: bool = True,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> DatasetDict:
    """Loads Multi30k task 1 as a `DatasetDict` with splits `train` (29,000 pairs), `validation` (`val`, 1,014) and
    `test` (`test_2016_flickr`, 1,000), columns `source` and `target`, in file order.

    Args:
        data_dir (`str` or `os.PathLike`, *optional*): folder with the raw files `<split>.<lang>`. If neither
            `data_dir` nor `dataset_name` is given, `../shared/data/multi30k` is used when it exists, else the Hub
            dataset `bentrevett/multi30k`.
        dataset_name (`str`, *optional*): Hub dataset with one column per language code (`bentrevett/multi30k`).
        source_lang, target_lang (`str`, defaults to `"en"` and `"de"`): translation direction (`de` -> `en` works
            too; the shared folder holds English and German only).
        unescape_html (`bool`, defaults to `True`): the raw files keep a few HTML entities (`&amp;` in 16 English
            and 1 German training lines, none in `val`/`test`); unescaping stops the model learning to write them.
        max_train_samples (`int`, *optional*): keep the first N training pairs (deterministic, for quick runs).
        max_eval_samples (`int`, *optional*): keep the first N pairs of `validation` and of `test`.

    Raises:
        `ValueError` naming the file and line for an empty line, or both files for unequal line counts.

    Example (needs the shared folder or the Hub):
        >>> load_multi30k()["test"][0]["target"]  # doctest: +SKIP
        'Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.'
    """
    _check_languages(source_lang, target_lang)
    if data_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `data_dir` (local raw files) or `dataset_name` (Hub dataset), not both.")
    if data_dir is None and dataset_name is None:
        data_dir = find_shared_data_dir("multi30k")
        if data_dir is None:
            logger.info("No ../shared/data/multi30k folder; loading %s from the Hub.", MULTI30K_HUB_ID)
            dataset_name = MULTI30K_HUB_ID
    if dataset_name is not None:
        dataset = _load_from_hub(dataset_name, source_lang, target_lang, unescape_html)
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"data_dir={str(data_dir)!r} is not a folder.")
        dataset = DatasetDict({
            split: read_parallel_files(
                data_dir / f"{stem}.{source_lang}", data_dir / f"{stem}.{target_lang}", unescape_html
            )
            for split, stem in MULTI30K_SPLIT_FILES.items()
        })
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset


def translation_prompt(
    source: str, source_lang: str = "en", target_lang: str = "de", *, chat: bool = True, prefix: str = ""
) -> Union[list[dict], str]:
    """The prompt that asks a model to translate `source`.

    Args:
        source (`str`): the sentence to translate.
        source_lang, target_lang (`str`, defaults to `"en"` and `"de"`): language codes from `LANGUAGE_NAMES`.
        chat (`bool`, defaults to `True`): `True` for decoder-only chat models: one user message with the
            instruction and the sentence (apply the model's chat template with a generation prompt). `False` for
            encoder-decoder models: plain text, `prefix + source`.
        prefix (`str`, defaults to `""`): only with `chat=False`. Marian, mBART and NLLB take the bare sentence; T5
            was trained with `"translate English to German: "`.

    Example:
        >>> translation_prompt("A dog runs.")[0]["content"]
        'Translate this English sentence into German. Reply with the German translation only.\\n\\nA dog runs.'
        >>> translation_prompt("A dog runs.", chat=False, prefix="translate English to German: ")
        'translate English to German: A dog runs.'
    """
    _check_languages(source_lang, target_lang)
    if not chat:
        return f"{prefix}{source}"
    if prefix:
        raise ValueError("`prefix` applies to plain-text prompts only; pass chat=False, or drop the prefix.")
    source_name, target_name = LANGUAGE_NAMES[source_lang], LANGUAGE_NAMES[target_lang]
    instruction = (
        f"Translate this {source_name} sentence into {target_name}. Reply with the {target_name} translation only."
    )
    return [{"role": "user", "content": f"{instruction}\n\n{source}"}]


__all__ = [
    "LANGUAGE_NAMES",
    "MULTI30K_HUB_ID",
    "MULTI30K_SPLIT_FILES",
    "find_shared_data_dir",
    "load_multi30k",
    "read_parallel_files",
    "translation_prompt",
]
