"""Model cards for models trained with token-level RL: Hub metadata (YAML front matter) and a readable body.

The metadata holds what the Hub indexes: `base_model` (a Hub id; packaged offline copies are named by theirs),
`base_model_relation`, `license`, `library_name`, `pipeline_tag`, `datasets`, `tags` and a `model-index` with the
evaluation results (task, dataset, split, metric values), plus a `trl_tokenlevel` block (rewards and weights, PEFT
method, key config values, the schedule as it ran, all metrics, framework versions). The body adds a load snippet
that matches how the model was trained (`aggregation_strategy="first"` when only first sub-tokens were labelled;
the label names for an adapter, whose base config lacks them) and a citation block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.kinds import is_peft_model, task_of
from ..models.packaged import PACKAGED_HUB_IDS, hub_id_for
from ..models.quantization import quantization_name
from ..rewards.common import reward_name
from .export import training_args_dict


BASE_TAGS = ("trl", "trl-tokenlevel", "token-level-rl")
KEY_CONFIG_FIELDS = (
    "num_samples", "temperature", "baseline", "whiten_advantages", "rl_coef", "ce_coef", "kl_coef", "target_kl",
    "entropy_coef", "label_all_tokens", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "seed", "merge_adapters",
)
GENERATION_CONFIG_FIELDS = (
    "num_samples", "temperature", "top_p", "top_k", "max_new_tokens", "max_prompt_length", "advantage_estimator",
    "group_baseline", "sequence_reward_placement", "gamma", "lam", "num_ppo_epochs", "cliprange", "vf_coef",
    "whiten_advantages", "rl_coef", "kl_coef", "kl_placement", "target_kl", "entropy_coef", "learning_rate",
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "lr_scheduler_type",
    "seed", "merge_adapters",
)
"""Key values of the generation path (`trl_tokenlevel/generation/`), which has no label baseline or CE term."""
SCHEDULE_FIELDS = ("rl_coef_schedule", "ce_coef_schedule", "reward_weight_schedules", "constraints")
MODEL_INDEX_METRICS = (
    "f1", "precision", "recall", "accuracy", "token_accuracy", "macro_f1", "exact_match", "rouge1", "rouge2", "rougeL",
    "rougeLsum", "bleu", "chrf",
)
"""Headline metrics put in `model-index` (the rest, e.g. per-entity-type scores, stay in `trl_tokenlevel.metrics`)."""
SPLITS = {"eval": "validation", "test": "test", "predict": "test"}  # predict_: run_ner.py's name for test
KNOWN_LICENSES = {hub_id: "apache-2.0" for hub_id in PACKAGED_HUB_IDS}
"""Licences of the packaged bases (both Apache-2.0); a fine-tune inherits its base's licence unless told otherwise."""
METHOD = {
    "token-classification": "labels are sampled per token and rewarded per token, with a supervised cross-entropy "
    "term alongside.",
    "text-generation": "completions are sampled for each prompt and rewarded per token (or per completion), with a "
    "clipped policy-gradient loss over the completion tokens.",
    "text2text-generation": "an encoder-decoder model: decoder outputs are sampled for each input and rewarded per "
    "token (or per output), with a clipped policy-gradient loss over the decoder tokens.",
    "text-classification": "a label is sampled for each text and rewarded per example, with a supervised "
    "cross-entropy term alongside.",
    "question-answering": "answer spans (a start token, then an end token) are sampled in each window and rewarded "
    "with the span's word-overlap F1, with cross-entropy on the gold start and end alongside (as DCN+).",
}
CITATION = """```bibtex
@software{trl_tokenlevel,
    title   = {{trl-tokenlevel: token-level reinforcement learning for the Hugging Face stack}},
    note    = {A plugin for TRL; version %s},
    year    = {2026}
}

@misc{vonwerra2022trl,
    title        = {{TRL: Transformer Reinforcement Learning}},
    author       = {Leandro von Werra and Younes Belkada and Lewis Tunstall and Edward Beeching and Tristan Thrush and Nathan Lambert and Shengyi Huang and Kashif Rasul and Quentin Gallou{\\'e}dec},
    year         = 2020,
    journal      = {GitHub repository},
    publisher    = {GitHub},
    howpublished = {\\url{https://github.com/huggingface/trl}}
}
```
"""


