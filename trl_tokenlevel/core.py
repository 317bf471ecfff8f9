"""Pure tensor math of token-level RL.

Every function here works on plain tensors, has no Trainer state, and is tested on hand-written inputs in
`tests/test_core.py`. Shapes use `K` for samples per input, `B` for batch, `T` for sequence positions and `C` for
the number of actions (labels) at each position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


BASELINES = ("greedy", "leave_one_out", "batch_mean", "none")
IGNORE_INDEX = -100
"""Label of positions that do not count (special tokens, continuation sub-tokens, padding), as in transformers."""


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of `values` where `mask` is true; `mask` broadcasts against `values`."""
    return (values * mask.to(values.dtype)).sum()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over the positions where `mask` is true (0 if none: the denominator is clamped to 1)."""
    mask = mask.to(values.dtype).expand_as(values)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Population variance of `values` over the masked positions (0 if fewer than one position)."""
    mean = masked_mean(values, mask)
    return masked_mean((values - mean) ** 2, mask)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, shift_mean: bool = True) -> torch.Tensor:
    """Standardise `values` to zero mean and unit variance over the masked positions; masked-out entries become 0.

    Args:
        values (`torch.Tensor`): any shape.
        mask (`torch.Tensor`): bool, broadcastable to `values`.
        eps (`float`, defaults to `1e-8`): added to the variance.
        shift_mean (`bool`, defaults to `True`): if `False` only divide by the standard deviation (keeps the sign
            of every advantage, as PPO implementations do for rewards).
    """
    mean = masked_mean(values, mask)
    std = torch.sqrt(masked_var(values, mask) + eps)
    whitened = (values - mean) / std if shift_mean else values / std
    return whitened * mask.to(values.dtype)


def sample_actions(logits: torch.Tensor, num_samples: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw `num_samples` action sequences from independent per-position categoricals.

    Args:
        logits (`torch.Tensor` of shape `(B, T, C)`): unnormalised scores.
        num_samples (`int`): K.
        temperature (`float`, defaults to `1.0`): logits are divided by it before the softmax. The same temperature
            must be used for the training log-probabilities (see [`action_logprobs`]).

    Returns:
        `torch.LongTensor` of shape `(K, B, T)`.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use the greedy sequence for argmax decoding.")
    batch, length, num_classes = logits.shape
    probs = torch.softmax(logits.detach().float() / temperature, dim=-1).reshape(-1, num_classes)
    samples = torch.multinomial(probs, num_samples, replacement=True)  # (B*T, K)
    return samples.T.reshape(num_samples, batch, length)


def action_logprobs(logits: torch.Tensor, actions: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities of `actions` under `softmax(logits / temperature)`.

    Args:
        logits (`torch.Tensor` of shape `(B, T, C)`).
        actions (`torch.LongTensor` of shape `(K, B, T)`): may contain -100 at ignored positions (read as 0).

    Returns:
        `torch.Tensor` of shape `(K, B, T)`.
    """
    logps = F.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, C)
    index = actions.clamp(min=0).unsqueeze(-1)  # (K, B, T, 1)
    return torch.gather(logps.unsqueeze(0).expand(actions.shape[0], -1, -1, -1), -1, index).squeeze(-1)


def token_advantages(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    baseline: str = "greedy",
    greedy_rewards: torch.Tensor | None = None,
    whiten: bool = False,
) -> torch.Tensor:
    """Per-token advantages `A[k, b, t] = r[k, b, t] - baseline[b, t]`.

    Args:
        rewards (`torch.Tensor` of shape `(K, B, T)`): per-token rewards of the K sampled sequences.
        mask (`torch.Tensor` of shape `(B, T)`): positions that count (word positions with a gold label).
        baseline (`str`, defaults to `"greedy"`):
            - `"greedy"`: self-critical baseline, the reward the greedy (argmax) sequence earns at that token
              (Rennie et al., 2017). Requires `greedy_rewards`.
            - `"leave_one_out"`: mean reward of the other K-1 samples at that token (RLOO, Kool et al., 2019;
              Ahmadian et al., 2024). Requires K >= 2.
            - `"batch_mean"`: mean reward over all sampled active tokens of the batch.
            - `"none"`: plain REINFORCE.
        greedy_rewards (`torch.Tensor` of shape `(B, T)`, *optional*): rewards of the greedy sequence.
        whiten (`bool`, defaults to `False`): standardise the advantages over the active tokens afterwards.

    Returns:
        `torch.Tensor` of shape `(K, B, T)`, zero where `mask` is false.

    Example:
        >>> r = torch.tensor([[[1.0, -1.0]], [[-1.0, -1.0]]])  # K=2, B=1, T=2
        >>> token_advantages(r, torch.ones(1, 2, dtype=torch.bool), "leave_one_out").tolist()
        [[[2.0, 0.0]], [[-2.0, 0.0]]]
    """
    mask = mask.bool()
    num_samples = rewards.shape[0]
    if baseline == "greedy":
        if greedy_rewards is None:
            raise ValueError("baseline='greedy' needs `greedy_rewards` of shape (B, T).")
        base = greedy_rewards.unsqueeze(0)
    elif baseline == "leave_one_out":
        if num_samples < 2:
            raise ValueError("baseline='leave_one_out' needs num_samples >= 2; raise K or use baseline='greedy'.")
        base = (rewards.sum(0, keepdim=True) - rewards) / (num_samples - 1)
    elif baseline == "batch_mean":
        base = masked_mean(rewards, mask.unsqueeze(0))
    elif baseline == "none":
        base = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    else:
        raise ValueError(f"Unknown baseline {baseline!r}; choose one of {BASELINES}.")
    advantages = (rewards - base) * mask.unsqueeze(0).to(rewards.dtype)
    if whiten:
        advantages = masked_whiten(advantages, mask.unsqueeze(0).expand_as(advantages))
    return advantages


def exact_kl(logits: torch.Tensor, ref_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Exact per-position KL(policy || reference) summed over the C actions (no sampled estimator).

    `KL[b, t] = sum_c p(c) (log p(c) - log q(c))` with `p = softmax(logits / temperature)` and
    `q = softmax(ref_logits / temperature)`. Shapes `(B, T, C)` -> `(B, T)`.
    """
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    logq = F.log_softmax(ref_logits.float() / temperature, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def exact_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Exact per-position entropy of `softmax(logits / temperature)`; `(B, T, C)` -> `(B, T)`."""
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position cross-entropy, 0 where `labels == IGNORE_INDEX`; `(B, T, C)`, `(B, T)` -> `(B, T)`."""
    return F.cross_entropy(
        logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
    )


def policy_gradient_sum(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """REINFORCE surrogate, summed (not averaged) over samples and active tokens, divided by K.

    `-(1/K) sum_k sum_{b,t in mask} A[k,b,t] * log pi(a[k,b,t])`. Dividing by the global number of active
    tokens happens in the trainer, so that the loss is the same however the batch is split across gradient
    accumulation steps and processes.
    """
    num_samples = logprobs.shape[0]
    return -masked_sum(advantages.detach() * logprobs, mask.unsqueeze(0)) / num_samples
