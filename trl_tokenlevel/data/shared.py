"""Where the shared offline copies of the datasets live: `../shared/data/<name>` next to the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def find_shared_data_dir(name: str) -> Optional[Path]:
    """The shared data folder `../shared/data/<name>`, looked up from the working directory, then from the repository
    root (the parent of the `trl_tokenlevel` package); `None` if neither exists."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / ".." / "shared" / "data" / name
        if candidate.is_dir():
            return candidate.resolve()
    return None