def framework_versions() -> dict[str, str]:
    """Versions of the libraries that trained the model (`trl_tokenlevel`, TRL, Transformers, PEFT, PyTorch, ...)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("trl-tokenlevel", "trl", "transformers", "peft", "torch", "accelerate", "datasets", "tokenizers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def usage_snippet(task: str, repo_id: str, adapter_only: bool, id2label: Mapping[int, str] | None = None,
                  first_subtoken_only: bool = True) -> str:
    """Python code that loads the saved model as it was trained: `aggregation_strategy="first"` when only the first
    sub-token of each word was labelled (`"simple"` when every sub-token was); for an adapter, the label names, which
    its base model's config does not have (without them `pipeline` would rebuild a 2-label head)."""
    if task == "text2text-generation":  # transformers 5 removed the text2text-generation / translation pipelines
        auto = "AutoPeftModelForSeq2SeqLM" if adapter_only else "AutoModelForSeq2SeqLM"
        return "\n".join([
            "from transformers import AutoTokenizer" + ("\nfrom peft import " if adapter_only else ", ") + auto, "",
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
            f'model = {auto}.from_pretrained("{repo_id}")',
            'inputs = tokenizer(["A dog runs in the snow."], return_tensors="pt")',
            'print(tokenizer.batch_decode(model.generate(**inputs, max_new_tokens=40), skip_special_tokens=True))',
        ])
    if task == "text-classification":
        labels = ", model_kwargs={'id2label': id2label}" if adapter_only else ""
        lines = ["from transformers import pipeline", ""]
        lines += [f"id2label = {dict(id2label or {})!r}"] if adapter_only else []
        lines += [f'classifier = pipeline("text-classification", model="{repo_id}"{labels})',
                  'print(classifier("A gripping, beautifully shot film."))']
        return "\n".join(lines)
    if task == "question-answering":  # transformers 5 removed the question-answering pipeline
        auto = "AutoPeftModelForQuestionAnswering" if adapter_only else "AutoModelForQuestionAnswering"
        source = "peft" if adapter_only else "transformers"
        return "\n".join([
            f"from {source} import {auto}", "from transformers import AutoTokenizer",
            "from datasets import Dataset", "from trl_tokenlevel.question_answering import answer_questions", "",
            f'model = {auto}.from_pretrained("{repo_id}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
            'examples = Dataset.from_list([{"id": "1", "question": "Where is it?", "context": "The tower is in Paris."}])',
            "print(answer_questions(model, tokenizer, examples))",
        ])
    if task == "text-generation":
        lines = ["from transformers import pipeline", "",
                 f'generator = pipeline("text-generation", model="{repo_id}")',
                 'print(generator("Hello,", max_new_tokens=20)[0]["generated_text"])']
        if adapter_only:
            lines += ["", "from peft import AutoPeftModelForCausalLM", "",
                      f'model = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")']
        return "\n".join(lines)
    aggregation = "first" if first_subtoken_only else "simple"
    labels = f", model_kwargs={{'id2label': id2label}}" if adapter_only else ""
    lines = ["from transformers import pipeline", ""]
    if adapter_only:
        lines += [f"id2label = {dict(id2label or {})!r}"]
    lines += [f'ner = pipeline("token-classification", model="{repo_id}", aggregation_strategy="{aggregation}"{labels})',
              'print(ner("Angela Merkel visited Paris."))']
    if adapter_only:
        lines += ["", "from peft import AutoPeftModelForTokenClassification", "",
                  f'model = AutoPeftModelForTokenClassification.from_pretrained("{repo_id}", id2label=id2label)']
    return "\n".join(lines)


def model_index_results(task: str, metrics: Mapping[str, float], dataset: str | None):
    """`EvalResult`s for `model-index` from `eval_<metric>` / `test_<metric>` values (splits validation / test)."""
    from huggingface_hub import EvalResult

    if not dataset:
        return None
    results = []
    for key, value in metrics.items():
        prefix, _, metric = key.partition("_")
        if prefix in SPLITS and metric in MODEL_INDEX_METRICS:
            results.append(EvalResult(
                task_type=task, dataset_type=dataset, dataset_name=dataset, dataset_split=SPLITS[prefix],
                metric_type=metric, metric_name=f"{metric} ({SPLITS[prefix]})", metric_value=float(value),
            ))
    return results or None


