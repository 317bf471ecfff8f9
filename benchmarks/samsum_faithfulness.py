"""SAMSum summarization: token-level vs sequence-level faithfulness credit, judged by an NER model (issue 11, item 4).

The question: does penalising the *tokens* of an invented name teach a summariser to stop inventing names better than
the same penalty summed into one number per summary? Each run is `recipes/summarize_lora.py` with its YAML, run as a
user runs it (a subprocess); the arms differ only in `--faithfulness_level`:

    token       the recipe's default: each token of a capitalised entity absent from the dialogue gets -1 (x 0.5)
    sequence    the same penalties summed into one reward per summary, on its last token (`SummedReward`)

Both arms also get ROUGE-L against the reference as a sequence reward; everything else (data, steps, K, KL, learning
rate, seeds) is the YAML's, the same for both, fixed before the first run. What "per token" changes here, exactly:
the trainer's advantages are undiscounted returns-to-go (gamma 1) minus the leave-one-out baseline, so a penalty on the
tokens of an invented name also reaches every token before it; the arms differ on the tokens after the last invented
name of a summary (penalised in the sequence arm, not in the token arm) and in how the penalty is spread over the
entity's own tokens.

Judged without circularity: the reward finds entities with the capitalised-span heuristic; the judge is an NER model
(the packaged MiniLM, uncased, fine-tuned on CoNLL-2003 by `recipes/ner_lora.py`, built once into
`.cache/samsum_faithfulness/ner_judge`; its CoNLL test F1 is recorded in `judge.json`). Both count an entity as
hallucinated when its words do not occur in the dialogue. The heuristic rate (what the reward was trained on) is
reported too, labelled as such.

Evaluation: greedy summaries of all 819 SAMSum test dialogues (no length filter, prompts of up to 512 tokens kept
from the right, so the instruction survives; the few longer dialogues lose their first turns from the prompt, while
entities are checked against the whole dialogue, so a name from a cut turn counts as faithful), ROUGE-1/2/L F1 (this
package's implementation), words per summary, the judged and the heuristic hallucinated-entity rates. The starting model is scored once (`start.json`: greedy
decoding makes it the same for every seed and arm).

    python benchmarks/samsum_faithfulness.py grid --seeds 1 2 3          # judge, start, then arm x seed
    python benchmarks/samsum_faithfulness.py report --write docs/benchmarks.md
    python benchmarks/samsum_faithfulness.py rejudge     # after a rebuilt judge: re-score every run's summaries with it

One JSON per run in docs/results/samsum_faithfulness/ (`<arm>_seed<seed>.json`: the command, the scores, the train log
and every summary with its entities). A finished run is skipped; a `.running` file makes other workers skip it too.
"""

from __future__ import annotations

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

from _common import (  # noqa: E402
    grid_report_main, mean_std, recipe_env, run_once, run_recipe_command, weights_sha256, write_json_atomic,
)

RESULTS = REPO_ROOT / "docs" / "results" / "samsum_faithfulness"
JUDGE_DIR = REPO_ROOT / ".cache" / "samsum_faithfulness" / "ner_judge"

ARMS = {"token": ["--faithfulness_level", "token"], "sequence": ["--faithfulness_level", "sequence"]}
"""Arm -> recipe flags: the only difference between the arms."""

EVAL = ["--max_eval_prompts", "100000", "--max_eval_dialogue_words", "100000", "--eval_max_prompt_length", "512"]
"""Every test dialogue (819), prompts of up to 512 tokens."""

JUDGE_COMMAND = ["recipes/ner_lora.py", "--config", "recipes/configs/ner_lora.yaml", "--merge_adapters", "true",
                 "--disable_tqdm", "true"]
"""The judge: the NER recipe's defaults (LoRA on the packaged MiniLM, all of CoNLL-2003 train), saved merged."""

METRICS = ("judged_hallucinated_entity_rate", "judged_hallucinating_summaries", "judged_entities",
           "judged_faithful_per_summary", "judged_entityless_summaries",
           "hallucinated_entity_rate", "hallucinating_summaries", "entities", "rougeL", "rouge1", "rouge2", "mean_words")
