"""Loading a model by name with the library's safe defaults: safetensors only, no remote code unless asked, and
`load_in_8bit` / `load_in_4bit` turned into a bitsandbytes config (checked first, never ignored)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .packaged import resolve_model_path
from .quantization import resolve_model_init_kwargs


def model_init_kwargs(
    init_kwargs: Mapping[str, Any] | None = None,
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    trust_remote_code: bool = False,
    use_cpu: bool = False,
) -> dict[str, Any]:
    """The keyword arguments for `from_pretrained`: the user's `init_kwargs`, the k-bit flags as a
    `quantization_config`, `use_safetensors=True` (no pickled weights) and `trust_remote_code` as configured.

        >>> model_init_kwargs({"revision": "main"})
        {'revision': 'main', 'use_safetensors': True, 'trust_remote_code': False}
    """
    kwargs = dict(init_kwargs or {})
    if load_in_8bit:
        kwargs.setdefault("load_in_8bit", True)
    if load_in_4bit:
        kwargs.setdefault("load_in_4bit", True)
    kwargs = resolve_model_init_kwargs(kwargs, use_cpu=use_cpu)
    kwargs.setdefault("use_safetensors", True)
    kwargs["trust_remote_code"] = trust_remote_code
    return kwargs


def load_pretrained(auto_class, name_or_path: str, args=None, **extra):
    """`auto_class.from_pretrained(name_or_path)` with [`model_init_kwargs`] read from a trainer config `args`
    (`model_init_kwargs`, `load_in_8bit`, `load_in_4bit`, `trust_remote_code`, `use_cpu`); `extra` is added last
    (e.g. `num_labels`)."""
    kwargs = model_init_kwargs(
        getattr(args, "model_init_kwargs", None), getattr(args, "load_in_8bit", False),
        getattr(args, "load_in_4bit", False), getattr(args, "trust_remote_code", False),
        getattr(args, "use_cpu", False),
    )
    for key, value in extra.items():
        kwargs.setdefault(key, value)
    return auto_class.from_pretrained(resolve_model_path(name_or_path), **kwargs)


def load_token_classification_model(name_or_path: str | None, label_list: Sequence[str], **model_kwargs):
    """Loads a token-classification model with a fresh head for `label_list`, and its tokenizer.

    Args:
        name_or_path (`str` or `None`): a Hub id or folder; `None` or `"packaged:all-MiniLM-L6-v2"` is the packaged
            MiniLM (see [`resolve_model_path`]).
        label_list (`Sequence[str]`): label names in id order; written to the config as `id2label` / `label2id`, so
            the saved model loads in `pipeline("token-classification")` with readable labels.
        model_kwargs: passed to `AutoModelForTokenClassification.from_pretrained` (e.g. a `quantization_config`, or
            `load_in_8bit=True`, which becomes one). Weights are read from safetensors only; `trust_remote_code`
            stays off unless passed here.

    Returns:
        `(model, tokenizer)`.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = resolve_model_path(name_or_path)
    kwargs = resolve_model_init_kwargs(model_kwargs)
    kwargs.setdefault("use_safetensors", True)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(label_list), id2label=dict(enumerate(label_list)),
        label2id={name: i for i, name in enumerate(label_list)}, **kwargs,
    )
    return model, AutoTokenizer.from_pretrained(path)
