"""NER that learns from accept/reject feedback on its shown entities (issue 12): one arm per use of the feedback.

Protocol (fixed; sizes in `benchmarks/configs/ner_feedback/protocol.yaml`):
  1. Warm start: CE on the fixed 1% CoNLL-2003 subset (140 sentences, `conll2003.training_subset`) from the packaged
     MiniLM, once per seed (cached in `--work_dir`, shared by every arm of that seed). That model is the floor.
  2. Stream: the next `stream_sentences` training sentences of the same seed-2003 shuffle (sentences 141-540 by
     default, inside the fixed 10% subset), in `rounds` equal rounds. In each round the *current* model labels the
     round's sentences (argmax, or a sample from the policy for arms with `shown: sample`), the simulated annotator
     (`simulate_feedback`, exact-match acceptance, `--noise` flip rate) judges every shown entity, and the model
     trains `round_training.max_steps` optimizer steps on everything collected so far (same budget for every arm).
  3. After the warm start and after every round: entity F1 (seqeval strict IOB2, the trainer's `evaluate`) on fixed
     dev and test subsets (the first `eval_sentences` of each split shuffled with seed 2003). Dev decides, test
     is reported. Bits = judged shown entities; gold units = words whose gold label the ceiling reads.

Arm options beyond `method` and `shown`: `partial_label_ce: true` (an RL arm also trains partial-label CE on its rows),
`replay_warm: true` (the 1% gold sentences join every round's training rows as all-accepted records: "CE on the 1%
kept in the mix"; they add no bits and no stream gold units).

    python benchmarks/ner_feedback.py run --config benchmarks/configs/ner_feedback/token_rl.yaml --seed 1 --noise 0
    python benchmarks/ner_feedback.py grid --seeds 1 2 3 --noises 0 0.1    # every arm; finished runs are skipped
    python benchmarks/ner_feedback.py summarize --plot docs/ner_feedback.png
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import datasets
import torch
import yaml
from transformers import set_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mean_std, write_between_markers  # noqa: E402
from conll2003 import (  # the fixed 1% subset of the CoNLL benchmark
    SUBSET_SEED,
    training_subset,
)

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import CONLL2003_LABELS, default_conll2003_dir, load_conll2003
from trl_tokenlevel.data.feedback import (
    accepted_span_targets,
    feedback_dataset,
    partial_label_targets,
    simulate_feedback,
)
from trl_tokenlevel.models import load_token_classification_model
from trl_tokenlevel.rewards import SpanFeedbackReward
from trl_tokenlevel.rewards.token.sentence_feedback import SentenceFeedbackReward
from trl_tokenlevel.token_classification.predict import predict_word_labels

CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "ner_feedback"
ARM_ORDER = ("floor", "gold", "partial_label", "token_rl", "sentence_rl", "self_training", "accepted_span",
             "token_rl_sampled", "token_rl_partial_ce", "token_rl_partial_ce_rl0", "partial_label_warm",
             "token_rl_partial_ce_warm")  # the grid's order within a seed: the comparisons that matter most finish first
METHODS = ("floor", "self_training", "accepted_span", "partial_label", "token_rl", "sentence_rl", "gold")
NO_FEEDBACK = ("floor", "self_training", "gold")
RL_REWARDS = {"token_rl": SpanFeedbackReward, "sentence_rl": SentenceFeedbackReward}
QUIET = {"report_to": "none", "save_strategy": "no", "eval_strategy": "no", "disable_tqdm": True, "use_cpu": True,
         "logging_steps": 10_000, "per_device_eval_batch_size": 64}


@functools.lru_cache(maxsize=1)
def _conll():
    return load_conll2003(default_conll2003_dir())


def fixed_data(protocol: dict) -> dict:
    """The warm-start subset, the stream and the dev/test subsets: fixed by SUBSET_SEED, whatever the run's seed."""
    data = _conll()
    warm = training_subset(data["train"], protocol["warm_fraction"])
    start = len(warm)
    stream = data["train"].shuffle(seed=SUBSET_SEED).select(range(start, start + protocol["stream_sentences"]))
    n_eval = protocol["eval_sentences"]
    evals = {split: data[name].shuffle(seed=SUBSET_SEED).select(range(min(n_eval, len(data[name]))))
             for split, name in (("dev", "validation"), ("test", "test"))}
    return {"warm": warm, "stream": stream, **evals}


