"""8-bit and 4-bit backbones through bitsandbytes: the `BitsAndBytesConfig`, a support check that says why a setup
cannot work, and k-bit preparation before PEFT.

Only the backbone is quantized: the task head (`classifier` of a token classifier, `score`, `lm_head`) stays in full
precision, because it is new and must train (PEFT cannot make an int8 head trainable). A quantized backbone
cannot be fully fine-tuned: train adapters on it (LoRA, Dettmers et al., 2023, "QLoRA").

    >>> config = quantization_config(load_in_8bit=True)
    >>> config.load_in_8bit, config.llm_int8_skip_modules
    (True, ['classifier', 'score', 'lm_head'])
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


HEAD_MODULES = ("classifier", "score", "lm_head")
"""Modules kept out of quantization: task heads that are trained (token classifiers, sequence scorers, LM heads)."""


def check_quantization_support(load_in_8bit: bool = False, load_in_4bit: bool = False, use_cpu: bool = False) -> None:
    """Raises if a k-bit backbone cannot work here, saying why and what to do.

    bitsandbytes (>= 0.45) runs 8-bit and 4-bit layers on CUDA, and on CPU when the CPU supports AVX512
    (torch reports its capability as `AVX512`).

    Args:
        load_in_8bit (`bool`, defaults to `False`): 8-bit (LLM.int8) linear layers.
        load_in_4bit (`bool`, defaults to `False`): 4-bit (NF4) linear layers.
        use_cpu (`bool`, defaults to `False`): the run is forced on CPU even if a GPU is present.

    Raises:
        `ValueError`: both flags set. `ImportError`: bitsandbytes missing. `RuntimeError`: no CUDA and a CPU
        without AVX512.
    """
    if load_in_8bit and load_in_4bit:
        raise ValueError("load_in_8bit and load_in_4bit are both set: choose one (8-bit is closer to fp32 quality).")
    if not (load_in_8bit or load_in_4bit):
        return
    flag = "--load_in_8bit" if load_in_8bit else "--load_in_4bit"
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(f"{flag} needs bitsandbytes, which is not installed. Fix: `pip install bitsandbytes`.")
    if torch.cuda.is_available() and not use_cpu:
        return
    capability = torch.backends.cpu.get_cpu_capability()
    if "AVX512" not in capability:
        raise RuntimeError(
            f"{flag}: no CUDA GPU is in use and this CPU's capability is {capability!r}, but bitsandbytes' CPU "
            "kernels need AVX512. Fix: run on a CUDA GPU, or drop the flag and train in full precision."
        )


def quantization_config(
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    skip_modules: Sequence[str] = HEAD_MODULES,
    bnb_4bit_quant_type: str = "nf4",
    compute_dtype: torch.dtype = torch.float32,
    double_quant: bool = True,
):
    """Builds the `BitsAndBytesConfig` for `from_pretrained(..., quantization_config=...)`, or `None` for full precision.

    Args:
        load_in_8bit (`bool`, defaults to `False`): LLM.int8 linear layers (Dettmers et al., 2022).
        load_in_4bit (`bool`, defaults to `False`): 4-bit layers with double quantization (Dettmers et al., 2023).
        skip_modules (`Sequence[str]`, defaults to `HEAD_MODULES`): module names kept in full precision. Setting it
            replaces transformers' default skip list, so it must contain the head.
        bnb_4bit_quant_type (`str`, defaults to `"nf4"`): `"nf4"` (QLoRA's choice) or `"fp4"`.
        compute_dtype (`torch.dtype`, defaults to `torch.float32`): dtype of 4-bit matmuls; `torch.bfloat16` is
            faster on recent GPUs.
        double_quant (`bool`, defaults to `True`): 4-bit only: quantize the quantization constants too (QLoRA).

    Returns:
        `transformers.BitsAndBytesConfig` or `None`.
    """
    if load_in_8bit and load_in_4bit:
        raise ValueError("load_in_8bit and load_in_4bit are both set: choose one (8-bit is closer to fp32 quality).")
    if not (load_in_8bit or load_in_4bit):
        return None
    from transformers import BitsAndBytesConfig

    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=bnb_4bit_quant_type, bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=list(skip_modules),
    )


def resolve_model_init_kwargs(kwargs: Mapping[str, Any] | None, use_cpu: bool = False) -> dict[str, Any]:
    """Turns `load_in_8bit` / `load_in_4bit` keys of `model_init_kwargs` into a `quantization_config`.

    transformers 5 no longer accepts these keys in `from_pretrained`; a YAML or CLI user can still write
    `model_init_kwargs: {load_in_8bit: true}`. Support is checked first (see [`check_quantization_support`]).
    """
    kwargs = dict(kwargs or {})
    load_in_8bit, load_in_4bit = bool(kwargs.pop("load_in_8bit", False)), bool(kwargs.pop("load_in_4bit", False))
    if load_in_8bit or load_in_4bit:
        if "quantization_config" in kwargs:
            raise ValueError("model_init_kwargs has both load_in_8bit/4bit and quantization_config: keep one.")
        check_quantization_support(load_in_8bit, load_in_4bit, use_cpu=use_cpu)
        kwargs["quantization_config"] = quantization_config(load_in_8bit, load_in_4bit)
        if kbit_device_map(use_cpu) is not None:
            kwargs.setdefault("device_map", kbit_device_map(use_cpu))
    return kwargs


def kbit_device_map(use_cpu: bool = False) -> dict[str, int] | None:
    """`{"": local_rank}` on CUDA: each process loads its own k-bit copy on its own GPU (k-bit weights cannot be
    moved with `.to()` after loading); `None` on CPU."""
    if use_cpu or not torch.cuda.is_available():
        return None
    from accelerate import PartialState

    return {"": PartialState().local_process_index}


def is_quantized(model: nn.Module) -> bool:
    """Whether `model` (or the model inside a PEFT wrapper) was loaded in 8-bit or 4-bit."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    import bitsandbytes as bnb

    return any(isinstance(module, (bnb.nn.Linear8bitLt, bnb.nn.Linear4bit)) for module in model.modules())


def quantization_name(model: nn.Module) -> str | None:
    """`"8-bit"`, `"4-bit"`, `"k-bit (bitsandbytes)"` (quantized, bit width not recorded) or `None` (full precision),
    from the layers of `model` and the `quantization_config` it was loaded with."""
    if not is_quantized(model):
        return None
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    return "8-bit" if config.get("load_in_8bit") else "4-bit" if config.get("load_in_4bit") else "k-bit (bitsandbytes)"


def prepare_quantized_model(model: nn.Module, peft_config=None, gradient_checkpointing: bool = False) -> nn.Module:
    """Prepares a k-bit backbone for adapter training (`peft.prepare_model_for_kbit_training`: freezes the base,
    casts norms and the head to fp32, enables input gradients); full-precision models pass through unchanged.

    Raises:
        `ValueError`: a quantized model without `peft_config` (int8/4-bit weights cannot be trained directly).
    """
    if not is_quantized(model):
        return model
    if peft_config is None:
        raise ValueError(
            "The model is loaded in 8-bit/4-bit, whose weights cannot be trained directly. Fix: pass a peft_config "
            "(e.g. --peft lora in the recipes), or load the model in full precision."
        )
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
