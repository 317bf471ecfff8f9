import json
import os

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForTokenClassification,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

from trl_tokenlevel.metrics import (
    align_predictions,
    build_compute_metrics,
    entity_scores,
    load_ner_metric,
    preprocess_logits_for_metrics,
    token_classification_report,
    write_report,
)


TRUE = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "I-ORG", "O", "O"]]
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def test_entity_scores_by_hand():
    # gold: PER, LOC, ORG (3 tokens); predicted: PER (right), ORG on the LOC span (wrong type), ORG (wrong span)
    scores = entity_scores(TRUE, PRED)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3)
    assert (scores["PER_precision"], scores["PER_recall"], scores["PER_f1"], scores["PER_support"]) == (1, 1, 1, 1)
    assert (scores["ORG_precision"], scores["ORG_support"]) == (0, 1)
    assert (scores["LOC_recall"], scores["LOC_support"]) == (0, 1)
    assert scores["token_accuracy"] == pytest.approx(7 / 9)  # O tokens count
    assert all(isinstance(value, float) for value in scores.values())


def test_strict_mode_ignores_entities_starting_with_inside():
    # conlleval would count the stray I-PER as a correct PER entity; strict IOB2 does not.
    scores = entity_scores([["B-PER", "O"]], [["I-PER", "O"]])
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.0
    assert scores["token_accuracy"] == 0.5


def test_no_entities_at_all_gives_zeros():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"], scores["token_accuracy"]) == (0.0, 0.0, 0.0, 1.0)


def test_mismatched_lengths_name_the_sentence():
    with pytest.raises(ValueError, match="Sentence 1: 4 gold tags but 3 predicted"):
        entity_scores(TRUE, [PRED[0], PRED[1][:3]])


def test_token_classification_report_numbers_and_title():
    report, text = token_classification_report(TRUE, PRED, LABELS)
    assert report["O"] == {"precision": 3 / 4, "recall": 1.0, "f1-score": pytest.approx(6 / 7), "support": 3.0}
    assert report["B-LOC"]["support"] == 1.0 and report["B-LOC"]["recall"] == 0.0
    assert report["micro avg"]["f1-score"] == pytest.approx(7 / 9) and report["micro avg"]["support"] == 9.0
    assert {"macro avg", "weighted avg"} <= set(report)
    assert text.startswith("Token-level") and "O included" in text
    assert "micro avg" in text and "I-LOC" in text


def test_align_predictions_drops_ignored_positions_and_prompt_tokens():
    label_ids = np.array([[-100, 1, -100, 0, -100], [-100, 3, 4, -100, -100]])  # (N=2, T=5)
    pred_ids = np.array([[0, 1, 2, 5, 0], [0, 3, 0, 0, 0]])
    true, pred = align_predictions(pred_ids, label_ids, LABELS)
    assert true == [["B-PER", "O"], ["B-ORG", "I-ORG"]]
    assert pred == [["B-PER", "B-LOC"], ["B-ORG", "O"]]

    logits = np.eye(len(LABELS))[pred_ids]  # (N, T, C)
    assert align_predictions(logits, label_ids, dict(enumerate(LABELS))) == (true, pred)

    with_virtual_tokens = np.concatenate([np.full((2, 3), 6), pred_ids], axis=1)  # (N, 3 + T)
    assert align_predictions(with_virtual_tokens, label_ids, LABELS) == (true, pred)
    with pytest.raises(ValueError, match="do not cover labels"):
        align_predictions(pred_ids[:, :4], label_ids, LABELS)


def test_compute_metrics_and_preprocess_logits():
    logits = torch.randn(2, 5, len(LABELS))
    logits_tuple = (logits, torch.zeros(1))
    ids = preprocess_logits_for_metrics(logits_tuple, None)
    assert torch.equal(ids, logits.argmax(-1))
    label_ids = np.array([[-100, 1, 2, 0, -100], [-100, 5, 0, 0, -100]])
    metrics = build_compute_metrics(LABELS)(EvalPrediction(predictions=ids.numpy(), label_ids=label_ids))
    true, pred = align_predictions(ids.numpy(), label_ids, LABELS)
    assert metrics == entity_scores(true, pred)


def test_offline_evaluate_module_matches_entity_scores():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    metric = load_ner_metric()
    assert metric.compute(predictions=PRED, references=TRUE) == pytest.approx(entity_scores(TRUE, PRED))


def test_write_report(tmp_path):
    metrics = entity_scores(TRUE, PRED)
    _, text = token_classification_report(TRUE, PRED, LABELS)
    write_report(tmp_path / "eval" / "test", metrics, text)
    assert json.loads((tmp_path / "eval" / "test.json").read_text()) == pytest.approx(metrics)
    written = (tmp_path / "eval" / "test.txt").read_text()
    assert written.startswith("Entity-level scores") and "PER_f1" in written and text in written


def test_trainer_evaluate_with_prompt_tuning_matches_a_manual_loop(tmp_path):
    """Trainer pads predictions of different lengths with -100; keeping the last T positions must still align."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(LABELS))  # fmt: skip
    model = peft.get_peft_model(
        BertForTokenClassification(config), peft.PromptTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=4)
    ).eval()
    lengths = [3, 7, 5, 9]
    features = [
        {
            "input_ids": torch.randint(5, 50, (n,)).tolist(),
            "labels": [-100] + torch.randint(0, 7, (n - 2,)).tolist() + [-100],
        }
        for n in lengths
    ]

    def collate(batch):  # right padding; labels also get -100 for the 4 virtual tokens in front
        width = max(len(f["input_ids"]) for f in batch)
        pad = [width - len(f["input_ids"]) for f in batch]
        return {
            "input_ids": torch.tensor([f["input_ids"] + [0] * p for f, p in zip(batch, pad)]),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * p for f, p in zip(batch, pad)]),
            "labels": torch.tensor([[-100] * 4 + f["labels"] + [-100] * p for f, p in zip(batch, pad)]),
        }

    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, use_cpu=True, report_to=[])
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=collate,
        compute_metrics=build_compute_metrics(LABELS),
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
    )
    metrics = trainer.evaluate(eval_dataset=features)

    true, pred = [], []
    with torch.no_grad():
        for feature in features:
            logits = model(input_ids=torch.tensor([feature["input_ids"]])).logits[0, 4:]  # drop virtual tokens
            keep = [i for i, label in enumerate(feature["labels"]) if label != -100]
            true.append([LABELS[feature["labels"][i]] for i in keep])
            pred.append([LABELS[int(logits[i].argmax())] for i in keep])
    expected = entity_scores(true, pred)
    assert metrics["eval_token_accuracy"] == pytest.approx(expected["token_accuracy"])
    assert metrics["eval_f1"] == pytest.approx(expected["f1"])
