"""Generation step cost: TokenLevelRLTrainer (dense per-token reward) vs TRL's RLOOTrainer and GRPOTrainer.

Same model weights, prompts, K, batch, temperature and optimizer for the three trainers, in one run; no KL term for
any of them (TRL's beta=0, our kl_coef=0), bf16 and gradient checkpointing off (CPU). Every completion has exactly
`max_new_tokens` tokens (`min_new_tokens = max_new_tokens` through each trainer's `generation_kwargs`), so seconds per
step compare equal work. Our trainer gets a dense reward (1 per sampled target token); TRL's get the same reward
summed per completion (they accept sequence rewards only). The first step of each run is a warm-up and is not timed;
each trainer runs `--rounds` times, interleaved, and the median over all timed steps is reported.

Each timed step is split into: `generate` (the model's generate calls), `rewards` (the reward function), `backward`
(`accelerator.backward`), `optimizer` (from Trainer's pre-optimizer-step to optimizer-step callbacks: clipping and
the update), and `other` (the rest of the step: the training forward passes, log-prob and loss computation, data).

    OMP_NUM_THREADS=1 python benchmarks/generation_throughput.py --models tiny smollm2 --write docs/benchmarks.md

Raw timings: docs/results/generation_throughput/<model>.json (every step of every round); `--write` regenerates the
docs section from those files.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, TrainerCallback


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer  # noqa: E402


RESULTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "results" / "generation_throughput"
KINDS = ("tokenlevel", "trl_rloo", "trl_grpo")
PARTS = ("generate", "rewards", "backward", "optimizer", "other")


class StepParts(TrainerCallback):
    """Seconds of each optimizer step, and of its parts (filled by the wrappers below), one dict per step."""

    def __init__(self):
        self.steps, self.current, self._start, self._optimizer_start = [], None, None, None

    def add(self, part: str, seconds: float) -> None:
        if self.current is not None:
            self.current[part] = self.current.get(part, 0.0) + seconds

    def on_step_begin(self, args, state, control, **kwargs):
        self.current, self._start = {}, time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._optimizer_start = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.add("optimizer", time.perf_counter() - self._optimizer_start)

    def on_step_end(self, args, state, control, **kwargs):
        total = time.perf_counter() - self._start
        parts = {p: self.current.get(p, 0.0) for p in PARTS if p != "other"}
        self.steps.append({"total": total, **parts, "other": total - sum(parts.values()),
                           "tokens": self.current.get("tokens", 0)})  # fmt: skip
        self.current = None


def timed(function, timer: StepParts, part: str):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timer.add(part, time.perf_counter() - start)

    return wrapper


def make_rewards(target_id: int, timer: StepParts):
    """The dense reward (ours) and the same reward summed per completion (TRL's); both count completion tokens."""

    def dense_target(prompts, completions, completion_ids, **kwargs):
        timer.add("tokens", sum(len(ids) for ids in completion_ids))
        return [[float(t == target_id) for t in ids] for ids in completion_ids]

    def summed_target(prompts, completions, completion_ids, **kwargs):
        timer.add("tokens", sum(len(ids) for ids in completion_ids))
        return [float(sum(t == target_id for t in ids)) for ids in completion_ids]

    return timed(dense_target, timer, "rewards"), timed(summed_target, timer, "rewards")


def run_one(kind: str, model_dir: str, tokenizer, prompts: list[str], opts) -> list[dict]:
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    timer = StepParts()
    dense, summed = make_rewards(opts.target_id, timer)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.generate = timed(model.generate, timer, "generate")
    dataset = datasets.Dataset.from_dict({"prompt": prompts})
    common = dict(
        output_dir=tempfile.mkdtemp(), max_steps=opts.steps + 1, learning_rate=1e-5, logging_steps=1000,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, temperature=1.0, top_p=1.0,
        top_k=0, bf16=False, gradient_checkpointing=False,
        generation_kwargs={"min_new_tokens": opts.max_new_tokens},  # every completion has max_new_tokens tokens
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
    trainer.accelerator.backward = timed(trainer.accelerator.backward, timer, "backward")
    trainer.train()
    return timer.steps[1:]  # the first step is a warm-up


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


def summarize(steps: list[dict]) -> dict:
    out = {f"{key}_s": statistics.median(s[key] for s in steps) for key in ("total", *PARTS)}
    out["tokens_per_step"] = statistics.median(s["tokens"] for s in steps)
    out["tokens_per_second"] = sum(s["tokens"] for s in steps) / sum(s["total"] for s in steps)
    return out


def section(records: list[dict]) -> str:
    """The docs section, from the result files."""
    rows = ["| model | trainer | s / step (median) | vs TRL GRPO | vs TRL RLOO | completion tokens / step | "
            + " | ".join(f"{p} s" for p in PARTS) + " |", "|---|---|---|---|---|---|" + "---|" * len(PARTS)]
    lines = []
    for record in records:
        summary = {kind: summarize(record["steps"][kind]) for kind in KINDS}
        for kind in KINDS:
            s = summary[kind]
            ratio = [summary[other]["total_s"] / s["total_s"] for other in ("trl_grpo", "trl_rloo")]
            rows.append(f"| {record['model']} | {kind} | {s['total_s']:.3f} | {ratio[0]:.2f}x | {ratio[1]:.2f}x | "
                        f"{s['tokens_per_step']:.0f} | " + " | ".join(f"{s[p + '_s']:.3f}" for p in PARTS) + " |")
        options = record["options"]
        lines.append(f"- {record['model']}: `{record['command']}` ({record['date']}, {record['machine']}); "
                     f"{options['steps']} timed steps x {options['rounds']} rounds per trainer.")
    return "\n".join([
        "## Generation step cost", "",
        "Every completion has exactly `max_new_tokens` tokens (`min_new_tokens` set equal through each trainer's "
        "`generation_kwargs`), so the trainers do the same work per step. 4 prompts x K=4 completions, 32 new tokens, "
        "temperature 1, no KL term, fp32, full fine-tuning, one process. Ours trains with a dense per-token reward, "
        "TRL's trainers with the same reward summed per completion. `vs TRL GRPO` = GRPO's seconds per step / this "
        "trainer's (above 1 = faster). Parts (medians, so they need not add up to the total): `generate`, `rewards`, "
        "`backward`, `optimizer` (clipping and the update), `other` (the training forward passes, log-probs, loss, "
        "data). Raw timings of every step: `docs/results/generation_throughput/`.", "",
        *lines, "",
        *rows, "",
        "The CPUs are shared with other jobs, so absolute numbers move from run to run; compare the ratios of one run.",
    ])


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
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (after one warm-up step)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts_per_step", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--results_dir", default=str(RESULTS_DIR))
    parser.add_argument("--report_only", action="store_true", help="only regenerate the docs section from the JSONs")
    parser.add_argument("--write", default=None, help="markdown file whose '## Generation step cost' section is replaced")
    opts = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    results_dir = Path(opts.results_dir)
    if not opts.report_only:
        command = ("OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "<unset>") + " python "
                   + " ".join(map(shlex.quote, sys.argv)))  # fmt: skip
        with tempfile.TemporaryDirectory() as workdir:
            for name in opts.models:
                folder, tokenizer, prompts, opts.target_id = prepare_model(name, workdir)
                steps = {kind: [] for kind in KINDS}
                for _ in range(opts.rounds):
                    for kind in KINDS:
                        steps[kind] += run_one(kind, folder, tokenizer, prompts, opts)
                        print(name, kind, summarize(steps[kind]), flush=True)
                record = {"model": name, "command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                          "machine": f"{os.cpu_count()} shared CPU cores, no GPU",
                          "options": {k: v for k, v in vars(opts).items() if k not in ("write", "results_dir")},
                          "steps": steps}  # fmt: skip
                results_dir.mkdir(parents=True, exist_ok=True)
                (results_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    records = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    body = section(records)
    print(body)
    if opts.write:
        update_section(opts.write, "## Generation step cost", body)


if __name__ == "__main__":
    main()
