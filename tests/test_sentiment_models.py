"""benchmarks/sentiment_models.py: the build path on a toy split with a tiny random model, the judge on a separable
toy set, the cache round trip, and the text normalisation both models rely on."""

import dataclasses
import doctest
import json
import random
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
)


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
pytest.importorskip("sklearn")
import sentiment_models
from sentiment_models import SentimentModelsConfig

POSITIVE = ["good", "great", "fine", "fun", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
NEUTRAL = ["the", "film", "movie", "was", "is", "a", "plot", "and"]


def toy_split(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Sentences of neutral words plus two words of one polarity: separable by the polarity words alone."""
    rng = random.Random(seed)
    sentences, labels = [], []
    for i in range(count):
        label = i % 2
        words = rng.sample(NEUTRAL, 3) + rng.sample(POSITIVE if label else NEGATIVE, 2)
        rng.shuffle(words)
        sentences.append(" ".join(words) + " . ")
        labels.append(label)
    return sentences, labels


def toy_splits() -> dict:
    return {"train": toy_split(64, 0), "validation": toy_split(32, 1), "test": toy_split(32, 2)}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "."] + POSITIVE + NEGATIVE + NEUTRAL)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")


def tiny_model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=len(tiny_tokenizer()), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=2,
    ))


TINY = SentimentModelsConfig(
    train_examples=48, batch_size=8, learning_rate=1e-3, max_length=8, num_evals=2, eval_batch_size=16,
    judge_c_grid=(0.01, 10.0),
)


def test_docstring_examples_and_yaml_mirrors_the_defaults():
    assert doctest.testmod(sentiment_models).failed == 0
    yaml_config = SentimentModelsConfig.from_yaml(ROOT / "benchmarks" / "configs" / "sentiment_models.yaml")
    assert yaml_config == SentimentModelsConfig()


def test_judge_is_perfect_on_a_separable_toy_set_and_chooses_c_on_dev_only():
    judge, info = sentiment_models.train_judge(TINY, toy_splits())
    assert info["dev_accuracy"] == 1.0 and info["test_accuracy"] == 1.0
    assert info["dev_accuracy"] == max(info["dev_accuracy_by_C"].values())
    assert judge.predict(["What a lovely, fun film!", "The plot was awful and dull."]).tolist() == [1, 0]
    splits = toy_splits()
    splits["test"] = (splits["test"][0], [1 - y for y in splits["test"][1]])  # wrong test labels: reported, never used
    flipped = sentiment_models.train_judge(TINY, splits)[1]
    assert flipped["C"] == info["C"] and flipped["test_accuracy"] == 0.0
    splits["validation"] = (splits["validation"][0], [1 - y for y in splits["validation"][1]])
    assert sentiment_models.train_judge(TINY, splits)[1]["dev_accuracy"] == 0.0


def test_judge_reads_contractions_as_sst2_writes_them():
    analyzer = sentiment_models.train_judge(TINY, toy_splits())[0].named_steps["tfidf"].build_analyzer()
    assert analyzer("It isn't fun, it's dull!") == analyzer("it is n't fun , it 's dull !")
    assert "is n't" in analyzer("it isn't")


def test_ptb_detokenization():
    detok = sentiment_models.detokenize_ptb
    assert detok("it 's a charming and often affecting journey . ") == "it's a charming and often affecting journey."
    assert detok("i ca n't wait , `` really '' ... -lrb- ok -rrb- !") == 'i can\'t wait, "really"... (ok)!'


def test_length_grouped_batches_cover_every_row_once():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(1000)]
    batches = sentiment_models._length_grouped_batches(lengths, 32, random.Random(0), chunk=5)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 20  # sorted within chunks: far less padding than random batches (about 55 apart)


def test_build_cache_load_and_results_on_a_tiny_model(tmp_path):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rm_info = sentiment_models.build_reward_model(TINY, tmp_path, toy_splits(), model, tiny_tokenizer())
    judge_info = sentiment_models.build_judge(TINY, tmp_path, toy_splits())
    assert rm_info["steps"] == 6 and rm_info["train_examples"] == 48 and rm_info["selected_step"] in (3, 6)
    assert [p["step"] for p in rm_info["dev_curve"]] == [3, 6]
    assert rm_info["dev_accuracy"] == max(p["dev_accuracy"] for p in rm_info["dev_curve"])
    assert rm_info["rows_longer_than_max_length"] == {"train": 0, "validation": 0, "test": 0}  # 7 tokens fit in 8
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it trained
    loaded, tokenizer = sentiment_models.load_reward_model(tmp_path, build_if_missing=False, attn_implementation="eager")
    assert loaded.config.id2label == {0: "negative", 1: "positive"} or loaded.config.num_labels == 2
    encoding = tokenizer(["the film was great fun ."], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**encoding).logits, model(**encoding).logits)
    assert sentiment_models.load_judge(tmp_path, build_if_missing=False).predict(["a great film"]).tolist() == [1]
    results = sentiment_models.write_results(tmp_path / "out" / "sentiment_models.json", rm_info, judge_info, TINY)
    saved = json.loads((tmp_path / "out" / "sentiment_models.json").read_text())
    assert saved == json.loads(json.dumps(results)) and saved["seed"] == 0
    assert saved["config"] == json.loads(json.dumps(dataclasses.asdict(TINY)))
    assert saved["summary"]["judge"] == {"dev_accuracy": 1.0, "test_accuracy": 1.0}
    with pytest.raises(FileNotFoundError, match="Fix: run `python benchmarks/sentiment_models.py`"):
        sentiment_models.load_judge(tmp_path / "empty", build_if_missing=False)


def test_the_best_dev_checkpoint_is_kept_and_test_scores_it_once(monkeypatch):
    seen = []

    def scripted_accuracy(model, tokenizer, sentences, labels, max_length, batch_size=128):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return [0.9, 0.6, 0.25][len(seen) - 1]  # dev at step 3, dev at step 6, then test

    monkeypatch.setattr(sentiment_models, "evaluate_accuracy", scripted_accuracy)
    _, _, info = sentiment_models.train_reward_model(TINY, toy_splits(), tiny_model(), tiny_tokenizer())
    assert (info["selected_step"], info["dev_accuracy"], info["test_accuracy"], len(seen)) == (3, 0.9, 0.25, 3)
    at_step_3, at_step_6, at_test = seen
    assert all(torch.equal(at_step_3[k], at_test[k]) for k in at_test)  # test scored the kept checkpoint
    assert any(not torch.equal(at_step_6[k], at_test[k]) for k in at_test)
