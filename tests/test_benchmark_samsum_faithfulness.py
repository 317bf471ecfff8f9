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
        fake_judge(folder, b"weights one")

    monkeypatch.setattr(bench.subprocess, "run", fake_train)
    judge = bench.build_judge(tmp_path / "judge", tmp_path / "results")
    bench.build_judge(tmp_path / "judge", tmp_path / "results")
    assert len(calls) == 1 and calls[0][1] == "recipes/ner_lora.py" and "--merge_adapters" in calls[0]
    record = json.loads((tmp_path / "results" / "judge.json").read_text())
    assert record["conll2003_test"] == {"f1": 0.81} and record["conll2003_dev"] == {"f1": 0.85} and judge == tmp_path / "judge"
    assert record["sha256"] == bench.judge_identity(judge)["sha256"]
    (judge / "model.safetensors").write_bytes(b"weights two")  # a rebuilt judge is not the recorded one
    with pytest.raises(SystemExit, match="rejudge"):
        bench.build_judge(judge, tmp_path / "results")
    # no judge.json, but a run stamped by another judge: refused too, before anything is written
    (tmp_path / "results" / "judge.json").unlink()
    (tmp_path / "results" / "token_seed1.json").write_text(json.dumps({"arm": "token", "seed": 1, "judge": {"sha256": "x"}}))
    with pytest.raises(SystemExit, match="rejudge"):
        bench.build_judge(judge, tmp_path / "results")
    assert not (tmp_path / "results" / "judge.json").exists()


def fake_judge(folder, weights, test_f1=0.81):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "all_results.json").write_text(json.dumps({"predict_f1": test_f1, "eval_f1": 0.85, "train_loss": 1.0}))


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




def capitalised_words(text):
    """A stand-in judge: every capitalised word is an entity."""
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"\b[A-Z]\w*", text)]


def first_word_only(text):
    """Another stand-in judge: the first word is the only entity."""
    return [(0, len(text.split()[0]))] if text.split() else []


def judged_run(arm, seed, texts, contexts, extractor, judge=None):
    """A result file as `run_recipe` writes it, judged by `extractor`."""
    from trl_tokenlevel.generation.evaluate import summary_metrics, summary_records

    key = "before" if arm == "start" else "after"
    references = ["Ann and Bob talk."] * len(texts)
    records = summary_records(texts, references, contexts, judge_extractor=extractor)
    summaries = [{"reference": r, "context": c, key: {**rec, "summary": t}}
                 for r, c, t, rec in zip(references, contexts, texts, records)]
    run = {"arm": arm, "seed": seed, key: summary_metrics(texts, references, contexts, judge_extractor=extractor,
                                                          records=records), "summaries": summaries}
    return {**run, "judge": judge} if judge else run


def test_rejudge_rescores_every_run_with_the_present_judge_and_keeps_what_the_earlier_one_said(tmp_path):
    results, judge = tmp_path / "results", tmp_path / "judge"
    results.mkdir()
    fake_judge(judge, b"the new judge", test_f1=0.83)
    (results / "judge.json").write_text(json.dumps({"conll2003_test": {"f1": 0.80}, "sha256": "old"}))
    texts, contexts = ["Ann met Bob in Rome.", "Cy left."], ["Ann: hi Rome", "Cy: bye"]
    (results / "token_seed1.json").write_text(json.dumps(
        judged_run("token", 1, texts, contexts, first_word_only, judge={"sha256": "old"})))
    (results / "start.json").write_text(json.dumps(judged_run("start", 0, ["Dee met Ann."], ["Ann: hi"], first_word_only)))
    (results / "notes.json").write_text("{}")  # not a run file: left alone

    written = bench.rejudge(results, judge, extractor=capitalised_words)
    assert [p.name for p in written] == ["start.json", "token_seed1.json", "judge.json"]
    run = json.loads((results / "token_seed1.json").read_text())
    assert run["summaries"][0]["after"]["judged_entities"] == ["Ann", "Bob", "Rome"]
    assert run["summaries"][0]["after"]["judged_hallucinated"] == ["Bob"]  # Ann and Rome are in the dialogue
    assert run["after"]["judged_entities"] == 4 and run["after"]["judged_hallucinated_entities"] == 1
    assert run["after"]["judged_hallucinated_entity_rate"] == pytest.approx(25.0)
    earlier = run["earlier_judges"]
    assert len(earlier) == 1 and earlier[0]["judge"] == {"sha256": "old"} and earlier[0]["entities_changed"] is True
    assert earlier[0]["summaries"] == [[["Ann"], []], [["Cy"], []]] and earlier[0]["judged_entities"] == 2
    assert run["judge"] == bench.judge_identity(judge)
    start = json.loads((results / "start.json").read_text())
    assert start["before"]["judged_hallucinated_entities"] == 1 and start["earlier_judges"][0]["judge"] is None
    record = json.loads((results / "judge.json").read_text())
    assert record["conll2003_test"] == {"f1": 0.83} and record["replaces"][0]["sha256"] == "old"
    # a second pass finds every run judged by this judge: nothing is written or re-scored
    assert bench.rejudge(results, judge, extractor=lambda text: 1 / 0) == []
    # an unstamped run that this judge scored: stamped, with the earlier judge recorded as finding the same entities
    (results / "sequence_seed1.json").write_text(json.dumps(judged_run("sequence", 1, texts, contexts, capitalised_words)))
    assert [p.name for p in bench.rejudge(results, judge, extractor=capitalised_words)] == ["sequence_seed1.json"]
    run = json.loads((results / "sequence_seed1.json").read_text())
    assert run["earlier_judges"][0]["entities_changed"] is False and run["judge"] == bench.judge_identity(judge)