LABELS = {
    "judged_hallucinated_entity_rate": "hallucinated entities, judged by the NER model (%)",
    "judged_hallucinating_summaries": "summaries with a hallucinated entity, judged by the NER model (%)",
    "hallucinating_summaries": "summaries with a hallucinated entity, the reward's heuristic (%)",
    "judged_entities": "entities found by the NER model",
    "judged_faithful_per_summary": "faithful entities per summary, judged by the NER model",
    "judged_entityless_summaries": "summaries without any entity, judged by the NER model (%)",
    "hallucinated_entity_rate": "hallucinated entities, the reward's heuristic (%; trained on)",
    "entities": "entities found by the heuristic",
    "rougeL": "ROUGE-L F1", "rouge1": "ROUGE-1 F1", "rouge2": "ROUGE-2 F1", "mean_words": "words per summary",
}


def _env() -> dict:
    return recipe_env(HF_HUB_OFFLINE="1")


def judge_identity(judge_dir: Path = JUDGE_DIR) -> dict:
    """The judge's fingerprint: the sha256 of its weights. Every run records the fingerprint of the judge that scored
    it; `report` refuses runs judged by different judges and `grid` a judge other than the one `judge.json` records."""
    weights_path = Path(judge_dir) / "model.safetensors"
    if not weights_path.is_file():
        raise FileNotFoundError(f"No judge in {judge_dir} (no model.safetensors). Fix: `python "
                                "benchmarks/samsum_faithfulness.py grid` builds it first (about 15-25 minutes here).")
    return {"sha256": weights_sha256(judge_dir)}


def _judge_record(judge_dir: Path, extra_args=()) -> dict:
    scores_path = Path(judge_dir) / "all_results.json"
    if not scores_path.is_file():
        raise FileNotFoundError(f"{scores_path} is missing: the judge's CoNLL scores cannot be recorded. Fix: delete "
                                f"{judge_dir} and run `grid` to rebuild it.")
    scores = json.loads(scores_path.read_text())
    return {
        "command": " ".join(["python", *JUDGE_COMMAND, "--output_dir", "<judge_dir>", *extra_args]),
        "conll2003_test": {k[len("predict_"):]: v for k, v in scores.items() if k.startswith("predict_")},
        "conll2003_dev": {k[len("eval_"):]: v for k, v in scores.items() if k.startswith("eval_")},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **judge_identity(judge_dir),
    }


def result_files(results_dir: Path) -> list[Path]:
    """The run files of a results folder: `start.json` and `<arm>_seed<seed>.json`."""
    return sorted([*Path(results_dir).glob("start.json"), *Path(results_dir).glob("*_seed*.json")])


def _mismatch(judge_dir: Path, results_dir: Path, why: str) -> SystemExit:
    return SystemExit(
        f"The judge in {judge_dir} is not the one that judged the runs in {results_dir} ({why}); a rebuilt judge is not "
        "bit-for-bit the old one. Fix: `python benchmarks/samsum_faithfulness.py rejudge` re-scores every run there "
        "with this judge (it rewrites those result files and judge.json, keeping what the earlier judge found in each "
        "file), then `report --write docs/benchmarks.md` and commit.")


def build_judge(judge_dir: Path = JUDGE_DIR, results_dir: Path | None = None, extra_args=()) -> Path:
    """Trains the NER judge once (skipped when `judge_dir` holds its weights) and records its CoNLL scores and
    fingerprint in `judge.json`. A judge that is not the one that judged the runs already in `results_dir` (a rebuilt
    cache: training is not bit-for-bit reproducible across machines and thread counts) is refused: `rejudge`
    re-scores those runs with it."""
    judge_dir, results_dir = Path(judge_dir), Path(results_dir or RESULTS)
    record_path = results_dir / "judge.json"
    if not (judge_dir / "model.safetensors").is_file():
        cmd = [sys.executable, *JUDGE_COMMAND, "--output_dir", str(judge_dir), *extra_args]
        subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), check=True)
    identity = judge_identity(judge_dir)["sha256"]
    if record_path.is_file():
        recorded = json.loads(record_path.read_text()).get("sha256")
        if recorded != identity:
            raise _mismatch(judge_dir, results_dir, f"{record_path} records " + (
                f"the judge {recorded[:12]}..." if recorded else "no fingerprint: its runs predate fingerprints"))
        return judge_dir
    stamped = sorted({json.loads(p.read_text()).get("judge", {}).get("sha256") for p in result_files(results_dir)} - {None})
    if any(sha != identity for sha in stamped):
        raise _mismatch(judge_dir, results_dir, "its runs record another judge and judge.json is missing")
    results_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record_path, _judge_record(judge_dir, extra_args))
    return judge_dir


