"""benchmarks/translation.py and benchmarks/dialogue.py: the arms' recipe commands, the shared warm-up, resume by
name, the report's paired differences, and the committed doc tables. The end-to-end run uses a tiny random T5 saved
to disk (it learns nothing; the test checks the plumbing)."""

import json
import sys
from pathlib import Path

import pytest
from tiny_seq2seq import seq2seq_tokenizer, tiny_t5

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks"))

import samsum_dialogue as dialogue_bench  # noqa: E402
import translation as bench  # noqa: E402


def flags(command):
    return {command[i]: command[i + 1] for i in range(2, len(command) - 1) if command[i].startswith("--")}


TINY = ["--max_train_samples", "16", "--max_eval_samples", "3", "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--num_samples", "2", "--max_new_tokens", "4", "--eval_max_new_tokens", "4", "--sft_batch_size", "4"]


@pytest.mark.slow
def test_every_arm_starts_from_the_seed_s_saved_warm_up_and_a_lost_cache_is_rebuilt(tmp_path):
    if not (DATA / "multi30k" / "test_2016_flickr.de").is_file():
        pytest.skip("Multi30k not found in ../shared/data/multi30k")
    model = tmp_path / "tiny_t5"
    tiny_t5().save_pretrained(model)
    seq2seq_tokenizer().save_pretrained(model)
    results, cache = tmp_path / "results", tmp_path / "cache"
    sft = json.loads(bench.run("sft", 1, results, cache, TINY, str(model)).read_text())
    warm = bench.warm_up_dir(1, cache)
    assert (warm / "config.json").is_file() and not list(cache.glob("*.building"))
    assert sft["steps"] == 0 and len(sft["sft_losses"]) == 40  # the warm-up's 40 steps, no RL
    assert sft["warm_up_sha256"] == bench.weights_sha256(warm) and sft["sft_seconds"] > 0
    assert set(sft["scores"]) == {"validation", "test"} and len(sft["translations"]["test"]) == 3

    runs = {arm: json.loads(bench.run(arm, 1, results, cache, TINY, str(model)).read_text())
            for arm in ("sft_ce", "token_rl", "chrf_rl")}
    for arm, run in runs.items():
        used = flags(run["command"].split())
        assert used["--model_name_or_path"] == str(warm), arm  # not the tiny base: the saved warm-up
        assert set(run["scores"]) == {"validation", "test"}
    assert len(runs["sft_ce"]["sft_losses"]) == 32 and runs["sft_ce"]["steps"] == 0
    for arm, reward in (("token_rl", "CharNgramOverlapReward"), ("chrf_rl", "ChrFReward")):
        assert runs[arm]["steps"] == 1 and runs[arm]["sft_losses"] == []
        assert any(f"rewards/{reward}/mean" in h for h in runs[arm]["log_history"]), arm

    # a fresh clone has the JSONs but not the cache: an arm rebuilds the warm-up and leaves sft's JSON alone
    sft_text = (results / "sft_seed1.json").read_text()
    __import__("shutil").rmtree(cache)
    (results / "token_rl_seed1.json").unlink()
    bench.run("token_rl", 1, results, cache, TINY, str(model))
    assert (warm / "config.json").is_file() and (results / "sft_seed1.json").read_text() == sft_text
    rebuilt = json.loads((results / "token_rl_seed1.json").read_text())
    # seeded on one thread, the rebuilt warm-up is the one sft scored: the report sees the same weights
    assert rebuilt["warm_up_sha256"] == sft["warm_up_sha256"] == runs["chrf_rl"]["warm_up_sha256"]
    assert "rebuilt warm-up" not in bench.report(results)


def fake(arm, seed, dev_bleu, test_bleu, test_chrf):
    scores = {"validation": {"bleu": dev_bleu, "chrf": 40.0, "length_ratio": 1.0},
              "test": {"bleu": test_bleu, "chrf": test_chrf, "length_ratio": 1.1}}
    return {"arm": arm, "seed": seed, "scores": scores, "eval_pairs": {"validation": 100, "test": 100}}


