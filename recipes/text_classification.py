"""RL for text classification on SST-2 (sentence sentiment) with a sequence classifier: CE plus a per-example reward.

    python recipes/text_classification.py --config recipes/configs/text_classification.yaml
    python recipes/text_classification.py --config recipes/configs/text_classification.yaml --peft lora --learning_rate 1e-3
    accelerate launch recipes/text_classification.py --config recipes/configs/text_classification.yaml

Every field of `ScriptArguments`, `SequenceClassificationRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`
plus `--peft`) is a flag and a YAML key. The
recipe evaluates on the dev split as `eval_strategy` says (accuracy, macro-F1) and once more at the end, predicts the
test split, and writes to `output_dir` what `run_glue.py` users look for: `train_results.json`, `eval_results.json`
(dev), `predict_results.json` (test, keys `predict_*`), `all_results.json` (the three merged), `trainer_state.json`
(the log history, ending with the test scores) and `predictions.tsv` (index, sentence, gold and predicted label);
plus the model (full; with `--peft` the adapter, or with `--merge_adapters` a plain merged model) and the tokenizer,
a model card (`README.md`), `training_args.json` and `resolved_config.yaml`. `--resume_from_checkpoint` (true or a
checkpoint folder) continues a run. The saved model loads in `pipeline("text-classification")`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
from trl import TrlParser

from trl_tokenlevel import SequenceClassificationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import SST2_LABELS, load_sst2
from trl_tokenlevel.data.sst2 import default_sst2_dir
from trl_tokenlevel.models import (
    DEFAULT_NER_BACKBONE,
    load_pretrained,
    resolve_model_path,
)
from trl_tokenlevel.models.peft_presets import log_trainable_parameters
from trl_tokenlevel.rewards import get_reward
from trl_tokenlevel.runtime import setup_script_logging, write_resolved_config
from trl_tokenlevel.sequence_classification.reports import train_evaluate_predict

logger = logging.getLogger("text_classification")

LABEL_REWARDS = ("correct_label", "cost_matrix")


@dataclass
class ScriptArguments:
    dataset_dir: str | None = field(
        default=None, metadata={"help": "Local SST-2 folder (train/dev/test.tsv). Default: ../shared/data/sst2 if present."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, e.g. stanfordnlp/sst2."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training sentences."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev and test sentences."})
    rewards: list[str] = field(
        default_factory=lambda: ["correct_label"],
        metadata={"help": f"Per-example rewards, weighted by --reward_weights. Choices: {list(LABEL_REWARDS)}."},
    )
    cost_matrix: str | None = field(
        default=None,
        metadata={
            "help": "For the cost_matrix reward: JSON {gold: {predicted: cost}}, e.g. "
            "'{\"positive\": {\"negative\": 3.0}}'; unlisted errors cost 1."
        },
    )


def build_rewards(script_args: ScriptArguments) -> list:
    unknown = set(script_args.rewards) - set(LABEL_REWARDS)
    if unknown:
        raise ValueError(f"Unknown rewards {sorted(unknown)}; choose from {list(LABEL_REWARDS)}.")
    if "cost_matrix" in script_args.rewards and not script_args.cost_matrix:
        raise ValueError("The cost_matrix reward needs --cost_matrix '{\"gold\": {\"predicted\": cost}}'.")
    return [
        get_reward(name, cost=json.loads(script_args.cost_matrix)) if name == "cost_matrix" else get_reward(name)
        for name in script_args.rewards
    ]


def main(script_args: ScriptArguments, training_args: SequenceClassificationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    setup_script_logging(training_args)  # INFO on the main process only
    set_seed(training_args.seed)  # before the head and adapters are created
    reward_funcs = build_rewards(script_args)
    dataset_dir, dataset_name = script_args.dataset_dir, script_args.dataset_name
    if dataset_dir is None and dataset_name is None:  # the shared offline copy when present, else the Hub
        found = default_sst2_dir()
        dataset_dir, dataset_name = (str(found), None) if found else (None, "stanfordnlp/sst2")
    logger.info("SST-2 from %s", dataset_dir or f"the Hub ({dataset_name})")
    dataset = load_sst2(dataset_dir, dataset_name, max_train_samples=script_args.max_train_samples,
                        max_eval_samples=script_args.max_eval_samples)  # fmt: skip
    labels = dataset["train"].features["label"].names or SST2_LABELS

    model = load_pretrained(
        AutoModelForSequenceClassification, model_args.model_name_or_path or DEFAULT_NER_BACKBONE, training_args,
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        **model_args.from_pretrained_kwargs(use_cpu=training_args.use_cpu),
    )
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model_args.model_name_or_path or DEFAULT_NER_BACKBONE),
                                              revision=model_args.model_revision)
    model, peft_config = model_args.prepare_peft(model, task_type="SEQ_CLS")
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=reward_funcs, args=training_args, train_dataset=dataset["train"],
        eval_dataset=dataset["validation"], processing_class=tokenizer, peft_config=peft_config, label_list=labels,
    )
    trainer.dataset_name = dataset_name or "stanfordnlp/sst2"  # for the model card (the shared copy is this data)
    log_trainable_parameters(trainer.model, logger)
    results = train_evaluate_predict(trainer, dataset, labels)  # + {train,eval,predict}_results.json, predictions.tsv
    if trainer.is_world_process_zero():
        write_resolved_config(training_args.output_dir, training_args, script_args, model_args)
    trainer.save_model(training_args.output_dir)  # + model card; --merge_adapters; --push_to_hub uploads the folder
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, SequenceClassificationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
