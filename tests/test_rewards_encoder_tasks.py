"""Rewards and the span sampler for the encoder tasks: classification, relation extraction, extractive QA."""

import doctest
import importlib
import itertools
import random

import pytest
import torch

from trl_tokenlevel.data.semeval import SEMEVAL2010_TASK8_LABELS
from trl_tokenlevel.metrics.squad import squad_scores
from trl_tokenlevel.question_answering.spans import best_spans, sample_spans, span_log_probs
from trl_tokenlevel.rewards.sequence.classification import CorrectLabelReward, CostMatrixReward, RelationReward
from trl_tokenlevel.rewards.sequence.qa import SpanF1Reward, span_f1, span_text

# --- sequence classification -----------------------------------------------------------------------------------


def test_correct_label_reward_and_shape_checks():
    reward = CorrectLabelReward(correct_reward=2.0, incorrect_reward=-1.0)
    sampled = torch.tensor([[0, 1, 2], [2, 1, 0]])  # (K=2, B=3)
    gold = torch.tensor([0, 1, 1])
    assert reward(sampled, gold, ["a", "b", "c"]).tolist() == [[2.0, 2.0, -1.0], [-1.0, 2.0, -1.0]]
    assert reward.__name__ == "CorrectLabelReward"
    with pytest.raises(ValueError, match="expected sampled_labels"):
        reward(sampled, gold[:2], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"gold_labels holds ids outside 0..2"):
        reward(sampled, torch.tensor([0, 1, 3]), ["a", "b", "c"])


def test_cost_matrix_reward_matrix_and_mapping():
    names = ["neg", "neu", "pos"]
    cost = [[0, 1, 4], [1, 0, 1], [4, 1, 0]]  # confusing the extremes is 4 times worse
    sampled = torch.tensor([[2, 1, 2]])
    gold = torch.tensor([0, 0, 2])
    assert CostMatrixReward(cost)(sampled, gold, names).tolist() == [[-4.0, -1.0, 0.0]]
    by_name = CostMatrixReward({"neg": {"pos": 4.0}, "pos": {"neg": 4.0}})
    assert by_name(sampled, gold, names).tolist() == [[-4.0, -1.0, 0.0]]
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        CostMatrixReward([[0, 1], [1, 0]])(sampled, gold, names)
    with pytest.raises(ValueError, match=r"unknown labels \['positive'\]"):
        CostMatrixReward({"positive": {"neg": 1.0}})(sampled, gold, names)


def test_relation_reward_over_the_semeval_labels():
    names = SEMEVAL2010_TASK8_LABELS
    ids = {name: i for i, name in enumerate(names)}
    reward = RelationReward(direction_credit=0.3, other_cost=0.7, incorrect_reward=-0.1)
    cases = [
        ("Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)", 1.0),
        ("Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", 0.3),  # right relation, wrong direction
        ("Other", "Member-Collection(e2,e1)", -0.7),  # a relation where there is none
        ("Other", "Other", 1.0),
        ("Cause-Effect(e1,e2)", "Other", -0.1),  # a missed relation
        ("Cause-Effect(e1,e2)", "Entity-Origin(e1,e2)", -0.1),  # a wrong relation
    ]
    gold = torch.tensor([ids[g] for g, _, _ in cases])
    sampled = torch.tensor([[ids[s] for _, s, _ in cases]])
    assert reward(sampled, gold, names)[0].tolist() == pytest.approx([r for _, _, r in cases])
    with pytest.raises(ValueError, match="other_label"):
        reward(sampled[:, :1], gold[:1], ["Cause-Effect(e1,e2)", "NoRelation"])


# --- extractive QA: span F1 ------------------------------------------------------------------------------------

ANSWER_CASES = [
    ("Denver Broncos", ["Denver Broncos", "the Broncos"]),
    ("the Broncos of Denver", ["Denver Broncos"]),
    ("Santa Clara, California", ["Santa Clara", "Levi's Stadium"]),
    ("1850", ["in 1850"]),
    ("", ["anything"]),
    ("a a a", ["a"]),
    ("February 7, 2016", ["February 7", "February 7, 2016", "7 February"]),
]


def test_span_f1_equals_the_official_f1():
    for prediction, references in ANSWER_CASES:
        official = squad_scores({"q": prediction}, {"q": references})["f1"] / 100
        assert span_f1(prediction, references) == pytest.approx(official)
    assert span_f1("the Broncos of Denver", ["Denver Broncos"]) == pytest.approx(0.8)  # P = 2/3, R = 1


CONTEXT = "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara."


def _word_offsets(text):
    """Offsets of whitespace-separated words, after 3 non-context positions ([CLS] q [SEP])."""
    offsets, position = [None, None, None], 0
    for word in text.split():
        position = text.index(word, position)
        offsets.append((position, position + len(word)))
        position += len(word)
    return offsets + [None]


