"""Loading a model by name with the library's safe defaults: safetensors only, no remote code unless asked, and
`load_in_8bit` / `load_in_4bit` turned into a bitsandbytes config (checked first, never ignored)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .packaged import hub_id_for, make_saveable, packaged_gguf_file, resolve_model_path
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
    (`model_init_kwargs`, whose `load_in_8bit` / `load_in_4bit` keys become a bitsandbytes config,
    `trust_remote_code`, `use_cpu`); `extra` is added last (e.g. `num_labels`, or a recipe's
    [`~trl_tokenlevel.TokenLevelModelConfig.from_pretrained_kwargs`])."""
    kwargs = model_init_kwargs(
        getattr(args, "model_init_kwargs", None), trust_remote_code=getattr(args, "trust_remote_code", False),
        use_cpu=getattr(args, "use_cpu", False),
    )
    for key, value in extra.items():
        kwargs.setdefault(key, value)
    path = resolve_model_path(name_or_path)
    check_local_path(path)
    gguf_file = packaged_gguf_file(name_or_path)  # the packaged SmolLM2 is a GGUF file, dequantised on load
    if gguf_file is not None:
        kwargs.update(gguf_file=gguf_file, use_safetensors=None)
    try:
        model = auto_class.from_pretrained(path, **kwargs)
    except Exception as error:  # name the file for a damaged safetensors, instead of a bare header error
        if "safetensors" in type(error).__module__ or "HeaderTooLarge" in str(error) or "header" in str(error).lower():
            raise OSError(
                f"Could not read the weights in {path!r} ({error}): the safetensors file is damaged or truncated. Fix: "
                "re-download or re-save the model."
            ) from error
        raise
    if gguf_file is not None:
        make_saveable(model)
    record_hub_id(model, path)
    return model


def record_hub_id(model, path: str) -> None:
    """Names a packaged model by its Hub id in `model.config._name_or_path` (which PEFT copies into the adapter's
    `base_model_name_or_path` and the model card into `base_model`), not by its site-packages folder."""
    hub_id = hub_id_for(path)
    if hub_id is not None:
        model.config._name_or_path = hub_id


def check_local_path(path: str) -> None:
    """A name that looks like a local path (starts with `/`, `./`, `../` or `~`) must exist: otherwise the Hub
    client reports a confusing repo-id error."""
    if path.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(path)):
        raise FileNotFoundError(f"Model path {path!r} does not exist. Fix: check the path, or pass a Hub id.")


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
    record_hub_id(model, path)
    return model, AutoTokenizer.from_pretrained(path, revision=kwargs.get("revision"))
