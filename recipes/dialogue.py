"""SAMSum next-turn generation: the model plays one speaker of a chat and writes that speaker's next message.

Data: `load_samsum_turns` cuts each dialogue after every turn; the next turn is the reference and its speaker the
role to play (chat messages: the played speaker's turns are `assistant`, the others `user` as "Name: text").
Offline only SAMSum's validation and test splits exist, so the recipe trains on validation dialogues and evaluates
on test dialogues (split by dialogue, never by example). Attachment placeholders (`<file_photo>`) are dropped.

Rewards (token level): reference overlap (`ReferenceOverlapReward`, n=1: each token of a reference word earns its
share of ROUGE-1 recall; or `--overlap_reward rougeL`, one ROUGE-L F1 per reply), a length penalty on the tokens
past `max_tokens`, and entity faithfulness (-1 on each token of a capitalised name absent from the dialogue).

Evaluation on held-out next turns, greedy, before and after RL: ROUGE-L F1, mean reply length, and a *judged*
hallucination rate. The judge is not the reward: it flags the reply's numbers (times, amounts, dates) and its words
capitalised in mid-sentence (names, places) that occur nowhere in the dialogue so far, case-insensitively
([`judge_unsupported`]); the reward looks at capitalised runs (sentence-initial ones included) and ignores numbers.

    OMP_NUM_THREADS=1 python recipes/dialogue.py --config recipes/configs/dialogue.yaml

Every field of `ScriptArguments`, `GenerationRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`:
`--model_name_or_path`, `--use_peft`, `--lora_r`, ...) is a flag and a YAML key. Outputs in `output_dir`, as the other
recipes write them: `predict_results.json` (the held-out test turns after RL: `predict_rougeL`,
`predict_judged_hallucination_rate`, ...), `all_results.json`, `trainer_state.json`, the model (merged LoRA with
`merge_adapters`, the adapter in `adapter/`), a model card and `training_args.json`; `results.json` has the scores
before and after RL and every evaluated reply.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

import torch
from trl import TrlParser

from trl_tokenlevel import GenerationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import load_samsum_turns
from trl_tokenlevel.generation.evaluate import greedy_completions
from trl_tokenlevel.generation.reports import log_and_save, write_results_json
from trl_tokenlevel.metrics.text import rouge_l, words
from trl_tokenlevel.rewards import (
    EntityFaithfulnessReward,
    LengthPenalty,
    ReferenceOverlapReward,
    RougeLReward,
)
from trl_tokenlevel.run_identity import resume_argument


@dataclass
class ScriptArguments:
    data_dir: str | None = field(default=None, metadata={"help": "SAMSum JSONL folder. Default: ../shared/data/samsum."})
    max_train_dialogues: int = field(default=64, metadata={"help": "Validation dialogues read for training."})
    max_train_examples: int = field(default=256, metadata={"help": "RL prompts: the first N next-turn examples."})
    max_eval_examples: int = field(default=64, metadata={"help": "Held-out next turns from the first test dialogues."})
    max_context_turns: int = field(default=6, metadata={"help": "Turns kept in each prompt (the last N)."})
    eval_max_new_tokens: int = field(default=40, metadata={"help": "Length cap of the greedy evaluation replies."})
    overlap_reward: str = field(
        default="token", metadata={"help": "'token' (per-token ROUGE-1 credit) or 'rougeL' (per reply).", "choices": ["token", "rougeL"]}
    )
    max_tokens: int = field(default=32, metadata={"help": "LengthPenalty: penalise every token after this many."})
    length_penalty: float = field(default=0.05, metadata={"help": "Penalty per token past max_tokens."})
    results_path: str | None = field(default=None, metadata={"help": "Report JSON. Default: OUTPUT_DIR/results.json."})


NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")
MID_SENTENCE_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]*")


def judge_unsupported(reply: str, context: str) -> tuple[int, int]:
    """`(claims, unsupported)`: the reply's numbers and mid-sentence capitalised words, and how many of them occur
    nowhere in the dialogue so far (case-insensitive, word match). "I" and the reply's first word are not claims.

    Example:
        >>> judge_unsupported("OK, see you at 8 with Tom and Kate", "Ann: dinner at 8?\\nTom: sure")
        (3, 1)
    """
    known = set(words(context))
    claims = [m.group() for m in NUMBER.finditer(reply)]
    claims += [m.group() for m in MID_SENTENCE_CAPITAL.finditer(reply.strip()) if m.group() != "I"]
    unsupported = [c for c in claims if not set(words(c)) <= known]
    return len(claims), len(unsupported)


def load_examples(args: ScriptArguments, split: str, max_dialogues: int | None, limit: int):
    data = load_samsum_turns(
        args.data_dir, split=split, max_context_turns=args.max_context_turns, max_dialogues=max_dialogues,
        malformed_turns="skip" if split == "test" else "raise",  # SAMSum test has one malformed turn (documented)
    )
    data = data.filter(lambda row: not row["reference"].startswith("<file"))  # attachment placeholders
    return data.select(range(min(limit, len(data))))


def evaluate(model, tokenizer, data, args: ScriptArguments, rl_args: GenerationRLConfig):
    start = time.time()
    replies = greedy_completions(model, tokenizer, list(data["prompt"]), args.eval_max_new_tokens, batch_size=16,
                                 max_prompt_length=rl_args.max_prompt_length)
    judged = [judge_unsupported(r, c) for r, c in zip(replies, data["context"])]
    claims, unsupported = sum(c for c, _ in judged), sum(u for _, u in judged)
    count = len(replies)
    metrics = {
        "rougeL": 100.0 * sum(rouge_l(r, ref) for r, ref in zip(replies, data["reference"])) / count,
        "mean_words": sum(len(r.split()) for r in replies) / count,
        "mean_reference_words": sum(len(r.split()) for r in data["reference"]) / count,
        "judged_hallucination_rate": 100.0 * unsupported / max(claims, 1), "judged_claims": claims,
        "judged_unsupported": unsupported, "replies_with_unsupported": 100.0 * sum(u > 0 for _, u in judged) / count,
        "empty_fraction": sum(not r for r in replies) / count, "seconds": time.time() - start,
    }
    return metrics, replies


def rewards_for(tokenizer, args: ScriptArguments) -> list:
    overlap = ReferenceOverlapReward(tokenizer, n=1) if args.overlap_reward == "token" else RougeLReward()
    return [overlap, LengthPenalty(args.max_tokens, args.length_penalty),
            EntityFaithfulnessReward(tokenizer, source_column="context")]


def main(args: ScriptArguments, rl_args: GenerationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    results_path = args.results_path or os.path.join(rl_args.output_dir, "results.json")
    train = load_examples(args, "validation", args.max_train_dialogues, args.max_train_examples)
    test = load_examples(args, "test", args.max_eval_examples, args.max_eval_examples)  # >= 1 example per dialogue
    print(f"train: {len(train)} next turns (validation); eval: {len(test)} next turns (test)")
    torch.manual_seed(rl_args.seed)
    model, tokenizer = model_args.load_generation_model(use_cpu=rl_args.use_cpu)
    before, before_texts = evaluate(model, tokenizer, test, args, rl_args)
    print("before:", json.dumps(before))

    model, peft_config = model_args.prepare_peft(model, "CAUSAL_LM", head_module_names=(),  # None without --use_peft
                                                 methods=("none", "lora", "bitfit", "ia3", "ln_tuning"))
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=rewards_for(tokenizer, args), args=rl_args,
        train_dataset=train.select_columns(["prompt", "reference", "context"]), processing_class=tokenizer,
        peft_config=peft_config,
    )
    start = time.time()
    train_result = trainer.train(resume_from_checkpoint=resume_argument(rl_args.resume_from_checkpoint))
    train_seconds = time.time() - start
    after, after_texts = evaluate(trainer.model, tokenizer, test, args, rl_args)
    print("after:", json.dumps(after))
    config = {"script": vars(args), "model": vars(model_args), "training": rl_args.to_dict()}
    results = {
        "before": before, "after": after, "train_seconds": train_seconds, "train_examples": len(train),
        "eval_examples": len(test), "steps": trainer.state.global_step, "log_history": trainer.state.log_history,
        "judge": "numbers and mid-sentence capitalised words of the reply absent from the dialogue (judge_unsupported)",
        "config": json.loads(json.dumps(config, default=str)),
        "replies": [{"speaker": s, "reference": r, "before": b, "after": a}  # every evaluated turn
                    for s, r, b, a in zip(test["speaker"], test["reference"], before_texts, after_texts)],
    }
    write_results_json(results, results_path)  # first: a failed save or upload below keeps the scores
    log_and_save(trainer, {"test": after}, {"test": len(test)}, {**train_result.metrics, "train_samples": len(train)},
                 dataset_name=None if args.data_dir else "Samsung/samsum")
    print("| metric | before | after |\n|---|---|---|")
    for key in ("rougeL", "mean_words", "judged_hallucination_rate", "replies_with_unsupported"):
        print(f"| {key} | {before[key]:.2f} | {after[key]:.2f} |")
    print(f"saved the model to {rl_args.output_dir}; report in {results_path}")
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GenerationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
