"""Continual learning for NER: deploy a tagger trained on one part of CoNLL-2003, then stream the rest.

    python recipes/ner_online.py --config recipes/configs/ner_online.yaml

1. "Old" data: training sentences without a MISC entity (`split: misc`; or `split: halves`, the first half of the
   training sentences). The deployed model is trained on them with `trainer.train()`, CE handing over to token-level
   RL through `rl_coef_schedule`.
2. "New" data: sentences with MISC entities (or the second half), streamed in small updates with
   `trainer.learn_online`, once per replay-buffer size in `replay_buffer_sizes` (0 = no replay), each run starting
   from the same deployed weights. The buffer is seeded with the old training sentences (reservoir sampling).
3. Entity F1 (seqeval, strict IOB2) on held-out old and new dev sentences is logged every `online_eval_steps`
   updates. The recipe writes `curves.json` to `output_dir`, a plot to `plot_path` and a Markdown table to
   `table_path`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
from transformers import set_seed
from trl import TrlParser

from trl_tokenlevel import TokenLevelModelConfig, TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import load_conll2003
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, load_token_classification_model
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward


logger = logging.getLogger("ner_online")


@dataclass
class OnlineScriptArguments:
    dataset_dir: str | None = field(default=None, metadata={"help": "Local CoNLL folder. Default: ../shared/data/conll2003."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, e.g. eriktks/conll2003."})
    split: str = field(default="misc", metadata={"help": "'misc': old = no MISC entity, new = has one. 'halves': first/second half."})
    max_old_train: int = field(default=1000, metadata={"help": "Old training sentences for the deployed model (subset for CPU)."})
    max_stream: int = field(default=480, metadata={"help": "New sentences streamed."})
    max_eval: int = field(default=300, metadata={"help": "Held-out dev sentences per part (old, new)."})
    replay_buffer_sizes: list[int] = field(default_factory=lambda: [0, 500], metadata={"help": "One online run per size."})
    plot_path: str | None = field(default=None, metadata={"help": "PNG of F1 over the stream (needs matplotlib)."})
    table_path: str | None = field(default=None, metadata={"help": "Markdown table of the results."})


def split_old_new(dataset, split: str, label_names: list[str]):
    """`(old, new)` parts of a split: by the presence of a MISC entity, or first/second half."""
    if split == "halves":
        half = len(dataset) // 2
        return dataset.select(range(half)), dataset.select(range(half, len(dataset)))
    if split != "misc":
        raise ValueError(f"split must be 'misc' or 'halves', got {split!r}.")
    misc = {label_names.index("B-MISC"), label_names.index("I-MISC")}
    has_misc = [bool(misc & set(tags)) for tags in dataset["ner_tags"]]
    return (dataset.select([i for i, m in enumerate(has_misc) if not m]),
            dataset.select([i for i, m in enumerate(has_misc) if m]))


def first(dataset, n: int):
    return dataset.select(range(min(n, len(dataset))))


def curves_from(history: list[dict], batch_size: int) -> dict[str, list]:
    evals = [h for h in history if "eval_old_f1" in h or "eval_new_f1" in h]
    steps = sorted({h["step"] for h in evals})
    f1 = {part: {h["step"]: h[f"eval_{part}_f1"] for h in evals if f"eval_{part}_f1" in h} for part in ("old", "new")}
    return {"examples_seen": [s * batch_size for s in steps], "old_f1": [f1["old"][s] for s in steps],
            "new_f1": [f1["new"][s] for s in steps]}


def write_plot(curves: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for name, curve in curves.items():
        for axis, part in zip(axes, ("old", "new")):
            axis.plot(curve["examples_seen"], [100 * f for f in curve[f"{part}_f1"]], marker="o", ms=3, label=name)
    for axis, part in zip(axes, ("old data (no MISC)", "new data (MISC)")):
        axis.set_title(f"entity F1 on held-out {part}")
        axis.set_xlabel("new sentences streamed")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("entity F1 (%, seqeval strict IOB2)")
    axes[1].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def write_table(curves: dict, path: str) -> str:
    """Two Markdown tables, entity F1 in percent: per run the old/new F1 at the start, the old F1's minimum and the
    end; then every evaluation point (the table docs/online.md shows)."""
    lines = ["| run | old F1 start | old F1 min | old F1 end | new F1 start | new F1 end |", "|---|---|---|---|---|---|"]
    for name, c in curves.items():
        lines.append(f"| {name} | {100 * c['old_f1'][0]:.1f} | {100 * min(c['old_f1']):.1f} | {100 * c['old_f1'][-1]:.1f} | "
                     f"{100 * c['new_f1'][0]:.1f} | {100 * c['new_f1'][-1]:.1f} |")
    seen = next(iter(curves.values()))["examples_seen"]
    lines += ["", "Every evaluation point (entity F1, %):", "",
              "| new sentences streamed | " + " | ".join(map(str, seen)) + " |", "|---|" + "---|" * len(seen)]
    for name, c in curves.items():
        for part in ("old", "new"):
            lines.append(f"| {name}, {part} F1 | " + " | ".join(f"{100 * f:.1f}" for f in c[f"{part}_f1"]) + " |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def main(script_args: OnlineScriptArguments, args: TokenLevelRLConfig, model_args: TokenLevelModelConfig | None = None) -> dict:
    """`model_args.model_name_or_path`: the token-classification backbone (default: the packaged MiniLM, full
    fine-tuning)."""
    model_args = model_args or TokenLevelModelConfig()
    if model_args.use_peft:
        raise ValueError("ner_online fine-tunes every weight (each run restarts from the deployed weights); adapters are not "
                         "wired into it: drop --use_peft / --peft.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    set_seed(args.seed)
    data = load_conll2003(script_args.dataset_dir, script_args.dataset_name)
    label_list = data["train"].features["ner_tags"].feature.names
    old_train, new_train = split_old_new(data["train"], script_args.split, label_list)
    old_dev, new_dev = split_old_new(data["validation"], script_args.split, label_list)
    old_train, stream = first(old_train, script_args.max_old_train), first(new_train, script_args.max_stream)
    eval_sets = {"old": first(old_dev, script_args.max_eval), "new": first(new_dev, script_args.max_eval)}
    logger.info(f"old train {len(old_train)}, stream {len(stream)}, old dev {len(eval_sets['old'])}, new dev {len(eval_sets['new'])}")

    model, tokenizer = load_token_classification_model(model_args.model_name_or_path or DEFAULT_NER_BACKBONE, label_list,
                                                       **model_args.from_pretrained_kwargs(use_cpu=args.use_cpu))
    rewards = [EntitySpanReward(), TokenAccuracyReward()]
    deploy = TokenLevelRLTrainer(model, rewards, args=dataclasses.replace(args, output_dir=f"{args.output_dir}/deploy"),
                                 train_dataset=old_train, processing_class=tokenizer, label_list=label_list)
    deploy.train()
    deployed_state = copy.deepcopy(deploy.model.state_dict())

    curves = {}
    for size in script_args.replay_buffer_sizes:
        set_seed(args.seed)
        model.load_state_dict(deployed_state)
        run_args = dataclasses.replace(args, output_dir=f"{args.output_dir}/replay{size}", replay_buffer_size=size)
        online = TokenLevelRLTrainer(model, rewards, args=run_args, processing_class=tokenizer, label_list=label_list)
        history = online.learn_online(
            [dict(row) for row in stream], seed_examples=[dict(row) for row in old_train], eval_datasets=eval_sets
        )
        name = f"replay {size} (+{run_args.replay_batch_size}/update)" if size else "no replay"
        curves[name] = curves_from(history, args.online_batch_size)
        logger.info(f"{name}: {curves[name]}")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(f"{args.output_dir}/curves.json", "w") as f:
        json.dump(curves, f, indent=1)
    title = (f"CoNLL-2003 {script_args.split} split, MiniLM: deployed on {len(old_train)} old sentences, "
             f"{len(stream)} new streamed in updates of {args.online_batch_size}")
    if script_args.plot_path:
        write_plot(curves, script_args.plot_path, title)
    if script_args.table_path:
        print(write_table(curves, script_args.table_path))
    return curves


if __name__ == "__main__":
    parser = TrlParser((OnlineScriptArguments, TokenLevelRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