def command(arm: str | None, seed: int, output_dir: str, judge_dir: Path = JUDGE_DIR, extra_args=()) -> list[str]:
    """The recipe command of one arm (`None`: score the starting model only)."""
    phase = ["--skip_rl", "true"] if arm is None else [*ARMS[arm], "--eval_before_rl", "false"]
    return [sys.executable, "recipes/summarize_lora.py", "--config", "recipes/configs/summarize_lora.yaml", *phase,
            *EVAL, "--judge_ner_model", str(judge_dir), "--seed", str(seed), "--output_dir", output_dir,
            "--results_path", os.path.join(output_dir, "results.json"), "--disable_tqdm", "true", *extra_args]


def run(arm: str | None, seed: int, results_dir: Path | None = None, judge_dir: Path = JUDGE_DIR, extra_args=()) -> Path:
    """One run (`arm=None`: `start.json`, the starting model); skipped when its JSON exists."""
    name = "start" if arm is None else f"{arm}_seed{seed}"
    path = Path(results_dir or RESULTS) / f"{name}.json"
    if run_once(path, lambda: run_recipe(arm, seed, judge_dir, extra_args), f"samsum_faithfulness/{path.name}"):
        print(f"wrote {path}", flush=True)
    return path


def run_recipe(arm: str | None, seed: int, judge_dir: Path = JUDGE_DIR, extra_args=()) -> dict:
    identity = judge_identity(judge_dir)  # the judge the recipe loads as it starts
    output_dir = tempfile.mkdtemp(prefix=f"samsum_faithfulness_{arm or 'start'}_seed{seed}_")
    try:
        provenance = run_recipe_command(command(arm, seed, output_dir, judge_dir, extra_args), REPO_ROOT, output_dir,
                                        env=_env(), masks={str(judge_dir): "<judge_dir>"})
        results = json.loads((Path(output_dir) / "results.json").read_text())
        keep = ("before", "eval_prompts", "config") if arm is None else (
            "after", "train_seconds", "train_prompts", "eval_prompts", "steps", "log_history", "config")
        summaries = results["summaries"]
        if arm is not None:  # the starting model's summaries live in start.json
            summaries = [{k: v for k, v in s.items() if k != "before"} for s in summaries]
        return {"arm": arm or "start", "seed": seed, **{k: results[k] for k in keep}, "summaries": summaries,
                "judge": identity, **provenance}
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


JUDGED = ("judged_hallucinated_entity_rate", "judged_entities", "judged_hallucinated_entities")
"""A run's corpus numbers that depend on the judge."""


