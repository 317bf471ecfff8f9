"""Extractive QA: cross-entropy vs cross-entropy + span-F1 policy gradient (the DCN+ comparison, issue 13).

DCN+ (Xiong et al., ICLR 2018) mixed the CE of the gold start/end with self-critical policy learning on the word-
overlap F1 of the sampled span and reported +0.7 EM / +1.0 F1 on SQuAD in its ablation. This benchmark asks the same
question of `QuestionAnsweringRLTrainer` on the packaged all-MiniLM-L6-v2 and the SQuAD v1.1 dev file re-split by
article (`../shared/data/squad`: 8,195 train / 1,145 dev / 1,230 test questions):

    warm start   CE only, `warm_steps` steps on the first `warm_questions` training questions of a per-seed shuffle
                 (cached per seed in --work_dir and shared by every arm of that seed; its dev EM/F1 is recorded)
    ce           continues from the warm start with CE only, `steps` steps on the remaining training questions
    ce_rl        the same steps, data order and learning rate, with `rl_coef` x the span-F1 policy gradient added
                 (K=4 sampled spans per window, greedy self-critic baseline as in DCN+)
    ce_rl_0.3    the dev sweep's smaller RL weight
    ce_then_rl   the dev sweep's schedule: CE alone for the first `rl_start_step` (50) of the arm's steps, then ce_rl

The arms differ only in `rl_coef` and `rl_start_step` (one YAML per arm in benchmarks/configs/question_answering/);
the RL arm is chosen on dev (highest mean dev F1), never on test. Every arm is scored
with the official SQuAD v1.1 EM and F1 on dev (for choices) and test (reported). The RL arms are trained on a span-F1
reward, which is the same word-overlap F1 that the official metric computes, so F1 is here the trained signal too;
EM is the other official number, and the CE arm is the control.

    nice -n 10 python benchmarks/question_answering.py run --config benchmarks/configs/question_answering/ce_rl.yaml --seed 1
    nice -n 10 python benchmarks/question_answering.py grid --seeds 1 2 3       # every arm; skips finished runs
    python benchmarks/question_answering.py report --write docs/benchmarks.md   # the table from the JSONs

One JSON per run in docs/results/question_answering/<arm>_seed<seed>.json (config, warm-start scores, dev and test
EM/F1, train log, test predictions). A run whose JSON exists is skipped; a `.running` file next to it makes other
workers skip it too (delete it after a killed run), so two grids can share the queue.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import choose_on_dev, config_from_yaml, mean_std, run_once, write_between_markers  # noqa: E402

RESULTS_DIR = REPO_ROOT / "docs" / "results" / "question_answering"
CONFIG_DIR = REPO_ROOT / "benchmarks" / "configs" / "question_answering"
WORK_DIR = REPO_ROOT / ".cache" / "question_answering"
ARMS = ("ce", "ce_rl", "ce_rl_0.3", "ce_then_rl")
"""In the order a grid runs them: the control, the DCN+ mix at full weight, the smaller RL weight, the CE-then-RL
schedule."""


@dataclasses.dataclass
class QAConfig:
    """One run; `benchmarks/configs/question_answering/<arm>.yaml` sets `arm`, `rl_coef` and `rl_start_step` and
    nothing else."""

    arm: str = "ce"
    rl_coef: float = 0.0
    rl_start_step: int = 0  # the arm's step from which the RL term is on (CE alone before)
    seed: int = 1
    warm_steps: int = 150
    warm_questions: int = 2800
    warm_learning_rate: float = 1e-4
    warm_warmup_steps: int = 15
    steps: int = 100
    learning_rate: float = 1e-4
    batch_size: int = 16
    num_samples: int = 4
    baseline: str = "greedy"
    max_length: int = 256
    doc_stride: int = 64
    eval_batch_size: int = 64
    max_eval_samples: int | None = None
    num_threads: int = 1

    def __post_init__(self):
        if not 0 <= self.rl_start_step < self.steps:
            raise ValueError(f"rl_start_step={self.rl_start_step} must be in [0, steps={self.steps}).")

    @classmethod
    def from_yaml(cls, path, **overrides) -> QAConfig:
        config = config_from_yaml(cls, path, overrides)
        if config.arm not in ARMS:
            raise ValueError(f"{path}: arm={config.arm!r} is not one of {ARMS}.")
        if (config.arm == "ce") != (config.rl_coef == 0):
            raise ValueError(f"{path}: arm={config.arm!r} with rl_coef={config.rl_coef}: only the 'ce' arm has rl_coef 0.")
        return config

    @property
    def name(self) -> str:
        return f"{self.arm}_seed{self.seed}"

    def warm_key(self) -> str:
        """The warm-start folder name: every field the warm start depends on."""
        return (f"warm_seed{self.seed}_steps{self.warm_steps}_q{self.warm_questions}_lr{self.warm_learning_rate:g}_"
                f"bs{self.batch_size}_len{self.max_length}_stride{self.doc_stride}_eval{self.max_eval_samples}")


# > Data


def split_training_questions(num_questions: int, warm_questions: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the warm-start questions and of the continuation questions: a per-seed shuffle of the training
    split, the first `warm_questions` for the warm start, the rest for the arms (disjoint, so no arm sees a question
    twice)."""
    if not 0 < warm_questions < num_questions:
        raise ValueError(f"warm_questions={warm_questions} must be between 1 and {num_questions - 1}.")
    order = list(range(num_questions))
    random.Random(f"squad-warm-{seed}").shuffle(order)
    return order[:warm_questions], order[warm_questions:]


