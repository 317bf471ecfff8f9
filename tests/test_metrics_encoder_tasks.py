"""Metrics for the encoder tasks: SQuAD v1.1 EM/F1, the SemEval-2010 Task 8 official score, classification."""

import doctest
import importlib

import numpy as np
import pytest
import torch
from transformers import BertTokenizer, EvalPrediction

from trl_tokenlevel.data.qa_features import prepare_qa_eval_features, prepare_qa_train_features
from trl_tokenlevel.data.semeval import SEMEVAL2010_TASK8_LABELS
from trl_tokenlevel.metrics.classification import build_classification_compute_metrics, classification_scores
from trl_tokenlevel.metrics.semeval import build_semeval_compute_metrics, semeval_official_scores
from trl_tokenlevel.metrics.squad import (
    build_squad_compute_metrics,
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_scores,
)

# --- SQuAD -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Denver Broncos", "denver broncos"),
        ("  an  apple,  a day! ", "apple day"),
        ("Theater's (the) best", "theaters best"),  # punctuation removed before articles, "the" inside a word kept
        ("A", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize(
    "prediction, reference, em, f1",
    [
        ("Denver Broncos", "the Denver Broncos.", 1.0, 1.0),
        ("Denver", "Denver Broncos", 0.0, 2 / 3),  # P = 1, R = 1/2
        ("cat cat dog", "cat dog", 0.0, 0.8),  # bag of tokens: P = 2/3, R = 1
        ("cat cat", "cat cat cat", 0.0, 0.8),  # repeated tokens count as often as shared: P = 1, R = 2/3
        ("Broncos", "Panthers", 0.0, 0.0),
        ("the", "a", 1.0, 0.0),  # both normalise to "": equal strings, but v1.1 F1 has no shared token
    ],
)
def test_exact_match_and_f1(prediction, reference, em, f1):
    assert exact_match_score(prediction, reference) == em
    assert f1_score(prediction, reference) == pytest.approx(f1)


def test_squad_scores_take_the_best_reference_and_average_in_percent():
    predictions = {"q1": "Denver", "q2": "Carolina Panthers", "q3": "Levi's Stadium in Santa Clara"}
    references = {
        "q1": ["Denver Broncos", "Broncos"],  # F1 2/3 against the first, 0 against the second
        "q2": {"text": ["the Carolina Panthers", "Panthers"], "answer_start": [0, 4]},  # EM via the first
        "q3": ["Levi's Stadium"],  # P = 2/5, R = 1 -> 4/7
    }
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1 + 4 / 7) / 3)
    with pytest.raises(ValueError, match="No prediction for 1 questions"):
        squad_scores({"q1": "x"}, {"q1": ["x"], "q2": ["y"]})


def test_build_squad_compute_metrics_scores_postprocessed_logits():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the river is old who when what ? in 1850".split()
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    context = "The river is old. In 1850 the river is old."
    answers = [{"text": ["The river"], "answer_start": [0]}, {"text": ["1850"], "answer_start": [21]}]
    questions = ["What is old?", "When?"]
    examples = {"id": ["a", "b"], "question": questions, "context": [context, context], "answers": answers}
    features = prepare_qa_eval_features(examples, tokenizer, max_length=32, doc_stride=8)
    targets = prepare_qa_train_features(examples, tokenizer, max_length=32, doc_stride=8)
    start = np.zeros((len(features["input_ids"]), 32), dtype=np.float32)
    end = np.zeros_like(start)
    for i, (s, e) in enumerate(zip(targets["start_positions"], targets["end_positions"])):
        start[i, s], end[i, e + 2] = 5.0, 5.0  # two tokens too long: "The river is old", "1850 the river"
    compute_metrics = build_squad_compute_metrics(examples, features)
    scores = compute_metrics(EvalPrediction(predictions=(start, end), label_ids=None))
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)  # P = 1/3, R = 1; P = 1/2, R = 1


# --- SemEval-2010 Task 8 ---------------------------------------------------------------------------------------

CE12, CE21, CW12, CW21, ED12 = "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)", \
    "Component-Whole(e2,e1)", "Entity-Destination(e1,e2)"  # fmt: skip


