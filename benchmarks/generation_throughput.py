"""Generation throughput: TokenLevelRLTrainer (dense per-token reward) vs TRL's RLOOTrainer and GRPOTrainer.

Same model weights, prompts, K, batch, max_new_tokens, temperature and optimizer for the three trainers, in one
run; no KL term for any of them (TRL's beta=0, our kl_coef=0), bf16 and gradient checkpointing off (CPU).
Our trainer gets a dense reward (1 per sampled target token); TRL's get the same reward summed per completion
(they accept sequence rewards only). Completion tokens are counted inside the reward call from `completion_ids`
(EOS included for all three). The first step of each run is a warm-up and is not timed. Each trainer runs
`--rounds` times, interleaved, and the median is reported, because the CPUs are shared and timings are noisy.

    OMP_NUM_THREADS=1 python benchmarks/generation_throughput.py --models tiny smollm2 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer  # noqa: E402

from _timing import StepTimer  # noqa: E402  (benchmarks/_timing.py, this script's folder)


def make_rewards(target_id: int, counts: list):
    def dense_target(prompts, completions, completion_ids, **kwargs):
        counts.append(sum(len(ids) for ids in completion_ids))
        return [[float(t == target_id) for t in ids] for ids in completion_ids]

    def summed_target(prompts, completions, completion_ids, **kwargs):
        counts.append(sum(len(ids) for ids in completion_ids))
        return [float(sum(t == target_id for t in ids)) for ids in completion_ids]

    return dense_target, summed_target


def run_one(kind: str, model_dir: str, tokenizer, prompts: list[str], opts) -> dict:
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    counts, timer = [], StepTimer()
    dense, summed = make_rewards(opts.target_id, counts)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dataset = datasets.Dataset.from_dict({"prompt": prompts})
    common = dict(
        output_dir=tempfile.mkdtemp(), max_steps=opts.steps + 1, learning_rate=1e-5, logging_steps=1000,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, temperature=1.0, top_p=1.0,
        top_k=0, bf16=False, gradient_checkpointing=False,
    )
    if kind == "tokenlevel":
        args = TokenLevelRLConfig(
            per_device_train_batch_size=opts.prompts_per_step, num_samples=opts.k, max_new_tokens=opts.max_new_tokens,
            max_prompt_length=None, **common,
        )
        trainer = TokenLevelRLTrainer(model=model, reward_funcs=[dense], args=args, train_dataset=dataset,
                                      processing_class=tokenizer, callbacks=[timer])
    else:
        config_cls, trainer_cls = (RLOOConfig, RLOOTrainer) if kind == "trl_rloo" else (GRPOConfig, GRPOTrainer)
        args = config_cls(
            per_device_train_batch_size=opts.prompts_per_step * opts.k, num_generations=opts.k,
            max_completion_length=opts.max_new_tokens, beta=0.0, **common,
        )
        trainer = trainer_cls(model=model, reward_funcs=[summed], args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[timer])
    trainer.train()
    durations, tokens = timer.durations[1:], counts[1 : len(timer.durations)]
    return {"seconds_per_step": statistics.median(durations), "tokens_per_second": sum(tokens) / sum(durations),
            "tokens_per_step": sum(tokens) / len(tokens)}


def prepare_model(name: str, workdir: str):
    """Save the benchmark model to a folder every trainer loads from; returns (folder, tokenizer, prompts, target)."""
    if name == "tiny":
        from trl_tokenlevel.models.testing import lm_tokenizer

        tokenizer = lm_tokenizer()
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        ))
        prompts = [" ".join(f"w{(7 * i + j) % 28}" for j in range(4 + i % 4)) for i in range(256)]
        target = tokenizer.convert_tokens_to_ids("w7")
    else:
        from trl_tokenlevel.models.packaged import load_smollm2

        model, tokenizer = load_smollm2()
        prompts = [f"Write a short story about a {animal}." for animal in ["cat", "dog", "fox", "owl", "bee", "cow"] * 40]
        target = tokenizer.convert_tokens_to_ids("Ġthe")
    folder = os.path.join(workdir, name)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, AutoTokenizer.from_pretrained(folder), prompts, target


def update_section(path: str, heading: str, body: str) -> None:
    """Replace the `heading` section of a markdown file (up to the next `## `), or append it; other sections stay."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    lines, out, skipping, replaced = text.splitlines(), [], False, False
    for line in lines:
        if line.strip() == heading:
            out += body.rstrip("\n").splitlines()
            skipping, replaced = True, True
            continue
        if skipping and line.startswith("## "):
            skipping = False
            out.append("")
        if not skipping:
            out.append(line)
    if not replaced:
        out += [""] + body.rstrip("\n").splitlines()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out).rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run (after one warm-up step)")
    parser.add_argument("--smollm2_steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts_per_step", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--write", default=None, help="markdown file whose '## Generation throughput' section is replaced")
    opts = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    command = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "<unset>") + " python " + " ".join(map(shlex.quote, sys.argv))
    kinds = ["tokenlevel", "trl_rloo", "trl_grpo"]
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in opts.models:
            folder, tokenizer, prompts, opts.target_id = prepare_model(name, workdir)
            steps = opts.steps
            opts.steps = opts.smollm2_steps if name == "smollm2" else steps
            runs = {kind: [] for kind in kinds}
            for _ in range(opts.rounds if name == "tiny" else 1):
                for kind in kinds:
                    runs[kind].append(run_one(kind, folder, tokenizer, prompts, opts))
                    print(name, kind, runs[kind][-1], flush=True)
            opts.steps = steps
            results[name] = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    table = ["| model | trainer | completion tokens / s | s / step | completion tokens / step | vs TRL RLOO | vs TRL GRPO |",
             "|---|---|---|---|---|---|---|"]
    for name, per_kind in results.items():
        for kind, r in per_kind.items():
            vs = [r["tokens_per_second"] / per_kind[other]["tokens_per_second"] for other in ("trl_rloo", "trl_grpo")]
            table.append(f"| {name} | {kind} | {r['tokens_per_second']:.1f} | {r['seconds_per_step']:.3f} | "
                         f"{r['tokens_per_step']:.0f} | {vs[0]:.2f}x | {vs[1]:.2f}x |")
    print("\n".join(table))
    if opts.write:
        body = "\n".join([
            "## Generation throughput", "",
            f"Command (run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} shared CPU cores, no GPU):", "",
            f"    {command}", "",
            f"Setup: {opts.prompts_per_step} prompts x K={opts.k} completions per step, max_new_tokens={opts.max_new_tokens}, "
            "temperature 1.0, no KL term, fp32, no gradient checkpointing, one process. `tokenlevel` trains with a dense "
            "per-token reward; TRL's trainers get the same reward summed per completion. Throughput = completion "
            "tokens (EOS included) / time of the timed steps (median over rounds; the first step of a run is warm-up). "
            f"tiny = random Llama (hidden 64, 2 layers, 34-token vocab; {opts.steps} timed steps x {opts.rounds} rounds); "
            f"smollm2 = SmolLM2-135M-Instruct ({opts.smollm2_steps} timed steps x 1 round).", "",
            *table, "",
            "The machine is shared with other jobs, so absolute numbers move from run to run; compare the ratios of one run.",
            "Completions are sampled, so completion tokens per step differ between trainers; each step has a fixed cost, "
            "so longer completions raise tokens/s. Compare seconds per step too.",
        ])
        update_section(opts.write, "## Generation throughput", body)


if __name__ == "__main__":
    main()
