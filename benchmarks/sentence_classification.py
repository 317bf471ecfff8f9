"""Text classification (SST-2) and relation extraction (SemEval-2010 Task 8): CE vs CE + per-example RL (issue 13).

Each run is the task's recipe, run as a user runs it (a subprocess of `recipes/text_classification.py` or
`recipes/relation_extraction.py` with its YAML), on the packaged all-MiniLM-L6-v2 with full fine-tuning; the arms
differ only in `rl_coef` and in the step the RL term starts (`rl_start_step`):

    ce           rl_coef 0: plain cross-entropy fine-tuning (the control)
    ce_rl        rl_coef 1: CE + the policy gradient of K=4 sampled labels, greedy self-critic baseline
    ce_rl_0.3    rl_coef 0.3: the dev sweep's smaller RL weight
    ce_then_rl   rl_coef 1 from half-way (step 150 of 300): the dev sweep's schedule, CE alone first

The RL arm for the task is chosen on dev (the best mean dev score over seeds), never on test.

Rewards: SST-2 `correct_label` (1 for the right label); SemEval `RelationReward` (1 for the right relation and
direction, 0.5 for the right relation in the wrong direction, which the official score counts as wrong). Scores:
SST-2 accuracy and macro-F1 (the local dev split for choices, the GLUE validation set as test); SemEval the official
macro-F1 over the 9 relations with direction, `Other` excluded (dev: every tenth training example; test: the official
2,717). The RL reward is not the reported metric in either task (accuracy counts no partial credit; the official
SemEval score gives the wrong direction none), but both are correctness signals, so this measures whether adding RL to
CE changes the classifier, not an independent judge.

    nice -n 10 python benchmarks/sentence_classification.py grid --tasks sst2 semeval --seeds 1 2 3
    python benchmarks/sentence_classification.py report --write docs/benchmarks.md

One JSON per run in docs/results/<task>/<arm>_seed<seed>.json (the recipe command, its dev and test scores, the
train log). A finished run is skipped; a `.running` file next to it makes other workers skip it too.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import choose_on_dev, grid_report_main, mean_std, run_once, run_recipe_command  # noqa: E402

ARMS = {
    "ce": {"rl_coef": 0.0, "rl_start_step": 0},
    "ce_rl": {"rl_coef": 1.0, "rl_start_step": 0},
    "ce_rl_0.3": {"rl_coef": 0.3, "rl_start_step": 0},
    "ce_then_rl": {"rl_coef": 1.0, "rl_start_step": 150},
}
"""Arm name -> the recipe flags it sets (nothing else differs), in the order a grid runs them."""

TASKS = {
    # max_steps fixes the budget, sized for 2 CPU cores: SST-2 300 x 32 = 9,600 of its 60,614 training sentences;
    # SemEval 300 x 32 = 9,600 examples, 1.33 epochs of its 7,200 (the recipe's default is 3 epochs)
    "sst2": {"recipe": "recipes/text_classification.py", "config": "recipes/configs/text_classification.yaml",
             "results": "docs/results/sst2", "max_steps": 300, "metrics": ("accuracy", "macro_f1"), "key": "accuracy", "scale": 100.0,
             "title": "SST-2 (accuracy / macro-F1, %)"},
    "semeval": {"recipe": "recipes/relation_extraction.py", "config": "recipes/configs/relation_extraction.yaml",
                "results": "docs/results/semeval2010_task8", "max_steps": 300, "metrics": ("macro_f1",), "key": "macro_f1", "scale": 1.0,
                "title": "SemEval-2010 Task 8 (official macro-F1, %, Other excluded)"},
}


def command(task: str, arm: str, seed: int, output_dir: str, max_steps: int | None = None, extra_args=()) -> list[str]:
    """The recipe command of one run: the task's YAML, the arm's `rl_coef`, the seed, a fixed number of steps, CPU;
    the recipe scores dev once at the end and predicts test (`all_results.json`)."""
    spec = TASKS[task]
    steps = max_steps or spec["max_steps"]
    arm_flags = [item for key, value in ARMS[arm].items() for item in (f"--{key}", str(value))]
    return [
        sys.executable, spec["recipe"], "--config", spec["config"], *arm_flags, "--seed", str(seed),
        "--max_steps", str(steps), "--eval_strategy", "no", "--use_cpu", "true",
        "--output_dir", output_dir, "--disable_tqdm", "true", "--logging_steps", "25", *extra_args,
    ]


def run(task: str, arm: str, seed: int, results_dir: Path | None = None, max_steps: int | None = None, extra_args=()) -> Path:
    """One run (the recipe as a subprocess); `max_steps` and `extra_args` (recipe flags) are for smoke tests."""
    results_dir = Path(results_dir or REPO_ROOT / TASKS[task]["results"])
    path = results_dir / f"{arm}_seed{seed}.json"
    if run_once(path, lambda: run_recipe(task, arm, seed, max_steps, extra_args), f"{task}/{path.name}"):
        print(f"wrote {path}", flush=True)
    return path


def run_recipe(task: str, arm: str, seed: int, max_steps: int | None = None, extra_args=()) -> dict:
    """Runs the recipe in a scratch folder (removed after) and returns the run's JSON record."""
    output_dir = tempfile.mkdtemp(prefix=f"{task}_{arm}_seed{seed}_")
    try:
        provenance = run_recipe_command(command(task, arm, seed, output_dir, max_steps, extra_args), REPO_ROOT, output_dir)
        scores = json.loads((Path(output_dir) / "all_results.json").read_text())
        state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
        return {
            "task": task, "arm": arm, **ARMS[arm], "seed": seed,
            "dev": {k[len("eval_"):]: v for k, v in scores.items() if k.startswith("eval_")},
            "test": {k[len("predict_"):]: v for k, v in scores.items() if k.startswith("predict_")},
            "train_log": state["log_history"],
            **provenance,
        }
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


