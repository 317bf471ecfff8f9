"""Train a deployed tagger from its users' accept/reject feedback on the entities it showed (no gold labels).

    python recipes/ner_feedback.py --config recipes/configs/ner_feedback.yaml \
        --feedback_dir path/to/feedback/ --model_name_or_path path/to/deployed-tagger --output_dir outputs/ner_feedback

`feedback_dir` is a JSON Lines file or a folder of `*.jsonl` files, one record per sentence in the format of
`trl_tokenlevel/data/feedback.py` (the shown labelling, accept/reject per shown entity, optionally the count of missed
entities). Every record is checked before anything loads: a bad one (unknown label, span out of range, missing field)
stops the run with an error naming its file, line and field. `method` picks how the bits are used (the YAML's default,
`token_rl_partial_ce`, had the best mean dev F1 of the benchmark's arms over both annotator noise levels, within noise
of `partial_label`, which needs no sampled labellings: docs/ner_feedback.md):

- `partial_label`: CE with accepted entities labelled, rejected entities' words left out of the loss, the shown `O`
  kept (`partial_label_targets`);
- `accepted_span`: CE with accepted entities labelled and every other word `O` (`accepted_span_targets`);
- `token_rl`: token-level RL with `SpanFeedbackReward` (accepted words rewarded, rejected words penalised);
- `token_rl_partial_ce`: both at once: `SpanFeedbackReward`'s policy gradient plus partial-label CE on the same rows
  (CE on the shown labelling weighted by `feedback_dataset(..., ce_weight=True)`: 0 on rejected and unjudged
  entities, through the trainer's `ce_weight_column`);
- `sentence_rl`: RL with `SentenceFeedbackReward` (one score per sentence on every word).

The method sets the loss terms: CE methods train with `rl_coef=0, ce_coef=1`; `token_rl` and `sentence_rl` with
`ce_coef=0` (unweighted CE would fit the shown labelling itself, rejected entities included); `token_rl_partial_ce`
with `rl_coef=1, ce_coef=1, ce_weight_column="ce_weight"`. Writes to `output_dir`: the model, tokenizer and model card, `feedback_report.json`
(records, bits, accepted, method, training loss, and dev scores when `eval_dataset_dir` is given) and
`resolved_config.yaml`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import datasets
from transformers import AutoConfig, set_seed
from trl import TrlParser

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import CONLL2003_LABELS, load_conll2003
from trl_tokenlevel.data.feedback import (
    accepted_span_targets,
    feedback_dataset,
    partial_label_targets,
    read_feedback_records,
)
from trl_tokenlevel.models import (
    DEFAULT_NER_BACKBONE,
    load_token_classification_model,
    resolve_model_path,
)
from trl_tokenlevel.rewards import SpanFeedbackReward
from trl_tokenlevel.rewards.token.sentence_feedback import SentenceFeedbackReward
from trl_tokenlevel.runtime import write_resolved_config

logger = logging.getLogger("ner_feedback")

CE_TARGETS = {"partial_label": partial_label_targets, "accepted_span": accepted_span_targets}
RL_METHODS = ("token_rl", "sentence_rl", "token_rl_partial_ce")
COEFFICIENTS = {"token_rl": {"rl_coef": 1.0, "ce_coef": 0.0}, "sentence_rl": {"rl_coef": 1.0, "ce_coef": 0.0},
                "token_rl_partial_ce": {"rl_coef": 1.0, "ce_coef": 1.0, "ce_weight_column": "ce_weight"},
                **{m: {"rl_coef": 0.0, "ce_coef": 1.0} for m in CE_TARGETS}}
"""The loss terms each method trains with (set by the recipe over the config's)."""


@dataclass
class FeedbackArguments:
    feedback_dir: str = field(default=None, metadata={"help": "A JSON Lines file or a folder of *.jsonl records."})
    label_list: list[str] | None = field(
        default=None, metadata={"help": "Label names; default: the model's id2label, else the CoNLL-2003 labels."}
    )
    method: str = field(
        default="token_rl_partial_ce",
        metadata={"help": f"How the bits train the model: one of {[*CE_TARGETS, *RL_METHODS]} (module docstring)."},
    )
    accept_weight: float = field(default=1.0, metadata={"help": "RL: reward for keeping an accepted word's tag."})
    reject_weight: float = field(default=1.0, metadata={"help": "RL: penalty for repeating a rejected tag."})
    o_weight: float = field(
        default=0.0, metadata={"help": "token_rl(_partial_ce): reward for O outside shown entities (trusts O)."})
    missed_weight: float = field(
        default=0.0, metadata={"help": "token_rl(_partial_ce): penalty per missed entity on O words."})
    eval_dataset_dir: str | None = field(
        default=None, metadata={"help": "Optional CoNLL folder with a labelled dev split to score the model on."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Score only the first N dev sentences."})


def label_names(script_args: FeedbackArguments, model_name_or_path: str) -> list[str]:
    if script_args.label_list:
        return list(script_args.label_list)
    id2label = AutoConfig.from_pretrained(resolve_model_path(model_name_or_path)).id2label
    names = [id2label[i] for i in range(len(id2label))] if id2label else []
    return names if names and not any(n.startswith("LABEL_") for n in names) else list(CONLL2003_LABELS)


def training_data(method: str, records: list[dict], labels: list[str]) -> datasets.Dataset:
    """Feedback rows for the RL methods, per-word CE targets (-100 = left out of the loss) for the CE methods."""
    if method in RL_METHODS:
        return feedback_dataset(records, labels, ce_weight=method == "token_rl_partial_ce")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.Value("int64"))})
    targets = [CE_TARGETS[method](r["shown_labels"], r["feedback"], labels) for r in records]
    return datasets.Dataset.from_dict({"tokens": [r["tokens"] for r in records], "ner_tags": targets},
                                      features=features)


