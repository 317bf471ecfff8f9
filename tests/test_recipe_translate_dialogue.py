"""Tier 3: recipes/translate.py and recipes/dialogue.py as subprocesses on small real slices of Multi30k and SAMSum,
with tiny random models saved to disk (a T5 and a Llama, not SmolLM2: too slow for a test). They learn nothing; the
tests check that each recipe warms up / trains, evaluates, writes its report and saves a loadable model."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from tiny_lm import lm_tokenizer, tiny_llama
from tiny_seq2seq import seq2seq_tokenizer, tiny_t5
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TINY_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "2", "--num_samples", "2", "--max_new_tokens", "6",
            "--eval_max_new_tokens", "6", "--logging_steps", "1"]


def run_recipe(name: str, model_dir, out_dir, *extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, f"recipes/{name}.py", "--config", f"recipes/configs/{name}.yaml",
               "--model_name_or_path", str(model_dir), "--output_dir", str(out_dir), *TINY_RUN, *extra]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=300)
    return json.loads((out_dir / "results.json").read_text())


def assert_reported_like_the_other_recipes(out, scores, prefixes, pipeline_tag):
    """`{eval,predict}_results.json` and `all_results.json` hold the final scores, `trainer_state.json` logged them
    (trackers saw them), and the model card carries them in `model-index` with the right pipeline tag."""
    import yaml

    all_results = json.loads((out / "all_results.json").read_text())
    logged = {k: v for entry in json.loads((out / "trainer_state.json").read_text())["log_history"] for k, v in entry.items()}
    for split, prefix in prefixes.items():
        written = json.loads((out / f"{prefix}_results.json").read_text())
        for metric in ("rougeL", "mean_words") if prefix == "predict" and "bleu" not in scores[split] else ("bleu", "chrf"):
            key = f"{prefix}_{metric}"
            assert written[key] == all_results[key] == logged[key] == pytest.approx(scores[split][metric]), key
    assert "train_runtime" in all_results and (out / "training_args.json").is_file() and not (out / "training_args.bin").exists()
    card = (out / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["pipeline_tag"] == pipeline_tag and metadata["model-index"][0]["results"], metadata


def saved(tmp_path, name, model, tokenizer):
    model.save_pretrained(tmp_path / name)
    tokenizer.save_pretrained(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_translate_recipe_warms_up_trains_scores_and_saves(tmp_path, kind):
    if not (DATA / "multi30k" / "test_2016_flickr.de").is_file():
        pytest.skip("Multi30k not found in ../shared/data/multi30k")
    model_dir = saved(tmp_path, kind, *((tiny_t5(), seq2seq_tokenizer()) if kind == "t5" else (tiny_llama(), lm_tokenizer())))
    results = run_recipe(
        "translate", model_dir, tmp_path / "out", "--max_train_samples", "16", "--max_eval_samples", "4",
        "--sft_max_steps", "2", "--sft_batch_size", "4", "--length_penalty_after", "4",
    )
    assert results["encoder_decoder"] == (kind == "t5") and results["steps"] == 2
    assert results["eval_pairs"] == {"validation": 4, "test": 4}  # dev for choices, test reported
    assert len(results["sft_losses"]) == 2 and all(loss > 0 for loss in results["sft_losses"])  # the warm-up ran
    for phase in ("sft", "rl"):
        for split in ("validation", "test"):
            assert 0 <= results[phase][split]["bleu"] <= 100 and 0 <= results[phase][split]["chrf"] <= 100
            assert results[phase][split]["num_examples"] == 4
            assert len(results["predictions"][phase][split]) == 4
    assert results["signatures"]["chrf"].startswith("nrefs:1")
    rewards = [h for h in results["log_history"] if "rewards/CharNgramOverlapReward/mean" in h]
    assert rewards and "rewards/LengthPenalty/mean" in rewards[0]
    out = tmp_path / "out"
    auto = AutoModelForSeq2SeqLM if kind == "t5" else AutoModelForCausalLM
    reloaded = auto.from_pretrained(out)  # LoRA merged (merge_adapters): a plain HF folder, the adapter in adapter/
    assert not (out / "adapter_config.json").exists() and (out / "adapter" / "adapter_config.json").is_file()
    assert reloaded.config.model_type == ("t5" if kind == "t5" else "llama")
    assert_reported_like_the_other_recipes(out, results["rl"], {"validation": "eval", "test": "predict"},
                                           pipeline_tag="text2text-generation" if kind == "t5" else "text-generation")


def test_dialogue_recipe_trains_judges_and_saves(tmp_path):
    if not (DATA / "samsum" / "test.jsonl").is_file():
        pytest.skip("SAMSum not found in ../shared/data/samsum")
    model_dir = saved(tmp_path, "llama", tiny_llama(), lm_tokenizer())
    results = run_recipe(
        "dialogue", model_dir, tmp_path / "out", "--max_train_dialogues", "2", "--max_train_examples", "8",
        "--max_eval_examples", "4",
    )
    assert results["steps"] == 2 and results["eval_examples"] == 4 and results["train_examples"] == 8
    for phase in ("before", "after"):
        assert 0 <= results[phase]["rougeL"] <= 100 and 0 <= results[phase]["judged_hallucination_rate"] <= 100
    logged = [h for h in results["log_history"] if "reward" in h]
    for name in ("ReferenceOverlapReward", "LengthPenalty", "EntityFaithfulnessReward"):
        assert f"rewards/{name}/mean" in logged[0], name
    out = tmp_path / "out"
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "llama"
    assert_reported_like_the_other_recipes(out, {"test": results["after"]}, {"test": "predict"}, pipeline_tag="text-generation")


def test_dialogue_judge_is_not_the_reward():
    """The judge counts numbers and mid-sentence names the dialogue lacks; the reward ignores numbers."""
    sys.path.insert(0, str(ROOT / "recipes"))
    try:
        from dialogue import judge_unsupported
    finally:
        sys.path.remove(str(ROOT / "recipes"))
    assert judge_unsupported("Sure, at 9 then", "Ann: dinner at 8?") == (1, 1)
    assert judge_unsupported("Sure, at 8 with Tom", "Ann: dinner at 8?\nTom: ok") == (2, 0)
    assert judge_unsupported("Kate will come", "Ann: hi") == (0, 0)  # a reply's first word is not judged


def test_translate_recipe_saves_a_warm_up_that_later_runs_start_from(tmp_path):
    """--skip_rl + --warm_up_output_dir: the supervised baseline, scored and saved; a run started from the saved
    folder with --sft_max_steps 0 --eval_before_rl false trains RL only and scores only after it."""
    if not (DATA / "multi30k" / "test_2016_flickr.de").is_file():
        pytest.skip("Multi30k not found in ../shared/data/multi30k")
    model_dir = saved(tmp_path, "t5", tiny_t5(), seq2seq_tokenizer())
    common = ["--max_train_samples", "16", "--max_eval_samples", "3", "--sft_batch_size", "4", "--eval_splits", "validation"]
    warm = run_recipe("translate", model_dir, tmp_path / "warm_run", *common, "--sft_max_steps", "2", "--skip_rl", "true",
                      "--warm_up_output_dir", str(tmp_path / "warm"))
    assert warm["steps"] == 0 and warm["rl"] == {} and len(warm["sft_losses"]) == 2
    assert set(warm["sft"]) == {"validation"} and warm["eval_pairs"] == {"validation": 3}
    assert AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "warm").config.model_type == "t5"
    rl = run_recipe("translate", tmp_path / "warm", tmp_path / "rl_run", *common, "--sft_max_steps", "0",
                    "--eval_before_rl", "false")
    assert rl["sft_losses"] == [] and rl["sft"] == {} and rl["steps"] == 2 and set(rl["rl"]) == {"validation"}