def test_semeval_perfect_and_other_only_predictions():
    gold = [CE12, CE21, CW12, "Other"]
    assert semeval_official_scores(gold, gold)["macro_f1"] == 100.0
    everything_other = semeval_official_scores(gold, ["Other"] * 4)
    assert everything_other["macro_f1"] == 0.0 and everything_other["accuracy"] == 25.0


def test_semeval_wrong_direction_is_wrong_but_pooled_in_precision():
    gold = [CE12, CE12, CE21, CW12]
    pred = [CE12, CE21, CE21, CW21]  # C-E: 2 exact, 1 reversed; C-W: reversed only
    scores = semeval_official_scores(gold, pred)
    # C-E: correct 2, predicted (both directions) 3, gold 3 -> P = R = 2/3.  C-W: correct 0 -> F1 0.
    assert scores["Cause-Effect_precision"] == pytest.approx(200 / 3)
    assert scores["Cause-Effect_recall"] == pytest.approx(200 / 3)
    assert scores["Component-Whole_f1"] == 0.0
    assert scores["macro_f1"] == pytest.approx((200 / 3) / 2)
    # Ignoring direction would give C-W a perfect score; per directed label (18-way) C-E(e1,e2) would have P = 1.


def test_semeval_other_is_not_averaged_but_false_positives_cost_precision():
    gold = [CE12, "Other", "Other", ED12]
    pred = [CE12, CE12, "Other", "Other"]
    scores = semeval_official_scores(gold, pred)
    # C-E: P = 1/2, R = 1 -> F1 2/3.  E-D: missed (predicted Other) -> F1 0.  Averaged over the 2 gold relations.
    assert scores["Cause-Effect_f1"] == pytest.approx(200 / 3)
    assert scores["Entity-Destination_recall"] == 0.0
    assert scores["macro_f1"] == pytest.approx(100 / 3)
    assert "Other_f1" not in scores
    assert scores["micro_precision"] == pytest.approx(50.0) and scores["micro_recall"] == pytest.approx(50.0)


def test_semeval_relation_absent_from_gold_is_not_averaged():
    gold = [CE12, CE12]
    pred = [CE12, ED12]  # E-D is not a gold relation: not averaged, and its false positive not counted
    scores = semeval_official_scores(gold, pred)
    assert scores["macro_f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5 * 100)  # C-E only: P = 1, R = 1/2
    assert "Entity-Destination_f1" not in scores


def test_semeval_compute_metrics_from_logits():
    names = SEMEVAL2010_TASK8_LABELS
    gold = np.array([names.index(CE12), names.index(CE21), names.index("Other")])
    logits = np.full((3, 19), -1.0)
    logits[0, names.index(CE12)] = logits[1, names.index(CE12)] = logits[2, names.index("Other")] = 1.0
    scores = build_semeval_compute_metrics(names)(EvalPrediction(predictions=logits, label_ids=gold))
    assert scores["Cause-Effect_precision"] == 50.0 and scores["macro_f1"] == 50.0
    with pytest.raises(ValueError, match="neither 'Other' nor"):
        build_semeval_compute_metrics(["Cause-Effect", "Other"])


# --- classification --------------------------------------------------------------------------------------------


def test_classification_scores_average_over_all_named_classes():
    scores = classification_scores([0, 0, 1, 1, 2], [0, 1, 1, 1, 1], ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(0.6)
    # a: P 1, R 1/2 -> 2/3; b: P 2/4, R 1 -> 2/3; c: never predicted -> 0.
    assert scores["f1_a"] == pytest.approx(2 / 3) and scores["f1_c"] == 0.0
    assert scores["macro_f1"] == pytest.approx(4 / 9)
    with pytest.raises(ValueError, match=r"Class ids \[3\]"):
        classification_scores([0, 3], [0, 1], ["a", "b", "c"])


def test_classification_compute_metrics_accepts_logits_and_tuples():
    compute_metrics = build_classification_compute_metrics(["negative", "positive"])
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    labels = np.array([0, 1, 1])
    for predictions in (logits, (logits,), logits.argmax(-1)):
        scores = compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
        assert scores["accuracy"] == pytest.approx(2 / 3)
        assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


@pytest.mark.parametrize(
    "name",
    ["trl_tokenlevel.metrics.squad", "trl_tokenlevel.metrics.semeval", "trl_tokenlevel.metrics.classification",
     "trl_tokenlevel.data.semeval", "trl_tokenlevel.data.qa_features"],
)  # fmt: skip
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0, result
