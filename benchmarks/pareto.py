"""Precision/recall Pareto sweep on CoNLL-2003: weights of a precision-type and a recall-type span reward.

    python benchmarks/pareto.py --output_dir outputs/pareto --doc_prefix docs/pareto

1. Warm start: the packaged MiniLM is fine-tuned with cross-entropy only on the first `--train_sentences` training
   sentences (a subset sized for 2 CPU cores).
2. From that same warm model, one RL-only run per weight `w` (`ce_coef=0`): reward
   `w * SpanPrecisionReward + (1 - w) * SpanRecallReward` (the first penalises false-positive spans only, the second
   missed gold spans only; both reward exact matches).
3. One constrained run (`reward_combination=constrained`): maximise SpanRecallReward subject to the sampled span
   precision >= `--precision_threshold`, with a Lagrange multiplier.
4. Entity precision/recall/F1 (seqeval, strict IOB2) on the first `--dev_sentences` dev sentences for each run,
   written to `--results_path` (docs/results/pareto/results.json, committed); from it, `<doc_prefix>.png` (the
   Pareto plot) and the table between the markers of `<doc_prefix>.md` (the reading around them is kept).

    python benchmarks/pareto.py                     # the sweep (~20 min on 2 CPU cores), then the plot and table
    python benchmarks/pareto.py --report_only       # the plot and table again, from the committed JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
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
    parser.add_argument("--results_path", default="docs/results/pareto/results.json", help="the runs' scores (JSON)")
    parser.add_argument("--report_only", action="store_true", help="plot and table from --results_path, no training")
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


TABLE_BEGIN, TABLE_END = "<!-- pareto table: begin -->", "<!-- pareto table: end -->"
KIND_MARKERS = {"warm start (CE)": ("s", "CE warm start"), "weighted": ("o", "RL, reward w * precision + (1 - w) * recall"),
                "constrained": ("D", "RL, recall s.t. sampled precision >= threshold")}


def write_results(results: list[dict], args, total_seconds: float) -> dict:
    front = pareto_front([(r["precision"], r["recall"]) for r in results])
    for r, on_front in zip(results, front):
        r["pareto"] = on_front
    record = {"command": "python benchmarks/pareto.py " + " ".join(sys.argv[1:]), "minutes": round(total_seconds / 60, 1),
              "config": {k: v for k, v in vars(args).items() if k not in ("report_only",)}, "runs": results}
    os.makedirs(os.path.dirname(args.results_path) or ".", exist_ok=True)
    with open(args.results_path, "w") as f:
        json.dump(record, f, indent=1)
    return record


def report(record: dict, doc_prefix: str) -> None:
    """The Pareto plot (`<doc_prefix>.png`) and the table between the markers of `<doc_prefix>.md`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    runs, config = record["runs"], record["config"]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for r in runs:
        marker = KIND_MARKERS[r["kind"]][0]
        ax.scatter(100 * r["recall"], 100 * r["precision"], marker=marker, s=60, zorder=3,
                   color="tab:red" if r["pareto"] else "tab:gray", edgecolor="black", linewidth=0.5)
        ax.annotate(r["label"], (100 * r["recall"], 100 * r["precision"]), textcoords="offset points", xytext=(6, 4),
                    fontsize=9)
    front_points = sorted((100 * r["recall"], 100 * r["precision"]) for r in runs if r["pareto"])
    ax.plot(*zip(*front_points), color="tab:red", alpha=0.5, lw=1)
    handles = [Line2D([], [], marker=m, ls="", color="white", markeredgecolor="black", label=name)
               for m, name in KIND_MARKERS.values()]
    handles += [Line2D([], [], marker="o", ls="", color="tab:red", label="on the Pareto front"),
                Line2D([], [], marker="o", ls="", color="tab:gray", label="inside the front")]
    ax.legend(handles=handles, fontsize=8, loc="lower left")
    ax.set_xlabel("dev entity recall (%, seqeval strict IOB2)", fontsize=10)
    ax.set_ylabel("dev entity precision (%)", fontsize=10)
    ax.set_title(f"Precision/recall trade-off from reward weights (MiniLM, CoNLL-2003)\n{config['train_sentences']} "
                 f"train / {config['dev_sentences']} dev sentences, {config['rl_steps']} RL steps per run, one seed",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(doc_prefix + ".png", dpi=130)
    lines = [f"Produced by `{record['command'].strip()}` in {record['minutes']:.1f} min on 2 shared CPU cores; raw "
             "scores in `docs/results/pareto/results.json`.", "",
             f"![Pareto plot]({os.path.basename(doc_prefix)}.png)", "",
             "*Dev entity precision against recall for each run (one seed, no error bars); red points are on the Pareto "
             "front (no other run is at least as good on both), grey ones inside it.*", "",
             "| run | precision (%) | recall (%) | F1 (%) | on Pareto front |", "|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['label']} | {100 * r['precision']:.1f} | {100 * r['recall']:.1f} | {100 * r['f1']:.1f} | {'yes' if r['pareto'] else ''} |")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import write_between_markers

    write_between_markers(doc_prefix + ".md", "\n".join(lines), TABLE_BEGIN, TABLE_END)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.report_only:
        with open(args.results_path) as f:
            record = json.load(f)
        report(record, args.doc_prefix)
        return record["runs"]
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
        result["train_log"] = [e for e in trainer.state.log_history if "loss" in e]  # rewards, constraint, multiplier
        if kind == "constrained":
            result["final_lambda"] = trainer.reward_combiner.multipliers["SpanPrecisionReward"]
        results.append(result)
        print(result, flush=True)
    report(write_results(results, args, time.time() - start), args.doc_prefix)
    return results


if __name__ == "__main__":
    main()
