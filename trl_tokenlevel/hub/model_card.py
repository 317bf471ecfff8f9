"""Model cards for models trained with token-level RL: metadata (YAML front matter) and a readable body.

The card records what a reader needs to reuse or reproduce the model: base model, dataset, task, PEFT method,
quantization, reward functions with their weights, the key config values, evaluation metrics, how to load it, and
the tags `trl`, `trl-tokenlevel`, `token-level-rl` (plus `peft` when adapters were trained).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models.kinds import is_peft_model, task_of
from ..models.quantization import is_quantized
from ..rewards.common import reward_name
from .export import training_args_dict


BASE_TAGS = ("trl", "trl-tokenlevel", "token-level-rl")
KEY_CONFIG_FIELDS = (
    "num_samples", "temperature", "baseline", "whiten_advantages", "rl_coef", "ce_coef", "kl_coef", "target_kl",
    "entropy_coef", "rl_start_step", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "seed", "load_in_8bit", "load_in_4bit", "merge_adapters",
)
GENERATION_CONFIG_FIELDS = (
    "num_samples", "temperature", "top_p", "top_k", "max_new_tokens", "max_prompt_length", "advantage_estimator",
    "group_baseline", "sequence_reward_placement", "gamma", "lam", "num_ppo_epochs", "cliprange", "vf_coef",
    "whiten_advantages", "rl_coef", "kl_coef", "kl_placement", "target_kl", "entropy_coef", "learning_rate",
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "lr_scheduler_type",
    "seed", "load_in_8bit", "load_in_4bit", "merge_adapters",
)
"""Key values of the generation path (`trl_tokenlevel/generation/`), which has no label baseline or CE term."""
METHOD = {
    "token-classification": "labels are sampled per token and rewarded per token, with a supervised cross-entropy "
    "term alongside.",
    "text-generation": "completions are sampled for each prompt and rewarded per token (or per completion), with a "
    "clipped policy-gradient loss over the completion tokens.",
}


def _usage(task: str, repo_id: str, adapter_only: bool, id2label: Mapping[int, str] | None = None) -> str:
    if task == "text-generation":
        code = (
            'from transformers import pipeline\n\n'
            f'generator = pipeline("text-generation", model="{repo_id}")\n'
            'print(generator("Hello,", max_new_tokens=20)[0]["generated_text"])'
        )
    else:
        # An adapter's base config lacks the task labels: pass them, or the head would be rebuilt with 2 labels.
        labels = f", model_kwargs={{'id2label': {dict(id2label)!r}}}" if adapter_only and id2label else ""
        code = (
            'from transformers import pipeline\n\n'
            f'ner = pipeline("token-classification", model="{repo_id}", aggregation_strategy="simple"{labels})\n'
            'print(ner("Angela Merkel visited Paris."))'
        )
    text = f"```python\n{code}\n```\n"
    if adapter_only:
        text += (
            "\nThis repository holds a PEFT adapter: `pip install peft`; the pipeline then loads the base model named "
            "in `adapter_config.json` and applies the adapter.\n"
        )
    return text


def build_model_card(
    *,
    model_name: str,
    base_model: str | None,
    task: str,
    reward_functions: Sequence[tuple[str, float]],
    config_values: Mapping[str, Any],
    eval_metrics: Mapping[str, float] | None = None,
    dataset: str | None = None,
    peft_method: str | None = None,
    quantization: str | None = None,
    adapter_only: bool = False,
    merged: bool = False,
    repo_id: str | None = None,
    tags: Sequence[str] = (),
    license: str | None = None,
    id2label: Mapping[int, str] | None = None,
):
    """Builds the model card.

    Args:
        model_name (`str`): title of the card.
        base_model (`str`, *optional*): Hub id or path of the starting model (metadata `base_model` when it is a
            Hub id; local paths are mentioned in the body only).
        task (`str`): pipeline tag, `"token-classification"` or `"text-generation"`.
        reward_functions (`Sequence[tuple[str, float]]`): `(name, weight)` of every reward.
        config_values (`Mapping[str, Any]`): key training values, shown as a table.
        eval_metrics (`Mapping[str, float]`, *optional*): final evaluation metrics (`eval_f1`, `test_f1`, ...).
        dataset (`str`, *optional*): dataset name or Hub id.
        peft_method (`str`, *optional*): e.g. `"LORA"`; adds the `peft` tag.
        quantization (`str`, *optional*): `"8-bit"` or `"4-bit"` if the backbone was trained quantized.
        adapter_only (`bool`): the folder holds an adapter (`library_name: peft`).
        merged (`bool`): adapters were merged into the weights.
        repo_id (`str`, *optional*): used in the loading snippet; defaults to `model_name`.
        tags (`Sequence[str]`): extra tags.
        license (`str`, *optional*): license identifier.
        id2label (`Mapping[int, str]`, *optional*): label names, put in the adapter-only loading snippet.

    Returns:
        `huggingface_hub.ModelCard`: `card.save(path)` writes `README.md`; `card.data.to_dict()` is the metadata.
    """
    from huggingface_hub import ModelCard, ModelCardData

    all_tags = list(dict.fromkeys([*BASE_TAGS, *(["peft"] if peft_method else []), *tags]))
    is_hub_id = bool(base_model) and not str(base_model).startswith(("/", ".", "~")) and str(base_model).count("/") <= 1
    metrics = {k: float(v) for k, v in (eval_metrics or {}).items() if isinstance(v, (int, float))}
    data = ModelCardData(
        library_name="peft" if adapter_only else "transformers",
        pipeline_tag=task,
        tags=all_tags,
        base_model=base_model if is_hub_id else None,
        datasets=[dataset] if dataset else None,
        license=license,
        model_name=model_name,
        trl_tokenlevel={
            "rewards": [{"name": name, "weight": float(weight)} for name, weight in reward_functions],
            "peft_method": peft_method,
            "merged_adapters": merged,
            "quantization": quantization,
            "config": {k: config_values[k] for k in config_values},
            "metrics": metrics,
        },
    )
    rewards = "\n".join(f"| `{name}` | {float(weight):g} |" for name, weight in reward_functions)
    config_rows = "\n".join(f"| `{k}` | {v} |" for k, v in config_values.items())
    metric_rows = "\n".join(f"| `{k}` | {v:.4f} |" for k, v in metrics.items()) or "| (none recorded) | |"
    adaptation = peft_method or "full fine-tuning"
    if peft_method and merged:
        adaptation += " (adapters merged into the weights: loads without PEFT)"
    body = f"""
