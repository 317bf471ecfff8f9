"""Models: what kind a model is, loading by name (safe defaults, k-bit backbones), the packaged offline weights and
the PEFT presets."""

from .kinds import MODEL_KINDS, ModelKind, auto_class_for, is_generative_model, is_peft_model, kind_for_task, kind_of, task_of
from .loading import load_pretrained, load_token_classification_model, model_init_kwargs
from .packaged import (
    DEFAULT_NER_BACKBONE,
    load_smollm2,
    make_saveable,
    packaged_minilm_path,
    resolve_model_path,
    smollm2_directory,
)


__all__ = [
    "DEFAULT_NER_BACKBONE",
    "MODEL_KINDS",
    "ModelKind",
    "auto_class_for",
    "is_generative_model",
    "is_peft_model",
    "kind_for_task",
    "kind_of",
    "load_pretrained",
    "load_smollm2",
    "load_token_classification_model",
    "make_saveable",
    "model_init_kwargs",
    "packaged_minilm_path",
    "resolve_model_path",
    "smollm2_directory",
    "task_of",
]
