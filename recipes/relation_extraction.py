"""RL for relation extraction on SemEval-2010 Task 8: a sequence classifier over the 19 directed labels, reading the
sentence with its entity markers `<e1>..</e1>`, `<e2>..</e2>` added to the tokenizer as special tokens.

    python recipes/relation_extraction.py --config recipes/configs/relation_extraction.yaml
    python recipes/relation_extraction.py --config recipes/configs/relation_extraction.yaml --peft lora --learning_rate 1e-3
    accelerate launch recipes/relation_extraction.py --config recipes/configs/relation_extraction.yaml

The reward ([`RelationReward`]) gives full credit for the right relation and direction, `--direction_credit` for the
right relation in the wrong direction and `-other_cost` for a relation predicted where the gold label is `Other`. The
metric is the task's official score: macro-F1 over the 9 relations with directionality, `Other` excluded (percent).
The recipe evaluates on dev (every tenth training example) as `eval_strategy` says and once more at the end, predicts
the official test set, and writes to `output_dir`, as `run_glue.py` names them: `train_results.json`,
`eval_results.json` (dev), `predict_results.json` (test, keys `predict_*`), `all_results.json`, `trainer_state.json`
(the log history, ending with the test scores) and `predictions.tsv` (index, sentence, gold and predicted relation);
plus the model and tokenizer (markers included), a model card, `training_args.json` and `resolved_config.yaml`.
`--resume_from_checkpoint` (true or a checkpoint folder) continues a run.

With `--peft lora` the 4 marker embeddings train too (PEFT's `trainable_token_indices`); with the other PEFT methods
they keep their initial value (the mean embedding), so the model cannot tell `<e1>` from `<e2>`: use full
fine-tuning or LoRA.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
from trl import TrlParser

from trl_tokenlevel import SequenceClassificationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import (
    ENTITY_MARKERS,
    SEMEVAL2010_TASK8_LABELS,
    add_entity_marker_tokens,
    load_semeval2010_task8,
)
from trl_tokenlevel.data.semeval import default_semeval2010_task8_dir
from trl_tokenlevel.metrics import build_semeval_compute_metrics
from trl_tokenlevel.models import (
    DEFAULT_NER_BACKBONE,
    load_pretrained,
    resolve_model_path,
)
from trl_tokenlevel.models.peft_presets import log_trainable_parameters
from trl_tokenlevel.rewards import RelationReward
from trl_tokenlevel.runtime import setup_script_logging, write_resolved_config
from trl_tokenlevel.sequence_classification.reports import train_evaluate_predict

logger = logging.getLogger("relation_extraction")


@dataclass
class ScriptArguments:
    dataset_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with TRAIN_FILE.TXT and TEST_FILE_FULL.TXT. Default: ../shared/data/semeval2010_task8."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset: SemEvalWorkshop/sem_eval_2010_task_8."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev and test examples."})
    direction_credit: float = field(
        default=0.5, metadata={"help": "Reward of the right relation in the wrong direction (the official score gives 0)."}
    )
    other_cost: float = field(
        default=0.0, metadata={"help": "Cost of predicting a relation where the gold is Other (a false positive)."}
    )


def load_data(script_args: ScriptArguments):
    """SemEval-2010 Task 8 from `--dataset_dir`, the shared copy, or the Hub. A malformed record (markers missing,
    unknown label) stops here with the file, line and record id."""
    dataset_dir, dataset_name = script_args.dataset_dir, script_args.dataset_name
    if dataset_dir is None and dataset_name is None:
        found = default_semeval2010_task8_dir()
        dataset_dir, dataset_name = (str(found), None) if found else (None, "SemEvalWorkshop/sem_eval_2010_task_8")
    logger.info("SemEval-2010 Task 8 from %s", dataset_dir or f"the Hub ({dataset_name})")
    dataset = load_semeval2010_task8(dataset_dir, dataset_name, max_train_samples=script_args.max_train_samples,
                                     max_eval_samples=script_args.max_eval_samples)  # fmt: skip
    return dataset, dataset_name or "SemEvalWorkshop/sem_eval_2010_task_8"


def build_model(model_args: TokenLevelModelConfig, labels: list[str], training_args):
    """The classifier and tokenizer with the entity markers as special tokens (embeddings resized), and the PEFT
    config; under LoRA the marker rows of the embedding matrix train as well."""
    model = load_pretrained(
        AutoModelForSequenceClassification, model_args.model_name_or_path or DEFAULT_NER_BACKBONE, training_args,
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        **model_args.from_pretrained_kwargs(use_cpu=training_args.use_cpu),
    )
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model_args.model_name_or_path or DEFAULT_NER_BACKBONE),
                                              revision=model_args.model_revision)
    add_entity_marker_tokens(tokenizer, model)
    model, peft_config = model_args.prepare_peft(model, task_type="SEQ_CLS")
    if model_args.peft == "lora":
        peft_config.trainable_token_indices = tokenizer.convert_tokens_to_ids(list(ENTITY_MARKERS))
    elif model_args.peft != "none":
        logger.warning("peft=%s leaves the entity-marker embeddings at their initial value; full fine-tuning or LoRA "
                       "trains them.", model_args.peft)  # fmt: skip
    return model, tokenizer, peft_config


def main(script_args: ScriptArguments, training_args: SequenceClassificationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    setup_script_logging(training_args)  # INFO on the main process only
    set_seed(training_args.seed)  # before the head and adapters are created
    dataset, dataset_name = load_data(script_args)
    labels = dataset["train"].features["relation"].names or SEMEVAL2010_TASK8_LABELS
    model, tokenizer, peft_config = build_model(model_args, labels, training_args)
    trainer = TokenLevelRLTrainer(
        model=model, args=training_args, train_dataset=dataset["train"], eval_dataset=dataset["validation"],
        reward_funcs=[RelationReward(direction_credit=script_args.direction_credit, other_cost=script_args.other_cost)],
        processing_class=tokenizer, peft_config=peft_config, label_list=labels,
        compute_metrics=build_semeval_compute_metrics(labels),  # macro_f1: the official score, in percent
    )
    trainer.dataset_name = dataset_name
    log_trainable_parameters(trainer.model, logger)
    results = train_evaluate_predict(trainer, dataset, labels)  # + {train,eval,predict}_results.json, predictions.tsv
    if trainer.is_world_process_zero():
        write_resolved_config(training_args.output_dir, training_args, script_args, model_args)
    trainer.save_model(training_args.output_dir)  # + model card; --merge_adapters; --push_to_hub uploads the folder
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, SequenceClassificationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
