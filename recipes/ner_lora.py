"""Token-level RL for NER on CoNLL-2003 (LoRA or another PEFT method on a token classifier).

    python recipes/ner_lora.py --config recipes/configs/ner_lora.yaml
    python recipes/ner_lora.py --config recipes/configs/ner_lora.yaml --train_file my/train.txt --test_file my/test.txt
    accelerate launch recipes/ner_lora.py --config recipes/configs/ner_lora.yaml --learning_rate 1e-4
    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/ner_lora.py \
        --config recipes/configs/ner_lora.yaml --load_in_8bit true --merge_adapters true

Every field of `ScriptArguments`, `TokenClassificationRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`:
`--model_name_or_path`, `--use_peft`, `--lora_r`, `--load_in_8bit`, ...; plus `--peft` to pick IA3, BitFit, LN tuning or
prompt tuning) is a flag and a YAML key, parsed by TRL's `TrlParser` as TRL's own scripts do. Data and
outputs follow transformers' `run_ner.py`: `--train_file` / `--validation_file` / `--test_file` (CoNLL files) replace
the matching split of the dataset folder, `--max_{train,eval,predict}_samples` keep the first N sentences of a split
(logged; without `--max_predict_samples`, `--max_eval_samples` cuts the test split too). The recipe evaluates on the dev split every epoch (entity-level F1, seqeval strict IOB2), then once more at
the end, predicts the test split, and writes to `output_dir`:

- `train_results.json`, `eval_results.json` (dev), `predict_results.json` (test) and `all_results.json` (the three
  merged), as `run_ner.py` names them: `eval_f1`, `eval_precision`, `eval_recall` are entity-level,
  `eval_token_accuracy` is the fraction of tokens tagged right, `O` included (`run_ner.py` calls it `eval_accuracy`);
  the same keys with `predict_` for the test split, plus `{train,eval,predict}_samples`;
- `trainer_state.json` (the log history, dev and test scores included);
- `predictions.txt`: the test split in CoNLL format, one `word gold predicted` line per word (the column order
  `conlleval` reads; `run_ner.py` writes only the predicted tags, one sentence per line) and a blank line between
  sentences. Every test word has a line: a sentence longer than `max_length` is read in windows overlapping by
  `eval_stride`, and a word the tokenizer turns into no sub-token is tagged `O` (counted in a warning). Its tags are
  the ones `predict_results.json` scores;
- `test_report.txt` (the entity-level test scores, then the token-level report, which includes `O`);
- the model (adapter, or with `--merge_adapters` a plain merged model) and tokenizer, a model card (`README.md`),
  `training_args.json` and `resolved_config.yaml`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import trl_tokenlevel  # noqa: F401  (first: its import filters known upstream noise before transformers loads it)
from datasets import DatasetDict
from transformers import set_seed
from trl import TrlParser

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import CONLL2003_LABELS, default_conll2003_dir, load_conll2003, read_conll
from trl_tokenlevel.metrics import align_predictions, token_classification_report
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, load_token_classification_model
from trl_tokenlevel.models.peft_presets import log_trainable_parameters
from trl_tokenlevel.rewards import get_reward
from trl_tokenlevel.run_identity import resume_argument
from trl_tokenlevel.runtime import setup_script_logging, write_resolved_config
from trl_tokenlevel.token_classification.predict import predict_word_labels


logger = logging.getLogger("ner_lora")

TOKEN_REWARDS = ("entity_span", "token_accuracy", "sentence_f1", "span_precision", "span_recall")
SPLIT_FLAGS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


@dataclass
class ScriptArguments:
    dataset_dir: str | None = field(
        default=None,
        metadata={"help": "Local CoNLL folder (train/valid/test). Default: ../shared/data/conll2003 when present."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, e.g. eriktks/conll2003."})
    train_file: str | None = field(
        default=None, metadata={"help": "CoNLL file (`token ... tag` per line) replacing the training split."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "CoNLL file replacing the dev split."})
    test_file: str | None = field(default=None, metadata={"help": "CoNLL file replacing the test split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training sentences."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev sentences."})
    max_predict_samples: int | None = field(
        default=None,
        metadata={"help": "Use the first N test sentences. Default: max_eval_samples, so one flag shrinks both."},
    )
    rewards: list[str] = field(
        default_factory=lambda: ["entity_span", "token_accuracy"],
        metadata={"help": f"Reward functions, weighted by --reward_weights. Choices: {list(TOKEN_REWARDS)}."},
    )


def build_model(model_args: TokenLevelModelConfig, label_list: list[str], use_cpu: bool = False):
    """The token classifier (a fresh head for `label_list`; `--load_in_8bit` / `--load_in_4bit`: a bitsandbytes
    backbone, the head in fp32), its tokenizer and the PEFT config for the trainer (`None` for full fine-tuning and
    BitFit, which trains the existing biases in place)."""
    kwargs = model_args.from_pretrained_kwargs(use_cpu=use_cpu)
    model, tokenizer = load_token_classification_model(model_args.model_name_or_path or DEFAULT_NER_BACKBONE, label_list, **kwargs)
    model, peft_config = model_args.prepare_peft(model, task_type="TOKEN_CLS")
    return model, tokenizer, peft_config


def load_splits(script_args: ScriptArguments) -> tuple[DatasetDict, str | None]:
    """`train` / `validation` / `test`, each from its `--*_file` when given, else from the dataset folder or the Hub,
    then cut to the first `--max_*_samples` sentences (logged). Also returns the dataset name for the model card
    (`None` when a file replaced a split: the data is then not known to be CoNLL-2003)."""
    own_test_limit = script_args.max_predict_samples is not None  # else max_eval_samples cuts dev and test alike
    limits = {"train": ("max_train_samples", script_args.max_train_samples),
              "validation": ("max_eval_samples", script_args.max_eval_samples),
              "test": ("max_predict_samples", script_args.max_predict_samples) if own_test_limit
              else ("max_eval_samples", script_args.max_eval_samples)}  # fmt: skip
    for split, (flag, limit) in limits.items():
        if limit is not None and limit < 1:
            raise ValueError(f"--{flag} {limit} would leave the {split} split empty: pass a positive number of "
                             "sentences, or null to keep them all.")  # fmt: skip
    files = {split: getattr(script_args, flag) for split, flag in SPLIT_FLAGS.items()}
    dataset, dataset_name = DatasetDict(), script_args.dataset_name
    if not all(files.values()):
        dataset_dir = script_args.dataset_dir
        if dataset_dir is None and dataset_name is None:  # the shared offline copy when present, else the Hub
            found = default_conll2003_dir()
            dataset_dir, dataset_name = (str(found), None) if found else (None, "eriktks/conll2003")
        logger.info("CoNLL-2003 from %s", dataset_dir or f"the Hub ({dataset_name})")
        dataset = load_conll2003(dataset_dir, dataset_name)
    for split, path in files.items():
        if path is not None:
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"--{SPLIT_FLAGS[split]} {path!r} is not a file. Fix: pass a CoNLL file (one `token ... tag` "
                    "line per word, a blank line between sentences)."
                )
            dataset[split] = read_conll(path)  # a bad line raises ConllFormatError naming the file and the line
            logger.info("%s split from %s: %d sentences", split, path, len(dataset[split]))
    for split, (flag, limit) in limits.items():
        if limit is not None:
            total = len(dataset[split])
            dataset[split] = dataset[split].select(range(min(limit, total)))
            logger.info("%s split: the first %d of %d sentences (--%s %d)", split, len(dataset[split]), total, flag,
                        limit)  # fmt: skip
    return dataset, None if any(files.values()) else (dataset_name or "eriktks/conll2003")


def predict_test(trainer, test, label_list: list[str], args) -> tuple[dict, list[list[str]]]:
    """Test scores as `run_ner.py` reports them (`trainer.predict`, keys `predict_*`) and one predicted tag per test
    word (`predict_word_labels`, the same windows), for `predictions.txt`."""
    prediction = trainer.predict(trainer.prepare_dataset(test), metric_key_prefix="predict")
    metrics = {**prediction.metrics, "predict_samples": len(test)}
    tagged = predict_word_labels(  # outside=None marks the words it could not tag
        trainer.model, trainer.processing_class, test["tokens"], label_list=label_list,
        batch_size=args.per_device_eval_batch_size, max_length=args.max_length, stride=args.eval_stride, outside=None,
    )
    untagged = sum(tag is None for tags in tagged for tag in tags)
    if untagged:
        logger.warning("%d of %d test words have no sub-token (the tokenizer turns them into none): predictions.txt "
                       "tags them O, predict_results.json does not score them.", untagged, sum(map(len, tagged)))
    predicted = [[tag if tag is not None else "O" for tag in tags] for tags in tagged]
    # both paths tag a word by its first sub-token in the same windows: where both tag every word, they must agree
    _, scored = align_predictions(prediction.predictions, prediction.label_ids, label_list)
    disagree = sum(a != b for s, p in zip(scored, predicted) if len(s) == len(p) for a, b in zip(s, p))
    if disagree:
        logger.warning("predictions.txt (predict_word_labels) and predict_results.json (trainer.predict) disagree on "
                       "%d test words: the file is not what was scored. Please report it with your --peft method.",
                       disagree)  # fmt: skip
    return metrics, predicted


def write_conll_predictions(path: str, sentences, gold: list[list[str]], predicted: list[list[str]]) -> None:
    """One `word gold predicted` line per word and a blank line after each sentence: the layout `conlleval` reads."""
    with open(path, "w", encoding="utf-8") as handle:
        for words, gold_tags, predicted_tags in zip(sentences, gold, predicted, strict=True):
            handle.writelines(f"{w} {g} {p}\n" for w, g, p in zip(words, gold_tags, predicted_tags, strict=True))
            handle.write("\n")


def write_test_report(path: str, metrics: dict, token_report_text: str) -> None:
    """The test scores of `predict_results.json` in a table, then the token-level report (`O` included)."""
    title = "Entity-level test scores (seqeval, strict IOB2; token_accuracy counts O)"
    rows = [f"{k:<28}{v:.4f}" if isinstance(v, float) else f"{k:<28}{v}" for k, v in sorted(metrics.items())
            if not k.endswith(("_runtime", "_per_second"))]  # fmt: skip
    Path(path).write_text("\n".join([title, "=" * len(title), *rows]) + "\n\n" + token_report_text)


def main(script_args: ScriptArguments, training_args: TokenClassificationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    setup_script_logging(training_args)  # INFO on the main process only
    set_seed(training_args.seed)  # before the model and adapters are created
    unknown = set(script_args.rewards) - set(TOKEN_REWARDS)
    if unknown:
        raise ValueError(f"Unknown rewards {sorted(unknown)}; choose from {list(TOKEN_REWARDS)}.")
    dataset, card_dataset = load_splits(script_args)
    label_list = dataset["train"].features["ner_tags"].feature.names or CONLL2003_LABELS
    model, tokenizer, peft_config = build_model(model_args, label_list, use_cpu=training_args.use_cpu)
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
    trainer.dataset_name = card_dataset  # for the model card (the shared copy is eriktks/conll2003's data)
    log_trainable_parameters(trainer.model, logger)
    train_result = trainer.train(resume_from_checkpoint=resume_argument(training_args.resume_from_checkpoint))
    # as run_ner.py: {split}_results.json per split, all of them merged into all_results.json
    results = {
        "train": {**train_result.metrics, "train_samples": len(dataset["train"])},
        "eval": {**trainer.evaluate(), "eval_samples": len(dataset["validation"])},  # dev
    }
    results["predict"], predicted = predict_test(trainer, dataset["test"], label_list, training_args)
    for split, metrics in results.items():
        trainer.log_metrics(split, metrics)
        trainer.save_metrics(split, metrics)
    trainer.log(dict(results["predict"]))  # a copy (log adds `epoch`): into trainer_state.json and the model card
    trainer.save_state()
    if trainer.is_world_process_zero():
        output_dir = training_args.output_dir
        gold = [[label_list[i] for i in tags] for tags in dataset["test"]["ner_tags"]]
        write_conll_predictions(f"{output_dir}/predictions.txt", dataset["test"]["tokens"], gold, predicted)
        _, token_report_text = token_classification_report(gold, predicted, label_list)
        write_test_report(f"{output_dir}/test_report.txt", results["predict"], token_report_text)
        print(token_report_text)
        write_resolved_config(output_dir, training_args, script_args, model_args)
    # + model card; --merge_adapters: a plain merged model, adapter in adapter/; --push_to_hub: uploads the folder
    trainer.save_model(training_args.output_dir)
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, TokenClassificationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
