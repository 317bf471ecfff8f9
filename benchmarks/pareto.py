"""Precision/recall Pareto sweep on CoNLL-2003: weights of a precision-type and a recall-type span reward.

    python benchmarks/pareto.py --output_dir outputs/pareto --doc_prefix docs/pareto

1. Warm start: the packaged MiniLM is fine-tuned with cross-entropy only on the first `--train_sentences` training
   sentences (a subset sized for 2 CPU cores).
2. From that same warm model, one RL-only run per weight `w` (`ce_coef=0`): reward
   `w * SpanPrecisionReward + (1 - w) * SpanRecallReward` (the first penalises false-positive spans only, the second
   missed gold spans only; both reward exact matches).
3. One constrained run (`reward_combination=constrained`): maximise SpanRecallReward subject to the sampled span
   precision >= `--precision_threshold`, with a Lagrange multiplier.
4. Entity precision/recall/F1 (seqeval, strict IOB2) on the first `--dev_sentences` dev sentences for each run;
   writes `<doc_prefix>.png` (the Pareto plot) and `<doc_prefix>.md` (the table) plus `results.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from transformers import set_seed

from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import load_conll2003
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, load_token_classification_model
from trl_tokenlevel.rewards import SpanPrecisionReward, SpanRecallReward


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", default=None, help="CoNLL folder; default ../shared/data/conll2003")
    parser.add_argument("--model_name_or_path", default=DEFAULT_NER_BACKBONE)
    parser.add_argument("--train_sentences", type=int, default=1500)
    parser.add_argument("--dev_sentences", type=int, default=600)
    parser.add_argument("--warm_epochs", type=float, default=2.0)
    parser.add_argument("--rl_steps", type=int, default=60, help="RL optimizer steps per weight")
    parser.add_argument("--rl_learning_rate", type=float, default=5e-5)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help="weight w of SpanPrecisionReward; SpanRecallReward gets 1 - w")
    parser.add_argument("--precision_threshold", type=float, default=0.9)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--output_dir", default="outputs/pareto")
    parser.add_argument("--doc_prefix", default="docs/pareto")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def config(args, name: str, **overrides) -> TokenLevelRLConfig:
    values = dict(
        output_dir=os.path.join(args.output_dir, name), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64, report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
        seed=args.seed, logging_steps=20, num_samples=4, baseline="greedy",
    )
    values.update(overrides)
    return TokenLevelRLConfig(**values)


def scores(trainer, dev) -> dict[str, float]:
    metrics = trainer.evaluate(eval_dataset=dev)
    return {k: round(metrics[f"eval_{k}"], 4) for k in ("precision", "recall", "f1")}


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """`True` where no other point is at least as good on both axes and better on one."""
    return [
        not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)
        for p in points
    ]


def write_outputs(results: list[dict], args, total_seconds: float) -> None:
    front = pareto_front([(r["precision"], r["recall"]) for r in results])
    for r, on_front in zip(results, front):
        r["pareto"] = on_front
    os.makedirs(os.path.dirname(args.doc_prefix) or ".", exist_ok=True)
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for r in results:
        marker = {"warm start (CE)": "s", "constrained": "*"}.get(r["kind"], "o")
        ax.scatter(r["recall"], r["precision"], marker=marker, s=90 if marker == "*" else 40,
                   color="tab:red" if r["pareto"] else "tab:gray", zorder=3)
        ax.annotate(r["label"], (r["recall"], r["precision"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    front_points = sorted((r["recall"], r["precision"]) for r in results if r["pareto"])
    ax.plot(*zip(*front_points), color="tab:red", alpha=0.4, lw=1)
    ax.set_xlabel("dev entity recall (seqeval)")
    ax.set_ylabel("dev entity precision (seqeval)")
    ax.set_title(f"w * SpanPrecision + (1-w) * SpanRecall, MiniLM\n{args.train_sentences} train / "
                 f"{args.dev_sentences} dev sentences, {args.rl_steps} RL steps each", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.doc_prefix + ".png", dpi=120)

    lines = ["| run | precision | recall | F1 | on Pareto front |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {'yes' if r['pareto'] else ''} |")
    command = "python benchmarks/pareto.py " + " ".join(sys.argv[1:])
    with open(args.doc_prefix + ".md", "w") as f:
        f.write("# Precision/recall Pareto sweep (CoNLL-2003 subset)\n\n")
        f.write(f"Produced by `{command.strip()}` in {total_seconds / 60:.1f} min on 2 shared CPU cores.\n")
        f.write("See the module docstring of `benchmarks/pareto.py` for the protocol.\n\n")
        f.write(f"![Pareto plot]({os.path.basename(args.doc_prefix)}.png)\n\n")
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    start = time.time()
    set_seed(args.seed)
    data = load_conll2003(args.dataset_dir, max_train_samples=args.train_sentences, max_eval_samples=args.dev_sentences)
    label_list = data["train"].features["ner_tags"].feature.names
    model, tokenizer = load_token_classification_model(args.model_name_or_path, label_list)
    rewards = [SpanPrecisionReward(), SpanRecallReward()]
    warm = TokenLevelRLTrainer(
        model, rewards, args=config(args, "warm", rl_coef=0.0, num_train_epochs=args.warm_epochs, learning_rate=2e-4),
        train_dataset=data["train"], processing_class=tokenizer, label_list=label_list,
    )
    warm.train()
    dev = warm.prepare_dataset(data["validation"])
    warm_state = {k: v.detach().clone() for k, v in warm.model.state_dict().items()}
    results = [{"label": "warm start (CE)", "kind": "warm start (CE)", **scores(warm, dev)}]
    print(results[-1], flush=True)

    runs = [(f"w={w:g}", "weighted", dict(reward_weights=[w, 1.0 - w])) for w in args.weights]
    runs.append((
        f"recall s.t. P>={args.precision_threshold:g}", "constrained",
        dict(reward_combination="constrained", lagrange_lr=0.5, reward_weights=[1.0, 1.0],
             constraints=[{"reward": "SpanPrecisionReward", "threshold": args.precision_threshold, "statistic": "precision"}]),
    ))
    for label, kind, overrides in runs:
        set_seed(args.seed)
        model.load_state_dict(warm_state)
        trainer = TokenLevelRLTrainer(
            model, rewards, args=config(args, label.replace(" ", "_").replace(">=", "ge"), ce_coef=0.0,
                                        max_steps=args.rl_steps, learning_rate=args.rl_learning_rate, **overrides),
            train_dataset=data["train"], processing_class=tokenizer, label_list=label_list,
        )
        trainer.train()
        result = {"label": label, "kind": kind, **scores(trainer, dev)}
        if kind == "constrained":
            result["final_lambda"] = trainer.reward_combiner.multipliers["SpanPrecisionReward"]
        results.append(result)
        print(result, flush=True)
    write_outputs(results, args, time.time() - start)
    return results


if __name__ == "__main__":
    main()
