"""Extractive QA on SQuAD v1.1 with cross-entropy plus span-F1 policy gradient (DCN+), on the packaged MiniLM.

    python recipes/question_answering.py --config recipes/configs/question_answering.yaml
    python recipes/question_answering.py --config recipes/configs/question_answering.yaml --rl_coef 0   # CE only
    accelerate launch recipes/question_answering.py --config recipes/configs/question_answering.yaml --peft lora

Every field of `ScriptArguments`, `QuestionAnsweringRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`
plus `--peft`) is a flag and a YAML key. The data
is the official SQuAD v1.1 dev file re-split by article (`../shared/data/squad`, or `rajpurkar/squad` from the Hub:
see `trl_tokenlevel/data/squad.py`). The recipe evaluates on the dev split (official exact match and F1) as
`eval_strategy` says and once more at the end, predicts the test split, and writes to `output_dir` what `run_qa.py`
users look for: `train_results.json`, `eval_results.json` (dev), `predict_results.json` (test, keys `predict_*`),
`all_results.json` (the three merged), `eval_predictions.json` / `predict_predictions.json` (question id -> answer),
`trainer_state.json` (the log history, ending with the test scores), `test_report.txt` (the test EM/F1); plus the
model (with `--peft`: the adapter, or with `--merge_adapters` a plain merged model) and tokenizer, a model card
(`README.md`) and `resolved_config.yaml`. `--resume_from_checkpoint` (true or a checkpoint folder) continues a run.
Reload the model with `AutoModelForQuestionAnswering` and answer with
`trl_tokenlevel.question_answering.answer_questions` (transformers 5 has no "question-answering" pipeline).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, set_seed
from trl import TrlParser

from trl_tokenlevel import QuestionAnsweringRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data.squad import default_squad_dir, load_squad
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, resolve_model_path
from trl_tokenlevel.models.peft_presets import log_trainable_parameters
from trl_tokenlevel.rewards import get_reward
from trl_tokenlevel.run_identity import resume_argument
from trl_tokenlevel.runtime import setup_script_logging, write_resolved_config


logger = logging.getLogger("question_answering")

SPAN_REWARDS = ("span_f1",)
QA_PEFT_METHODS = ("none", "lora", "bitfit", "ia3", "ln_tuning")
"""Prompt tuning is left out: it prepends virtual tokens, which the sliding windows' offsets do not account for."""


@dataclass
class ScriptArguments:
    dataset_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with dev-v1.1.json (+ splits.json). Default: ../shared/data/squad when present."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, e.g. rajpurkar/squad."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training questions."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev and test questions."})
    rewards: list[str] = field(
        default_factory=lambda: ["span_f1"],
        metadata={"help": f"Span rewards, weighted by --reward_weights. Choices: {list(SPAN_REWARDS)}."},
    )


def build_model(model_args: TokenLevelModelConfig, training_args: QuestionAnsweringRLConfig):
    """The QA model (a new `qa_outputs` head on the backbone), its tokenizer and the PEFT config for the trainer."""
    if model_args.peft not in QA_PEFT_METHODS:
        raise ValueError(f"--peft {model_args.peft!r} is not available for QA; choose one of {QA_PEFT_METHODS}.")
    path = resolve_model_path(model_args.model_name_or_path or DEFAULT_NER_BACKBONE)
    # a k-bit backbone keeps the head in fp32 so PEFT can train it
    kwargs = model_args.from_pretrained_kwargs(skip_modules=["qa_outputs"], use_cpu=training_args.use_cpu)
    model = AutoModelForQuestionAnswering.from_pretrained(path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=model_args.model_revision)
    # task_type None + the head in modules_to_save: PEFT's QUESTION_ANS model drops token_type_ids (PEFT 0.21)
    model, peft_config = model_args.prepare_peft(model, task_type=None, head_module_names=("qa_outputs",))
    if peft_config is not None:
        peft_config.modules_to_save = sorted(set(peft_config.modules_to_save or []) | {"qa_outputs"})
    return model, tokenizer, peft_config


def write_reports(output_dir: str, test_metrics: dict, dev_answers: dict, test_answers: dict) -> None:
    """`eval_predictions.json` / `predict_predictions.json` (question id -> answer text, as `run_qa.py` names them),
    and `test_report.txt` (the official test EM/F1)."""
    for name, answers in (("eval", dev_answers), ("predict", test_answers)):
        with open(f"{output_dir}/{name}_predictions.json", "w", encoding="utf-8") as handle:
            json.dump(answers, handle, indent=1, ensure_ascii=False)
    with open(f"{output_dir}/test_report.txt", "w") as handle:
        handle.write(f"SQuAD v1.1 (re-split dev, test part): {len(test_answers)} questions\n")
        handle.write(f"exact match {test_metrics['predict_exact_match']:.2f}  F1 {test_metrics['predict_f1']:.2f}  "
                     "(official, %)\n")


def main(script_args: ScriptArguments, training_args: QuestionAnsweringRLConfig, model_args: TokenLevelModelConfig) -> dict:
    setup_script_logging(training_args)  # INFO on the main process only
    set_seed(training_args.seed)  # before the head and the adapters are created
    unknown = set(script_args.rewards) - set(SPAN_REWARDS)
    if unknown:
        raise ValueError(f"Unknown rewards {sorted(unknown)}; choose from {list(SPAN_REWARDS)}.")
    dataset_dir, dataset_name = script_args.dataset_dir, script_args.dataset_name
    if dataset_dir is None and dataset_name is None:  # the shared offline copy when present, else the Hub
        found = default_squad_dir()
        dataset_dir, dataset_name = (str(found), None) if found else (None, "rajpurkar/squad")
    logger.info("SQuAD v1.1 from %s", dataset_dir or f"the Hub ({dataset_name})")
    squad = load_squad(dataset_dir, dataset_name, max_train_samples=script_args.max_train_samples,
                       max_eval_samples=script_args.max_eval_samples)  # fmt: skip
    model, tokenizer, peft_config = build_model(model_args, training_args)
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=[get_reward(name) for name in script_args.rewards], args=training_args,
        train_dataset=squad["train"], eval_dataset=squad["validation"], processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.dataset_name = dataset_name or "rajpurkar/squad"  # for the model card (the shared copy is its dev file)
    log_trainable_parameters(trainer.model, logger)
    train_result = trainer.train(resume_from_checkpoint=resume_argument(training_args.resume_from_checkpoint))
    # as run_qa.py: {split}_results.json per split (all merged into all_results.json), {split}_predictions.json
    dev = trainer.predict(squad["validation"], metric_key_prefix="eval")
    test = trainer.predict(squad["test"], metric_key_prefix="predict")
    results = {
        "train": {**train_result.metrics, "train_samples": len(squad["train"])},
        "eval": {**dev.metrics, "eval_samples": len(squad["validation"])},
        "predict": {**test.metrics, "predict_samples": len(squad["test"])},
    }
    for split, metrics in results.items():
        trainer.log_metrics(split, metrics)
        trainer.save_metrics(split, metrics)
    trainer.log(dict(results["eval"]))  # copies (log adds `epoch`): into trainer_state.json and the model card
    trainer.log(dict(results["predict"]))
    trainer.save_state()  # trainer_state.json: the log history, ending with the test scores
    if trainer.is_world_process_zero():
        write_reports(training_args.output_dir, results["predict"], dev.predictions, test.predictions)
        write_resolved_config(training_args.output_dir, training_args, script_args, model_args)
    # + model card; --merge_adapters: a plain merged model, adapter in adapter/; --push_to_hub: uploads the folder
    trainer.save_model(training_args.output_dir)
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, QuestionAnsweringRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