def load_data(config: QAConfig):
    from trl_tokenlevel.data.squad import default_squad_dir, load_squad

    folder = default_squad_dir()
    if folder is None:
        raise SystemExit("The benchmark reads ../shared/data/squad (dev-v1.1.json + splits.json); it is not there.")
    return load_squad(str(folder), None, max_eval_samples=config.max_eval_samples)


# > Training


def _args(config: QAConfig, output_dir: str, **overrides):
    from trl_tokenlevel import QuestionAnsweringRLConfig

    return QuestionAnsweringRLConfig(
        output_dir=output_dir, per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.eval_batch_size,
        max_length=config.max_length, doc_stride=config.doc_stride, num_samples=config.num_samples,
        baseline=config.baseline, kl_coef=0.0, ce_coef=1.0, logging_steps=10, report_to="none", use_cpu=True,
        save_strategy="no", disable_tqdm=True, seed=config.seed, **overrides,
    )


def rl_coef_args(config: QAConfig) -> dict:
    """The arm's RL weight for the trainer: a constant `rl_coef`, or (`rl_start_step` > 0) a step schedule that is 0
    before `rl_start_step` and `rl_coef` from there (`QuestionAnsweringRLConfig` has no `rl_start_step` field, unlike
    the sequence classifier's config; the step `rl_coef_schedule` does the same)."""
    if config.rl_start_step == 0:
        return {"rl_coef": config.rl_coef}
    schedule = {"type": "step", "values": [0.0, config.rl_coef], "boundaries": [config.rl_start_step]}
    return {"rl_coef": config.rl_coef, "rl_coef_schedule": schedule}


def _scores(metrics: dict, prefix: str) -> dict:
    return {"exact_match": metrics[f"{prefix}_exact_match"], "f1": metrics[f"{prefix}_f1"]}


