"""Tier 1: token-classification rewards on hand-written label sequences."""

import pytest
import torch

from trl_tokenlevel.rewards import (
    EntitySpanReward,
    SentenceF1Reward,
    TokenAccuracyReward,
    compute_token_rewards,
    extract_spans,
)
from trl_tokenlevel.rewards.token.spans import Span


NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
ID = {n: i for i, n in enumerate(NAMES)}


def ids(*tags):
    return [ID[t] for t in tags]


def run(reward, gold, *samples):
    gold_t = torch.tensor([gold])
    sampled = torch.tensor([[s] for s in samples])
    return reward(sampled, gold_t, gold_t != -100, NAMES)


def test_extract_spans_marks_illegal_inside_tags():
    assert extract_spans(["B-PER", "I-PER", "O", "B-LOC"]) == [Span(0, 2, "PER"), Span(3, 4, "LOC")]
    assert extract_spans(["O", "I-PER", "I-PER"]) == [Span(1, 3, "PER", valid=False)]
    assert extract_spans(["B-PER", "I-LOC"]) == [Span(0, 1, "PER"), Span(1, 2, "LOC", valid=False)]
    with pytest.raises(ValueError, match="not an IOB2 tag"):
        extract_spans(["B-PER", "E-PER"])


def test_exact_span_is_rewarded_and_split_over_its_tokens():
    gold = ids("B-PER", "I-PER", "O")
    out = run(EntitySpanReward(), gold, ids("B-PER", "I-PER", "O"))
    assert out[0, 0].tolist() == [0.5, 0.5, 0.0]


def test_boundary_error_is_penalised_as_false_positive_and_miss():
    gold = ids("B-PER", "I-PER", "O")
    out = run(EntitySpanReward(), gold, ids("B-PER", "O", "O"))  # PER span too short
    # predicted (0,1) PER: FP -1 on token 0; gold (0,2) missed: -0.5 on tokens 0 and 1
    assert out[0, 0].tolist() == [-1.5, -0.5, 0.0]


def test_wrong_type_is_penalised():
    gold = ids("B-LOC", "O")
    out = run(EntitySpanReward(), gold, ids("B-ORG", "O"), ids("B-LOC", "O"))
    assert out[0, 0].tolist() == [-2.0, 0.0]
    assert out[1, 0].tolist() == [1.0, 0.0]


def test_illegal_span_never_matches_and_unnormalised_credit():
    gold = ids("B-PER", "I-PER")
    reward = EntitySpanReward(normalize_by_length=False, false_negative_penalty=0.0)
    out = run(reward, gold, ids("I-PER", "I-PER"))
    assert out[0, 0].tolist() == [-1.0, -1.0]


def test_padding_and_subword_positions_never_count():
    gold = torch.tensor([[-100, ID["B-PER"], -100, ID["O"], -100]])
    sampled = torch.tensor([[[ID["B-LOC"], ID["B-PER"], ID["B-LOC"], ID["O"], ID["I-ORG"]]]])
    mask = gold != -100
    for reward in (EntitySpanReward(), TokenAccuracyReward(), SentenceF1Reward()):
        out = reward(sampled, gold, mask, NAMES)
        assert out[0, 0, [0, 2, 4]].tolist() == [0.0, 0.0, 0.0], type(reward).__name__
    # and spans are read over words only: B-PER at word 0 is an exact match despite the sub-word in between
    assert EntitySpanReward()(sampled, gold, mask, NAMES)[0, 0, 1].item() == 1.0


def test_token_accuracy_with_class_weights():
    gold = ids("O", "B-PER")
    reward = TokenAccuracyReward(correct_reward=2.0, incorrect_penalty=0.5, class_weights={"O": 0.1})
    out = run(reward, gold, ids("O", "O"))
    assert out[0, 0].tolist() == pytest.approx([0.2, -0.5])
    with pytest.raises(ValueError, match="unknown labels"):
        run(TokenAccuracyReward(class_weights={"B-MISC": 2.0}), gold, ids("O", "O"))


def test_sentence_f1_gives_every_token_the_sentence_score():
    gold = ids("B-PER", "O", "B-LOC")
    out = run(SentenceF1Reward(), gold, ids("B-PER", "O", "B-LOC"), ids("O", "O", "O"))
    assert out[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert out[1, 0].tolist() == [0.0, 0.0, 0.0]
    empty = run(SentenceF1Reward(), ids("O", "O"), ids("O", "O"))
    assert empty[0, 0].tolist() == [1.0, 1.0]


def test_compute_token_rewards_weights_and_names():
    gold = torch.tensor([ids("B-PER", "O")])
    sampled = torch.tensor([[ids("B-PER", "B-PER")]])
    total, per = compute_token_rewards(
        [TokenAccuracyReward(), EntitySpanReward()], [0.5, 2.0], sampled, gold, gold != -100, NAMES
    )
    assert set(per) == {"TokenAccuracyReward", "EntitySpanReward"}
    assert total[0, 0].tolist() == [0.5 * 1 + 2.0 * 1.0, 0.5 * -1 + 2.0 * -1.0]


def test_user_callables_with_wrong_shape_or_nan_fail_naming_the_reward():
    gold = torch.tensor([ids("B-PER", "O")])
    sampled = torch.tensor([[ids("B-PER", "O")]])

    def short_reward(sampled_labels, gold_labels, word_mask, label_names, **kwargs):
        return [[[1.0]]]

    def nan_reward(sampled_labels, gold_labels, word_mask, label_names, **kwargs):
        return torch.full(sampled_labels.shape, float("nan"))

    def list_reward(sampled_labels, gold_labels, word_mask, label_names, tokens=None, **kwargs):
        assert tokens == [["Ann", "runs"]]
        return [[[1.0, 0.0]]]

    with pytest.raises(ValueError, match="short_reward.*shape"):
        compute_token_rewards([short_reward], [1.0], sampled, gold, gold != -100, NAMES)
    with pytest.raises(ValueError, match="nan_reward.*returned nan at sample 0, sentence 0, position 0"):
        compute_token_rewards([nan_reward], [1.0], sampled, gold, gold != -100, NAMES)
    total, per = compute_token_rewards(
        [list_reward], [1.0], sampled, gold, gold != -100, NAMES, tokens=[["Ann", "runs"]]
    )
    assert total.tolist() == [[[1.0, 0.0]]] and list(per) == ["list_reward"]