def trainer_for(model, tokenizer, work_dir: Path, seed: int, training: dict, train_dataset=None, rewards=None):
    args = TokenClassificationRLConfig(output_dir=tempfile.mkdtemp(dir=work_dir), seed=seed, **{**QUIET, **training})
    return TokenLevelRLTrainer(model=model, reward_funcs=rewards, args=args, train_dataset=train_dataset,
                               processing_class=tokenizer, label_list=CONLL2003_LABELS)


def evaluate(trainer, data: dict) -> dict:
    """Entity-level scores (seqeval, strict IOB2) of the trainer's model on the fixed dev and test subsets."""
    scores = {}
    for split in ("dev", "test"):
        metrics = trainer.evaluate(eval_dataset=trainer.prepare_dataset(data[split]), metric_key_prefix=split)
        scores[split] = {k[len(split) + 1 :]: v for k, v in metrics.items()
                         if not k.endswith(("runtime", "per_second", "steps_per_second", "epoch"))}
    return scores


def warm_start(seed: int, protocol: dict, data: dict, work_dir: Path):
    """CE on the 1% subset; cached per seed in `work_dir/warm_seed<seed>` with its dev/test scores."""
    folder = work_dir / f"warm_seed{seed}"
    if not (folder / "scores.json").exists():
        set_seed(seed)
        model, tokenizer = load_token_classification_model(None, CONLL2003_LABELS)
        trainer = trainer_for(model, tokenizer, work_dir, seed, {"rl_coef": 0.0, **protocol["warm_start"]}, data["warm"])
        start, start_cpu = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        scores = evaluate(trainer, data)
        tmp = work_dir / f"warm_seed{seed}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "scores.json").write_text(json.dumps({**scores, "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1)}))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    model, tokenizer = load_token_classification_model(str(folder), CONLL2003_LABELS)
    return model, tokenizer, json.loads((folder / "scores.json").read_text())


def training_rows(method: str, records: list[dict], gold: list[list[int]], ce_weight: bool = False) -> datasets.Dataset:
    """What a method trains on: feedback rows for the RL arms (with partial-label CE weights when `ce_weight`),
    per-word CE targets (-100 = left out) otherwise."""
    if method in RL_REWARDS:
        return feedback_dataset(records, CONLL2003_LABELS, ce_weight=ce_weight)
    to_id = {name: i for i, name in enumerate(CONLL2003_LABELS)}
    targets = {
        "self_training": lambda r, g: [to_id[t] for t in r["shown_labels"]],
        "accepted_span": lambda r, g: accepted_span_targets(r["shown_labels"], r["feedback"], CONLL2003_LABELS),
        "partial_label": lambda r, g: partial_label_targets(r["shown_labels"], r["feedback"], CONLL2003_LABELS),
        "gold": lambda r, g: list(g),
    }[method]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.Value("int64"))})
    return datasets.Dataset.from_dict({"tokens": [r["tokens"] for r in records],
                                       "ner_tags": [targets(r, g) for r, g in zip(records, gold)]}, features=features)


def warm_records(data: dict) -> tuple[list[dict], list[list[int]]]:
    """The 1% warm-start sentences as feedback records on their gold labelling with every entity accepted (`missed`
    0), and their gold tags: what `replay_warm: true` adds to every round's training rows (the gold the warm start
    already used, so no new feedback bits and no new gold units). With them, partial-label CE reads the gold tags and
    `SpanFeedbackReward` rewards keeping the gold entities."""
    names = [[CONLL2003_LABELS[i] for i in tags] for tags in data["warm"]["ner_tags"]]
    records = [dict(simulate_feedback(tags, tags), tokens=list(words), id=f"warm-{sentence_id}")
               for tags, words, sentence_id in zip(names, data["warm"]["tokens"], data["warm"]["id"])]
    return records, [list(tags) for tags in data["warm"]["ner_tags"]]


def annotate(model, tokenizer, sentences, arm: dict, noise: float, seed: int, round_index: int) -> list[dict]:
    """The current model's shown labelling of a round and the simulated annotator's feedback on it."""
    generator = torch.Generator().manual_seed(1000 * seed + round_index)
    shown = predict_word_labels(model, tokenizer, sentences["tokens"], sample=arm.get("shown") == "sample",
                                generator=generator, max_length=128)
    rng = random.Random(f"noise-{seed}-{round_index}")
    gold_names = [[CONLL2003_LABELS[i] for i in tags] for tags in sentences["ner_tags"]]
    return [dict(simulate_feedback(s, g, noise, rng), tokens=list(words), id=str(sentence_id))
            for s, g, words, sentence_id in zip(shown, gold_names, sentences["tokens"], sentences["id"])]


