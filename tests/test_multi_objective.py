"""Tier 1: reward combination and Lagrange multipliers on hand-written tensors."""

import pytest
import torch

from trl_tokenlevel.dynamic.combiner import Constraint, RewardCombiner, lagrange_update
from trl_tokenlevel.dynamic.schedules import ConstantSchedule, build_schedule


MASK = torch.tensor([[True, True, False]])  # (B=1, T=3)


def rewards(a, b):
    return {"f1": torch.tensor([[a]]), "precision": torch.tensor([[b]])}  # (K=1, B=1, T=3)


def test_weighted_sum_follows_the_schedules():
    combiner = RewardCombiner(
        ["f1", "precision"], [ConstantSchedule(1.0), build_schedule({"type": "linear", "start": 0, "end": 2, "steps": 10})]
    )
    r = rewards([1.0, 1.0, 0.0], [0.5, -1.0, 0.0])
    assert combiner.combine(r, MASK, step=0).tolist() == [[[1.0, 1.0, 0.0]]]
    assert combiner.combine(r, MASK, step=5).tolist() == [[[1.5, 0.0, 0.0]]]
    assert combiner.log_values(5) == {"reward_weights/f1": 1.0, "reward_weights/precision": 1.0}


def test_normalize_then_sum_equalises_scales():
    combiner = RewardCombiner(["f1", "precision"], [ConstantSchedule(1.0)] * 2, "normalize_then_sum")
    r = rewards([1.0, 3.0, 0.0], [100.0, 300.0, 7.0])
    combiner.observe(r, MASK)
    # both rewards become [-1, 1] on the active tokens, whatever their scale
    assert combiner.combine(r, MASK, 0).tolist() == [[[-2.0, 2.0, 0.0]]]
    assert combiner.log_values(0)["reward_norm/precision/std"] == pytest.approx(100.0)


def test_lagrange_update_is_projected_gradient_ascent_on_the_violation():
    assert lagrange_update(0.0, 0.9, 0.6, lr=0.5, max_value=10) == pytest.approx(0.15)
    assert lagrange_update(0.0, 0.9, 0.95, lr=0.5, max_value=10) == 0.0  # never negative
    assert lagrange_update(9.9, 0.9, 0.0, lr=1.0, max_value=10) == 10.0  # capped


def test_multiplier_rises_while_violated_and_falls_once_met():
    combiner = RewardCombiner(
        ["f1", "precision"], [ConstantSchedule(1.0)] * 2, "constrained",
        constraints=[Constraint("precision", threshold=0.9, statistic="precision")], lagrange_lr=1.0,
    )
    r = rewards([1.0, -1.0, 0.0], [1.0, 0.0, 0.0])
    history = []
    for measured_precision in [0.5, 0.6, 0.7, 1.0, 1.0, 1.0]:
        m = combiner.measure(r, MASK, lambda name: {"precision": (measured_precision * 10, 10.0)})
        combiner.observe(r, MASK, m)
        combiner.end_step()
        history.append(combiner.multipliers["precision"])
    assert history == pytest.approx([0.4, 0.7, 0.9, 0.8, 0.7, 0.6])
    assert combiner.log_values(0)["lagrange/precision"] == pytest.approx(0.6)
    assert combiner.log_values(0)["constraints/precision"] == pytest.approx(1.0)
    # Lagrangian reward: (f1 + lambda * precision) / (1 + lambda)
    torch.testing.assert_close(combiner.combine(r, MASK, 0), torch.tensor([[[1.6, -1.0, 0.0]]]) / 1.6)


def test_mean_statistic_sums_over_micro_batches_before_the_update():
    combiner = RewardCombiner(
        ["f1", "precision"], [ConstantSchedule(1.0)] * 2, "constrained",
        constraints=[Constraint("precision", threshold=0.5)], lagrange_lr=1.0,
    )
    for values in ([1.0, 1.0, 9.0], [0.0, -1.0, 9.0]):  # masked 9s ignored; micro-batches of 2 tokens each
        r = rewards([0.0, 0.0, 0.0], values)
        combiner.observe(r, MASK, combiner.measure(r, MASK, None))
    assert combiner.end_step() == {"precision": pytest.approx(0.25)}  # (1 + 1 + 0 - 1) / 4
    assert combiner.multipliers["precision"] == pytest.approx(0.25)
    assert combiner.end_step() == {}  # no new measurement: multiplier unchanged
    assert combiner.multipliers["precision"] == pytest.approx(0.25)


def test_constraint_specs_are_checked():
    with pytest.raises(ValueError, match="unknown reward 'recall'"):
        Constraint.from_spec({"reward": "recall", "threshold": 0.9}, ["f1", "precision"])
    with pytest.raises(ValueError, match="needs 'reward' and 'threshold'"):
        Constraint.from_spec({"reward": "f1"}, ["f1"])
    with pytest.raises(ValueError, match="needs `constraints`"):
        RewardCombiner(["f1"], [ConstantSchedule(1.0)], "constrained")
