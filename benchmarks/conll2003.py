"""CoNLL-2003 benchmark runs: CE vs token-level RL vs sentence-level RL, PEFT methods, low-resource subsets.

One run:
    python benchmarks/conll2003.py run --config benchmarks/configs/conll2003/ce.yaml --seed 1 \
        --train_fraction 0.05 --results_dir docs/results/conll2003
Tables and plot from every JSON in the results folder:
    python benchmarks/conll2003.py summarize --results_dir docs/results/conll2003

A run trains the packaged MiniLM encoder, then scores the final model on the full dev split (used for every
choice) and the full test split (reported, never tuned on). Each run writes one JSON: the resolved config, the
seed, dev and test entity-level scores (seqeval strict IOB2) per type and overall, token accuracy (includes O) and
the training time. Low-resource subsets are fixed: the training sentences shuffled once with seed 2003, then the
first `fraction * 14,041` of them, whatever the training seed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import yaml
from transformers import set_seed

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import CONLL2003_LABELS, default_conll2003_dir, load_conll2003
from trl_tokenlevel.metrics import align_predictions, token_classification_report
from trl_tokenlevel.models import load_token_classification_model
from trl_tokenlevel.models.peft_presets import prepare_peft
from trl_tokenlevel.rewards import get_reward


SUBSET_SEED = 2003
BENCH_KEYS = {"name", "peft", "rewards", "lora_r", "lora_alpha", "lora_target_modules", "budget_examples", "notes"}


def training_subset(train, fraction: float):
    if fraction >= 1.0:
        return train
    size = max(1, round(fraction * len(train)))
    return train.shuffle(seed=SUBSET_SEED).select(range(size))


def run(config_path: str, seed: int, fraction: float, results_dir: str, overrides: list[str],
        max_eval_sentences: int | None = None) -> dict:
    spec = yaml.safe_load(Path(config_path).read_text())
    for item in overrides:  # key=value, parsed as YAML
        key, _, value = item.partition("=")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        spec[key] = parsed
    bench = {k: spec.pop(k) for k in list(spec) if k in BENCH_KEYS}
    name = bench.get("name", Path(config_path).stem)
    # max_eval_sentences (smoke tests only): the first N dev and test sentences instead of the full splits
    data = load_conll2003(default_conll2003_dir(), max_eval_samples=max_eval_sentences)
    train = training_subset(data["train"], fraction)
    # same budget in examples seen for every method at a given fraction: epochs = budget / subset size
    budget = bench.get("budget_examples")
    if budget:
        spec["max_steps"] = max(1, math.ceil(budget / spec.get("per_device_train_batch_size", 32)))
    args = TokenClassificationRLConfig(
        output_dir=tempfile.mkdtemp(prefix=f"conll_{name}_"), seed=seed, report_to="none", save_strategy="no",
        eval_strategy="no", disable_tqdm=True, **spec,
    )
    set_seed(seed)
    model, tokenizer = load_token_classification_model(None, CONLL2003_LABELS)  # the packaged MiniLM
    peft_method = bench.get("peft", "none")
    model, peft_config = prepare_peft(
        model, peft_method, lora_r=bench.get("lora_r", 8), lora_alpha=bench.get("lora_alpha", 16),
        lora_target_modules=bench.get("lora_target_modules"),
    )
    rewards = bench.get("rewards", ["entity_span", "token_accuracy"])
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=[get_reward(r) for r in rewards], args=args, train_dataset=train,
        processing_class=tokenizer, peft_config=peft_config, label_list=CONLL2003_LABELS,
    )
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    result = {
        "name": name, "config_file": config_path, "seed": seed, "train_fraction": fraction,
        "train_sentences": len(train), "peft": peft_method, "rewards": rewards, "overrides": overrides,
        "config": {k: v for k, v in spec.items()}, "optimizer_steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1),
        "eval_sentences": {"dev": len(data["validation"]), "test": len(data["test"])},
        # the training log (loss, rewards, advantages, sample/greedy agreement, ...) every logging_steps
        "log_history": [h for h in trainer.state.log_history if "loss" in h],
    }
    for split in ("validation", "test"):
        prediction = trainer.predict(trainer.prepare_dataset(data[split]), metric_key_prefix="m")
        scores = {k[2:]: v for k, v in prediction.metrics.items() if not k.endswith(("runtime", "per_second"))}
        result["dev" if split == "validation" else "test"] = scores
        if split == "test":
            true_tags, pred_tags = align_predictions(prediction.predictions, prediction.label_ids, CONLL2003_LABELS)
            result["test_token_report"] = token_classification_report(true_tags, pred_tags, CONLL2003_LABELS)[1]
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{name}_frac{fraction:g}_seed{seed}" + ("_" + "_".join(o.replace("=", "-") for o in overrides) if overrides else "")
    (out / f"{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{tag}: dev F1 {result['dev']['f1']:.4f}  test F1 {result['test']['f1']:.4f}  ({train_seconds:.0f}s)")
    return result


def _mean_std(values):
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def load_results(results_dir: str, names=None, fractions=None) -> list[dict]:
    """Every run JSON in `results_dir` (file-name order), optionally only these run names / training fractions."""
    rows = [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]
    return [r for r in rows if (not names or r["name"] in names) and (not fractions or r["train_fraction"] in fractions)]


PLOT_NAMES = {"ce": "cross-entropy only", "ce_token_rl": "cross-entropy + token-level RL"}
"""Legend names of the run names in the low-resource plot (others are shown as they are)."""


def summarize(results_dir: str, plot_path: str | None, names=None, fractions=None) -> str:
    rows = load_results(results_dir, names, fractions)
    groups = defaultdict(list)
    for row in rows:
        key = (row["name"], row["train_fraction"], tuple(row.get("overrides", [])))
        groups[key].append(row)
    lines = ["| run | overrides | train fraction | seeds | dev F1 | test F1 | test token acc. (incl. O) |",
             "|---|---|---|---|---|---|---|"]
    for (name, fraction, overrides), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        lines.append(
            f"| {name} | {' '.join(overrides) or '-'} | {fraction:g} | {len(runs)} | "
            f"{_mean_std([r['dev']['f1'] for r in runs])} | {_mean_std([r['test']['f1'] for r in runs])} | "
            f"{_mean_std([r['test']['token_accuracy'] for r in runs])} |"
        )
    table = "\n".join(lines)
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        by_name = defaultdict(lambda: defaultdict(list))  # name -> fraction -> test F1 of every seed
        for row in rows:
            by_name[row["name"]][row["train_fraction"]].append(row["test"]["f1"])
        for name in sorted(by_name):
            points = sorted(by_name[name].items())
            if len(points) < 2:
                continue
            xs = [p[0] * 100 for p in points]
            means = [100 * statistics.mean(p[1]) for p in points]
            stds = [100 * statistics.stdev(p[1]) if len(p[1]) > 1 else 0.0 for p in points]
            seeds = sorted({len(p[1]) for p in points})
            label = f"{PLOT_NAMES.get(name, name)} ({'/'.join(map(str, seeds))} seeds)"
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ticks = sorted({100 * fraction for runs in by_name.values() for fraction in runs})
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("share of the CoNLL-2003 training sentences (log scale)")
        ax.set_ylabel("test entity F1 (%, seqeval strict IOB2)")
        ax.set_title("CoNLL-2003: test F1 against training-set size\n(mean; error bars: ± 1 std over seeds)",
                     fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)
    print(table)
    return table


def best_model_report(results_dir: str, names=None) -> str:
    """The token-level report (test split, `O` included) of the run with the highest dev F1, with its entity F1."""
    best = max(load_results(results_dir, names), key=lambda r: r["dev"]["f1"])
    text = (
        f"`{best['name']}` ({' '.join(best.get('overrides', [])) or 'no overrides'}), training fraction "
        f"{best['train_fraction']:g}, seed {best['seed']}: dev entity F1 {100 * best['dev']['f1']:.2f}, test entity F1 "
        f"{100 * best['test']['f1']:.2f} (seqeval, strict IOB2).\n\n```\n{best['test_token_report'].rstrip()}\n```"
    )
    print(text)
    return text


def best_overrides(results_dir: str, name: str) -> list[str]:
    """Overrides of the run called `name` with the highest dev F1 in `results_dir` (the dev-only recipe choice)."""
    rows = load_results(results_dir, [name])
    if not rows:
        raise SystemExit(f"No {name!r} runs in {results_dir}.")
    return max(rows, key=lambda r: r["dev"]["f1"]).get("overrides", [])


def main():
    parser = argparse.ArgumentParser(description="CoNLL-2003 benchmark runs")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument("--config", required=True)
    p_run.add_argument("--seed", type=int, default=1)
    p_run.add_argument("--train_fraction", type=float, default=1.0)
    p_run.add_argument("--results_dir", default="docs/results/conll2003")
    p_run.add_argument("--set", nargs="*", default=[], help="overrides key=value (YAML values), e.g. kl_coef=0.1")
    p_run.add_argument("--max_eval_sentences", type=int, default=None,
                       help="score only the first N dev/test sentences (smoke tests; reported results use all)")
    p_best = sub.add_parser("best", help="print the --set overrides of the best run (by dev F1) of a config name")
    p_best.add_argument("--results_dir", default="docs/results/conll2003_sweep")
    p_best.add_argument("--name", default="ce_token_rl")
    p_report = sub.add_parser("report", help="token-level test report of the run with the best dev F1")
    p_report.add_argument("--results_dir", default="docs/results/conll2003")
    p_report.add_argument("--names", nargs="*", default=None, help="only these run names")
    p_sum = sub.add_parser("summarize")
    p_sum.add_argument("--results_dir", default="docs/results/conll2003")
    p_sum.add_argument("--plot", default=None)
    p_sum.add_argument("--names", nargs="*", default=None, help="only these run names")
    p_sum.add_argument("--fractions", nargs="*", type=float, default=None, help="only these training fractions")
    args = parser.parse_args()
    if args.command == "run":
        run(args.config, args.seed, args.train_fraction, args.results_dir, args.set, args.max_eval_sentences)
    elif args.command == "best":
        print(" ".join(best_overrides(args.results_dir, args.name)))
    elif args.command == "report":
        best_model_report(args.results_dir, args.names)
    else:
        summarize(args.results_dir, args.plot, args.names, args.fractions)


if __name__ == "__main__":
    main()
