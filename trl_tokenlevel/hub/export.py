"""Export: merge PEFT adapters into a plain `transformers` model ("model fusion"), and save training arguments as JSON.

A merged output needs neither PEFT nor this package to load: `AutoModelFor...from_pretrained(path)` or
`pipeline(task, model=path)`. The adapter-only output is smaller but needs PEFT and the base model.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from torch import nn

from ..models.kinds import auto_class_for, is_peft_model
from ..models.loading import load_pretrained
from ..models.packaged import packaged_gguf_file, resolve_model_path
from ..models.quantization import is_quantized


TRAINING_ARGS_JSON = "training_args.json"
ADAPTER_SUBFOLDER = "adapter"
"""With `merge_adapters`, the trainer saves the merged model at the top of the output folder and the adapter here."""


def merge_adapters(model: nn.Module, in_place: bool = False) -> nn.Module:
    """Returns a plain `transformers` model whose weights include the adapters (LoRA, IA3, ...) and whose trained
    `modules_to_save` (the classification head) replace the base ones.

    Args:
        model (`peft.PeftModel`): the trained model. A plain model is returned as is.
        in_place (`bool`, defaults to `False`): merge into `model` itself (no copy, but `model` is no longer a
            `PeftModel` afterwards). By default a copy is merged and the trained model is left untouched.

    Raises:
        `ValueError`: for a model loaded in 8-bit/4-bit (merging into int8/NF4 weights rounds the update away)
            and for prompt tuning (nothing to merge): use [`merge_adapter_checkpoint`] or keep the adapter.
    """
    if not is_peft_model(model):
        return model
    if is_quantized(model):
        raise ValueError(
            "Merging adapters into an 8-bit/4-bit backbone would round the update into the quantized weights. Fix: "
            "save the adapter and merge it into the full-precision base with "
            "`trl_tokenlevel.export.merge_adapter_checkpoint(adapter_dir, output_dir)`."
        )
    if model.peft_config[model.active_adapter].is_prompt_learning:
        raise ValueError(
            "Prompt tuning adds virtual tokens, which cannot be merged into the weights: save the adapter instead "
            "(leave merge_adapters off)."
        )
    target = model if in_place else copy.deepcopy(model)
    return target.merge_and_unload()


def merge_adapter_checkpoint(
    adapter_dir: str, output_dir: str, base_model: str | None = None, config=None, **load_kwargs
) -> str:
    """Loads a saved adapter on a full-precision copy of its base model, merges it and saves a plain model (with the
    tokenizer, if the adapter folder has one). This is the way to merge adapters trained on an 8-bit/4-bit backbone.

    Args:
        adapter_dir (`str`): a folder written by `save_pretrained` of a `PeftModel`.
        output_dir (`str`): where the merged model goes.
        base_model (`str`, *optional*): overrides `base_model_name_or_path` of the adapter config.
        config (`PretrainedConfig`, *optional*): the trained model's config (task labels); a `quantization_config`
            in it is dropped, so the base loads in full precision. Default: the base model's config.
        **load_kwargs: passed to the base model's `from_pretrained`.

    Returns:
        `str`: `output_dir`.
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, AutoTokenizer

    peft_config = PeftConfig.from_pretrained(adapter_dir)
    base_name = base_model or peft_config.base_model_name_or_path
    base_path = resolve_model_path(base_name)  # a packaged base's Hub id loads from the packaged copy, offline
    if config is None:
        config = AutoConfig.from_pretrained(
            adapter_dir if os.path.exists(f"{adapter_dir}/config.json") else base_path,
            **({"gguf_file": packaged_gguf_file(base_name)} if packaged_gguf_file(base_name) else {}),
        )
    else:
        config = copy.deepcopy(config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
    model_class = auto_class_for(config)
    base = load_pretrained(model_class, base_name, None, config=config, **load_kwargs)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(output_dir)
    try:
        AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(output_dir)
    except (OSError, ValueError):
        pass  # no tokenizer next to the adapter
    return output_dir


PEFT_TEMPLATE_MARK = "[More Information Needed]"


def finalize_adapter_folder(folder: str) -> str | None:
    """Makes an adapter folder written by PEFT's `save_pretrained` self-describing: `base_model_name_or_path` in
    `adapter_config.json` becomes the Hub id when the base is a packaged offline copy (a site-packages path means
    nothing on another machine), and PEFT's empty template `README.md` is removed (the trainer's model card replaces
    it at the final save). The packaged MiniLM is then linked into the local Hub cache, so the Hub id loads offline
    here ([`~trl_tokenlevel.models.link_packaged_into_hub_cache`]).

    Returns:
        `str` or `None`: the base model recorded in the folder, or `None` if `folder` holds no adapter.
    """
    from ..models.packaged import MINILM_HUB_ID, hub_id_for, link_packaged_into_hub_cache

    config_path = os.path.join(folder, "adapter_config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path, encoding="utf-8") as handle:
        adapter_config = json.load(handle)
    base = adapter_config.get("base_model_name_or_path")
    hub_id = hub_id_for(base)
    if hub_id is not None and hub_id != base:
        adapter_config["base_model_name_or_path"] = base = hub_id
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(adapter_config, handle, indent=2, sort_keys=True)
    if base == MINILM_HUB_ID:
        link_packaged_into_hub_cache()
    readme = os.path.join(folder, "README.md")
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8") as handle:
            if PEFT_TEMPLATE_MARK in handle.read():
                os.remove(readme)
    return base


def training_args_dict(args: Any) -> dict[str, Any]:
    """The training arguments as a JSON-safe dict (secrets such as `hub_token` are removed by `to_dict`)."""
    return json.loads(json.dumps(args.to_dict(), default=str))


def save_training_args_json(args: Any, output_dir: str) -> str:
    """Writes `training_args.json`, a readable replacement for Trainer's pickled `training_args.bin`."""
    path = os.path.join(output_dir, TRAINING_ARGS_JSON)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(training_args_dict(args), handle, indent=2, sort_keys=True)
    return path
