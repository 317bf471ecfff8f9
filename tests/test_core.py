"""Tier 1: the pure math of token-level RL on hand-written tensors."""

import math

import pytest
import torch

from trl_tokenlevel.core import (
    action_logprobs,
    exact_entropy,
    exact_kl,
    masked_mean,
    masked_whiten,
    policy_gradient_sum,
    sample_actions,
    token_advantages,
    token_cross_entropy,
)


def test_masked_mean_ignores_masked_values_and_clamps_empty_mask():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, False]])
    assert masked_mean(values, mask).item() == pytest.approx(2.0)
    assert masked_mean(values, torch.zeros_like(mask)).item() == 0.0


def test_masked_whiten_standardises_active_and_zeroes_the_rest():
    values = torch.tensor([1.0, 2.0, 3.0, 50.0])
    mask = torch.tensor([True, True, True, False])
    out = masked_whiten(values, mask)
    assert out[3].item() == 0.0
    assert masked_mean(out, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert masked_mean(out**2, mask).item() == pytest.approx(1.0, abs=1e-4)


def test_greedy_baseline_subtracts_greedy_reward_per_token_and_masks_padding():
    rewards = torch.tensor([[[1.0, -1.0, 5.0]], [[0.0, 1.0, 5.0]]])  # K=2, B=1, T=3
    greedy = torch.tensor([[1.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, False]])
    adv = token_advantages(rewards, mask, "greedy", greedy_rewards=greedy)
    assert adv.tolist() == [[[0.0, -1.0, 0.0]], [[-1.0, 1.0, 0.0]]]


def test_leave_one_out_and_batch_mean_and_none_baselines():
    rewards = torch.tensor([[[3.0]], [[1.0]], [[2.0]]])  # K=3
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert token_advantages(rewards, mask, "leave_one_out").flatten().tolist() == [1.5, -1.5, 0.0]
    assert token_advantages(rewards, mask, "batch_mean").flatten().tolist() == [1.0, -1.0, 0.0]
    assert token_advantages(rewards, mask, "none").flatten().tolist() == [3.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="greedy_rewards"):
        token_advantages(rewards, mask, "greedy")
    with pytest.raises(ValueError, match="num_samples >= 2"):
        token_advantages(rewards[:1], mask, "leave_one_out")
    with pytest.raises(ValueError, match="Unknown baseline"):
        token_advantages(rewards, mask, "median")


def test_exact_kl_matches_hand_computation_and_is_zero_for_equal_logits():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]]))
    ref = torch.log(torch.tensor([[[0.25, 0.5, 0.25]]]))
    expected = 0.5 * math.log(2) + 0.25 * math.log(0.5)
    assert exact_kl(logits, ref).item() == pytest.approx(expected, abs=1e-6)
    assert exact_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    assert exact_entropy(torch.zeros(1, 1, 4)).item() == pytest.approx(math.log(4), abs=1e-6)


def test_action_logprobs_apply_the_sampling_temperature():
    logits = torch.tensor([[[2.0, 0.0]]])
    actions = torch.tensor([[[0]]])
    at_two = torch.log_softmax(logits / 2.0, -1)[0, 0, 0].item()
    assert action_logprobs(logits, actions, temperature=2.0).item() == pytest.approx(at_two)


def test_sample_actions_follow_the_distribution():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[[0.8, 0.2]]])).expand(1, 500, 2)
    samples = sample_actions(logits, num_samples=8)
    assert samples.shape == (8, 1, 500)
    assert samples.float().mean().item() == pytest.approx(0.2, abs=0.03)
    # a very low temperature is (almost) greedy
    assert sample_actions(logits, 4, temperature=0.01).sum().item() == 0


def test_cross_entropy_and_policy_gradient_ignore_padding():
    logits = torch.zeros(1, 2, 3, requires_grad=True)
    labels = torch.tensor([[1, -100]])
    ce = token_cross_entropy(logits, labels)
    assert ce[0, 1].item() == 0.0 and ce[0, 0].item() == pytest.approx(math.log(3))
    actions = torch.tensor([[[1, 2]]])
    advantages = torch.tensor([[[2.0, 7.0]]])
    loss = policy_gradient_sum(action_logprobs(logits, actions), advantages, labels != -100)
    loss.backward()
    assert logits.grad[0, 1].abs().sum().item() == 0.0  # the padded position gets no gradient
    # d(-A log p_a)/d logit_a = -A (1 - p_a) = -2 * 2/3
    assert logits.grad[0, 0, 1].item() == pytest.approx(-4.0 / 3.0)