def test_translation_report_pairs_each_arm_with_the_warm_up_and_the_supervised_control(tmp_path):
    rows = [("sft", 1, 5.0, 6.0, 30.0), ("sft", 2, 5.0, 8.0, 32.0), ("sft_ce", 1, 5.0, 7.0, 31.0), ("sft_ce", 2, 5.0, 8.0, 33.0),
            ("token_rl", 1, 5.0, 9.0, 36.0), ("token_rl", 2, 5.0, 9.0, 34.0)]
    for arm, seed, dev, bleu, chrf in rows:
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(fake(arm, seed, dev, bleu, chrf)))
    table = bench.report(tmp_path)
    test_part = table.split("**test")[1]
    lines = {line.split(" | ")[0].strip("| "): line for line in test_part.splitlines() if line.startswith("| ")}
    # token_rl - sft: BLEU +3, +1; chrF +6, +2.  token_rl - sft_ce: BLEU +2, +1; chrF +5, +1
    assert lines["token_rl"].endswith("| 2.00 ± 1.41 | 4.00 ± 2.83 | 1.50 ± 0.71 | 3.00 ± 2.83 |")
    assert lines["sft"].endswith("| - | - | -0.50 ± 0.71 | -1.00 ± 0.00 |")  # sft - sft_ce: BLEU -1, 0; chrF -1, -1
    assert lines["sft_ce"].split(" | ")[2:4] == ["7.50 ± 0.71", "32.00 ± 1.41"]
    assert "chrf_rl" not in lines


def test_finished_or_running_runs_are_skipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, **kwargs: calls.append(cmd))
    (tmp_path / "sft_seed1.json").write_text("{}")
    (tmp_path / "token_rl_seed1.running").touch()
    bench.run("sft", 1, tmp_path, tmp_path / "cache")
    bench.run("token_rl", 1, tmp_path, tmp_path / "cache")
    (tmp_path / "token_seed2.json").write_text("{}")
    dialogue_bench.run("token", 2, tmp_path)
    assert calls == []


def test_report_notes_an_arm_that_started_from_a_different_warm_up(tmp_path):
    for arm, digest in (("sft", "aaa"), ("token_rl", "bbb")):
        (tmp_path / f"{arm}_seed1.json").write_text(json.dumps({**fake(arm, 1, 5.0, 6.0, 30.0), "warm_up_sha256": digest}))
    assert "seed 1's `token_rl` started from a rebuilt warm-up" in bench.report(tmp_path)


def test_dialogue_arms_run_the_recipe_with_the_same_budget_and_differ_only_in_the_overlap_reward():
    commands = {arm: dialogue_bench.command(arm, 3, "/tmp/out") for arm in dialogue_bench.ARMS}
    for arm, command in commands.items():
        assert command[1] == "recipes/dialogue.py" and (ROOT / flags(command)["--config"]).is_file()
        assert flags(command)["--seed"] == "3" and flags(command)["--max_steps"] == "20"
        assert flags(command)["--overlap_reward"] == arm
    without = [{k: v for k, v in flags(c).items() if k != "--overlap_reward"} for c in commands.values()]
    assert without[0] == without[1]


def test_dialogue_report_gives_before_after_and_the_paired_change(tmp_path):
    for seed, (before, after) in enumerate([(10.0, 12.0), (10.0, 15.0)], start=1):
        metrics = lambda r: {"rougeL": r, "mean_words": 20.0, "judged_hallucination_rate": 50.0, "replies_with_unsupported": 30.0}  # noqa: E731
        run = {"arm": "token", "seed": seed, "before": metrics(before), "after": metrics(after), "eval_examples": 64, "steps": 20}
        (tmp_path / f"token_seed{seed}.json").write_text(json.dumps(run))
    line = next(line for line in dialogue_bench.report(tmp_path).splitlines() if line.startswith("| ROUGE-L"))
    assert line == "| ROUGE-L F1 | 10.00 ± 0.00 | 13.50 ± 2.12 | 3.50 ± 2.12 |"


@pytest.mark.parametrize("module", [bench, dialogue_bench], ids=["translation", "dialogue"])
def test_benchmarks_doc_tables_are_the_report_of_the_committed_results(module):
    if not list(module.RESULTS.glob("*_seed*.json")):
        pytest.skip("no committed results yet")
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert f"{module.TABLE_BEGIN}\n{module.report()}\n{module.TABLE_END}" in doc, (
        f"docs/benchmarks.md is stale: python {Path(module.__file__).relative_to(ROOT)} report --write docs/benchmarks.md"
    )
