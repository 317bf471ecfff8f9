"""SAMSum dialogue summarization with SmolLM2-135M-Instruct + LoRA and token-level RL.

Rewards: ROUGE-L against the reference summary (sequence, on the last token) + entity faithfulness (dense: each
token of a capitalised entity absent from the dialogue is penalised), weighted by `reward_weights`. Reports
ROUGE-1/2/L and the hallucinated-entity rate of greedy summaries before and after training, on a fixed subset of
the test split.

Data: offline only SAMSum's validation and test splits exist (../shared/data/samsum), so the recipe trains on
validation and evaluates on test; with `--data_source hub` it trains on the real train split (Samsung/samsum).

    OMP_NUM_THREADS=1 python recipes/summarize_lora.py --config recipes/configs/summarize_lora.yaml
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
from trl_tokenlevel.generation.evaluate import greedy_completions, summary_metrics
from trl_tokenlevel.data.shared import find_shared_data_dir
from trl_tokenlevel.generation.reports import log_and_save, write_results_json
from trl_tokenlevel.rewards import EntityFaithfulnessReward, RougeLReward
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


def build_rows(rows: list[dict], script_args: ScriptArguments, limit: int) -> datasets.Dataset:
    """Short dialogues only (`max_dialogue_words`), in file order, first `limit` of them; line breaks normalised."""
    kept = []
    for row in rows:
        dialogue = row["context"].replace("\r\n", "\n").strip()
        if len(dialogue.split()) <= script_args.max_dialogue_words:
            prompt = [{"role": "user", "content": f"{dialogue}\n\n{script_args.instruction}"}]
            kept.append({"prompt": prompt, "context": dialogue, "reference": row["response"].strip()})
        if len(kept) == limit:
            break
    return datasets.Dataset.from_list(kept)


def evaluate(model, tokenizer, data: datasets.Dataset, script_args: ScriptArguments, args: GenerationRLConfig):
    start = time.time()
    predictions = greedy_completions(
        model, tokenizer, data["prompt"], script_args.eval_max_new_tokens, batch_size=8,
        max_prompt_length=args.max_prompt_length,
    )
    metrics = summary_metrics(predictions, data["reference"], data["context"])
    metrics["seconds"] = time.time() - start
    return metrics, predictions


def main(script_args: ScriptArguments, args: GenerationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    results_path = script_args.results_path or os.path.join(args.output_dir, "results.json")
    train_split = "train" if script_args.data_source == "hub" else "validation"
    train = build_rows(load_split(script_args, train_split), script_args, script_args.max_train_prompts)
    test = build_rows(load_split(script_args, "test"), script_args, script_args.max_eval_prompts)
    print(f"train: {len(train)} dialogues from {train_split}; eval: first {len(test)} short test dialogues")

    torch.manual_seed(args.seed)
    model, tokenizer = model_args.load_generation_model(use_cpu=args.use_cpu)  # default: the packaged SmolLM2
    before, before_texts = evaluate(model, tokenizer, test, script_args, args)
    print("before:", json.dumps(before))

    rewards = [RougeLReward(reference_column="reference"), EntityFaithfulnessReward(tokenizer, source_column="context")]
    model, peft_config = model_args.prepare_peft(model, "CAUSAL_LM", head_module_names=(),  # None without --use_peft
                                                 methods=("none", "lora", "bitfit", "ia3", "ln_tuning"))
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=rewards, args=args, train_dataset=train, processing_class=tokenizer,
        peft_config=peft_config,
    )
    start = time.time()
    train_result = trainer.train(resume_from_checkpoint=resume_argument(args.resume_from_checkpoint))
    train_seconds = time.time() - start
    after, after_texts = evaluate(trainer.model, tokenizer, test, script_args, args)
    print("after:", json.dumps(after))

    config = {"script": vars(script_args), "model": vars(model_args), "training": args.to_dict()}
    results = {
        "before": before, "after": after, "train_seconds": train_seconds, "train_prompts": len(train),
        "eval_prompts": len(test), "steps": trainer.state.global_step, "config": json.loads(json.dumps(config, default=str)),
        "log_history": trainer.state.log_history,
        "summaries": [{"reference": r, "before": b, "after": a} for r, b, a in zip(test["reference"], before_texts, after_texts)],
    }
    write_results_json(results, results_path)  # first: a failed save or upload below keeps the scores
    log_and_save(trainer, {"test": after}, {"test": len(test)}, {**train_result.metrics, "train_samples": len(train)},
                 dataset_name="Samsung/samsum")
    rows = [("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL"),
            ("hallucinated-entity rate (%)", "hallucinated_entity_rate"), ("entities in summaries", "entities"),
            ("mean summary words", "mean_words")]
    print("| metric | before | after |\n|---|---|---|")
    for label, key in rows:
        print(f"| {label} | {before[key]:.2f} | {after[key]:.2f} |")
    print(f"saved the model to {args.output_dir}; results in {results_path}")
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GenerationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