def test_span_f1_reward_scores_sampled_spans_against_the_best_reference():
    offsets = _word_offsets(CONTEXT)
    answers = [{"text": ["February 7, 2016", "February 7"], "answer_start": [23, 23]}]
    starts = torch.tensor([[8], [8], [6], [14]])
    ends = torch.tensor([[10], [9], [9], [16]])
    rewards = SpanF1Reward()(starts, ends, offset_mapping=[offsets], context=[CONTEXT], answers=answers)
    texts = [span_text(CONTEXT, offsets, int(s), int(e)) for s, e in zip(starts[:, 0], ends[:, 0])]
    assert texts == ["February 7, 2016,", "February 7,", "played on February 7,", "in Santa Clara."]
    assert rewards.shape == (4, 1)
    assert rewards[:, 0].tolist() == pytest.approx([1.0, 1.0, 2 * 0.5 / 1.5, 0.0])
    with pytest.raises(ValueError, match="sample 0, window 0: Span \\(start=1, end=4\\) is not a context span"):
        SpanF1Reward()(torch.tensor([[1]]), torch.tensor([[4]]), offset_mapping=[offsets], context=[CONTEXT],
                       answers=answers)  # fmt: skip
    with pytest.raises(ValueError, match="not a context span"):
        SpanF1Reward()(torch.tensor([[9]]), torch.tensor([[8]]), offset_mapping=[offsets], context=[CONTEXT],
                       answers=answers)  # fmt: skip


# --- extractive QA: the span sampler ---------------------------------------------------------------------------


def _random_case(rng, generator):
    batch, length = rng.randint(1, 6), rng.randint(2, 40)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for b in range(batch):  # a contiguous context after a "question", as in real windows
        first = rng.randint(0, length - 1)
        mask[b, first : rng.randint(first + 1, length)] = True
    scale = rng.choice([0.1, 1.0, 10.0])
    start = torch.randn(batch, length, generator=generator) * scale
    end = torch.randn(batch, length, generator=generator) * scale
    return start, end, mask


def test_sample_spans_stay_in_the_context_with_end_after_start():
    rng, generator = random.Random(0), torch.Generator().manual_seed(0)
    for _ in range(200):
        start, end, mask = _random_case(rng, generator)
        temperature, max_answer_length = rng.choice([0.3, 1.0, 2.0]), rng.randint(1, 8)
        sample = sample_spans(start, end, mask, num_samples=16, temperature=temperature,
                              max_answer_length=max_answer_length, generator=generator)  # fmt: skip
        assert sample.starts.shape == sample.ends.shape == (16, start.shape[0])
        rows = torch.arange(start.shape[0]).expand_as(sample.starts)
        assert mask[rows, sample.starts].all() and mask[rows, sample.ends].all()
        assert (sample.ends >= sample.starts).all()
        assert (sample.ends - sample.starts < max_answer_length).all()
        recomputed = span_log_probs(start, end, mask, sample.starts, sample.ends, temperature, max_answer_length)
        torch.testing.assert_close(recomputed[0], sample.start_logprobs)
        torch.testing.assert_close(recomputed[1], sample.end_logprobs)


def test_sample_spans_follow_the_policy_distribution():
    start = torch.tensor([[0.0, 1.0, 0.5, -1.0, 2.0]])
    end = torch.tensor([[0.0, -0.5, 1.0, 0.3, 0.0]])
    mask = torch.tensor([[False, True, True, True, False]])
    num_samples = 20000
    sample = sample_spans(start, end, mask, num_samples, temperature=0.7, max_answer_length=2,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    pairs = [(s, e) for s in (1, 2, 3) for e in (1, 2, 3) if 0 <= e - s < 2]
    starts = torch.tensor([[s] for s, _ in pairs]).T.reshape(-1, 1)
    ends = torch.tensor([[e] for _, e in pairs]).T.reshape(-1, 1)
    start_lp, end_lp = span_log_probs(start, end, mask, starts, ends, temperature=0.7, max_answer_length=2)
    probabilities = (start_lp + end_lp).exp()[:, 0]
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)
    observed = [((sample.starts[:, 0] == s) & (sample.ends[:, 0] == e)).float().mean().item() for s, e in pairs]
    assert observed == pytest.approx(probabilities.tolist(), abs=0.015)


def test_span_log_probs_give_finite_gradients_and_refuse_invalid_spans():
    start = torch.randn(2, 6, requires_grad=True)
    end = torch.randn(2, 6, requires_grad=True)
    mask = torch.tensor([[0, 1, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0]], dtype=torch.bool)
    start_lp, end_lp = span_log_probs(start, end, mask, torch.tensor([[1, 2]]), torch.tensor([[3, 3]]))
    (start_lp + end_lp).sum().backward()
    assert torch.isfinite(start.grad).all() and torch.isfinite(end.grad).all()
    assert start.grad[~mask].abs().sum() == 0 and end.grad[~mask].abs().sum() == 0
    with pytest.raises(ValueError, match="sample 0, row 1 is outside"):
        span_log_probs(start, end, mask, torch.tensor([[1, 3]]), torch.tensor([[3, 2]]))
    with pytest.raises(ValueError, match=r"Rows \[1\] have no context token"):
        sample_spans(start, end, torch.tensor([[0, 1, 0, 0, 0, 0], [0] * 6], dtype=torch.bool), num_samples=2)


def test_best_spans_is_the_brute_force_argmax():
    rng, generator = random.Random(1), torch.Generator().manual_seed(1)
    for _ in range(100):
        start, end, mask = _random_case(rng, generator)
        max_answer_length = rng.randint(1, 6)
        starts, ends = best_spans(start, end, mask, max_answer_length)
        for b in range(start.shape[0]):
            context = mask[b].nonzero().flatten().tolist()
            valid = [(s, e) for s, e in itertools.product(context, context) if 0 <= e - s < max_answer_length]
            best = max(start[b, s] + end[b, e] for s, e in valid)
            assert start[b, starts[b]] + end[b, ends[b]] == best and (int(starts[b]), int(ends[b])) in valid


@pytest.mark.parametrize(
    "name", ["trl_tokenlevel.rewards.sequence.classification", "trl_tokenlevel.rewards.sequence.qa", "trl_tokenlevel.question_answering.spans"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0, result
