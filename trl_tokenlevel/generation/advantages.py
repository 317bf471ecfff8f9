"""Pure tensor math of token-level RL for generation: returns, group baselines, GAE, clipped losses, diagnostics.

Every function works on plain tensors and is tested on hand-written inputs in `tests/test_generation_advantages.py`.
Shapes: `N` completions (= `B` prompts x `K` samples, the K completions of one prompt contiguous), `T` completion
positions. `mask` is 1 on the completion tokens the policy produced (up to and including EOS) and 0 on padding;
it is always a prefix of the row, so "after the last token" means "masked out".
"""

from __future__ import annotations

import torch

from ..core import masked_var


ADVANTAGE_ESTIMATORS = ("leave_one_out", "gae")
GROUP_BASELINES = ("per_position", "per_sequence")
KL_PLACEMENTS = ("reward", "loss")
"""How the per-token KL enters: subtracted from the rewards (Ziegler et al., 2019) or added to the loss (GRPO)."""


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Per-token returns-to-go `G[t] = sum_{s >= t} gamma^(s-t) r[s]` over the active tokens; 0 where `mask` is 0.

    Args:
        rewards (`torch.Tensor` of shape `(N, T)`): per-token rewards (values at masked positions are ignored).
        mask (`torch.Tensor` of shape `(N, T)`): active completion tokens.
        gamma (`float`, defaults to `1.0`): discount.

    Example:
        >>> discounted_returns(torch.tensor([[1.0, 0.0, 2.0, 5.0]]), torch.tensor([[1, 1, 1, 0]]), 0.5).tolist()
        [[1.5, 1.0, 2.0, 0.0]]
    """
    mask = mask.to(rewards.dtype)
    rewards = rewards * mask
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running * mask[:, t]
        returns[:, t] = running
    return returns * mask


def leave_one_out_baseline(
    returns: torch.Tensor, mask: torch.Tensor, num_samples: int, per: str = "per_position"
) -> torch.Tensor:
    """Baseline of each completion from the other K-1 completions of the same prompt (RLOO; Kool et al., 2019).

    - `"per_position"`: `b[k, t]` = mean of `G[k', t]` over the siblings `k' != k` still active at position `t`
      (0 when none is). Suits dense rewards, whose returns-to-go shrink along the sequence.
    - `"per_sequence"`: `b[k]` = mean over `k' != k` of the sibling's total return `G[k', 0]`, the same at every
      position. With one reward on the last token and gamma = 1 this is exactly RLOO (Ahmadian et al., 2024).

    Args:
        returns (`torch.Tensor` of shape `(N, T)`), N = B * K with each prompt's K completions contiguous.
        mask (`torch.Tensor` of shape `(N, T)`).
        num_samples (`int`): K (>= 2).
        per (`str`, defaults to `"per_position"`).

    Returns:
        `torch.Tensor` of shape `(N, T)`, 0 where `mask` is 0.

    Example:
        >>> G = torch.tensor([[3.0, 1.0], [1.0, 0.0]])  # K=2 completions of one prompt, second ends after 1 token
        >>> m = torch.tensor([[1, 1], [1, 0]])
        >>> leave_one_out_baseline(G, m, 2).tolist(), leave_one_out_baseline(G, m, 2, "per_sequence").tolist()
        ([[1.0, 0.0], [3.0, 0.0]], [[1.0, 1.0], [3.0, 0.0]])
    """
    if num_samples < 2:
        raise ValueError(f"A leave-one-out baseline needs num_samples >= 2 completions per prompt, got {num_samples}.")
    if per not in GROUP_BASELINES:
        raise ValueError(f"per must be one of {GROUP_BASELINES}, got {per!r}.")
    n, length = returns.shape
    if n % num_samples:
        raise ValueError(f"{n} completions are not a whole number of groups of num_samples={num_samples}.")
    fmask = mask.to(returns.dtype)
    grouped = (returns * fmask).view(-1, num_samples, length)  # (B, K, T)
    gmask = fmask.view(-1, num_samples, length)
    if per == "per_position":
        others_sum = grouped.sum(1, keepdim=True) - grouped
        others_count = gmask.sum(1, keepdim=True) - gmask
        baseline = others_sum / others_count.clamp(min=1.0)
    else:
        totals = grouped[:, :, :1]  # (B, K, 1): return from the first token = the whole discounted reward
        baseline = ((totals.sum(1, keepdim=True) - totals) / (num_samples - 1)).expand_as(grouped)
    return baseline.reshape(n, length) * fmask


def generalized_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al., 2016): `delta[t] = r[t] + gamma V[t+1] - V[t]`, `A[t] = delta[t] + gamma lam A[t+1]`.

    `V` after the last active token is 0 (the episode ends at EOS or at `max_new_tokens`).

    Returns:
        `(advantages, returns)`, both `(N, T)` and 0 where `mask` is 0; `returns = advantages + values` are the value
        targets.

    Example:
        >>> A, R = generalized_advantages(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2))
        >>> [round(x, 4) for x in A[0].tolist()], [round(x, 4) for x in R[0].tolist()]
        ([0.475, 0.5], [0.975, 1.0])
    """
    fmask = mask.to(rewards.dtype)
    rewards, values = rewards * fmask, values * fmask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * fmask[:, t]
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, (advantages + values) * fmask


def clipped_policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, cliprange: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO surrogate `max(-A ratio, -A clip(ratio, 1-eps, 1+eps))`, `ratio = exp(logp - logp_old)`.

    Returns:
        `(loss, clipped)`: `(N, T)` per-token losses (not reduced: the caller sums over active tokens) and a bool
        tensor that is true where the clipped term was chosen (for the clip fraction).
    """
    ratio = torch.exp(logprobs - old_logprobs.detach())
    unclipped = -advantages.detach() * ratio
    clipped = -advantages.detach() * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, cliprange_value: float = 0.2
) -> torch.Tensor:
    """Per-token clipped value loss `0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)` (PPO2 / TRL PPO)."""
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    return 0.5 * torch.maximum((values - returns) ** 2, (clipped_values - returns) ** 2)


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 estimator of KL(policy || reference) per sampled token: `log pi(a) - log pi_ref(a)` (unbiased, can be < 0).

    Used as a per-token reward penalty: summed over a completion it is the sequence KL (Ziegler et al., 2019).
    """
    return logprobs - ref_logprobs


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator per sampled token: `exp(d) - d - 1` with `d = log pi_ref(a) - log pi(a)` (>= 0, low variance).

    Used as a loss term (Schulman, 2020, "Approximating KL divergence"; GRPO). Its gradient needs the policy's
    log-probs with grad.
    """
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def approx_kl(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(old || new) between the rollout policy and the current one (PPO diagnostic)."""
    return kl_k3(old_logprobs, logprobs)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`1 - Var(R - V) / Var(R)` over the active tokens: 1 = perfect critic, 0 = no better than a constant.

    Example:
        >>> float(explained_variance(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]]), torch.ones(1, 2)))
        1.0
    """
    variance = masked_var(returns, mask)
    return 1.0 - masked_var(returns - values, mask) / variance.clamp(min=1e-8)


