"""Tier 2: dynamic rewards (schedules, normalisation, constraints) on the generation path, tiny random Llama."""

import statistics

import pytest
import torch

from test_generation_trainer import TARGET, make_trainer, pays_for_w7


def always_one(prompts, completions, completion_ids, **kwargs):
    """Sequence: 1.0 for every completion."""
    return [1.0] * len(completion_ids)


def short(prompts, completions, completion_ids, **kwargs):
    """Sequence: 1.0 if the completion ended within 2 tokens, else 0.0."""
    return [1.0 if len(ids) <= 2 else 0.0 for ids in completion_ids]


def test_scheduled_reward_weights_and_rl_coef_are_applied_and_logged(tmp_path):
    trainer = make_trainer(
        tmp_path, reward_funcs=[pays_for_w7, always_one], max_steps=5, logging_steps=1,
        reward_weight_schedules=[None, {"type": "linear", "start": 0.0, "end": 1.0, "steps": 4}],
        rl_coef_schedule={"type": "step", "values": [0.0, 1.0], "boundaries": [1]},
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    # logged at the end of step s (global_step = s + 1): the weight the next step will use
    assert [h["reward_weights/always_one"] for h in logs] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert [h["reward_weights/pays_for_w7"] for h in logs] == [1.0] * 5
    # the reward optimised at step s is r_w7 + w(s) * 1 with w(s) = s / 4, per completion
    for step, h in enumerate(logs):
        assert h["reward"] == pytest.approx(h["rewards/pays_for_w7/mean"] + step / 4, abs=1e-5), step
    # the policy term is off at step 0 (rl_coef 0: no gradient), on from step 1; there is no CE term to log
    assert [h["rl_coef"] for h in logs] == [1.0] * 5 and "ce_coef" not in logs[0]
    assert logs[0]["grad_norm"] == 0.0 and all(h["grad_norm"] > 0 for h in logs[1:])


def test_normalize_then_sum_statistics_count_only_the_tokens_that_carry_each_reward(tmp_path):
    returned = {}

    def dense_two(prompts, completions, completion_ids, **kwargs):
        returned["dense"] = [[2.0 if t == TARGET else 1.0 for t in ids] for ids in completion_ids]
        return returned["dense"]

    def rated(prompts, completions, completion_ids, **kwargs):  # a rating for every other completion, else None
        returned["rated"] = [float(len(ids)) if i % 2 == 0 else None for i, ids in enumerate(completion_ids)]
        return returned["rated"]

    trainer = make_trainer(tmp_path, reward_funcs=[dense_two, rated], reward_combination="normalize_then_sum")
    torch.manual_seed(0)
    (batch,) = trainer.make_rollout([trainer.train_dataset[i] for i in range(8)])
    mask = batch["completion_mask"]
    assert 0 < mask.sum() < mask.numel()  # some completions ended early: there is padding to leave out
    norm = trainer.reward_combiner.normalizer
    dense = [v for row in returned["dense"] for v in row]  # one value per active completion token
    rated = [v for v in returned["rated"] if v is not None]  # one value per rated completion (its last token)
    assert len(dense) == mask.sum() and len(rated) == mask.shape[0] // 2
    assert norm.mean["dense_two"] == pytest.approx(statistics.mean(dense), rel=1e-6)
    assert norm.std("dense_two") == pytest.approx(statistics.pstdev(dense), rel=1e-4)
    assert norm.mean["rated"] == pytest.approx(statistics.mean(rated), rel=1e-6)
    assert norm.std("rated") == pytest.approx(statistics.pstdev(rated), rel=1e-4)


def test_constrained_multiplier_rises_while_the_constraint_is_violated(tmp_path):
    trainer = make_trainer(
        tmp_path, reward_funcs=[pays_for_w7, short], reward_combination="constrained", lagrange_lr=0.5,
        constraints=[{"reward": "short", "threshold": 0.9}], max_steps=3, logging_steps=1,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    # a random model rarely stops within 2 of its 6 tokens: far below 0.9, so lambda climbs every step
    lambdas = [h["lagrange/short"] for h in logs]
    assert lambdas[0] > 0.2 and lambdas[2] > lambdas[1] > lambdas[0], lambdas
    for h in logs:  # measured per completion (its last token), not diluted over the completion's tokens
        assert h["constraints/short"] == pytest.approx(h["rewards/short/mean"], abs=1e-6) and h["constraints/short"] < 0.5
    assert "reward_weights/pays_for_w7" in logs[-1] and "reward_weights/short" not in logs[-1]


def test_settings_that_mean_nothing_for_generation_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ce_coef_schedule=.* is a setting of TokenClassificationRLTrainer"):
        make_trainer(tmp_path, ce_coef_schedule={"type": "linear", "start": 1.0, "end": 0.0, "steps": 4})
    with pytest.raises(ValueError, match="statistic 'precision'"):
        make_trainer(
            tmp_path, reward_funcs=[pays_for_w7, short], reward_combination="constrained",
            constraints=[{"reward": "short", "threshold": 0.9, "statistic": "precision"}],
        )
