"""Multi30k English-German with SmolLM2-135M-Instruct + LoRA: supervised warm-up alone, or followed by more
cross-entropy, token-level RL or sequence-level RL, same budget, 3 seeds (issue 14).

Every run is `recipes/translate.py` with its YAML, run as a user runs it (a subprocess). Per seed, one warm-up (40
cross-entropy steps of 8 pairs from the first 512 training pairs, LoRA merged) is saved and every other arm starts
from it:

    sft        the warm-up alone (its run saves it; scores of the warmed-up model)
    sft_ce     + 32 more cross-entropy steps of 4 pairs (fresh LoRA): the supervised control for the RL arms' 32 steps
    token_rl   + 32 RL steps, 4 sources x K=4 translations: per-token reward = the reference character n-grams the
               token completes (`CharNgramOverlapReward`, chrF-style recall), per-position leave-one-out baseline
    chrf_rl    + 32 RL steps, same sizes: one sentence chrF per translation (`ChrFReward`, sacreBLEU), per-sequence
               leave-one-out baseline

Both RL arms: KL 0.05 to the warmed-up model, lr 2e-4, temperature 0.7 (the YAML's length penalty past 40 tokens
never fires: samples stop at 40 new tokens). `sft_ce` trains at the warm-up's learning rate, 5e-4.
Scores: sacreBLEU corpus BLEU and chrF of greedy translations of the first 100 pairs of `val` (dev) and of
`test_2016_flickr` (test). The token-level reward is a recall of reference character n-grams, close to chrF, so chrF
is not an independent judge of it: BLEU (word n-gram precision with a brevity penalty) is the check, and the
sequence arm is trained on chrF itself. Nothing was tuned: the YAML's values, fixed before the first run.

    nice -n 10 python benchmarks/translation.py grid --seeds 1 2 3      # two workers may run side by side
    python benchmarks/translation.py report --write docs/benchmarks.md

One JSON per run in docs/results/multi30k/<arm>_seed<seed>.json (command, scores, train log, every translation).
The warm-ups live in .cache/translation/ (not committed; rebuilt when missing). A finished run is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import grid_report_main, mean_std, run_once, weights_sha256  # noqa: E402

RESULTS = REPO_ROOT / "docs" / "results" / "multi30k"
CACHE = REPO_ROOT / ".cache" / "translation"
WARM_UP = ["--sft_max_steps", "40", "--sft_batch_size", "8"]
ARMS = {
    "sft": [],
    "sft_ce": ["--sft_max_steps", "32", "--sft_batch_size", "4", "--skip_rl", "true"],
    "token_rl": ["--sft_max_steps", "0", "--reward", "char_ngram", "--group_baseline", "per_position"],
    "chrf_rl": ["--sft_max_steps", "0", "--reward", "chrf", "--group_baseline", "per_sequence"],
}
"""Arm -> recipe flags after the warm-up (`sft` is the warm-up run itself)."""

SPLITS = {"validation": "dev (val)", "test": "test (test_2016_flickr)"}
METRICS = ("bleu", "chrf", "length_ratio")


def recipe_command(output_dir: str, seed: int, flags, extra_args=()) -> list[str]:
    return [sys.executable, "recipes/translate.py", "--config", "recipes/configs/translate.yaml", *flags,
            "--seed", str(seed), "--output_dir", output_dir, "--results_path", os.path.join(output_dir, "results.json"),
            "--disable_tqdm", "true", *extra_args]


def run_recipe(cmd: list[str]) -> tuple[dict, float]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "TRANSFORMERS_VERBOSITY": "error"}
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=True)
    output_dir = cmd[cmd.index("--output_dir") + 1]
    return json.loads((Path(output_dir) / "results.json").read_text()), time.perf_counter() - started


def warm_up_dir(seed: int, cache: Path | None = None) -> Path:
    return Path(cache or CACHE) / f"warm_seed{seed}"


def record(arm: str, seed: int, cmd: list[str], output_dir: str, results: dict, seconds: float) -> dict:
    scores = results["rl"] if arm in ("token_rl", "chrf_rl") else results["sft"]
    phase = "rl" if arm in ("token_rl", "chrf_rl") else "sft"
    return {
        "arm": arm, "seed": seed, "command": " ".join(["python"] + cmd[1:]).replace(output_dir, "<output_dir>"),
        "scores": scores, "translations": results["predictions"][phase], "sft_losses": results["sft_losses"],
        "log_history": results["log_history"], "steps": results["steps"], "train_seconds": results["train_seconds"],
        "eval_pairs": results["eval_pairs"], "signatures": results["signatures"], "config": results["config"],
        "sft_seconds": results.get("sft_seconds"), "wall_seconds": round(seconds, 1),
        "machine": f"{os.cpu_count()} CPU cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


@contextlib.contextmanager
def warm_up_lock(seed: int, cache: Path | None):
    """One builder of a seed's warm-up at a time (`<cache>/warm_seed<N>.building`, created exclusively); the others
    wait. A killed builder leaves the file: delete it to go on."""
    warm = warm_up_dir(seed, cache)
    warm.parent.mkdir(parents=True, exist_ok=True)
    lock = warm.parent / f"{warm.name}.building"
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            print(f"waiting for {lock} (another worker builds the warm-up; delete the file if none does)", flush=True)
            time.sleep(30)
    try:
        yield warm
    finally:
        lock.unlink(missing_ok=True)


def produce(arm: str, seed: int, results_dir: Path, cache: Path | None, extra_args=(), model: str | None = None) -> dict:
    """Runs one arm in a scratch folder (removed after). `sft` warms up, scores, and saves the warm-up to the cache
    (call it holding [`warm_up_lock`]); the other arms start from the cached warm-up ([`ensure_warm_up`])."""
    warm = warm_up_dir(seed, cache)
    output_dir = tempfile.mkdtemp(prefix=f"translation_{arm}_seed{seed}_")
    try:
        if arm == "sft":
            partial = warm.parent / f"{warm.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            base = ["--model_name_or_path", model] if model else []
            cmd = recipe_command(output_dir, seed, [*base, *WARM_UP, "--skip_rl", "true", "--warm_up_output_dir", str(partial)],
                                 extra_args)
            results, seconds = run_recipe(cmd)
            shutil.rmtree(warm, ignore_errors=True)
            os.replace(partial, warm)
        else:
            ensure_warm_up(seed, results_dir, cache, extra_args, model)
            cmd = recipe_command(output_dir, seed, ["--model_name_or_path", str(warm), *ARMS[arm], "--eval_before_rl", "false"], extra_args)
            results, seconds = run_recipe(cmd)
        return {**record(arm, seed, cmd, output_dir, results, seconds), "warm_up_sha256": weights_sha256(warm)}
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def ensure_warm_up(seed: int, results_dir: Path, cache: Path | None, extra_args=(), model: str | None = None) -> None:
    """The seed's warm-up in the cache. Without an `sft` JSON, the `sft` run builds it (and keeps its record); with
    one (a fresh clone: JSONs committed, cache not), it is rebuilt, and the arms record its hash, which the report
    compares with the `sft` run's."""
    warm = warm_up_dir(seed, cache)
    while not (warm / "config.json").exists():
        if not (Path(results_dir) / f"sft_seed{seed}.json").exists():
            run("sft", seed, results_dir, cache, extra_args, model)  # skipped if another worker runs it
            if not (warm / "config.json").exists():
                time.sleep(30)
            continue
        with warm_up_lock(seed, cache):
            if not (warm / "config.json").exists():
                produce("sft", seed, results_dir, cache, extra_args, model)  # the record is not kept


