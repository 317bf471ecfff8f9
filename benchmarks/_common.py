"""Shared by the result-producing benchmarks: YAML arm configs, one JSON per run claimed through a lock file, mean ±
std cells, and generated tables written between markers of a doc."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import time
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
    try:
        return cls(**values)
    except ValueError as error:  # a check in the dataclass's __post_init__: name the file
        raise ValueError(f"{path}: {error}") from error


def weights_sha256(folder: Path) -> str:
    """SHA-256 of a saved model's weight files (`*.safetensors` of `folder`, in name order): which model a result
    came from."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data) -> None:
    """Writes `data` as JSON to `path` whole or not at all (a `.partial` file renamed over it)."""
    path = Path(path)
    partial = path.parent / f"{path.name}.partial"
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    os.replace(partial, path)


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
        write_json_atomic(path, produce())
    finally:
        lock.unlink(missing_ok=True)
    return True


def choose_on_dev(runs: dict[str, dict[int, dict]], rl_arms: list[str], dev_score: Callable[[dict], float]
                  ) -> tuple[str | None, list[int]]:
    """The RL arm of a dev sweep with the best mean `dev_score(run)` over the seeds every arm in `rl_arms` has (so the
    choice does not depend on which seeds ran first), and those seeds; `(None, ...)` when there is nothing to choose
    between (fewer than two arms, or no shared seed). `runs`: arm -> seed -> run record."""
    shared = sorted(set.intersection(*(set(runs[a]) for a in rl_arms))) if rl_arms else []
    if len(rl_arms) < 2 or not shared:
        return None, shared
    return max(rl_arms, key=lambda arm: statistics.fmean(dev_score(runs[arm][s]) for s in shared)), shared


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


def grid_report_main(argv, doc: str, arms, run_grid: Callable, report: Callable[[], str], markers: tuple[str, str],
                     grid_help: str = "arm x seed; finished runs are skipped", default_arms=None,
                     add_grid_arguments: Callable | None = None,
                     extra_commands: dict[str, tuple[str, Callable[[], None]]] | None = None) -> None:
    """The two commands every result-producing benchmark has: `grid` (`--seeds`, `--arms` and the benchmark's own
    options; `run_grid(options)` runs what is missing) and `report [--write DOC]` (the tables to stdout, and between
    `markers` of DOC); `extra_commands` adds the benchmark's own argument-less commands (name -> (help, function))."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help=grid_help)
    if add_grid_arguments is not None:
        add_grid_arguments(grid)
    grid.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    grid.add_argument("--arms", nargs="+", default=list(default_arms or arms), choices=list(arms))
    rep = sub.add_parser("report", help="the tables (stdout) from the JSONs")
    rep.add_argument("--write", default=None, help="markdown file whose text between the table markers is replaced")
    for name, (help_text, _) in (extra_commands or {}).items():
        sub.add_parser(name, help=help_text)
    opts = parser.parse_args(argv)
    if opts.command in (extra_commands or {}):
        extra_commands[opts.command][1]()
        return
    if opts.command == "grid":
        run_grid(opts)
        return
    table = report()
    print(table)
    if opts.write:
        write_between_markers(Path(opts.write), table, *markers)


def recipe_env(**extra) -> dict:
    """The environment a benchmark runs a recipe in: this one, one OpenMP thread unless OMP_NUM_THREADS is set,
    transformers' errors only."""
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "TRANSFORMERS_VERBOSITY": "error",
            **extra}


def run_recipe_command(cmd: list[str], cwd: Path, output_dir: str, env: dict | None = None,
                       masks: dict[str, str] | None = None) -> dict:
    """Runs a recipe command (a subprocess; a failure raises) and returns what every run's JSON records about it: the
    command as a user types it (`python ...`, the scratch `output_dir` and each `masks` key replaced by its value), the
    wall seconds, the machine and the date."""
    env = env or recipe_env()
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    command = " ".join(["python"] + cmd[1:]).replace(output_dir, "<output_dir>")
    for text, mask in (masks or {}).items():
        command = command.replace(text, mask)
    return {
        "command": command, "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": f"{os.cpu_count()} CPU cores, OMP_NUM_THREADS={env.get('OMP_NUM_THREADS')}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
