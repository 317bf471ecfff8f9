"""Seconds per optimizer step: token-level RL vs a plain cross-entropy `Trainer`, same model, same batches.

    python benchmarks/step_cost.py --steps 12 --rounds 3 --output docs/step_cost.json

Every configuration trains a fresh copy of the packaged MiniLM token classifier on the same batches of 32
CoNLL-2003 training sentences (sequential order). Configurations run in interleaved rounds inside one process so
that machine noise hits all of them alike; the first `--warmup` steps of every run are discarded and the median
of the rest is reported, with its ratio to the CE step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import torch
from transformers import AutoTokenizer, Trainer, TrainingArguments

from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.token_classification.collator import TokenClassificationRLCollator
from trl_tokenlevel.data import CONLL2003_LABELS, default_conll2003_dir, load_conll2003, prepare_token_classification_dataset
from trl_tokenlevel.models import load_token_classification_model, packaged_minilm_path
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward

from _timing import StepTimer  # benchmarks/_timing.py, this script's folder


CONFIGS = {
    "ce_trainer": None,  # plain transformers.Trainer, the model's own CE loss
    "rl_no_kl": dict(kl_coef=0.0),
    "rl_kl": dict(kl_coef=0.1),
    # reference log-probs computed once before the first step (its one-time cost is in that step, reported as
    # `first_step_s`; it is excluded from the median like every warm-up step)
    "rl_kl_cached": dict(kl_coef=0.1, precompute_reference_logprobs=True),
}


def run_once(name, dataset, tokenizer, steps, seed):
    torch.manual_seed(seed)
    model, _ = load_token_classification_model(None, CONLL2003_LABELS)  # the packaged MiniLM
    common = dict(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=32, max_steps=steps, learning_rate=5e-5,
        report_to="none", save_strategy="no", logging_steps=10_000, disable_tqdm=True, use_cpu=True, seed=seed,
        train_sampling_strategy="sequential", dataloader_num_workers=0,
    )
    timer = StepTimer()
    if CONFIGS[name] is None:
        trainer = Trainer(
            model=model, args=TrainingArguments(**common), train_dataset=dataset,
            data_collator=TokenClassificationRLCollator(tokenizer), callbacks=[timer],
        )
    else:
        trainer = TokenLevelRLTrainer(
            model=model, reward_funcs=[EntitySpanReward(), TokenAccuracyReward()], reward_weights=[1.0, 0.5],
            args=TokenLevelRLConfig(**common, **CONFIGS[name]), train_dataset=dataset, processing_class=tokenizer,
            label_list=CONLL2003_LABELS, callbacks=[timer],
        )
    trainer.train()
    return timer.durations


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="docs/step_cost.json")
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    raw = load_conll2003(default_conll2003_dir(), max_train_samples=32 * args.steps)["train"]
    dataset = prepare_token_classification_dataset(raw, tokenizer, max_length=128)
    times = {name: [] for name in CONFIGS}
    first_steps = {name: [] for name in CONFIGS}
    for round_index in range(args.rounds):
        for name in CONFIGS:
            durations = run_once(name, dataset, tokenizer, args.steps, seed=round_index)
            times[name] += durations[args.warmup :]
            first_steps[name].append(durations[0])
            print(f"round {round_index} {name}: median {statistics.median(durations[args.warmup:]):.3f}s", flush=True)
    base = statistics.median(times["ce_trainer"])
    results = {
        name: {"median_s_per_step": statistics.median(values), "ratio_to_ce": statistics.median(values) / base,
               "n_steps": len(values), "first_step_s": statistics.median(first_steps[name])}
        for name, values in times.items()
    }
    results["_setup"] = {
        "model": "packaged all-MiniLM-L6-v2 (full fine-tuning)", "batch": "32 CoNLL-2003 train sentences",
        "rewards": "EntitySpanReward + 0.5 TokenAccuracyReward, K=4, greedy baseline",
        "threads": torch.get_num_threads(), "command": f"python benchmarks/step_cost.py --steps {args.steps} "
        f"--warmup {args.warmup} --rounds {args.rounds} --output {args.output}",
    }
    with open(args.output, "w") as handle:
        json.dump(results, handle, indent=2)
    for name in CONFIGS:
        print(f"{name:12s} {results[name]['median_s_per_step']:.3f} s/step  x{results[name]['ratio_to_ce']:.2f}")


if __name__ == "__main__":
    main()
