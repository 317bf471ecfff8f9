"""What kind of model a trainer was given: one table from architecture suffix to task, `AutoModel` class and
pipeline task, used everywhere the library needs to know it (trainer dispatch, model cards, merging, loading).

    >>> from transformers import BertConfig
    >>> kind_of(BertConfig(architectures=["BertForTokenClassification"])).pipeline_task
    'token-classification'
"""

from __future__ import annotations

from dataclasses import dataclass

from accelerate.utils import is_peft_model


__all__ = ["ModelKind", "MODEL_KINDS", "auto_class_for", "is_generative_model", "is_peft_model", "kind_for_task", "kind_of", "task_of"]


@dataclass(frozen=True)
class ModelKind:
    """One kind of model: the architecture-name suffix, the `transformers` auto class and the pipeline task."""

    suffix: str
    auto_class: str
    pipeline_task: str
    generative: bool = False


MODEL_KINDS = (
    ModelKind("ForTokenClassification", "AutoModelForTokenClassification", "token-classification"),
    ModelKind("ForCausalLM", "AutoModelForCausalLM", "text-generation", generative=True),
)
"""Kinds in lookup order. A new task type adds one row here and one trainer class."""


def _architecture(model_or_config) -> str:
    """The architecture name of a model (unwrapping PEFT), a config (`architectures[0]`), or a name/path."""
    if isinstance(model_or_config, str):
        from transformers import AutoConfig

        model_or_config = AutoConfig.from_pretrained(model_or_config)
    if hasattr(model_or_config, "architectures") and not hasattr(model_or_config, "forward"):
        return (model_or_config.architectures or [""])[0]
    base = model_or_config.get_base_model() if hasattr(model_or_config, "get_base_model") else model_or_config
    return type(base).__name__


def kind_of(model_or_config, default: ModelKind | None = MODEL_KINDS[0]) -> ModelKind | None:
    """The [`ModelKind`] of a model, config or name/path; `default` when no suffix matches."""
    architecture = _architecture(model_or_config)
    return next((kind for kind in MODEL_KINDS if architecture.endswith(kind.suffix)), default)


def is_generative_model(model_or_config) -> bool:
    """True for causal LMs (given as a model, possibly PEFT-wrapped, a config, or a name/path)."""
    kind = kind_of(model_or_config, default=None)
    return kind is not None and kind.generative


def auto_class_for(model_or_config):
    """The `transformers.AutoModelFor...` class for the model's kind (token classification when unknown)."""
    import transformers

    return getattr(transformers, kind_of(model_or_config).auto_class)


def task_of(model_or_config) -> str:
    """The `pipeline(...)` task of the model's kind (`"token-classification"` when unknown)."""
    return kind_of(model_or_config).pipeline_task


def kind_for_task(task: str) -> ModelKind:
    """The [`ModelKind`] whose pipeline task is `task`."""
    for kind in MODEL_KINDS:
        if kind.pipeline_task == task:
            return kind
    raise ValueError(f"Unknown model kind {task!r}; known: {[k.pipeline_task for k in MODEL_KINDS]}.")
