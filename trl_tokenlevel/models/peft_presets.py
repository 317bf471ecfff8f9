"""Parameter-efficient fine-tuning presets for token classifiers: one name per method, targets per architecture.

Every method composes PEFT's own tuners except BitFit, which needs none: it only chooses which existing parameters
train (see [`apply_bitfit`] for why PEFT's BEFT is not used for it).

| method          | what trains (besides the classification head)               | reference               |
|-----------------|-------------------------------------------------------------|-------------------------|
| `none`          | every parameter (full fine-tuning)                          |                         |
| `lora`          | rank-`r` updates of the attention query/value projections   | Hu et al., 2021         |
| `bitfit`        | every existing bias term                                    | Ben Zaken et al., 2022  |
| `ia3`           | learned rescaling of keys, values and the FFN input         | Liu et al., 2022        |
| `ln_tuning`     | copies of the LayerNorm/RMSNorm layers                      | Zhao et al., 2023       |
| `prompt_tuning` | `num_virtual_tokens` embeddings prepended to every sequence | Lester et al., 2021     |

With `TaskType.TOKEN_CLS`, PEFT adds the `classifier`/`score` head to `modules_to_save`, so the new head always trains.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Optional

import torch
from peft import (
    IA3Config,
    LNTuningConfig,
    LoraConfig,
    PeftConfig,
    PromptTuningConfig,
    get_peft_model,
)
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING,
)


PEFT_METHODS = ("none", "lora", "bitfit", "ia3", "ln_tuning", "prompt_tuning")

# Default targets come from PEFT's own per-architecture tables. Where PEFT has no entry (DistilBERT for LoRA and IA3,
# encoders for LN tuning) the few rows below are ours; BERT-like models call their norms "LayerNorm".
_LORA_EXTRA = {
    "distilbert": ["q_lin", "v_lin"],
    # BART-style encoder-decoders PEFT has no row for (its `bart` row: q_proj, v_proj); m2m_100 covers NLLB
    **{model_type: ["q_proj", "v_proj"] for model_type in ("marian", "mbart", "m2m_100")},
}
_IA3_EXTRA = {"distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"])}
_LN_TUNING_ENCODERS = {
    **{model_type: ["LayerNorm"] for model_type in ("bert", "roberta", "xlm-roberta", "electra", "deberta-v2")},
    "distilbert": ["LayerNorm", "sa_layer_norm", "output_layer_norm"],
}
HEAD_MODULE_NAMES = ("classifier", "score")


def _defined(table: dict) -> dict:
    """PEFT's table without its `None` rows (architectures it has no default for)."""
    return {k: v for k, v in table.items() if v is not None}


def _lookup(table: dict, model_type: str, method: str, flag: str):
    if table.get(model_type) is None:
        known = sorted(k for k, v in table.items() if v is not None)
        raise ValueError(
            f"No default {method} target modules for model_type={model_type!r} (known: {known}). "
            f"Fix: pass {flag} with the module names to adapt (see `print(model)`)."
        )
    return list(table[model_type])


def default_target_modules(model_type: str) -> list[str]:
    """Default LoRA target modules (attention query and value projections, as in Hu et al., 2021).

    Args:
        model_type (`str`): `model.config.model_type`, e.g. `"bert"` or `"llama"`.

    Returns:
        `list[str]`: module-name suffixes for `LoraConfig.target_modules`.

    Raises:
        `ValueError`: for an unknown model type, telling the user to pass `--lora_target_modules`.
    """
    return list(_lookup({**_LORA_EXTRA, **_defined(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING)}, model_type, "LoRA", "--lora_target_modules"))


def get_peft_config(
    method: str,
    model_type: str,
    *,
    task_type: str = "TOKEN_CLS",
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    lora_target_modules: Optional[Sequence[str]] = None,
    num_virtual_tokens: int = 10,
    ia3_target_modules: Optional[Sequence[str]] = None,
    ia3_feedforward_modules: Optional[Sequence[str]] = None,
    ln_target_modules: Optional[Sequence[str]] = None,
) -> Optional[PeftConfig]:
    """Builds the PEFT config for one of [`PEFT_METHODS`].

    Args:
        method (`str`): One of `PEFT_METHODS`.
        model_type (`str`): `model.config.model_type`; selects the default target modules.
        task_type (`str`, *optional*, defaults to `"TOKEN_CLS"`): PEFT task type; `TOKEN_CLS` also trains the head.
        lora_r (`int`, *optional*, defaults to `8`): LoRA rank; more = more capacity and memory.
        lora_alpha (`int`, *optional*, defaults to `16`): LoRA scaling numerator (the update is scaled by `alpha/r`).
        lora_dropout (`float`, *optional*, defaults to `0.05`): Dropout on the LoRA input.
        lora_target_modules (`list[str]`, *optional*): Overrides [`default_target_modules`].
        num_virtual_tokens (`int`, *optional*, defaults to `10`): Prompt-tuning length; the model's logits grow by
            this many positions at the front (pad labels with [`pad_labels_for_virtual_tokens`]).
        ia3_target_modules (`list[str]`, *optional*): Overrides the IA3 targets of the architecture.
        ia3_feedforward_modules (`list[str]`, *optional*): Overrides the IA3 feed-forward modules (must be a subset
            of the targets).
        ln_target_modules (`list[str]`, *optional*): Overrides the normalization layers tuned by `ln_tuning`.

    Returns:
        `PeftConfig` or `None`: `None` for `"none"` (full fine-tuning) and for `"bitfit"` (use [`apply_bitfit`]).
    """
    if method not in PEFT_METHODS:
        raise ValueError(f"Unknown PEFT method {method!r}; choose one of {PEFT_METHODS}.")
    if method in ("none", "bitfit"):
        return None
    if method == "lora":
        if isinstance(lora_target_modules, str):  # PEFT's "all-linear" (or a regex over whole module paths)
            targets = lora_target_modules
        else:
            targets = list(lora_target_modules) if lora_target_modules else default_target_modules(model_type)
        return LoraConfig(
            task_type=task_type, r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets
        )
    if method == "ia3":
        if ia3_target_modules:
            targets, feedforward = list(ia3_target_modules), list(ia3_feedforward_modules or [])
        else:
            targets_table = {**{k: v[0] for k, v in _IA3_EXTRA.items()}, **_defined(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING)}
            feedforward_table = {**{k: v[1] for k, v in _IA3_EXTRA.items()}, **_defined(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING)}
            targets = _lookup(targets_table, model_type, "IA3", "--ia3_target_modules")
            feedforward = ia3_feedforward_modules
            if feedforward is None:
                feedforward = feedforward_table.get(model_type) or []
        return IA3Config(task_type=task_type, target_modules=list(targets), feedforward_modules=list(feedforward))
    if method == "ln_tuning":
        table = {**_LN_TUNING_ENCODERS, **_defined(TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING)}
        targets = ln_target_modules or _lookup(table, model_type, "LN tuning", "--ln_target_modules")
        return LNTuningConfig(task_type=task_type, target_modules=list(targets))
    return PromptTuningConfig(task_type=task_type, num_virtual_tokens=num_virtual_tokens)