def run(arm: str, seed: int, results_dir: Path | None = None, cache: Path | None = None, extra_args=(),
        model: str | None = None) -> Path:
    """One run; `results_dir`, `cache`, `extra_args` (recipe flags, applied last) and `model` (the warm-up's starting
    model instead of the packaged SmolLM2) are for smoke tests."""
    results_dir = Path(results_dir or RESULTS)
    path = results_dir / f"{arm}_seed{seed}.json"

    def job():
        if arm != "sft":
            return produce(arm, seed, results_dir, cache, extra_args, model)
        with warm_up_lock(seed, cache):  # the warm-up run writes the cache
            return produce("sft", seed, results_dir, cache, extra_args, model)

    if run_once(path, job, f"translation/{path.name}"):
        print(f"wrote {path}", flush=True)
    return path


def load_runs(results_dir: Path | None = None) -> dict[str, dict[int, dict]]:
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(results_dir or RESULTS).glob("*_seed*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["arm"], {})[result["seed"]] = result
    return runs


def report(results_dir: Path | None = None) -> str:
    """Per split: per arm, BLEU / chrF / length ratio (mean ± std over seeds) and the paired per-seed difference to
    the warm-up (`sft`) and to the supervised control (`sft_ce`)."""
    runs = load_runs(results_dir)
    if not runs:
        raise SystemExit("No results yet: run the grid first.")
    lines = []
    for split, title in SPLITS.items():
        pairs = next(iter(next(iter(runs.values())).values()))["eval_pairs"][split]
        lines += [f"**{title}, first {pairs} pairs** (sacreBLEU; mean ± std over seeds)", "",
                  "| arm | seeds | BLEU | chrF | length ratio | BLEU − sft (paired) | chrF − sft (paired) | "
                  "BLEU − sft_ce (paired) | chrF − sft_ce (paired) |", "|---|---|---|---|---|---|---|---|---|"]
        for arm in [a for a in ARMS if a in runs]:
            seeds = sorted(runs[arm])
            cells = [mean_std([runs[arm][s]["scores"][split][m] for s in seeds]) for m in METRICS]
            diffs = []
            for base in ("sft", "sft_ce"):
                common = [s for s in seeds if s in runs.get(base, {})]
                for m in ("bleu", "chrf"):
                    diffs.append("-" if arm == base or not common else mean_std(
                        [runs[arm][s]["scores"][split][m] - runs[base][s]["scores"][split][m] for s in common]))
            lines.append(f"| {arm} | {','.join(map(str, seeds))} | " + " | ".join(cells + diffs) + " |")
        lines.append("")
    for seed, sft in sorted(runs.get("sft", {}).items()):  # every arm should start from the warm-up sft scored
        for arm in [a for a in ARMS if a != "sft" and seed in runs.get(a, {})]:
            theirs, ours = runs[arm][seed].get("warm_up_sha256"), sft.get("warm_up_sha256")
            if theirs and ours and theirs != ours:
                lines.append(f"Note: seed {seed}'s `{arm}` started from a rebuilt warm-up whose weights differ from the "
                             "one `sft` scored.")
    return "\n".join(lines).rstrip()


TABLE_BEGIN, TABLE_END = "<!-- translation table: begin -->", "<!-- translation table: end -->"


def main(argv=None) -> None:
    def run_grid(opts):
        for arm in opts.arms:  # arm by arm: the warm-ups first
            for seed in opts.seeds:
                run(arm, seed)

    grid_report_main(argv, __doc__, ARMS, run_grid, report, (TABLE_BEGIN, TABLE_END),
                     grid_help="arm x seed, arm by arm (the warm-ups first); finished runs are skipped")

if __name__ == "__main__":
    main()