def _table(rows: Mapping[str, Any], fmt=str) -> str:
    return "\n".join(f"| `{k}` | {fmt(v)} |" for k, v in rows.items())


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
    first_subtoken_only: bool = True,
    schedule: Mapping[str, Any] | None = None,
):
    """Builds the model card.

    Args:
        model_name (`str`): title of the card (and name in `model-index`).
        base_model (`str`, *optional*): Hub id or path of the starting model. A packaged offline copy is named by its
            Hub id; other local paths stay out of the metadata (mentioned in the body only).
        task (`str`): pipeline tag, `"token-classification"` or `"text-generation"`.
        reward_functions (`Sequence[tuple[str, float]]`): `(name, weight)` of every reward.
        config_values (`Mapping[str, Any]`): key training values, shown as a table.
        eval_metrics (`Mapping[str, float]`, *optional*): final metrics (`eval_f1`, `test_f1`, ...); the headline
            ones ([`MODEL_INDEX_METRICS`]) also go to `model-index` when `dataset` is known.
        dataset (`str`, *optional*): dataset Hub id.
        peft_method (`str`, *optional*): e.g. `"LORA"`; adds the `peft` tag.
        quantization (`str`, *optional*): `"8-bit"` or `"4-bit"` if the backbone was trained quantized.
        adapter_only (`bool`): the folder holds an adapter (`library_name: peft`, `base_model_relation: adapter`).
        merged (`bool`): adapters were merged into the weights.
        repo_id (`str`, *optional*): used in the loading snippet; defaults to `model_name`.
        tags (`Sequence[str]`): extra tags.
        license (`str`, *optional*): licence identifier; default: the base's when known (packaged bases: apache-2.0).
        id2label (`Mapping[int, str]`, *optional*): label names, put in the adapter-only loading snippet.
        first_subtoken_only (`bool`, defaults to `True`): only each word's first sub-token was labelled (the
            snippet then aggregates with `"first"`).
        schedule (`Mapping[str, Any]`, *optional*): the schedule as it ran (e.g. `rl_start_epoch` and the step it
            became), shown in its own table.

    Returns:
        `huggingface_hub.ModelCard`: `card.save(path)` writes `README.md`; `card.data.to_dict()` is the metadata.
    """
    from huggingface_hub import ModelCard, ModelCardData

    all_tags = list(dict.fromkeys([*BASE_TAGS, *(["peft"] if peft_method else []), *tags]))
    hub_base = hub_id_for(base_model) or (base_model if _looks_like_hub_id(base_model) else None)
    metrics = {k: float(v) for k, v in (eval_metrics or {}).items() if isinstance(v, (int, float))}
    versions = framework_versions()
    data = ModelCardData(
        library_name="peft" if adapter_only else "transformers",
        pipeline_tag=task,
        tags=all_tags,
        base_model=hub_base,
        base_model_relation=("adapter" if adapter_only else "finetune") if hub_base else None,
        datasets=[dataset] if dataset else None,
        license=license or KNOWN_LICENSES.get(hub_base),
        model_name=model_name,
        eval_results=model_index_results(task, metrics, dataset),
        trl_tokenlevel={
            "rewards": [{"name": name, "weight": float(weight)} for name, weight in reward_functions],
            "peft_method": peft_method,
            "merged_adapters": merged,
            "quantization": quantization,
            "config": {k: config_values[k] for k in config_values},
            "schedule": dict(schedule or {}),
            "metrics": metrics,
            "framework_versions": versions,
        },
    )
    snippet = usage_snippet(task, repo_id or model_name, adapter_only, id2label, first_subtoken_only)
    body = card_body(
        model_name=model_name, task=task, base=hub_base or base_model, dataset=dataset, peft_method=peft_method,
        merged=merged, quantization=quantization, license=data.license, snippet=snippet, adapter_only=adapter_only,
        reward_functions=reward_functions, config_values=config_values, schedule=schedule, metrics=metrics,
        versions=versions,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def card_body(*, model_name, task, base, dataset, peft_method, merged, quantization, license, snippet, adapter_only,
              reward_functions, config_values, schedule, metrics, versions) -> str:
    """The Markdown body of the card: what was trained and how, how to load it, rewards, config, schedule,
    evaluation, framework versions and citation."""
    adaptation = peft_method or "full fine-tuning"
    if peft_method and merged:
        adaptation += " (adapters merged into the weights: loads without PEFT)"
    adapter_note = (
        "\nThis repository holds a PEFT adapter (`pip install peft`): the base model named in `adapter_config.json` is "
        "loaded and the adapter applied. The label names are passed because the base model's config does not have "
        "them.\n" if adapter_only else ""
    )
    return f"""
# {model_name}

A {task} model trained with token-level reinforcement learning (`trl-tokenlevel`, a plugin for TRL):
{METHOD.get(task, METHOD["token-classification"])}

- **Base model:** `{base or "unknown"}`
- **Dataset:** {dataset or "not recorded"}
- **Task:** {task}
- **Adaptation:** {adaptation}
- **Quantized backbone during training:** {quantization or "no (full precision)"}
- **License:** {license or "not set (pass `license=` to `push_to_hub` / `create_model_card`)"}

## How to load

```python
{snippet}
```
{adapter_note}
## Rewards

| reward | weight |
|---|---|
{_table(dict(reward_functions), lambda w: f"{float(w):g}")}

## Training configuration

| field | value |
|---|---|
{_table(config_values)}

## Schedule as it ran

| field | value |
|---|---|
{_table(schedule or {}) or "| (no schedule) | |"}

## Evaluation

| metric | value |
|---|---|
{_table(metrics, lambda v: f"{v:.4f}") or "| (none recorded) | |"}

## Framework versions

{chr(10).join(f"- {name}: {v}" for name, v in versions.items())}

## Citation

{CITATION % versions.get("trl-tokenlevel", "unknown")}"""


def _looks_like_hub_id(name: str | None) -> bool:
    return bool(name) and not str(name).startswith(("/", ".", "~")) and str(name).count("/") <= 1


def resolved_schedule(trainer) -> dict[str, Any]:
    """The schedule as the run resolved it: `rl_start_epoch` with the optimizer step it became (the first step whose
    loss had the RL term, given the run's steps per epoch), `rl_start_step`, and the coefficient and reward-weight
    schedules and constraints that were set."""
    args, state = trainer.args, trainer.state
    schedule: dict[str, Any] = {}
    start_epoch = getattr(args, "rl_start_epoch", None)
    if start_epoch is not None:
        schedule["rl_start_epoch"] = start_epoch
        if state.max_steps and state.num_train_epochs:
            steps_per_epoch = state.max_steps / state.num_train_epochs
            schedule["rl_start_step (resolved)"] = int(math.ceil(start_epoch * steps_per_epoch - 1e-9))
    elif getattr(args, "rl_start_step", None) is not None:
        schedule["rl_start_step"] = args.rl_start_step
    if state.max_steps:
        schedule["total_optimizer_steps"] = state.max_steps
    for name in SCHEDULE_FIELDS:
        value = getattr(args, name, None)
        if value:
            schedule[name] = value if isinstance(value, (str, int, float)) else str(value)
    return schedule


def model_card_from_trainer(trainer, model_name: str, dataset: str | None = None, merged: bool = False, **kwargs):
    """[`build_model_card`] filled from a [`TokenLevelRLTrainer`] (rewards, weights, config, the schedule as it
    ran, the last eval/test metrics)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    peft_method = base_model = None
    if is_peft_model(model):
        peft_config = model.peft_config[model.active_adapter]
        peft_method, base_model = str(peft_config.peft_type.value), peft_config.base_model_name_or_path
    base_model = base_model or getattr(model.config, "_name_or_path", None) or None
    args = trainer.args
    quantization = quantization_name(model)
    metrics: dict[str, float] = {}
    for entry in trainer.state.log_history:  # last value of every eval_/test_/predict_ metric
        metrics.update({k: v for k, v in entry.items() if k.partition("_")[0] in SPLITS and "runtime" not in k
                        and "per_second" not in k})
    task = task_of(model)
    args_dict = training_args_dict(args)  # JSON-safe values (enums as strings)
    fields = GENERATION_CONFIG_FIELDS if task in ("text-generation", "text2text-generation") else KEY_CONFIG_FIELDS
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
        id2label={int(k): v for k, v in (id2label or {}).items()},
        first_subtoken_only=not getattr(args, "label_all_tokens", False), schedule=resolved_schedule(trainer),
        **kwargs,
    )