def curve_point(round_index: int, records: list[dict], method: str, scores: dict) -> dict:
    judged = [e for r in records for e in r["feedback"]]
    uses_bits = method not in NO_FEEDBACK
    return {"round": round_index, "stream_sentences": len(records), "bits": len(judged) if uses_bits else 0,
            "accepted": sum(e["accepted"] for e in judged) if uses_bits else 0,
            "gold_units": sum(len(r["tokens"]) for r in records) if method == "gold" else 0,
            "dev_f1": scores["dev"]["f1"], "test_f1": scores["test"]["f1"], "dev": scores["dev"], "test": scores["test"]}


def load_arm(config_path: str, overrides: list[str]) -> tuple[dict, dict]:
    arm = yaml.safe_load(Path(config_path).read_text())
    protocol = yaml.safe_load((CONFIG_DIR / "protocol.yaml").read_text())
    for item in overrides:  # dotted key=value, YAML values: round_training.max_steps=2
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        target = protocol if parents and parents[0] in protocol or key in protocol else arm
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = yaml.safe_load(value)
    if arm.get("method") not in METHODS:
        raise ValueError(f"{config_path}: method {arm.get('method')!r} is not one of {METHODS}.")
    if arm.get("replay_warm") and arm["method"] in ("floor", "gold"):
        raise ValueError(f"{config_path}: replay_warm adds the 1% gold rows to each round's training rows; method "
                         f"{arm['method']!r} has no rounds (floor) or already trains on gold labels (gold).")
    if arm.get("partial_label_ce") and arm["method"] not in RL_REWARDS:
        raise ValueError(f"{config_path}: partial_label_ce mixes CE into an RL arm; method {arm['method']!r} is not one "
                         f"of {sorted(RL_REWARDS)} (use method: partial_label for partial-label CE alone).")
    return arm, protocol


def run_name(arm: dict, seed: int, noise: float) -> str:
    return f"{arm['name']}_noise{noise:g}_seed{seed}"


