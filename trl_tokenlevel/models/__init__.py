"""Models: what kind a model is, loading by name (safe defaults, k-bit backbones), the packaged offline weights and
the PEFT presets."""

from .kinds import MODEL_KINDS, ModelKind, auto_class_for, is_generative_model, is_peft_model, kind_for_task, kind_of, task_of
from .loading import load_pretrained, load_token_classification_model, model_init_kwargs
from .packaged import (
    DEFAULT_NER_BACKBONE,
    MINILM_HUB_ID,
    SMOLLM2_HUB_ID,
    hub_id_for,
    link_packaged_into_hub_cache,
    load_smollm2,
    make_saveable,
    packaged_gguf_file,
    packaged_minilm_path,
    resolve_model_path,
    smollm2_directory,
)


__all__ = [
    "DEFAULT_NER_BACKBONE",
    "MINILM_HUB_ID",
    "SMOLLM2_HUB_ID",
    "MODEL_KINDS",
    "ModelKind",
    "auto_class_for",
    "is_generative_model",
    "hub_id_for",
    "is_peft_model",
    "kind_for_task",
    "kind_of",
    "link_packaged_into_hub_cache",
    "load_pretrained",
    "load_smollm2",
    "load_token_classification_model",
    "make_saveable",
    "model_init_kwargs",
    "packaged_gguf_file",
    "packaged_minilm_path",
    "resolve_model_path",
    "smollm2_directory",
    "task_of",
]