def _load_judge(judge_dir: Path):
    """The recipe's own judge loader (`recipes/summarize_lora.py`: safetensors, no remote code)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("summarize_lora", REPO_ROOT / "recipes" / "summarize_lora.py")
    recipe = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))  # dataclasses look it up there
    spec.loader.exec_module(recipe)
    return recipe.load_judge(str(judge_dir))


def rejudge(results_dir: Path | None = None, judge_dir: Path = JUDGE_DIR, extractor=None) -> list[Path]:
    """Re-scores the judged entities of every run in `results_dir` (the starting model's and each arm's summaries,
    from their committed per-summary records, with the library's `summary_records`) by the judge in `judge_dir`
    (`extractor`: its entity finder, loaded from there when None, run on one thread as in the recipe) and records that
    judge in `judge.json`. A run that records this judge is left alone. Every other run keeps what its earlier judge
    found (its fingerprint or null, the corpus numbers and each summary's judged entities) in `earlier_judges`, with
    `entities_changed` saying whether this judge found anything different; the replaced `judge.json` is kept under
    `replaces`. A run whose stored heuristic entities or word counts do not match its summaries is refused
    (misaligned records). Returns the files written."""
    import torch

    from trl_tokenlevel.generation.evaluate import summary_metrics, summary_records

    results_dir, judge_dir = Path(results_dir or RESULTS), Path(judge_dir)
    record = _judge_record(judge_dir)  # first: fails before any file is touched
    identity = {"sha256": record["sha256"]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extractor = extractor or _load_judge(judge_dir)
        written = []
        for path in result_files(results_dir):
            result = json.loads(path.read_text())
            if result.get("judge", {}).get("sha256") == identity["sha256"]:
                continue
            key = "before" if result["arm"] == "start" else "after"
            stored = [summary[key] for summary in result["summaries"]]
            texts = [r["summary"] for r in stored]
            references = [summary["reference"] for summary in result["summaries"]]
            contexts = [summary["context"] for summary in result["summaries"]]
            fresh = summary_records(texts, references, contexts, judge_extractor=extractor)
            for index, (old, new) in enumerate(zip(stored, fresh)):
                if (old["entities"], old["hallucinated"], old["words"]) != (new["entities"], new["hallucinated"], new["words"]):
                    raise ValueError(f"{path}: summary {index}'s stored entities or word count do not match its text "
                                     "(misaligned records); not re-scored. Fix: rerun that run.")
            earlier = {"judge": result.get("judge"), **{k: result[key][k] for k in JUDGED},
                       "summaries": [[r["judged_entities"], r["judged_hallucinated"]] for r in stored]}
            earlier["entities_changed"] = earlier["summaries"] != [
                [r["judged_entities"], r["judged_hallucinated"]] for r in fresh]
            for old, new in zip(stored, fresh):
                old.update(judged_entities=new["judged_entities"], judged_hallucinated=new["judged_hallucinated"])
            corpus = summary_metrics(texts, references, contexts, judge_extractor=extractor, records=fresh)
            result[key].update({k: corpus[k] for k in JUDGED})
            result["earlier_judges"] = [*result.get("earlier_judges", []), earlier]
            result["judge"] = identity
            write_json_atomic(path, result)
            written.append(path)
    finally:
        torch.set_num_threads(threads)
    record_path = results_dir / "judge.json"
    previous = json.loads(record_path.read_text()) if record_path.is_file() else None
    if previous is None or previous.get("sha256") != identity["sha256"]:
        if previous is not None:
            record["replaces"] = [*previous.pop("replaces", []), previous]
        write_json_atomic(record_path, record)
        written.append(record_path)
    return written


def scores(result: dict, key: str) -> dict:
    """A run's scores (`key`: "before" for start.json, "after" for an arm) plus the shares of summaries with at least
    one hallucinated entity (judged and heuristic), the judged faithful entities per summary and the share of summaries
    without any judged entity, recomputed from its per-summary records: the first two are rates per summary, which
    fewer entities per summary does not lower by itself; the last two show whether a lower rate comes from naming
    fewer people."""
    out = dict(result[key])
    if result.get("summaries"):
        records = [summary[key] for summary in result["summaries"]]
        out["judged_hallucinating_summaries"] = 100 * sum(bool(r["judged_hallucinated"]) for r in records) / len(records)
        out["hallucinating_summaries"] = 100 * sum(bool(r["hallucinated"]) for r in records) / len(records)
        out["judged_faithful_per_summary"] = sum(
            len(r["judged_entities"]) - len(r["judged_hallucinated"]) for r in records) / len(records)
        out["judged_entityless_summaries"] = 100 * sum(not r["judged_entities"] for r in records) / len(records)
    return out


def check_one_judge(results: list[dict], judge: dict | None, results_dir: Path) -> None:
    """Refuses runs judged by different judges (or by another judge than `judge.json` records, or stamped runs with no
    `judge.json` to say which judge that is): their judged rates are not comparable."""
    by_judge: dict[str | None, list[str]] = {}
    for result in results:
        name = "start" if result["arm"] == "start" else f"{result['arm']} seed {result['seed']}"
        by_judge.setdefault((result.get("judge") or {}).get("sha256"), []).append(name)
    if judge is not None:
        by_judge.setdefault(judge.get("sha256"), []).append("judge.json")
    if judge is None and len(by_judge) == 1 and None not in by_judge:
        raise SystemExit(f"{results_dir / 'judge.json'} is missing, so nothing says which judge scored these runs. Fix: "
                         "restore it from git, or `python benchmarks/samsum_faithfulness.py rejudge`.")
    if len(by_judge) > 1:
        groups = "; ".join(f"{(sha or 'no fingerprint')[:12]}: {', '.join(names)}" for sha, names in by_judge.items())
        raise SystemExit(f"The runs in {results_dir} were judged by different judges ({groups}): their judged rates are "
                         "not comparable. Fix: `python benchmarks/samsum_faithfulness.py rejudge` re-scores them all "
                         "with the judge in .cache.")


def report(results_dir: Path | None = None) -> str:
    """The starting model, each arm after RL (mean ± std over seeds) and the paired token − sequence difference per
    seed; the last line gives the judged rate of the token arm relative to the sequence arm."""
    results_dir = Path(results_dir or RESULTS)
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(results_dir.glob("*_seed*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["arm"], {})[result["seed"]] = {**result, "after": scores(result, "after")}
    start = json.loads((results_dir / "start.json").read_text()) if (results_dir / "start.json").is_file() else None
    if start is not None:
        start = {**start, "before": scores(start, "before")}
    if not runs and start is None:
        raise SystemExit("No results yet: run the grid first.")
    arms = [a for a in ARMS if a in runs]
    header = "| metric | start (before RL) |" + "".join(
        f" {a} (seeds {','.join(map(str, sorted(runs[a])))}) |" for a in arms)
    common = sorted(set(runs.get("token", {})) & set(runs.get("sequence", {})))
    if common:
        header += f" token − sequence (paired, seeds {','.join(map(str, common))}) |"
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for metric in METRICS:
        digits = 0 if metric in ("judged_entities", "entities") else 2  # counts
        row = f"| {LABELS[metric]} | {start['before'][metric]:.{digits}f} |" if start else f"| {LABELS[metric]} | - |"
        row += "".join(f" {mean_std([runs[a][s]['after'][metric] for s in sorted(runs[a])], digits)} |" for a in arms)
        if common:
            row += (f" {mean_std([runs['token'][s]['after'][metric] - runs['sequence'][s]['after'][metric] for s in common], digits)} |")
        lines.append(row)
    first = next(iter(next(iter(runs.values())).values())) if runs else start
    judge = json.loads((results_dir / "judge.json").read_text()) if (results_dir / "judge.json").is_file() else None
    everything = [start] * (start is not None) + [r for seeds in runs.values() for r in seeds.values()]
    check_one_judge(everything, judge, results_dir)
    rejudged = sum(any(e.get("entities_changed") for e in r.get("earlier_judges", [])) for r in everything)
    notes = [f"{first['eval_prompts']} SAMSum test dialogues, greedy summaries; ROUGE in percent"
             + ("; mean ± std over seeds." if runs else "; the starting model only (no RL run yet).")]
    if judge:
        notes.append(f"Judge: MiniLM NER, CoNLL-2003 test entity F1 {100 * judge['conll2003_test']['f1']:.2f}.")
    if rejudged:
        notes.append(f"{rejudged} of {len(everything)} result files were re-scored by this judge after it was rebuilt "
                     "(`rejudge`); what their earlier judge found is kept in each file under `earlier_judges`.")
    if common:
        relative = [runs["token"][s]["after"]["judged_hallucinated_entity_rate"]
                    / max(runs["sequence"][s]["after"]["judged_hallucinated_entity_rate"], 1e-9) for s in common]
        notes.append(f"Judged rate of the token arm relative to the sequence arm, per seed: "
                     f"{', '.join(f'{r:.2f}' for r in relative)} (mean {sum(relative) / len(relative):.2f}).")
    return "\n".join(lines + ["", " ".join(notes)])


TABLE_BEGIN, TABLE_END = "<!-- samsum_faithfulness table: begin -->", "<!-- samsum_faithfulness table: end -->"


def main(argv=None) -> None:
    def run_grid(opts):
        build_judge()
        run(None, 0)
        for seed in opts.seeds:
            for arm in opts.arms:
                run(arm, seed)

    def run_rejudge():
        for path in rejudge():
            print(f"wrote {path}", flush=True)

    grid_report_main(argv, __doc__, ARMS, run_grid, report, (TABLE_BEGIN, TABLE_END),
                     grid_help="the judge, the starting model, then seed x arm; finished runs are skipped",
                     extra_commands={"rejudge": ("re-score the judged entities of every run with the judge in .cache "
                                                 "(after the judge was rebuilt)", run_rejudge)})

if __name__ == "__main__":
    main()