def run(config_path: str, seed: int, noise: float, results_dir: str, work_dir: str, overrides=()) -> dict | None:
    """One arm, one seed, one noise rate; writes `<results_dir>/<name>_noise<noise>_seed<seed>.json` (skipped if
    it exists: the grid resumes by name)."""
    arm, protocol = load_arm(config_path, list(overrides))
    out = Path(results_dir) / f"{run_name(arm, seed, noise)}.json"
    if out.exists():
        print(f"{out.name}: exists, skipped")
        return None
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data = fixed_data(protocol)
    model, tokenizer, warm_scores = warm_start(seed, protocol, data, work)
    method, rounds = arm["method"], protocol["rounds"]
    curve, records, gold = [curve_point(0, [], method, warm_scores)], [], []
    start, start_cpu = time.perf_counter(), time.process_time()
    per_round = len(data["stream"]) // rounds
    replay, replay_gold = warm_records(data) if arm.get("replay_warm") else ([], [])  # the 1% gold, every round
    for round_index in range(1, rounds + 1 if method != "floor" else 1):
        sentences = data["stream"][(round_index - 1) * per_round : round_index * per_round]
        records += annotate(model, tokenizer, sentences, arm, noise, seed, round_index)
        gold += sentences["ner_tags"]
        rewards = None
        if method in RL_REWARDS:
            rewards = [RL_REWARDS[method](**arm.get("reward_kwargs", {}))]
        training = {**protocol["round_training"], **arm.get("training", {})}
        if method not in RL_REWARDS:
            training["rl_coef"] = 0.0
        partial_ce = bool(arm.get("partial_label_ce", False))  # CE on accepted entities and shown O, beside RL
        if partial_ce:
            training["ce_weight_column"] = "ce_weight"
        set_seed(1000 * seed + round_index)
        trainer = trainer_for(model, tokenizer, work, 1000 * seed + round_index, training,
                              training_rows(method, records + replay, gold + replay_gold, ce_weight=partial_ce),
                              rewards)
        trainer.train()
        curve.append(curve_point(round_index, records, method, evaluate(trainer, data)))
        print(f"{run_name(arm, seed, noise)} round {round_index}: bits {curve[-1]['bits']} "
              f"dev F1 {curve[-1]['dev_f1']:.4f} test F1 {curve[-1]['test_f1']:.4f} "
              f"(cpu {time.process_time() - start_cpu:.0f}s, wall {time.perf_counter() - start:.0f}s)", flush=True)
    result = {
        "name": arm["name"], "method": method, "shown": arm.get("shown", "argmax"), "seed": seed, "noise": noise,
        "config_file": config_path, "overrides": list(overrides), "arm": arm, "protocol": protocol,
        "round_training": training if method != "floor" else None,  # as the trainer got it (arm + protocol)
        "subsets": {"warm_start": len(data["warm"]), "stream": len(data["stream"]), "dev": len(data["dev"]),
                    "test": len(data["test"]), "subset_seed": SUBSET_SEED,
                    "warm_start_gold_words": sum(len(t) for t in data["warm"]["tokens"])},
        "warm_start_train_seconds": warm_scores.get("train_seconds"),
        "warm_start_train_cpu_seconds": warm_scores.get("train_cpu_seconds"),
        "rounds_seconds": round(time.perf_counter() - start, 1),
        "rounds_cpu_seconds": round(time.process_time() - start_cpu, 1),  # all threads of this process
        "curve": curve, "final": {k: curve[-1][k] for k in ("bits", "gold_units", "dev_f1", "test_f1")},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.rename(out)
    print(f"{out.name}: dev F1 {result['final']['dev_f1']:.4f} test F1 {result['final']['test_f1']:.4f}", flush=True)
    return result


def load_results(results_dir: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]


def _percent(values: list[float]) -> str:
    """`mean ± std` of F1 fractions, in points."""
    return mean_std([100 * v for v in values])


LEGEND = {"floor": "floor: CE on the 1% only", "self_training": "self-training (no feedback)",
          "accepted_span": "CE on accepted spans (rest O)", "partial_label": "partial-label CE (rejected masked)",
          "token_rl": "token-level RL (SpanFeedbackReward)", "token_rl_sampled": "token-level RL, sampled shown",
          "sentence_rl": "sentence-level RL", "gold": "ceiling: CE on gold labels",
          "token_rl_partial_ce": "token-level RL + partial-label CE",
          "token_rl_partial_ce_rl0": "the same, policy gradient off (rl_coef 0)",
          "partial_label_warm": "partial-label CE + the 1% gold replayed",
          "token_rl_partial_ce_warm": "token-level RL + partial-label CE + the 1% gold replayed", "token_rl_o0.5": "token-level RL, O trusted (0.5)",
          "token_rl_reject0.3": "token-level RL, reject weight 0.3", "token_rl_lr1e-4": "token-level RL, lr 1e-4"}


PAIRS = (  # (arm, reference): the paired comparisons the reading rests on; the same seed = the same warm start
    ("token_rl_partial_ce", "partial_label"), ("token_rl_partial_ce", "token_rl_partial_ce_rl0"),
    ("token_rl_partial_ce_rl0", "partial_label"), ("token_rl_partial_ce", "token_rl"), ("token_rl", "sentence_rl"),
    ("token_rl_partial_ce", "gold"), ("partial_label", "gold"),
    ("token_rl_partial_ce_warm", "token_rl_partial_ce"), ("partial_label_warm", "partial_label"),
)
TABLE_BEGIN, TABLE_END = "<!-- ner_feedback table: begin -->", "<!-- ner_feedback table: end -->"


def paired(rows: list[dict], pairs=PAIRS) -> str:
    """Per-seed differences `arm - reference` in final dev and test F1 (points), per noise level, over the seeds both
    have; an arm that reads no feedback (the gold ceiling) is compared at its noise-free run."""
    final = {(r["name"], r["noise"], r["seed"]): r["final"] for r in rows}
    no_feedback = {r["name"] for r in rows if r["method"] in NO_FEEDBACK}
    lines = ["| noise | arm − reference | seeds | dev F1 difference per seed | mean ± std | test F1 difference per seed "
             "| mean ± std |", "|---|---|---|---|---|---|---|"]
    for noise in sorted({r["noise"] for r in rows}):
        for arm, reference in pairs:
            ref_noise = 0.0 if reference in no_feedback else noise
            seeds = sorted(s for (name, n, s) in final if name == arm and n == noise
                           and (reference, ref_noise, s) in final)
            if not seeds:
                continue
            cells = []
            for metric in ("dev_f1", "test_f1"):
                diffs = [100 * (final[(arm, noise, s)][metric] - final[(reference, ref_noise, s)][metric]) for s in seeds]
                cells += [", ".join(f"{d:+.2f}" for d in diffs), mean_std(diffs)]
            lines.append(f"| {noise:g} | {arm} − {reference} | {','.join(map(str, seeds))} | {' | '.join(cells)} |")
    return "\n".join(lines)


RECIPE_METHODS = ("partial_label", "accepted_span", "token_rl", "token_rl_partial_ce", "sentence_rl")
"""The arms `recipes/ner_feedback.py` can run as a `--method` (the others are controls or need the benchmark's data)."""


def dev_choice(rows: list[dict], expected_seeds=(1, 2, 3)) -> str:
    """The recipe default's rule: of the arms the recipe can run (`RECIPE_METHODS`) with every expected seed at every
    noise level the feedback arms ran at, the best mean dev F1 over those runs."""
    noises = sorted({r["noise"] for r in rows if r["method"] not in NO_FEEDBACK})
    dev = defaultdict(dict)
    for r in rows:
        if r["name"] in RECIPE_METHODS:
            dev[r["name"]][(r["noise"], r["seed"])] = r["final"]["dev_f1"]
    full = {name: runs for name, runs in dev.items()
            if all((n, s) in runs for n in noises for s in expected_seeds)}
    if not full:
        return "No feedback arm has every seed at every noise level yet."
    ranked = sorted(full, key=lambda name: -statistics.fmean(full[name].values()))
    scores = ", ".join(f"{name} {100 * statistics.fmean(full[name].values()):.2f}" for name in ranked[:4])
    return (f"Mean dev F1 over noise {', '.join(f'{n:g}' for n in noises)} and seeds "
            f"{', '.join(map(str, expected_seeds))}, of the arms the recipe can run (the recipe default's rule): "
            f"{scores}; best: {ranked[0]}.")


def summarize(results_dir: str, plot_path: str | None = None, expected_seeds=(1, 2, 3)) -> str:
    """Markdown tables (final round, mean ± std over seeds; the paired comparisons; the dev choice) and, optionally,
    the plot of test F1 against bits."""
    groups = defaultdict(list)
    for row in load_results(results_dir):
        groups[(row["noise"], METHODS.index(row["method"]), row["name"])].append(row)
    lines = ["| noise | arm | shown | seeds | feedback bits | gold word labels (stream) | dev F1 | test F1 | missing |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (noise, _, name), runs in sorted(groups.items()):
        missing = sorted(set(expected_seeds) - {r["seed"] for r in runs})
        bits = [r["final"]["bits"] for r in runs]
        lines.append(f"| {noise:g} | {name} | {runs[0]['shown']} | {len(runs)} | {statistics.mean(bits):.0f} | "
                     f"{statistics.mean(r['final']['gold_units'] for r in runs):.0f} | "
                     f"{_percent([r['final']['dev_f1'] for r in runs])} | "
                     f"{_percent([r['final']['test_f1'] for r in runs])} | "
                     f"{'seeds ' + ', '.join(map(str, missing)) if missing else '-'} |")
    table = "\n".join(lines)
    if groups:
        rows = load_results(results_dir)
        table += ("\n\nPaired differences (points of F1; the same seed starts from the same warm-started model and "
                  "sees the same stream):\n\n" + paired(rows) + "\n\n" + dev_choice(rows, expected_seeds))
    print(table if groups else f"No run JSONs in {results_dir} yet.")
    if plot_path and groups:
        plot(groups, plot_path)
    return table


PLOT_ARMS = {  # arm -> colour: the same colour on every panel; ablations (`*_rl0`, `*_warm`) stay in the table only
    "accepted_span": "tab:blue", "partial_label": "tab:orange", "token_rl": "tab:red",
    "token_rl_partial_ce": "tab:purple", "token_rl_sampled": "tab:brown", "sentence_rl": "tab:pink",
}


def plot(groups: dict, plot_path: str) -> None:
    """Test F1 after each round against the feedback bits used so far (mean ± std over seeds), one colour per arm
    (`PLOT_ARMS`; the ablation arms are left to the table); arms that use no bits (floor, self-training, the gold
    ceiling: run once, at noise 0, as they read no feedback) are drawn as horizontal lines at their final test F1 on
    every panel, one line style each. One legend, under the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference_styles = {"floor": ("grey", ":"), "self_training": ("grey", "-."), "gold": ("black", "--")}
    references = {name: runs for (_, _, name), runs in groups.items() if runs[0]["final"]["bits"] == 0}
    noises = sorted({key[0] for key, runs in groups.items() if runs[0]["final"]["bits"] > 0})
    fig, axes = plt.subplots(1, len(noises), figsize=(6.5 * len(noises), 5.2), squeeze=False, sharey=True)
    for ax, noise in zip(axes[0], noises):
        for name, runs in references.items():
            color, style = reference_styles.get(name, ("grey", "--"))
            final = statistics.mean(100 * r["curve"][-1]["test_f1"] for r in runs)
            ax.axhline(final, linestyle=style, linewidth=1.2, color=color,
                       label=f"{LEGEND.get(name, name)} ({len(runs)} seeds)")  # fmt: skip
        for (group_noise, _, name), runs in sorted(groups.items(), key=lambda item: list(PLOT_ARMS).index(
                item[0][2]) if item[0][2] in PLOT_ARMS else -1):
            if group_noise != noise or name in references or name not in PLOT_ARMS:
                continue
            rounds = min(len(r["curve"]) for r in runs)
            f1 = [[100 * r["curve"][i]["test_f1"] for r in runs] for i in range(rounds)]
            means = [statistics.mean(v) for v in f1]
            stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in f1]
            bits = [statistics.mean(r["curve"][i]["bits"] for r in runs) for i in range(rounds)]
            ax.errorbar(bits, means, yerr=stds, marker="o", capsize=3, color=PLOT_ARMS[name],
                        label=f"{LEGEND.get(name, name)} ({len(runs)} seeds)")
        ax.set_title(f"CoNLL-2003, MiniLM from the 1% subset: annotator noise {noise:g}")
        ax.set_xlabel("feedback bits used (accept/reject of shown entities)")
        ax.set_ylabel("test entity F1 (seqeval strict, %)")
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes[0]:  # one legend entry per arm, whichever panel has it
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label.rsplit(" (", 1)[0], (handle, label))
    fig.legend([h for h, _ in handles.values()], [label for _, label in handles.values()], loc="lower center",
               ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(plot_path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("run", "grid"):
        p = sub.add_parser(command)
        p.add_argument("--results_dir", default="docs/results/ner_feedback")
        p.add_argument("--work_dir", default=str(Path(tempfile.gettempdir()) / "ner_feedback_work"),
                       help="warm-start models (one per seed) and trainer scratch; not results")
        p.add_argument("--set", nargs="*", default=[], help="overrides key=value, e.g. round_training.max_steps=2")
        if command == "run":
            p.add_argument("--config", required=True)
            p.add_argument("--seed", type=int, default=1)
            p.add_argument("--noise", type=float, default=0.0)
        else:
            p.add_argument("--configs", nargs="*", default=None, help="arm YAMLs (default: all but protocol.yaml)")
            p.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
            p.add_argument("--noises", nargs="*", type=float, default=[0.0])
    p_sum = sub.add_parser("summarize")
    p_sum.add_argument("--results_dir", default="docs/results/ner_feedback")
    p_sum.add_argument("--plot", default="docs/ner_feedback.png")
    p_sum.add_argument("--write", default=None, help="markdown file whose text between the table markers is replaced")
    args = parser.parse_args()
    if args.command == "run":
        run(args.config, args.seed, args.noise, args.results_dir, args.work_dir, args.set)
    elif args.command == "grid":
        configs = args.configs or [str(CONFIG_DIR / f"{name}.yaml") for name in ARM_ORDER]
        for noise in args.noises:
            for seed in args.seeds:
                for config in configs:
                    if noise > 0 and yaml.safe_load(Path(config).read_text())["method"] in NO_FEEDBACK:
                        continue  # reads no feedback: the noise-free run is its result at every noise rate
                    run(config, seed, noise, args.results_dir, args.work_dir, args.set)
    else:
        table = summarize(args.results_dir, args.plot)
        if args.write and not load_results(args.results_dir):
            raise SystemExit(f"No run JSONs in {args.results_dir}: nothing to write into {args.write}.")
        if args.write:
            write_between_markers(Path(args.write), table, TABLE_BEGIN, TABLE_END)


if __name__ == "__main__":
    main()
