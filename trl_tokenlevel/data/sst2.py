"""SST-2 binary sentiment classification (Socher et al., 2013; GLUE, Wang et al., 2018).

Local files are the TSVs of `../shared/data/sst2` (header `sentence<TAB>label`): `train.tsv` (90% of GLUE train),
`dev.tsv` (the other 10%) and `test.tsv` (the labelled GLUE validation set). From the Hub (`stanfordnlp/sst2`, whose
`test` split has no labels) the same layout is rebuilt: GLUE train is split 90/10 with a fixed seed into `train` and
`validation` (not the same rows as the local split, which was shuffled elsewhere) and GLUE validation becomes `test`.
Either way the columns are `idx` (row number in its file), `sentence` (as distributed: lower-cased, PTB-tokenized,
often with a trailing space) and `label`, a `ClassLabel` over [`SST2_LABELS`].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .shared import find_shared_data_dir

SST2_LABELS = ["negative", "positive"]
"""Label names in `ClassLabel` order (0 = negative, 1 = positive), as in GLUE and `stanfordnlp/sst2`."""

SST2_SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
SST2_HUB_VALIDATION_FRACTION = 0.1
SST2_HUB_SPLIT_SEED = 42


class Sst2FormatError(ValueError):
    """Raised when an SST-2 TSV file cannot be parsed; the message names the file, the line and the fix."""


def _sst2_features() -> Features:
    return Features({"idx": Value("int32"), "sentence": Value("string"), "label": ClassLabel(names=list(SST2_LABELS))})


def read_sst2_tsv(path: Union[str, os.PathLike]) -> Dataset:
    """Reads one SST-2 TSV file (header `sentence<TAB>label`, labels `0`/`1`) into a `Dataset`.

    Args:
        path (`str` or `os.PathLike`): The TSV file.

    Returns:
        `datasets.Dataset`: columns `idx`, `sentence` (unchanged) and `label` (`ClassLabel` over [`SST2_LABELS`]).

    Raises:
        `Sst2FormatError`: on a wrong header, a line without a tab, a label other than `0`/`1`, or no rows; the
            message names the file, the line and the fix.
    """
    path = str(path)
    sentences, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n")
        if header.split("\t") != ["sentence", "label"]:
            raise Sst2FormatError(
                f"{path}, line 1: expected the header `sentence<TAB>label`, found {header!r}. "
                "Fix: write SST-2 as GLUE does, a header line then one `sentence<TAB>label` row per line."
            )
        for line_number, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            sentence, tab, label = line.rpartition("\t")
            if not tab:
                raise Sst2FormatError(
                    f"{path}, line {line_number}: no tab in {line!r}. Fix: separate sentence and label with a tab."
                )
            if label not in ("0", "1"):
                raise Sst2FormatError(
                    f"{path}, line {line_number}: label {label!r} is not 0 (negative) or 1 (positive). "
                    "Fix: write the label as 0 or 1 in the last column."
                )
            sentences.append(sentence)
            labels.append(int(label))
    if not sentences:
        raise Sst2FormatError(f"{path}: no rows after the header. Fix: check that this is an SST-2 TSV file.")
    data = {"idx": list(range(len(sentences))), "sentence": sentences, "label": labels}
    return Dataset.from_dict(data, features=_sst2_features())


def default_sst2_dir() -> Optional[Path]:
    """Returns the shared folder `../shared/data/sst2` (relative to the working directory, then to the repository
    root), or `None` if it does not exist."""
    return find_shared_data_dir("sst2")


def _load_from_hub(dataset_name: str) -> DatasetDict:
    raw = datasets.load_dataset(dataset_name)
    for split in ("train", "validation"):
        if split not in raw:
            raise ValueError(f"Dataset {dataset_name!r} has splits {sorted(raw)}; missing {split!r}.")
        names = getattr(raw[split].features.get("label"), "names", None)
        if names != SST2_LABELS:
            raise ValueError(
                f"Dataset {dataset_name!r} split {split!r}: `label` names are {names}, expected {SST2_LABELS}. "
                "Fix: use `stanfordnlp/sst2` or read local TSV files."
            )
    parts = raw["train"].train_test_split(test_size=SST2_HUB_VALIDATION_FRACTION, seed=SST2_HUB_SPLIT_SEED)
    splits = {"train": parts["train"], "validation": parts["test"], "test": raw["validation"]}
    result = {}
    for split, ds in splits.items():
        ds = ds.select_columns(["sentence", "label"])
        ds = ds.add_column("idx", list(range(len(ds))))
        result[split] = ds.select_columns(["idx", "sentence", "label"]).cast(_sst2_features())
    return DatasetDict(result)


def load_sst2(
    dataset_dir: Optional[Union[str, os.PathLike]] = None,
    dataset_name: Optional[str] = None,
    *,
    max_train_samples: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
) -> DatasetDict:
    """Loads SST-2 as a `DatasetDict` with splits `train`, `validation` and `test` (all labelled).

    Args:
        dataset_dir (`str` or `os.PathLike`, *optional*):
            Folder with `train.tsv`, `dev.tsv` and `test.tsv`. If neither `dataset_dir` nor `dataset_name` is given,
            [`default_sst2_dir`] is used.
        dataset_name (`str`, *optional*):
            Hub dataset laid out as GLUE SST-2 (`stanfordnlp/sst2`): its `train` is split 90/10 (seed 42) into
            `train`/`validation` and its labelled `validation` becomes `test`.
        max_train_samples (`int`, *optional*): Keep only the first `max_train_samples` training rows.
        max_eval_samples (`int`, *optional*): Keep only the first `max_eval_samples` rows of `validation` and `test`.

    Returns:
        `datasets.DatasetDict`: columns `idx`, `sentence`, `label` (local files: 60,614 / 6,735 / 872 rows).
    """
    if dataset_dir is not None and dataset_name is not None:
        raise ValueError("Pass either `dataset_dir` (local TSV files) or `dataset_name` (Hub dataset), not both.")
    if dataset_name is not None:
        dataset = _load_from_hub(dataset_name)
    else:
        dataset_dir = dataset_dir if dataset_dir is not None else default_sst2_dir()
        if dataset_dir is None:
            raise FileNotFoundError(
                "No SST-2 folder found at ../shared/data/sst2. Fix: pass `dataset_dir` (a folder with train.tsv, "
                "dev.tsv and test.tsv) or `dataset_name='stanfordnlp/sst2'`."
            )
        dataset_dir = Path(dataset_dir)
        splits = {}
        for split, name in SST2_SPLIT_FILES.items():
            if not (dataset_dir / name).is_file():
                raise FileNotFoundError(f"{dataset_dir / name} not found. Fix: put {list(SST2_SPLIT_FILES.values())} "
                                        f"in {dataset_dir}, or pass `dataset_name='stanfordnlp/sst2'`.")  # fmt: skip
            splits[split] = read_sst2_tsv(dataset_dir / name)
        dataset = DatasetDict(splits)
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
    return dataset
