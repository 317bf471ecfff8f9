"""[`TokenLevelModelConfig`]: TRL's `ModelConfig` with this library's parameter-efficient presets, the third dataclass
of every recipe's `TrlParser((ScriptArguments, <training config>, TokenLevelModelConfig))`, as in TRL's scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
                self.load_in_8bit, self.load_in_4bit, bnb_4bit_quant_type=self.bnb_4bit_quant_type, **extra
            )
            if kbit_device_map(use_cpu) is not None:  # CUDA: each process loads its own k-bit copy on its own GPU
                kwargs["device_map"] = kbit_device_map(use_cpu)
        return kwargs

    def quantization_kwargs(self) -> dict[str, bool]:
        """`{"load_in_8bit": ..., "load_in_4bit": ...}` for the loaders that take the two flags."""
        return {"load_in_8bit": self.load_in_8bit, "load_in_4bit": self.load_in_4bit}

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

    def prepare_peft(self, model, task_type: str | None, head_module_names=HEAD_MODULE_NAMES):
        """`(model, peft_config)` for the trainer: BitFit is applied in place (`peft_config` `None`), `none` passes
        the model through, every other method returns its [`peft_config`] for the trainer to wrap the model with."""
        if self.peft == "bitfit":
            return apply_bitfit(model, head_module_names=head_module_names), None
        return model, self.peft_config(model.config.model_type, task_type)