# > Report


def report_task(task: str, results_dir: Path | None = None) -> str | None:
    """One task's table: per arm, mean ± std over seeds of dev and test scores, and the paired per-seed test
    difference to CE; when more than one RL weight ran, the one with the best mean dev score (the task's official
    metric: SST-2 accuracy, SemEval macro-F1) is marked as chosen."""
    spec = TASKS[task]
    results_dir = Path(results_dir or REPO_ROOT / spec["results"])
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(results_dir.glob("*_seed*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["arm"], {})[result["seed"]] = result
    if not runs:
        return None
    metrics, scale, key = spec["metrics"], spec["scale"], spec["key"]  # key: the task's official metric
    order = [arm for arm in ARMS if arm in runs]
    rl_arms = [arm for arm in order if arm != "ce"]
    chosen, shared = choose_on_dev(runs, rl_arms, lambda run: run["dev"][key])
    names = " / ".join(metrics)
    lines = [f"**{spec['title']}**", "",
             f"| arm | rl_coef | RL from step | seeds | dev {names} | test {names} | test {key} − CE (paired) |",
             "|---|---|---|---|---|---|---|"]
    for arm in order:
        seeds = sorted(runs[arm])
        cells = [" / ".join(mean_std([runs[arm][s][split][m] * scale for s in seeds]) for m in metrics) for split in ("dev", "test")]
        paired = "-"
        common = [s for s in seeds if s in runs.get("ce", {})]
        if arm != "ce" and common:
            paired = mean_std([(runs[arm][s]["test"][key] - runs["ce"][s]["test"][key]) * scale for s in common])
            paired += f" (seeds {','.join(map(str, common))})"
        label = f"{arm} (chosen on dev)" if arm == chosen else arm
        rl_from = "-" if ARMS[arm]["rl_coef"] == 0 else str(ARMS[arm]["rl_start_step"])
        lines.append(f"| {label} | {ARMS[arm]['rl_coef']:g} | {rl_from} | {','.join(map(str, seeds))} | {cells[0]} | {cells[1]} "
                     f"| {paired} |")
    if chosen:
        lines += ["", f"Chosen on dev: the RL arm with the best mean dev {key} over the seeds every RL arm has "
                      f"({','.join(map(str, shared))})."]
    return "\n".join(lines)


def report() -> str:
    tables = [t for t in (report_task(task) for task in TASKS) if t]
    if not tables:
        raise SystemExit("No results yet: run the grid first.")
    return "\n\n".join(tables)


TABLE_BEGIN, TABLE_END = "<!-- sentence_classification table: begin -->", "<!-- sentence_classification table: end -->"


def main(argv=None) -> None:
    def run_grid(opts):
        for task in opts.tasks:
            for seed in opts.seeds:
                for arm in opts.arms:
                    run(task, arm, seed)

    def add_tasks(grid):
        grid.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))

    grid_report_main(argv, __doc__, ARMS, run_grid, report, (TABLE_BEGIN, TABLE_END),
                     grid_help="task x seed x arm; finished runs are skipped", add_grid_arguments=add_tasks)

if __name__ == "__main__":
    main()
