"""SAMSum dialogue summarization with SmolLM2-135M-Instruct + LoRA and token-level RL.

Rewards: ROUGE-L against the reference summary (sequence, on the last token) + entity faithfulness (dense: each
token of a capitalised entity absent from the dialogue is penalised; `--faithfulness_level sequence` sums the same
penalties into one reward per summary instead, the sequence-level control), weighted by `reward_weights`. Reports
ROUGE-1/2/L and the hallucinated-entity rate of greedy summaries before and after training, on a fixed subset of
the test split; `--judge_ner_model` adds the rate judged by an NER model (entities found by the model instead of the
reward's capitalised-span heuristic), with every summary's entities in `results.json`.

Data: offline only SAMSum's validation and test splits exist (../shared/data/samsum), so the recipe trains on
validation and evaluates on test; with `--data_source hub` it trains on the real train split (Samsung/samsum).

    OMP_NUM_THREADS=1 python recipes/summarize_lora.py --config recipes/configs/summarize_lora.yaml
    python recipes/summarize_lora.py ... --judge_ner_model outputs/ner_judge --max_eval_prompts 100000 --max_eval_dialogue_words 100000
    accelerate launch recipes/summarize_lora.py --config recipes/configs/summarize_lora.yaml --use_cpu false

Every field of `ScriptArguments`, `GenerationRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`:
`--model_name_or_path`, `--use_peft`, `--lora_r`, ...) is a flag and a YAML key. Outputs in `output_dir`, as the other
recipes write them: `predict_results.json` (ROUGE and the hallucinated-entity rate of the test subset after RL, keys
`predict_*`), `all_results.json`, `trainer_state.json`, the model (merged LoRA with `merge_adapters`, the adapter in
`adapter/`), a model card and `training_args.json` (`--push_to_hub` uploads the folder); `results.json` has the scores
before and after RL and every summary.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from dataclasses import dataclass, field

import datasets
import torch
from trl import TrlParser

from trl_tokenlevel import GenerationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.generation.evaluate import greedy_completions, summary_metrics, summary_records
from trl_tokenlevel.data.shared import find_shared_data_dir
from trl_tokenlevel.generation.reports import log_and_save, write_results_json
from trl_tokenlevel.rewards import EntityFaithfulnessReward, RougeLReward, SummedReward
from trl_tokenlevel.rewards.completion.faithfulness import NEREntityExtractor
from trl_tokenlevel.run_identity import resume_argument


@dataclass
class ScriptArguments:
    data_source: str = field(
        default="local",
        metadata={"help": "'local': `data_dir` (train on validation, evaluate on test); 'hub': Samsung/samsum train/test.",
                  "choices": ["local", "hub"]},
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with validation.jsonl and test.jsonl. Default: ../shared/data/samsum, found from the "
                          "working directory or the repository."},
    )
    max_dialogue_words: int = field(
        default=70, metadata={"help": "Keep dialogues of at most this many words (train and eval; prompt length drives cost)."}
    )
    max_train_prompts: int = field(default=64, metadata={"help": "Training dialogues: the first N short ones."})
    max_eval_prompts: int = field(default=48, metadata={"help": "Evaluation dialogues: the first N short test ones."})
    max_eval_dialogue_words: int | None = field(
        default=None, metadata={"help": "Word limit of the evaluation dialogues; default: `max_dialogue_words`. A large "
                                        "value with a large `max_eval_prompts` scores the whole test split."},
    )
    eval_max_prompt_length: int | None = field(
        default=None, metadata={"help": "Prompt tokens kept (from the right) for the evaluation summaries; default: "
                                        "`max_prompt_length`."},
    )
    faithfulness_level: str = field(
        default="token", metadata={"help": "'token': each token of an unfaithful entity is penalised (dense); 'sequence': "
                                           "the same penalties summed into one reward per summary (`SummedReward`).",
                                   "choices": ["token", "sequence"]},
    )
    judge_ner_model: str | None = field(
        default=None, metadata={"help": "Folder of a token-classification model (IOB2 labels, e.g. the output of "
                                        "recipes/ner_lora.py) that judges the hallucinated entities of the evaluation "
                                        "summaries as a second opinion; the reward keeps its heuristic."},
    )
    eval_before_rl: bool = field(default=True, metadata={"help": "Score the starting model before RL."})
    skip_rl: bool = field(default=False, metadata={"help": "Score the starting model only (results.json): no training, no "
                                                           "model saved."})
    eval_max_new_tokens: int = field(default=48, metadata={"help": "Length cap of the greedy evaluation summaries."})
    instruction: str = field(
        default="Summarize the dialogue above in one sentence.",
        metadata={"help": "Put after the dialogue, so left truncation of long prompts keeps it."},
    )
    results_path: str | None = field(default=None, metadata={"help": "Results JSON. Default: OUTPUT_DIR/results.json."})


def load_split(script_args: ScriptArguments, split: str) -> list[dict]:
    if script_args.data_source == "hub":
        rows = datasets.load_dataset("Samsung/samsum", split=split)
        return [{"context": r["dialogue"], "response": r["summary"]} for r in rows]
    data_dir = script_args.data_dir or find_shared_data_dir("samsum")
    if data_dir is None:
        raise FileNotFoundError("No SAMSum folder: pass --data_dir (validation.jsonl, test.jsonl) or --data_source hub.")
    path = pathlib.Path(data_dir) / f"{split}.jsonl"
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            row = json.loads(line)
            missing = {"context", "response"} - set(row)
            if missing:
                raise ValueError(f"{path}:{number}: missing field(s) {sorted(missing)}; each line needs 'context' "
                                 "(the dialogue) and 'response' (the reference summary).")
            rows.append(row)
    return rows


def build_rows(rows: list[dict], script_args: ScriptArguments, limit: int, max_words: int | None = None) -> datasets.Dataset:
    """Short dialogues only (`max_words`, default `max_dialogue_words`), in file order, first `limit` of them; line
    breaks normalised."""
    max_words = script_args.max_dialogue_words if max_words is None else max_words
    kept = []
    for row in rows:
        dialogue = row["context"].replace("\r\n", "\n").strip()
        if len(dialogue.split()) <= max_words:
            prompt = [{"role": "user", "content": f"{dialogue}\n\n{script_args.instruction}"}]
            kept.append({"prompt": prompt, "context": dialogue, "reference": row["response"].strip()})
        if len(kept) == limit:
            break
    return datasets.Dataset.from_list(kept)


def load_judge(path: str | None):
    """The NER judge's entity finder, or None. A local folder of a token-classification model with IOB2 labels;
    loaded with the library's safe defaults (safetensors, no remote code)."""
    if path is None:
        return None
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if not os.path.isdir(path):
        raise FileNotFoundError(f"--judge_ner_model {path}: no such folder. Train one first, e.g. python recipes/ner_lora.py "
                                "--config recipes/configs/ner_lora.yaml --merge_adapters true --output_dir outputs/ner_judge")
    model = AutoModelForTokenClassification.from_pretrained(path, use_safetensors=True)
    labels = set(model.config.id2label.values())
    if not any(label.startswith("B-") for label in labels):
        raise ValueError(f"--judge_ner_model {path}: labels {sorted(labels)} are not IOB2 (no B-... label); the judge "
                         "needs an NER model such as the output of recipes/ner_lora.py.")
    return NEREntityExtractor(model, AutoTokenizer.from_pretrained(path))


