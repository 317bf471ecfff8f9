"""Token-level RL for NER on CoNLL-2003 (LoRA or another PEFT method on a token classifier).

    python recipes/ner_lora.py --config recipes/configs/ner_lora.yaml
    accelerate launch recipes/ner_lora.py --config recipes/configs/ner_lora.yaml --learning_rate 1e-4
    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/ner_lora.py \
        --config recipes/configs/ner_lora.yaml --load_in_8bit true --merge_adapters true

Every field of `ScriptArguments`, `ModelArguments` and `TokenClassificationRLConfig` is a flag and a YAML key. The recipe
evaluates on the dev split every epoch (entity-level F1, seqeval strict IOB2), on the test split at the end, and
writes to `output_dir`: the model (adapter, or with `--merge_adapters` a plain merged model) and tokenizer, a model
card (`README.md`), `training_args.json`, `test_report.json` / `test_report.txt` (entity-level scores and
the token-level report, which includes `O`), and `resolved_config.yaml`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import yaml

import trl_tokenlevel  # noqa: F401  (first: its import filters known upstream noise before transformers loads it)
from transformers import set_seed
from trl import TrlParser

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import CONLL2003_LABELS, default_conll2003_dir, load_conll2003
from trl_tokenlevel.metrics import align_predictions, token_classification_report, write_report
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, load_token_classification_model, resolve_model_path
from trl_tokenlevel.models.peft_presets import PEFT_METHODS, log_trainable_parameters, prepare_peft
from trl_tokenlevel.rewards import get_reward
from trl_tokenlevel.run_identity import resume_argument
from trl_tokenlevel.runtime import setup_script_logging


logger = logging.getLogger("ner_lora")

TOKEN_REWARDS = ("entity_span", "token_accuracy", "sentence_f1", "span_precision", "span_recall")


@dataclass
class ScriptArguments:
    dataset_dir: str | None = field(
        default=None,
        metadata={"help": "Local CoNLL folder (train/valid/test). Default: ../shared/data/conll2003 when present."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, e.g. eriktks/conll2003."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training sentences."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev and test sentences."})
    rewards: list[str] = field(
        default_factory=lambda: ["entity_span", "token_accuracy"],
        metadata={"help": f"Reward functions, weighted by --reward_weights. Choices: {list(TOKEN_REWARDS)}."},
    )


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_NER_BACKBONE,
        metadata={"help": "Backbone. Default: the packaged all-MiniLM-L6-v2 encoder (offline, uncased)."},
    )
    peft: str = field(default="lora", metadata={"help": f"Parameter-efficient method: one of {PEFT_METHODS}."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank: more = more capacity and memory."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha: the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules LoRA adapts. Default: chosen per architecture."}
    )
    num_virtual_tokens: int = field(default=10, metadata={"help": "Prompt-tuning length (peft=prompt_tuning)."})


def build_model(model_args: ModelArguments, label_list: list[str], training_args: TokenClassificationRLConfig | None = None):
    # --load_in_8bit / --load_in_4bit: a bitsandbytes backbone with the classifier kept in fp32 (checked first)
    quantization = {"load_in_8bit": training_args.load_in_8bit, "load_in_4bit": training_args.load_in_4bit} if training_args else {}
    model, tokenizer = load_token_classification_model(model_args.model_name_or_path, label_list, **quantization)
    model, peft_config = prepare_peft(
        model, model_args.peft, lora_r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout, lora_target_modules=model_args.lora_target_modules,
        num_virtual_tokens=model_args.num_virtual_tokens,
    )
    return model, tokenizer, peft_config


def main(script_args: ScriptArguments, training_args: TokenClassificationRLConfig, model_args: ModelArguments) -> dict:
    setup_script_logging(training_args)  # INFO on the main process only
    set_seed(training_args.seed)  # before the model and adapters are created
    unknown = set(script_args.rewards) - set(TOKEN_REWARDS)
    if unknown:
        raise ValueError(f"Unknown rewards {sorted(unknown)}; choose from {list(TOKEN_REWARDS)}.")
    dataset_dir, dataset_name = script_args.dataset_dir, script_args.dataset_name
    if dataset_dir is None and dataset_name is None:  # the shared offline copy when present, else the Hub
        found = default_conll2003_dir()
        dataset_dir, dataset_name = (str(found), None) if found else (None, "eriktks/conll2003")
    logger.info("CoNLL-2003 from %s", dataset_dir or f"the Hub ({dataset_name})")
    dataset = load_conll2003(
        dataset_dir, dataset_name,
        max_train_samples=script_args.max_train_samples, max_eval_samples=script_args.max_eval_samples,
    )
    label_list = dataset["train"].features["ner_tags"].feature.names or CONLL2003_LABELS
    model, tokenizer, peft_config = build_model(model_args, label_list, training_args)
    trainer = TokenLevelRLTrainer(
        model=model,
        reward_funcs=[get_reward(name) for name in script_args.rewards],
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        processing_class=tokenizer,
        peft_config=peft_config,
        label_list=label_list,
    )
    trainer.dataset_name = dataset_name or "eriktks/conll2003"  # for the model card (the shared copy is this data)
    log_trainable_parameters(trainer.model, logger)
    train_result = trainer.train(resume_from_checkpoint=resume_argument(training_args.resume_from_checkpoint))
    trainer.log_metrics("train", train_result.metrics)

    prediction = trainer.predict(trainer.prepare_dataset(dataset["test"]), metric_key_prefix="test")
    true_tags, pred_tags = align_predictions(prediction.predictions, prediction.label_ids, label_list)
    _, token_report_text = token_classification_report(true_tags, pred_tags, label_list)
    metrics = dict(prediction.metrics)  # test_f1 etc.: entity level; test_token_accuracy includes O
    trainer.log_metrics("test", metrics)
    trainer.log(metrics)  # into the log history, so the model card reports the test scores
    if trainer.is_world_process_zero():
        write_report(f"{training_args.output_dir}/test_report", metrics, token_report_text)
        print(token_report_text)
        resolved = {"script": asdict(script_args), "model": asdict(model_args), "training": training_args.to_dict()}
        with open(f"{training_args.output_dir}/resolved_config.yaml", "w") as handle:
            yaml.safe_dump(json.loads(json.dumps(resolved, default=str)), handle, sort_keys=False)
    # + model card; --merge_adapters: a plain merged model, adapter in adapter/; --push_to_hub: uploads the folder
    trainer.save_model(training_args.output_dir)
    return metrics


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, TokenClassificationRLConfig, ModelArguments))
    main(*parser.parse_args_and_config())