def warm_start(config: QAConfig, data, work_dir: Path) -> Path:
    """CE on the warm-start questions; cached in `work_dir/<warm_key>` with its dev scores (waits while another
    worker trains it)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, set_seed

    from trl_tokenlevel import TokenLevelRLTrainer
    from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, resolve_model_path

    folder = Path(work_dir) / config.warm_key()
    lock = folder.parent / f"{folder.name}.running"  # not with_suffix: the key has dots (lr0.0001)
    while lock.exists() and not (folder / "scores.json").exists():
        print(f"waiting for {folder.name} (another worker trains it; delete {lock} if none does)", flush=True)
        time.sleep(30)
    if (folder / "scores.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    try:
        set_seed(config.seed)  # the new qa_outputs head
        path = resolve_model_path(DEFAULT_NER_BACKBONE)
        model = AutoModelForQuestionAnswering.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        warm_ids, _ = split_training_questions(len(data["train"]), config.warm_questions, config.seed)
        args = _args(config, tempfile.mkdtemp(dir=work_dir), max_steps=config.warm_steps, rl_coef=0.0,
                     learning_rate=config.warm_learning_rate, warmup_steps=config.warm_warmup_steps,
                     lr_scheduler_type="constant_with_warmup")  # fmt: skip
        trainer = TokenLevelRLTrainer(model=model, args=args, train_dataset=data["train"].select(warm_ids),
                                      processing_class=tokenizer)  # fmt: skip
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        dev = trainer.predict(data["validation"], metric_key_prefix="dev").metrics
        trainer.save_model(str(folder))
        scores = {"dev": _scores(dev, "dev"), "train_seconds": round(train_seconds, 1),
                  "train_log": [e for e in trainer.state.log_history if "loss" in e]}
        (folder / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    finally:
        lock.unlink(missing_ok=True)
    return folder


def train_one(config: QAConfig, work_dir: Path = WORK_DIR) -> dict:
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, set_seed

    from trl_tokenlevel import TokenLevelRLTrainer

    torch.set_num_threads(config.num_threads)
    data = load_data(config)
    warm = warm_start(config, data, work_dir)
    set_seed(config.seed)
    model = AutoModelForQuestionAnswering.from_pretrained(warm)
    tokenizer = AutoTokenizer.from_pretrained(warm)
    _, rest_ids = split_training_questions(len(data["train"]), config.warm_questions, config.seed)
    args = _args(config, tempfile.mkdtemp(dir=work_dir), max_steps=config.steps, **rl_coef_args(config),
                 learning_rate=config.learning_rate, lr_scheduler_type="linear", warmup_steps=0)  # fmt: skip
    trainer = TokenLevelRLTrainer(model=model, args=args, train_dataset=data["train"].select(rest_ids),
                                  processing_class=tokenizer)  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    dev = trainer.predict(data["validation"], metric_key_prefix="dev")
    test = trainer.predict(data["test"], metric_key_prefix="test")
    return {
        "name": config.name,
        "config": dataclasses.asdict(config),
        "warm_start": json.loads((warm / "scores.json").read_text()),
        "dev": _scores(dev.metrics, "dev"),
        "test": _scores(test.metrics, "test"),
        "num_dev_questions": len(data["validation"]),
        "num_test_questions": len(data["test"]),
        "train_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / config.steps, 2),
        "train_log": [e for e in trainer.state.log_history if "loss" in e],
        "test_predictions": test.predictions,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "machine": f"{os.cpu_count()} CPU cores, torch threads {config.num_threads}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run(config: QAConfig, results_dir: Path = RESULTS_DIR, work_dir: Path = WORK_DIR, force: bool = False) -> Path:
    """One run: `<results_dir>/<arm>_seed<seed>.json`, skipped when it exists (unless `force`) or another worker runs
    it."""
    path = Path(results_dir) / f"{config.name}.json"
    if force:
        path.unlink(missing_ok=True)
    if run_once(path, lambda: train_one(config, Path(work_dir)), config.name):
        result = json.loads(path.read_text())
        print(f"wrote {path}: dev F1 {result['dev']['f1']:.2f}, test F1 {result['test']['f1']:.2f}", flush=True)
    return path


# > Report


def load_results(results_dir: Path = RESULTS_DIR) -> dict[str, dict[int, dict]]:
    by_arm: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(results_dir).glob("*_seed*.json")):
        result = json.loads(path.read_text())
        by_arm.setdefault(result["config"]["arm"], {})[result["config"]["seed"]] = result
    return by_arm


def report(results_dir: Path = RESULTS_DIR) -> str:
    """The results table: per arm, mean ± std over seeds of dev and test EM/F1, and the paired per-seed difference to
    the CE arm on test; when more than one RL weight ran, the one chosen on dev (highest mean dev F1) is marked."""
    by_arm = load_results(results_dir)
    if not by_arm:
        raise SystemExit(f"No results in {results_dir}: run the grid first.")
    order = [arm for arm in ARMS if arm in by_arm]
    rl_arms = [arm for arm in order if arm != "ce"]
    chosen, shared = choose_on_dev(by_arm, rl_arms, lambda run: run["dev"]["f1"]) if "ce" in by_arm else (None, [])
    lines = [
        "| arm | rl_coef | RL from step | seeds | dev EM | dev F1 | test EM | test F1 | test EM − CE (paired) | test F1 − CE (paired) "
        "| s/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    warm = [r["warm_start"]["dev"] for runs in by_arm.values() for r in runs.values()]
    warm_by_seed = {r["config"]["seed"]: r["warm_start"]["dev"] for runs in by_arm.values() for r in runs.values()}
    if warm:
        lines.append(f"| warm start (CE, shared) | 0 | - | {','.join(map(str, sorted(warm_by_seed)))} | "
                     f"{mean_std([w['exact_match'] for w in warm_by_seed.values()])} | "
                     f"{mean_std([w['f1'] for w in warm_by_seed.values()])} | - | - | - | - | - |")
    for arm in order:
        runs = by_arm[arm]
        seeds = sorted(runs)
        cells = [mean_std([runs[s][split][metric] for s in seeds]) for split in ("dev", "test") for metric in ("exact_match", "f1")]
        paired = ["-", "-"]
        if arm != "ce" and "ce" in by_arm:
            common = [s for s in seeds if s in by_arm["ce"]]
            if common:
                paired = [mean_std([runs[s]["test"][m] - by_arm["ce"][s]["test"][m] for s in common]) + f" (seeds {','.join(map(str, common))})"
                          for m in ("exact_match", "f1")]
        label = f"{arm} (chosen on dev)" if arm == chosen else arm
        config = runs[seeds[0]]["config"]
        rl_from = "-" if config["rl_coef"] == 0 else str(config.get("rl_start_step", 0))
        lines.append(f"| {label} | {config['rl_coef']:g} | {rl_from} | {','.join(map(str, seeds))} | " + " | ".join(cells)
                     + f" | {paired[0]} | {paired[1]} | {mean_std([runs[s]['seconds_per_step'] for s in seeds])} |")
    first = next(iter(next(iter(by_arm.values())).values()))
    lines += ["", f"Dev {first['num_dev_questions']} and test {first['num_test_questions']} questions; official SQuAD v1.1 "
              "EM/F1 in percent; mean ± std over seeds; the paired columns are the per-seed differences to the CE arm."
              + (f" Chosen on dev: the RL arm with the best mean dev F1 over the seeds every RL arm has "
                 f"({','.join(map(str, shared))})." if chosen else "")]
    return "\n".join(lines)


TABLE_BEGIN, TABLE_END = "<!-- question_answering table: begin -->", "<!-- question_answering table: end -->"


def write_table(path: Path, table: str) -> None:
    write_between_markers(path, table, TABLE_BEGIN, TABLE_END)


# > CLI


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one run (skipped when its JSON exists)")
    one.add_argument("--config", required=True)
    one.add_argument("--seed", type=int)
    one.add_argument("--results_dir", default=str(RESULTS_DIR))
    one.add_argument("--work_dir", default=str(WORK_DIR), help="warm-start models and trainer scratch; not results")
    one.add_argument("--force", action="store_true", help="rerun even if the JSON exists (overwrites it)")
    grid = sub.add_parser("grid", help="every arm x seed, seed by seed; finished runs are skipped")
    grid.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    grid.add_argument("--arms", nargs="+", default=list(ARMS))
    grid.add_argument("--results_dir", default=str(RESULTS_DIR))
    grid.add_argument("--work_dir", default=str(WORK_DIR))
    rep = sub.add_parser("report", help="the table (stdout) from the JSONs")
    rep.add_argument("--results_dir", default=str(RESULTS_DIR))
    rep.add_argument("--write", default=None, help="markdown file whose text between the table markers is replaced")
    opts = parser.parse_args(argv)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if opts.command == "run":
        run(QAConfig.from_yaml(opts.config, seed=opts.seed), Path(opts.results_dir), Path(opts.work_dir), force=opts.force)
    elif opts.command == "grid":
        for seed in opts.seeds:
            for arm in opts.arms:
                run(QAConfig.from_yaml(CONFIG_DIR / f"{arm}.yaml", seed=seed), Path(opts.results_dir), Path(opts.work_dir))
    else:
        table = report(Path(opts.results_dir))
        print(table)
        if opts.write:
            write_table(Path(opts.write), table)


if __name__ == "__main__":
    main()
