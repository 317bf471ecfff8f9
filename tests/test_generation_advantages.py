"""Tier 1: the generation math on hand-written tensors (returns, baselines, GAE, clipped losses, KL estimators)."""

import pytest
import torch

from trl_tokenlevel.generation.advantages import (
    approx_kl,
    clipped_policy_loss,
    clipped_value_loss,
    discounted_returns,
    explained_variance,
    generalized_advantages,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
)


def test_discounted_returns_stop_at_the_mask():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 100.0], [0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    returns = discounted_returns(rewards, mask, gamma=0.5)
    assert torch.allclose(returns[0], torch.tensor([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0]))
    assert torch.allclose(returns[1], torch.tensor([0.25, 0.5, 1.0, 0.0]))
    assert torch.equal(discounted_returns(rewards, mask, 1.0)[0], torch.tensor([6.0, 5.0, 3.0, 0.0]))


def test_leave_one_out_per_sequence_is_rloo_and_sums_to_zero():
    # one prompt, K=3 sequence rewards on the last token, gamma=1: every position carries the sequence return
    rewards = torch.tensor([[0.0, 3.0], [0.0, 0.0], [0.0, 0.0]])
    rewards[1, 1], rewards[2, 0] = 6.0, 9.0  # the third completion ends after one token
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]])
    returns = discounted_returns(rewards, mask)
    baseline = leave_one_out_baseline(returns, mask, 3, "per_sequence")
    assert torch.allclose(baseline[:, 0], torch.tensor([7.5, 6.0, 4.5]))
    advantages = (returns - baseline)[:, 0]
    assert torch.allclose(advantages, torch.tensor([-4.5, 0.0, 4.5])) and abs(float(advantages.sum())) < 1e-6
    assert baseline[2, 1] == 0  # masked


def test_leave_one_out_per_position_uses_active_siblings_only():
    returns = torch.tensor([[4.0, 2.0, 1.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 1]])
    baseline = leave_one_out_baseline(returns, mask, 2)  # two prompts, K=2
    assert baseline.tolist() == [[2.0, 1.0, 0.0], [4.0, 2.0, 0.0], [5.0, 5.0, 5.0], [0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="num_samples >= 2"):
        leave_one_out_baseline(returns, mask, 1)
    with pytest.raises(ValueError, match="whole number of groups"):
        leave_one_out_baseline(returns, mask, 3)


def test_gae_with_lambda_one_is_return_minus_value_and_lambda_zero_is_td():
    rewards = torch.tensor([[0.0, 1.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 0.25]])
    mask = torch.ones(1, 3)
    advantages, returns = generalized_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    assert torch.allclose(advantages, discounted_returns(rewards, mask) - values)
    assert torch.allclose(returns, discounted_returns(rewards, mask))
    td, _ = generalized_advantages(rewards, values, mask, gamma=0.9, lam=0.0)
    assert torch.allclose(td, torch.tensor([[0.9 * 1.0 - 0.5, 1.0 + 0.9 * 0.25 - 1.0, 2.0 - 0.25]]))
    short, _ = generalized_advantages(rewards, values, torch.tensor([[1, 1, 0]]), 1.0, 1.0)
    assert torch.allclose(short, torch.tensor([[0.5, 0.0, 0.0]]))  # V after the last token is 0


def test_clipped_policy_loss_clips_only_in_the_profitable_direction():
    old = torch.zeros(1, 4)
    logprobs = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))
    advantages = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, clipped = clipped_policy_loss(logprobs, old, advantages, cliprange=0.2)
    assert torch.allclose(loss, torch.tensor([[-1.2, 1.5, -0.5, 0.8]]))
    assert clipped.tolist() == [[True, False, False, True]]


def test_clipped_value_loss_and_explained_variance():
    old, returns = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[0.5, 2.0]])  # the first moved toward R but past the clip: the clipped error (0.8) counts
    assert torch.allclose(clipped_value_loss(values, old, returns, 0.2), torch.tensor([[0.5 * 0.8**2, 0.5 * 1.0]]))
    mask = torch.ones(1, 3)
    r = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(explained_variance(r, r, mask)) == 1.0
    assert abs(float(explained_variance(torch.full_like(r, 2.0), r, mask))) < 1e-6


def test_kl_estimators():
    logp = torch.log(torch.tensor([0.5, 0.2]))
    ref = torch.log(torch.tensor([0.25, 0.4]))
    assert torch.allclose(kl_k1(logp, ref), torch.log(torch.tensor([2.0, 0.5])))
    assert torch.allclose(kl_k3(logp, ref), torch.tensor([0.5 - torch.log(torch.tensor(0.5)) - 1, 2 - torch.log(torch.tensor(2.0)) - 1]))
    assert torch.all(kl_k3(logp, ref) >= 0) and torch.equal(kl_k3(logp, logp), torch.zeros(2))
    assert torch.equal(approx_kl(logp, logp), torch.zeros(2))