def evaluate(model, tokenizer, data: datasets.Dataset, script_args: ScriptArguments, args: GenerationRLConfig, judge=None):
    """Greedy summaries of `data` (batched by length) and their scores; per-summary records with the entities."""
    start = time.time()
    predictions = greedy_completions(
        model, tokenizer, data["prompt"], script_args.eval_max_new_tokens, batch_size=8,
        max_prompt_length=script_args.eval_max_prompt_length or args.max_prompt_length, sort_by_length=True,
    )
    records = summary_records(predictions, data["reference"], data["context"], judge_extractor=judge)
    metrics = summary_metrics(predictions, data["reference"], data["context"], judge_extractor=judge, records=records)
    metrics["seconds"] = time.time() - start
    for record, text in zip(records, predictions):
        record["summary"] = text
    return metrics, records


def main(script_args: ScriptArguments, args: GenerationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    # TrlParser checks `choices` on the command line only, not in the YAML: check here
    for name in ("data_source", "faithfulness_level"):
        allowed = ScriptArguments.__dataclass_fields__[name].metadata["choices"]
        if getattr(script_args, name) not in allowed:
            raise ValueError(f"{name}={getattr(script_args, name)!r} is not one of {allowed} (check the YAML and the flags).")
    results_path = script_args.results_path or os.path.join(args.output_dir, "results.json")
    train_split = "train" if script_args.data_source == "hub" else "validation"
    train = build_rows(load_split(script_args, train_split), script_args, script_args.max_train_prompts)
    test = build_rows(load_split(script_args, "test"), script_args, script_args.max_eval_prompts,
                      script_args.max_eval_dialogue_words)
    print(f"train: {len(train)} dialogues from {train_split}; eval: first {len(test)} test dialogues of at most "
          f"{script_args.max_eval_dialogue_words or script_args.max_dialogue_words} words")
    judge = load_judge(script_args.judge_ner_model)

    torch.manual_seed(args.seed)
    model, tokenizer = model_args.load_generation_model(use_cpu=args.use_cpu)  # default: the packaged SmolLM2
    before, before_records = {}, None
    if script_args.eval_before_rl or script_args.skip_rl:
        before, before_records = evaluate(model, tokenizer, test, script_args, args, judge)
        print("before:", json.dumps(before))
    config = {"script": vars(script_args), "model": vars(model_args), "training": args.to_dict()}
    if script_args.skip_rl:  # the starting model's scores only
        results = {"before": before, "eval_prompts": len(test), "config": json.loads(json.dumps(config, default=str)),
                   "summaries": [{"reference": r, "context": c, "before": b}
                                 for r, c, b in zip(test["reference"], test["context"], before_records)]}
        write_results_json(results, results_path)
        print(f"scored the starting model only (--skip_rl); results in {results_path}")
        return results

    faithfulness = EntityFaithfulnessReward(tokenizer, source_column="context")
    if script_args.faithfulness_level == "sequence":
        faithfulness = SummedReward(faithfulness)
    rewards = [RougeLReward(reference_column="reference"), faithfulness]
    model, peft_config = model_args.prepare_peft(model, "CAUSAL_LM", head_module_names=(),  # None without --use_peft
                                                 methods=("none", "lora", "bitfit", "ia3", "ln_tuning"))
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=rewards, args=args, train_dataset=train, processing_class=tokenizer,
        peft_config=peft_config,
    )
    start = time.time()
    train_result = trainer.train(resume_from_checkpoint=resume_argument(args.resume_from_checkpoint))
    train_seconds = time.time() - start
    after, after_records = evaluate(trainer.model, tokenizer, test, script_args, args, judge)
    print("after:", json.dumps(after))

    results = {
        "before": before, "after": after, "train_seconds": train_seconds, "train_prompts": len(train),
        "eval_prompts": len(test), "steps": trainer.state.global_step, "config": json.loads(json.dumps(config, default=str)),
        "log_history": trainer.state.log_history,
        "summaries": [{"reference": r, "context": c, "before": b, "after": a} for r, c, b, a in
                      zip(test["reference"], test["context"], before_records or [None] * len(test), after_records)],
    }
    write_results_json(results, results_path)  # first: a failed save or upload below keeps the scores
    log_and_save(trainer, {"test": after}, {"test": len(test)}, {**train_result.metrics, "train_samples": len(train)},
                 dataset_name="Samsung/samsum")
    rows = [("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL"),
            ("hallucinated-entity rate (%)", "hallucinated_entity_rate"), ("entities in summaries", "entities"),
            ("mean summary words", "mean_words")]
    if judge is not None:
        rows += [("judged hallucinated-entity rate (%)", "judged_hallucinated_entity_rate"),
                 ("judged entities in summaries", "judged_entities")]
    print("| metric | before | after |\n|---|---|---|")
    for label, key in rows:
        print(f"| {label} | {before[key]:.2f} | {after[key]:.2f} |" if before else f"| {label} | - | {after[key]:.2f} |")
    print(f"saved the model to {args.output_dir}; results in {results_path}")
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GenerationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
