"""benchmarks/samsum_faithfulness.py without training: the arms' recipe commands, the judge record, resume by name and
the report's paired token − sequence differences."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import samsum_faithfulness as bench  # noqa: E402


def flags(cmd):
    return {cmd[i]: cmd[i + 1] for i in range(2, len(cmd) - 1) if cmd[i].startswith("--")}


def test_arms_run_the_summarize_recipe_alike_except_the_faithfulness_level_and_judge_every_test_dialogue():
    commands = {arm: bench.command(arm, 2, "/tmp/out", Path("/tmp/judge")) for arm in bench.ARMS}
    for arm, cmd in commands.items():
        assert cmd[1] == "recipes/summarize_lora.py" and (ROOT / flags(cmd)["--config"]).is_file()
        assert flags(cmd)["--faithfulness_level"] == arm and flags(cmd)["--judge_ner_model"] == "/tmp/judge"
        assert flags(cmd)["--eval_before_rl"] == "false" and flags(cmd)["--seed"] == "2"
        assert int(flags(cmd)["--max_eval_prompts"]) >= 819 and int(flags(cmd)["--max_eval_dialogue_words"]) > 10_000
    rest = [{k: v for k, v in flags(c).items() if k != "--faithfulness_level"} for c in commands.values()]
    assert rest[0] == rest[1]
    start = flags(bench.command(None, 0, "/tmp/out"))
    assert start["--skip_rl"] == "true" and "--faithfulness_level" not in start and start["--judge_ner_model"]


def test_the_judge_is_built_once_and_its_conll_scores_recorded(tmp_path, monkeypatch):
    calls = []

    def fake_train(cmd, **kwargs):
        calls.append(cmd)
        folder = Path(cmd[cmd.index("--output_dir") + 1])
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "all_results.json").write_text(json.dumps({"predict_f1": 0.81, "eval_f1": 0.85, "train_loss": 1.0}))

    monkeypatch.setattr(bench.subprocess, "run", fake_train)
    judge = bench.build_judge(tmp_path / "judge", tmp_path / "results")
    bench.build_judge(tmp_path / "judge", tmp_path / "results")
    assert len(calls) == 1 and calls[0][1] == "recipes/ner_lora.py" and "--merge_adapters" in calls[0]
    record = json.loads((tmp_path / "results" / "judge.json").read_text())
    assert record["conll2003_test"] == {"f1": 0.81} and record["conll2003_dev"] == {"f1": 0.85} and judge == tmp_path / "judge"


def test_a_finished_or_running_run_is_skipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, **kwargs: calls.append(cmd))
    (tmp_path / "start.json").write_text("{}")
    (tmp_path / "token_seed1.running").touch()
    bench.run(None, 0, tmp_path)
    bench.run("token", 1, tmp_path)
    assert calls == []


def fake_run(arm, seed, judged, heuristic, rouge):
    scores = {m: 1.0 for m in bench.METRICS}
    scores.update(judged_hallucinated_entity_rate=judged, hallucinated_entity_rate=heuristic, rougeL=rouge)
    return {"arm": arm, "seed": seed, "after": scores, "eval_prompts": 819}


def test_report_gives_start_arms_and_the_paired_difference(tmp_path):
    for arm, seed, judged, heuristic, rouge in [("token", 1, 4.0, 1.0, 25.0), ("token", 2, 6.0, 1.0, 24.0),
                                                ("sequence", 1, 8.0, 3.0, 24.0), ("sequence", 2, 8.0, 2.0, 25.0)]:
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(fake_run(arm, seed, judged, heuristic, rouge)))
    start = {m: 2.0 for m in bench.METRICS}
    (tmp_path / "start.json").write_text(json.dumps({"arm": "start", "before": start, "eval_prompts": 819}))
    (tmp_path / "judge.json").write_text(json.dumps({"conll2003_test": {"f1": 0.8123}}))
    table = bench.report(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    judged = rows[bench.LABELS["judged_hallucinated_entity_rate"]]
    # start 2.00; token 4, 6 -> 5.00 ± 1.41; sequence 8, 8; paired -4, -2 -> -3.00 ± 1.41
    assert judged.endswith("| 2.00 | 5.00 ± 1.41 | 8.00 ± 0.00 | -3.00 ± 1.41 |"), judged
    assert rows[bench.LABELS["rougeL"]].endswith("| 0.00 ± 1.41 |")  # +1, -1
    assert "token − sequence (paired, seeds 1,2)" in table and "CoNLL-2003 test entity F1 81.23" in table
    assert "per seed: 0.50, 0.75 (mean 0.62)" in table
    assert rows[bench.LABELS["judged_hallucinating_summaries"]].endswith("| 1.00 ± 0.00 | 0.00 ± 0.00 |")  # no records
    for folder_table in (table, start_only_table(tmp_path)):  # every row has as many cells as the header
        lines = [line for line in folder_table.splitlines() if line.startswith("|")]
        assert len({line.count("|") for line in lines}) == 1, lines[:3]


def start_only_table(tmp_path):
    folder = tmp_path / "start_only"
    folder.mkdir()
    (folder / "start.json").write_text((tmp_path / "start.json").read_text())
    return bench.report(folder)


def test_benchmarks_doc_table_is_the_report_of_the_committed_results():
    if not any(bench.RESULTS.glob("*.json")):
        pytest.skip("no committed SAMSum faithfulness results yet")
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert f"{bench.TABLE_BEGIN}\n{bench.report()}\n{bench.TABLE_END}" in doc, (
        "docs/benchmarks.md is stale: python benchmarks/samsum_faithfulness.py report --write docs/benchmarks.md"
    )


def test_summary_shares_are_recomputed_from_the_per_summary_records():
    def record(judged, heuristic, found=()):
        return {"judged_hallucinated": judged, "hallucinated": heuristic, "judged_entities": [*judged, *found]}

    result = {"after": {"rougeL": 20.0}, "summaries": [
        {"after": record(["Zed"], [], ["Amy", "Bo"])}, {"after": record([], ["Zed", "Yan"])},
        {"after": record([], ["Xu"], ["Amy"])}, {"after": record(["Zed", "Yan"], ["Yan"], ["Amy"])}]}
    got = bench.scores(result, "after")
    assert (got["judged_hallucinating_summaries"], got["hallucinating_summaries"], got["rougeL"]) == (50.0, 75.0, 20.0)
    # faithful judged entities 2 + 0 + 1 + 1 over 4 summaries; one summary (the second) names nobody
    assert (got["judged_faithful_per_summary"], got["judged_entityless_summaries"]) == (1.0, 25.0)
    start = {"before": {"rougeL": 1.0}, "summaries": [{"before": record(["Zed"], ["Zed"])}, {"before": record([], [])}]}
    assert bench.scores(start, "before")["judged_hallucinating_summaries"] == 50.0
    assert bench.scores(start, "before")["judged_entityless_summaries"] == 50.0
