"""[`TokenLevelModelConfig`]: TRL's `ModelConfig` with this library's parameter-efficient presets, the third dataclass
of every recipe's `TrlParser((ScriptArguments, <training config>, TokenLevelModelConfig))`, as in TRL's scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from trl import ModelConfig

from .models.peft_presets import HEAD_MODULE_NAMES, PEFT_METHODS, apply_bitfit, get_peft_config
from .models.quantization import check_quantization_support, kbit_device_map, quantization_config


@dataclass
class TokenLevelModelConfig(ModelConfig):
    r"""
    TRL's [`~trl.ModelConfig`] (`model_name_or_path`, `model_revision`, `dtype`, `attn_implementation`, `use_peft`,
    `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`, `lora_modules_to_save`, `use_rslora`, `use_dora`,
    `load_in_8bit`, `load_in_4bit`, `bnb_4bit_quant_type`, `use_bnb_nested_quant`) plus the parameter-efficient methods
    of [`~trl_tokenlevel.models.peft_presets`]. The same flags as TRL's scripts, so `--use_peft --lora_r 16` or
    `--load_in_4bit` mean what a TRL user expects; `--peft ia3` (or `bitfit`, `ln_tuning`, `prompt_tuning`) picks
    another method. Without `--lora_target_modules`, the targets come from PEFT's table for the architecture, and the
    PEFT task type follows the model (token or sequence classification, causal or seq2seq LM), not `lora_task_type`.
    The quantized backbone keeps the task head in full precision (see
    [`~trl_tokenlevel.models.quantization.quantization_config`]).

    Parameters:
        peft (`str`, *optional*):
            One of `none`, `lora`, `bitfit`, `ia3`, `ln_tuning`, `prompt_tuning`. Unset or `none` with `use_peft`:
            `lora` (TRL's meaning of `--use_peft`); else `none`. Any method but `none` sets `use_peft`.
        num_virtual_tokens (`int`, *optional*, defaults to `10`):
            Prompt-tuning length (`peft=prompt_tuning`).

    Example:
        >>> args = TokenLevelModelConfig(model_name_or_path="sentence-transformers/all-MiniLM-L6-v2", use_peft=True)
        >>> args.peft, args.lora_r
        ('lora', 16)
        >>> TokenLevelModelConfig(peft="ia3").use_peft
        True
    """

    peft: str | None = field(
        default=None,
        metadata={
            "help": f"Parameter-efficient method: one of {list(PEFT_METHODS)}. Default: 'lora' with --use_peft, else "
            "'none'. Any method but 'none' turns use_peft on.",
        },
    )
    num_virtual_tokens: int = field(default=10, metadata={"help": "Prompt-tuning length (--peft prompt_tuning)."})
    use_bnb_nested_quant: bool = field(
        default=True,
        metadata={"help": "4-bit: quantize the quantization constants too (QLoRA's double quantization). TRL's "
                          "default is False; ours keeps QLoRA's."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.peft is None or (self.peft == "none" and self.use_peft):  # TRL's --use_peft means LoRA
            self.peft = "lora" if self.use_peft else "none"
        if self.peft not in PEFT_METHODS:
            raise ValueError(f"--peft {self.peft!r} is not a method this library prepares: choose one of {list(PEFT_METHODS)}.")
        self.use_peft = self.peft != "none"
        # ModelConfig turns a one-element list into its string; PEFT would then match it against whole module paths
        if isinstance(self.lora_target_modules, str) and self.lora_target_modules != "all-linear":
            self.lora_target_modules = [self.lora_target_modules]
        unread = {"lora_target_parameters": self.lora_target_parameters, "bnb_4bit_quant_storage": self.bnb_4bit_quant_storage}
        for name, value in unread.items():
            if value is not None:
                raise ValueError(f"--{name} is not supported by this library's model preparation: drop it.")

    def from_pretrained_kwargs(self, skip_modules: list[str] | None = None, use_cpu: bool = False) -> dict[str, Any]:
        """Keyword arguments for `from_pretrained`: `revision`, `dtype`, `attn_implementation` when set, and a
        `quantization_config` for `--load_in_8bit` / `--load_in_4bit` (support checked first; `skip_modules` stay in
        full precision: the task head; on CUDA a `device_map` to this process's GPU)."""
        kwargs: dict[str, Any] = {"revision": self.model_revision, "dtype": self.dtype,
                                  "attn_implementation": self.attn_implementation}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if self.load_in_8bit or self.load_in_4bit:
            check_quantization_support(self.load_in_8bit, self.load_in_4bit, use_cpu=use_cpu)
            extra = {"skip_modules": skip_modules} if skip_modules is not None else {}
            kwargs["quantization_config"] = quantization_config(
                self.load_in_8bit, self.load_in_4bit, bnb_4bit_quant_type=self.bnb_4bit_quant_type,
                compute_dtype=self.torch_dtype(), double_quant=self.use_bnb_nested_quant, **extra,
            )
            if kbit_device_map(use_cpu) is not None:  # CUDA: each process loads its own k-bit copy on its own GPU
                kwargs["device_map"] = kbit_device_map(use_cpu)
        return kwargs

    def torch_dtype(self) -> torch.dtype:
        """`dtype` as a `torch.dtype` (`float32` for unset or `auto`): the 4-bit compute dtype, as in TRL."""
        return torch.float32 if self.dtype in (None, "auto") else getattr(torch, self.dtype)

    def peft_config(self, model_type: str, task_type: str | None):
        """The PEFT config of `peft` for an architecture (`None` for `none` and `bitfit`): LoRA with this config's
        rank, alpha, dropout, targets (PEFT's table when unset), rsLoRA/DoRA and modules to save."""
        config = get_peft_config(
            self.peft, model_type, task_type=task_type, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout, lora_target_modules=self.lora_target_modules,
            num_virtual_tokens=self.num_virtual_tokens,
        )
        if config is not None and self.peft == "lora":
            config.use_rslora, config.use_dora = self.use_rslora, self.use_dora
        if config is not None and self.lora_modules_to_save:
            config.modules_to_save = sorted(set(config.modules_to_save or []) | set(self.lora_modules_to_save))
        return config

    def load_generation_model(self, use_cpu: bool = False):
        """`(model, tokenizer)` for the generation recipes: the packaged SmolLM2-135M-Instruct when no
        `model_name_or_path` is given (a GGUF file dequantized on load: only `dtype` applies, the other loading flags
        are refused), else the causal or encoder-decoder LM by name with [`from_pretrained_kwargs`]. A tokenizer
        without a pad token pads with EOS."""
        from transformers import AutoTokenizer

        from .models import auto_class_for, load_pretrained, load_smollm2, resolve_model_path

        if self.model_name_or_path is None:
            unsupported = [flag for flag, on in (("--load_in_8bit", self.load_in_8bit), ("--load_in_4bit", self.load_in_4bit),
                                                 ("--attn_implementation", self.attn_implementation is not None),
                                                 ("--model_revision", self.model_revision not in (None, "main"))) if on]
            if unsupported:
                raise ValueError(f"{', '.join(unsupported)} cannot apply to the packaged SmolLM2 (a GGUF file read from "
                                 "disk): pass --model_name_or_path with a Hub id or folder.")
            return load_smollm2(dtype=self.torch_dtype())
        path = resolve_model_path(self.model_name_or_path)
        model = load_pretrained(auto_class_for(path), self.model_name_or_path, None, **self.from_pretrained_kwargs(use_cpu=use_cpu))
        tokenizer = AutoTokenizer.from_pretrained(path, revision=self.model_revision)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def prepare_peft(self, model, task_type: str | None, head_module_names=HEAD_MODULE_NAMES, methods=PEFT_METHODS):
        """`(model, peft_config)` for the trainer: BitFit is applied in place (`peft_config` `None`), `none` passes
        the model through, every other method returns its [`peft_config`] for the trainer to wrap the model with.
        `methods`: the ones the caller supports (others are refused by name)."""
        if self.peft not in methods:
            raise ValueError(f"--peft {self.peft} is not supported here: choose one of {list(methods)}.")
        if self.peft == "bitfit":
            return apply_bitfit(model, head_module_names=head_module_names), None
        return model, self.peft_config(model.config.model_type, task_type)