def apply_bitfit(model: torch.nn.Module, head_module_names: Sequence[str] = HEAD_MODULE_NAMES) -> torch.nn.Module:
    """BitFit (Ben Zaken et al., 2022): freezes every parameter except bias terms and the classification head.

    PEFT's BEFT is not used here: it adds a *new* zero-initialised bias to selected linear layers (by default only
    the attention value projection; arXiv:2509.15974), whereas BitFit trains *all existing* biases, LayerNorm biases
    included. The model stays a plain `transformers` model, so it saves and loads as usual.

    Args:
        model (`torch.nn.Module`): The model to modify in place.
        head_module_names (`list[str]`, *optional*, defaults to `("classifier", "score")`): Top-level modules that
            stay fully trainable (the freshly initialised head).

    Returns:
        `torch.nn.Module`: the same model.

    Raises:
        `ValueError`: if the model has no bias outside the head (e.g. Llama), where BitFit would train only the head.
    """
    num_biases = 0
    for name, parameter in model.named_parameters():
        in_head = name.split(".")[0] in head_module_names
        is_bias = name == "bias" or name.endswith(".bias")
        parameter.requires_grad_(in_head or is_bias)
        num_biases += is_bias and not in_head
    if num_biases == 0:
        raise ValueError(
            f"{type(model).__name__} has no bias terms outside {list(head_module_names)}, so BitFit would train only "
            "the head. Fix: use peft_method='lora' or 'ln_tuning' for this architecture."
        )
    return model


def prepare_peft(model: torch.nn.Module, method: str, **config_kwargs) -> tuple[torch.nn.Module, PeftConfig | None]:
    """Turns a PEFT method name into what a trainer takes: the model to pass and the `peft_config` to pass with it.

    The one place recipes and benchmarks choose between full fine-tuning, BitFit and PEFT's tuners.

    Args:
        model (`torch.nn.Module`): A `transformers` model (its `config.model_type` selects the targets).
        method (`str`): One of `PEFT_METHODS`.
        **config_kwargs: Passed to [`get_peft_config`] (`lora_r`, `lora_target_modules`, `task_type`, ...).

    Returns:
        `(model, peft_config)`: `(model, None)` for `"none"`; `(model with only biases and head trainable, None)` for
        `"bitfit"`; otherwise `(model, PeftConfig)`, which the trainer wraps with `peft.get_peft_model`.
    """
    if method == "bitfit":
        return apply_bitfit(model), None
    return model, get_peft_config(method, model.config.model_type, **config_kwargs)



def pad_labels_for_virtual_tokens(labels: torch.Tensor, num_virtual_tokens: int) -> torch.Tensor:
    """Prepends `-100` labels for prompt tuning's virtual tokens, so labels match logits of shape `(B, n + T, C)`.

    Args:
        labels (`torch.Tensor`): Labels of shape `(B, T)`.
        num_virtual_tokens (`int`): Number of virtual tokens the PEFT model prepends.

    Returns:
        `torch.Tensor`: labels of shape `(B, num_virtual_tokens + T)`.
    """
    padding = labels.new_full((labels.shape[0], num_virtual_tokens), -100)
    return torch.cat([padding, labels], dim=1)


def count_trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """Returns `(trainable, total)` parameter counts (shared tensors counted once)."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def log_trainable_parameters(model: torch.nn.Module, logger: logging.Logger) -> tuple[int, int]:
    """Logs `trainable params: ... || all params: ... || trainable%: ...` at INFO level and returns the counts."""
    trainable, total = count_trainable_parameters(model)
    logger.info(
        "trainable params: %s || all params: %s || trainable%%: %.4f",
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / max(total, 1),
    )
    return trainable, total