def test_rejudge_refuses_misaligned_records_and_a_missing_judge(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(FileNotFoundError, match="grid"):
        bench.rejudge(results, tmp_path / "no_judge", extractor=capitalised_words)
    fake_judge(tmp_path / "judge", b"w")
    run = judged_run("token", 1, ["Ann met Bob.", "Cy left."], ["Ann: hi", "Cy: bye"], first_word_only)
    run["summaries"][0]["after"]["summary"] = "Cy left."  # the record no longer matches its text
    (results / "token_seed1.json").write_text(json.dumps(run))
    with pytest.raises(ValueError, match="token_seed1.json: summary 0"):
        bench.rejudge(results, tmp_path / "judge", extractor=capitalised_words)
    assert json.loads((results / "token_seed1.json").read_text()) == run and not (results / "judge.json").exists()


def test_rejudge_is_a_command(monkeypatch, capsys):
    monkeypatch.setattr(bench, "rejudge", lambda: [Path("a.json")])
    bench.main(["rejudge"])
    assert "wrote a.json" in capsys.readouterr().out


def test_a_run_records_the_judge_that_scored_it(tmp_path, monkeypatch):
    fake_judge(tmp_path / "judge", b"judge weights")

    def fake_recipe(cmd, cwd, output_dir, **kwargs):
        summary = {"reference": "r", "context": "c", "before": {"summary": "s"}, "after": {"summary": "t"}}
        (Path(output_dir) / "results.json").write_text(json.dumps({
            "after": {"rougeL": 1.0}, "train_seconds": 1, "train_prompts": 1, "eval_prompts": 1, "steps": 1,
            "log_history": [], "config": {}, "summaries": [summary]}))
        return {"command": "python ..."}

    monkeypatch.setattr(bench, "run_recipe_command", fake_recipe)
    result = bench.run_recipe("token", 1, tmp_path / "judge")
    assert result["judge"] == bench.judge_identity(tmp_path / "judge") and "before" not in result["summaries"][0]


def test_report_refuses_runs_judged_by_different_judges(tmp_path):
    (tmp_path / "judge.json").write_text(json.dumps({"conll2003_test": {"f1": 0.8}, "sha256": "new"}))
    for arm, sha in (("token", "new"), ("sequence", "old")):
        (tmp_path / f"{arm}_seed1.json").write_text(json.dumps({**fake_run(arm, 1, 1.0, 1.0, 20.0), "judge": {"sha256": sha}}))
    with pytest.raises(SystemExit, match="sequence seed 1"):
        bench.report(tmp_path)
    (tmp_path / "judge.json").unlink()  # without judge.json, two judges among the runs are still refused
    with pytest.raises(SystemExit, match="different judges"):
        bench.report(tmp_path)
    (tmp_path / "sequence_seed1.json").write_text(json.dumps({
        **fake_run("sequence", 1, 1.0, 1.0, 20.0), "judge": {"sha256": "new"},
        "earlier_judges": [{"judge": {"sha256": "old"}, "entities_changed": True}]}))
    with pytest.raises(SystemExit, match="judge.json is missing"):  # stamped runs, nothing naming their judge
        bench.report(tmp_path)
    (tmp_path / "judge.json").write_text(json.dumps({"conll2003_test": {"f1": 0.8}, "sha256": "new"}))
    table = bench.report(tmp_path)
    assert "token − sequence" in table and "1 of 2 result files were re-scored by this judge" in table
