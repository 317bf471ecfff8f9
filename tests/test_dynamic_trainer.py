"""Tier 2: dynamic rewards wired into TokenLevelRLTrainer on the tiny random BERT."""

import json

import pytest

from test_trainer import make_config, make_trainer
from trl_tokenlevel.dynamic.state import DYNAMIC_STATE_NAME
from trl_tokenlevel.rewards import EntitySpanReward, SpanPrecisionReward, TokenAccuracyReward


def test_scheduled_weights_and_coefficients_are_applied_and_logged_every_step(tmp_path):
    trainer = make_trainer(
        tmp_path, reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], max_steps=6, logging_steps=1,
        reward_weight_schedules='[null, {"type": "linear", "start": 0.0, "end": 1.0, "steps": 4}]',
        ce_coef_schedule={"type": "step", "values": [1.0, 0.0], "boundaries": [3]},
        rl_coef_schedule={"type": "step", "values": [0.0, 1.0], "boundaries": [2]},
        kl_coef=0.1, target_kl=0.001, kl_horizon=10, disable_dropout=True,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    # logged at the end of step s (global_step = s), i.e. the value the next step will use
    assert [h["reward_weights/EntitySpanReward"] for h in logs] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert [h["reward_weights/TokenAccuracyReward"] for h in logs] == [1.0] * 6
    assert [h["ce_coef"] for h in logs] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert [h["rl_coef"] for h in logs] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # steps 0-1 had rl_coef 0: no sampling, no reward; steps from 2 on did
    assert [h["rl_active"] for h in logs] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert all("reward" not in h for h in logs[:2]) and all("reward" in h for h in logs[2:])
    # KL is 0 at the first step (below target: the coefficient shrinks), then drifts above the tiny target (grows)
    kl_coefs = [h["kl_coef"] for h in logs]
    assert kl_coefs[0] < 0.1 and all(b > a for a, b in zip(kl_coefs[1:], kl_coefs[2:])), kl_coefs


def test_constrained_multiplier_is_logged_and_checkpointed_with_the_kl_state(tmp_path):
    overrides = dict(
        reward_funcs=[EntitySpanReward(), SpanPrecisionReward()], logging_steps=1, save_strategy="steps", save_steps=3,
        reward_combination="constrained", lagrange_lr=0.5, kl_coef=0.1, target_kl=0.001, kl_horizon=10,
        constraints=[{"reward": "SpanPrecisionReward", "threshold": 0.99, "statistic": "precision"}], ce_coef=0.0,
    )
    trainer = make_trainer(tmp_path, max_steps=3, **overrides)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    # a random model's sampled spans are mostly wrong: precision far below 0.99, so lambda climbs every step
    lambdas = [h["lagrange/SpanPrecisionReward"] for h in logs]
    assert lambdas[0] > 0.2 and lambdas[2] > lambdas[1] > lambdas[0]
    assert all(h["constraints/SpanPrecisionReward"] < 0.5 for h in logs)
    assert "reward_weights/EntitySpanReward" in logs[-1] and "reward_weights/SpanPrecisionReward" not in logs[-1]

    saved = json.loads((tmp_path / "checkpoint-3" / DYNAMIC_STATE_NAME).read_text())
    assert saved["reward_combiner"]["multipliers"]["SpanPrecisionReward"] == pytest.approx(lambdas[-1])
    assert saved["kl_controller"]["value"] == pytest.approx(logs[-1]["kl_coef"])

    resumed = make_trainer(tmp_path, max_steps=4, **overrides)
    assert resumed.reward_combiner.multipliers["SpanPrecisionReward"] == 0.0
    resumed.train(resume_from_checkpoint=True)
    step4 = [h for h in resumed.state.log_history if h.get("step") == 4 and "loss" in h][0]
    assert step4["lagrange/SpanPrecisionReward"] > lambdas[-1]  # continued from the saved value, not from 0
    assert step4["kl_coef"] > logs[-1]["kl_coef"]


def test_config_validates_dynamic_fields(tmp_path):
    with pytest.raises(ValueError, match="needs `constraints`"):
        make_config(tmp_path, reward_combination="constrained")
    with pytest.raises(ValueError, match="only used with reward_combination='constrained'"):
        make_config(tmp_path, constraints=[{"reward": "x", "threshold": 1.0}])
    with pytest.raises(ValueError, match=r"rl_coef_schedule: a 'linear' schedule needs \['steps'\]"):
        make_config(tmp_path, rl_coef_schedule='{"type": "linear", "start": 0, "end": 1}')
    with pytest.raises(ValueError, match="constraint on unknown reward 'Recall'"):
        make_trainer(tmp_path, reward_combination="constrained", constraints=[{"reward": "Recall", "threshold": 0.5}])


def test_normalize_then_sum_tracks_the_sampled_reward_statistics(tmp_path):
    trainer = make_trainer(
        tmp_path, reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], max_steps=3, logging_steps=1,
        reward_combination="normalize_then_sum", reward_norm_momentum=0.5,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    for name in ("TokenAccuracyReward", "EntitySpanReward"):
        # the first batch initialises the running mean to the mean raw reward of the sampled active tokens
        assert logs[0][f"reward_norm/{name}/mean"] == pytest.approx(logs[0][f"rewards/{name}/mean"], rel=1e-5)
        expected = 0.5 * logs[0][f"rewards/{name}/mean"] + 0.5 * logs[1][f"rewards/{name}/mean"]
        assert logs[1][f"reward_norm/{name}/mean"] == pytest.approx(expected, rel=1e-5)
        assert logs[1][f"reward_norm/{name}/std"] > 0.1
    # the combined reward is a sum of two standardised rewards: near zero mean, unlike the raw rewards
    assert abs(logs[0]["reward"]) < 0.05 and abs(logs[0]["rewards/TokenAccuracyReward/mean"]) > 0.2


def test_state_file_name_is_pinned():
    # Changing it would orphan the state saved in existing checkpoints.
    assert DYNAMIC_STATE_NAME == "token_level_rl_state.json"
