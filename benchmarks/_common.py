"""Shared by the result-producing benchmarks: YAML arm configs, one JSON per run claimed through a lock file, mean ±
std cells, and generated tables written between markers of a doc."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import yaml


def config_from_yaml(cls, path, overrides: dict) -> object:
    """An instance of the dataclass `cls` from the YAML file `path` plus the non-None `overrides`; unknown keys are
    refused with the file's name and the keys it may use."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}. Fix: use only {sorted(known)}.")
    return cls(**values)


def run_once(path: Path, produce: Callable[[], dict], label: str) -> bool:
    """Writes `produce()` as JSON to `path` unless the file exists or another process holds `<stem>.running` next to
    it (a killed run leaves that file: delete it to rerun). The JSON appears whole or not at all. Returns whether
    this call wrote it."""
    path = Path(path)
    if path.exists():
        print(f"skip {label}: {path} exists", flush=True)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f"{path.stem}.running"
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        print(f"skip {label}: {lock} says another process runs it (delete the file if none does)", flush=True)
        return False
    try:
        result = produce()
        partial = path.parent / f"{path.name}.partial"
        partial.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        os.replace(partial, path)
    finally:
        lock.unlink(missing_ok=True)
    return True


def mean_std(values: list[float], digits: int = 2) -> str:
    """`mean ± std` over seeds (sample std), or the single value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def write_between_markers(path: Path, text: str, begin: str, end: str) -> None:
    """Replaces what lies between the `begin` and `end` markers of the doc `path` with `text` (generated: edit the
    script, not the doc)."""
    doc = Path(path).read_text(encoding="utf-8")
    if begin not in doc or end not in doc:
        raise ValueError(f"{path} has no {begin} ... {end} markers: add them where the table goes.")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    Path(path).write_text(f"{head}{begin}\n{text}\n{end}{tail}", encoding="utf-8")
