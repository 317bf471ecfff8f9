"""SAMSum next-turn dialogue: SmolLM2-135M-Instruct before and after token-level RL, 3 seeds (issue 14).

Each run is `recipes/dialogue.py` with its YAML, run as a user runs it (a subprocess), with the budget cut to fit two
CPU cores (the cuts are the flags in `BUDGET`, the same for every seed): the model plays one speaker of a SAMSum chat
and writes the next turn; rewards are per-token reference overlap (unigram credit), a length penalty and entity
faithfulness (capitalised names absent from the chat); evaluation is greedy on held-out next turns of SAMSum *test*
dialogues (training reads validation dialogues): ROUGE-L F1 against the real next turn, reply length, and a judged
hallucination rate from a judge that is not the reward (numbers and mid-sentence capitalised words absent from the
chat, `recipes/dialogue.py::judge_unsupported`; the reward never looks at numbers and counts sentence-initial names
too). Nothing is tuned: the recipe's defaults plus the cuts, fixed before the first run.

    nice -n 10 python benchmarks/samsum_dialogue.py grid --seeds 1 2 3
    python benchmarks/samsum_dialogue.py report --write docs/benchmarks.md

One JSON per run in docs/results/samsum_dialogue/<arm>_seed<seed>.json (the command, the before/after scores, the
train log, every evaluated reply). A finished run is skipped; a `.running` file next to it makes other workers skip it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import grid_report_main, mean_std, run_once, run_recipe_command  # noqa: E402

RESULTS = REPO_ROOT / "docs" / "results" / "samsum_dialogue"
ARMS = {"token": ["--overlap_reward", "token"], "rougeL": ["--overlap_reward", "rougeL"]}
"""Arm -> recipe flags: `token` = per-token reference overlap (the recipe's default); `rougeL` = one ROUGE-L F1 per
reply (the sequence-level counterpart, same length and faithfulness rewards)."""

BUDGET = ["--max_steps", "20", "--max_context_turns", "4", "--max_new_tokens", "24", "--max_prompt_length", "192",
          "--max_eval_examples", "64", "--eval_max_new_tokens", "40"]
"""The cuts to the recipe's YAML (32 steps, 6 context turns, 32 new tokens, prompts up to 256 tokens): a step took
~100 s on one core with the YAML's sizes; these bring a run to ~20 minutes."""

METRICS = ("rougeL", "mean_words", "judged_hallucination_rate", "replies_with_unsupported")
LABELS = {"rougeL": "ROUGE-L F1", "mean_words": "words per reply", "judged_hallucination_rate": "judged unsupported claims (%)",
          "replies_with_unsupported": "replies with an unsupported claim (%)"}


def command(arm: str, seed: int, output_dir: str, extra_args=()) -> list[str]:
    return [sys.executable, "recipes/dialogue.py", "--config", "recipes/configs/dialogue.yaml", *ARMS[arm], *BUDGET,
            "--seed", str(seed), "--output_dir", output_dir, "--results_path", os.path.join(output_dir, "results.json"),
            "--disable_tqdm", "true", *extra_args]


def run(arm: str, seed: int, results_dir: Path | None = None, extra_args=()) -> Path:
    """One run (the recipe as a subprocess); `extra_args` (recipe flags, applied last) are for smoke tests."""
    path = Path(results_dir or RESULTS) / f"{arm}_seed{seed}.json"
    if run_once(path, lambda: run_recipe(arm, seed, extra_args), f"dialogue/{path.name}"):
        print(f"wrote {path}", flush=True)
    return path


def run_recipe(arm: str, seed: int, extra_args=()) -> dict:
    output_dir = tempfile.mkdtemp(prefix=f"dialogue_{arm}_seed{seed}_")
    try:
        provenance = run_recipe_command(command(arm, seed, output_dir, extra_args), REPO_ROOT, output_dir)
        results = json.loads((Path(output_dir) / "results.json").read_text())
        return {
            "arm": arm, "seed": seed,
            **{k: results[k] for k in ("before", "after", "judge", "train_seconds", "train_examples", "eval_examples",
                                       "steps", "log_history", "config", "replies")},
            **provenance,
        }
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def report(results_dir: Path | None = None) -> str:
    """Per arm: before and after RL (mean ± std over seeds; "before" is the same greedy model for every seed) and the
    paired after − before difference."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(results_dir or RESULTS).glob("*_seed*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["arm"], {})[result["seed"]] = result
    if not runs:
        raise SystemExit("No results yet: run the grid first.")
    lines = []
    for arm in [a for a in ARMS if a in runs]:
        seeds = sorted(runs[arm])
        first = runs[arm][seeds[0]]
        lines += [f"**{arm}** (seeds {','.join(map(str, seeds))}; {first['eval_examples']} held-out next turns from SAMSum "
                  f"test, {first['steps']} RL steps)", "",
                  "| metric | before RL | after RL | after − before (paired) |", "|---|---|---|---|"]
        for metric in METRICS:
            before = [runs[arm][s]["before"][metric] for s in seeds]
            after = [runs[arm][s]["after"][metric] for s in seeds]
            lines.append(f"| {LABELS[metric]} | {mean_std(before)} | {mean_std(after)} | "
                         f"{mean_std([a - b for a, b in zip(after, before)])} |")
        lines.append("")
    return "\n".join(lines).rstrip()


TABLE_BEGIN, TABLE_END = "<!-- dialogue table: begin -->", "<!-- dialogue table: end -->"


def main(argv=None) -> None:
    def run_grid(opts):
        for arm in opts.arms:
            for seed in opts.seeds:
                run(arm, seed)

    grid_report_main(argv, __doc__, ARMS, run_grid, report, (TABLE_BEGIN, TABLE_END), default_arms=["token"])

if __name__ == "__main__":
    main()
