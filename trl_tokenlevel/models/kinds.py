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
    encoder_decoder: bool = False
    """Match by `config.is_encoder_decoder` plus the auto class's own model table or the suffix, not by the suffix
    alone: Marian's class is `MarianMTModel`, and vision-language `...ForConditionalGeneration` are decoder-only."""


MODEL_KINDS = (
    ModelKind("ForTokenClassification", "AutoModelForTokenClassification", "token-classification"),
    ModelKind("ForCausalLM", "AutoModelForCausalLM", "text-generation", generative=True),
    ModelKind("ForQuestionAnswering", "AutoModelForQuestionAnswering", "question-answering"),
    ModelKind("ForSequenceClassification", "AutoModelForSequenceClassification", "text-classification"),
    # last, so T5ForTokenClassification etc. keep their rows; transformers 5 removed the `text2text-generation`
    # pipeline, the name stays the Hub's pipeline tag
    ModelKind("ForConditionalGeneration", "AutoModelForSeq2SeqLM", "text2text-generation", generative=True,
              encoder_decoder=True),
)
"""Kinds in lookup order. A new task type adds one row here and one trainer class."""


def _architecture(model_or_config) -> tuple[str, bool]:
    """The architecture name of a model (unwrapping PEFT), a config (`architectures[0]`), or a name/path, and
    whether its config is encoder-decoder (`config.is_encoder_decoder`)."""
    if isinstance(model_or_config, str):
        from transformers import AutoConfig

        model_or_config = AutoConfig.from_pretrained(model_or_config)
    if hasattr(model_or_config, "architectures") and not hasattr(model_or_config, "forward"):
        return (model_or_config.architectures or [""])[0], bool(getattr(model_or_config, "is_encoder_decoder", False))
    base = model_or_config.get_base_model() if hasattr(model_or_config, "get_base_model") else model_or_config
    return type(base).__name__, bool(getattr(getattr(base, "config", None), "is_encoder_decoder", False))


def _matches(kind: ModelKind, architecture: str, is_encoder_decoder: bool) -> bool:
    if not kind.encoder_decoder:
        return architecture.endswith(kind.suffix)
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

    # the classes AutoModelForSeq2SeqLM builds (T5, BART, Marian, mBART, M2M100/NLLB, Pegasus, ...)
    known = MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES.values()
    return is_encoder_decoder and (architecture in known or architecture.endswith(kind.suffix))


def kind_of(model_or_config, default: ModelKind | None = MODEL_KINDS[0]) -> ModelKind | None:
    """The [`ModelKind`] of a model, config or name/path; `default` when no row matches (rows in order)."""
    architecture, is_encoder_decoder = _architecture(model_or_config)
    return next((kind for kind in MODEL_KINDS if _matches(kind, architecture, is_encoder_decoder)), default)


def is_generative_model(model_or_config) -> bool:
    """True for causal and encoder-decoder LMs (given as a model, possibly PEFT-wrapped, a config, or a name/path)."""
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