# {model_name}

A {task} model trained with token-level reinforcement learning (`trl-tokenlevel`, a plugin for TRL):
{METHOD.get(task, METHOD["token-classification"])}

- **Base model:** `{base_model or "unknown"}`
- **Dataset:** {dataset or "not recorded"}
- **Task:** {task}
- **Adaptation:** {adaptation}
- **Quantized backbone during training:** {quantization or "no (full precision)"}

## How to load

{_usage(task, repo_id or model_name, adapter_only, id2label)}
## Rewards

| reward | weight |
|---|---|
{rewards}

## Training configuration

| field | value |
|---|---|
{config_rows}

## Evaluation

| metric | value |
|---|---|
{metric_rows}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def model_card_from_trainer(trainer, model_name: str, dataset: str | None = None, merged: bool = False, **kwargs):
    """[`build_model_card`] filled from a [`TokenLevelRLTrainer`] (rewards, weights, config, last eval metrics)."""

    model = trainer.accelerator.unwrap_model(trainer.model)
    peft_method = base_model = None
    if is_peft_model(model):
        peft_config = model.peft_config[model.active_adapter]
        peft_method, base_model = str(peft_config.peft_type.value), peft_config.base_model_name_or_path
    base_model = base_model or getattr(model.config, "_name_or_path", None) or None
    args = trainer.args
    quantization = "8-bit" if getattr(args, "load_in_8bit", False) else "4-bit" if getattr(args, "load_in_4bit", False) else None
    if quantization is None:
        quantization = "k-bit (bitsandbytes)" if is_quantized(model) else None
    metrics: dict[str, float] = {}
    for entry in trainer.state.log_history:  # last value of every eval_/test_ metric
        metrics.update({k: v for k, v in entry.items() if k.startswith(("eval_", "test_")) and "runtime" not in k
                        and "per_second" not in k})
    task = task_of(model)
    args_dict = training_args_dict(args)  # JSON-safe values (enums as strings)
    fields = GENERATION_CONFIG_FIELDS if task == "text-generation" else KEY_CONFIG_FIELDS
    config_values = {k: args_dict[k] for k in fields if k in args_dict}
    config_values["num_processes"] = trainer.accelerator.num_processes
    merged = merged and peft_method is not None  # `merge_adapters` without adapters saves the model as it is
    # a causal LM's config carries the default LABEL_0/LABEL_1 id2label: not task labels
    id2label = getattr(model.config, "id2label", None) if task == "token-classification" else None
    return build_model_card(
        model_name=model_name, base_model=base_model, task=task, dataset=dataset,
        reward_functions=list(zip((reward_name(f) for f in trainer.reward_funcs), trainer.reward_weights)),
        config_values=config_values, eval_metrics=metrics, peft_method=peft_method, quantization=quantization,
        adapter_only=peft_method is not None and not merged, merged=merged,
        id2label={int(k): v for k, v in (id2label or {}).items()}, **kwargs,
    )