def reward_for(script_args: FeedbackArguments):
    if script_args.method == "sentence_rl":
        return SentenceFeedbackReward(reject_weight=script_args.reject_weight)
    return SpanFeedbackReward(accept_weight=script_args.accept_weight, reject_weight=script_args.reject_weight,
                              o_weight=script_args.o_weight, missed_weight=script_args.missed_weight)


def check_coefficients(training_args: TokenClassificationRLConfig, method: str) -> None:
    """The method sets `rl_coef`, `ce_coef` and `ce_weight_column`; a value changed from the config's default that the
    method would overwrite is refused instead of ignored."""
    defaults = {f.name: f.default for f in dataclasses.fields(TokenClassificationRLConfig)}
    for key, value in COEFFICIENTS[method].items():
        given = getattr(training_args, key)
        if given != defaults[key] and given != value:
            raise ValueError(f"--{key} {given!r} conflicts with --method {method}, which trains with {key}={value!r}. "
                             f"Fix: drop --{key} (the method sets the loss terms), or pick the method that matches it.")


def main(script_args: FeedbackArguments, training_args: TokenClassificationRLConfig,
         model_args: TokenLevelModelConfig | None = None) -> dict:
    """`model_args.model_name_or_path`: the deployed tagger that produced the shown labellings (a folder or Hub id;
    default the packaged MiniLM); `--use_peft` / `--peft` train adapters on it instead of every weight."""
    model_args = model_args or TokenLevelModelConfig()
    model_name = model_args.model_name_or_path or DEFAULT_NER_BACKBONE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    method = script_args.method
    if method not in (*CE_TARGETS, *RL_METHODS):
        raise ValueError(f"method={method!r}: choose one of {[*CE_TARGETS, *RL_METHODS]}.")
    if not script_args.feedback_dir:
        raise ValueError("--feedback_dir is required: a JSON Lines file or a folder of *.jsonl feedback records.")
    labels = label_names(script_args, model_name)
    records = read_feedback_records(script_args.feedback_dir, labels)  # every record checked before any loading
    judged = [entry for record in records for entry in record["feedback"]]
    logger.info(f"{len(records)} records, {len(judged)} bits ({sum(e['accepted'] for e in judged)} accepted)")

    coefficients = COEFFICIENTS[method]
    check_coefficients(training_args, method)
    logger.info(f"method {method}: {coefficients}")
    training_args = dataclasses.replace(training_args, **coefficients)
    set_seed(training_args.seed)
    model, tokenizer = load_token_classification_model(model_name, labels, **model_args.from_pretrained_kwargs(
        use_cpu=training_args.use_cpu))
    model, peft_config = model_args.prepare_peft(model, task_type="TOKEN_CLS")
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=[reward_for(script_args)] if method in RL_METHODS else None, args=training_args,
        train_dataset=training_data(method, records, labels), processing_class=tokenizer, label_list=labels,
        peft_config=peft_config,
    )
    train_result = trainer.train()
    report = {"method": method, "records": len(records), "feedback_bits": len(judged),
              "accepted": sum(e["accepted"] for e in judged), "train_loss": train_result.training_loss,
              "optimizer_steps": trainer.state.global_step, **coefficients}
    if script_args.eval_dataset_dir:
        dev = load_conll2003(script_args.eval_dataset_dir, max_eval_samples=script_args.max_eval_samples)["validation"]
        report.update(trainer.evaluate(eval_dataset=trainer.prepare_dataset(dev), metric_key_prefix="dev"))
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        with open(f"{training_args.output_dir}/feedback_report.json", "w") as handle:
            json.dump(report, handle, indent=1)
        write_resolved_config(training_args.output_dir, training_args, script_args, model_args)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    parser = TrlParser((FeedbackArguments, TokenClassificationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
