"""The extractive-QA policy over answer spans: sampling `(start, end)` actions and their log-probabilities.

The policy factorises as start first, then end given start (both at temperature `tau`):

    pi(s)     = softmax(start_logits / tau) over the context tokens                                  # (B, T)
    pi(e | s) = softmax(end_logits / tau) over context tokens e with s <= e < s + max_answer_length   # (K, B, T)
    log pi(s, e) = log pi(s) + log pi(e | s)

so a sampled span is always inside the context with `end >= start` and at most `max_answer_length` tokens, the same
constraints `postprocess_qa_predictions` applies at evaluation. The trainer credits a span's reward to both actions:
[`span_log_probs`] recomputes `log pi(s)` and `log pi(e | s)` with gradients in the training forward, with the same
masks and temperature as the rollout ([`sample_spans`]), so rollout and training log-probs agree.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch


class SpanSample(NamedTuple):
    """Sampled spans: token positions and log-probabilities, each of shape `(K, B)`."""

    starts: torch.Tensor
    ends: torch.Tensor
    start_logprobs: torch.Tensor
    end_logprobs: torch.Tensor


def _check_inputs(start_logits: torch.Tensor, end_logits: torch.Tensor, context_mask: torch.Tensor, temperature: float):
    if start_logits.dim() != 2 or start_logits.shape != end_logits.shape or start_logits.shape != context_mask.shape:
        raise ValueError(
            f"Expected start_logits, end_logits and context_mask of one shape (B, T), got {tuple(start_logits.shape)}, "
            f"{tuple(end_logits.shape)} and {tuple(context_mask.shape)}."
        )
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0.")
    empty = (~context_mask.bool().any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"Rows {empty} have no context token in context_mask: no span can be chosen there.")


def start_log_probs(start_logits: torch.Tensor, context_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """`log pi(s)`: log-softmax of `start_logits / temperature` over the context, `-inf` elsewhere. Shape `(B, T)`."""
    logits = start_logits.float() / temperature
    return logits.masked_fill(~context_mask.bool(), float("-inf")).log_softmax(dim=-1)


def end_log_probs(
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    starts: torch.Tensor,
    temperature: float = 1.0,
    max_answer_length: int = 30,
) -> torch.Tensor:
    """`log pi(e | s)` for every start in `starts` `(K, B)`: log-softmax of `end_logits / temperature` over context
    tokens `e` with `s <= e < s + max_answer_length`, `-inf` elsewhere. Shape `(K, B, T)`."""
    positions = torch.arange(end_logits.shape[-1], device=end_logits.device)  # (T,)
    offsets = positions - starts.unsqueeze(-1)  # (K, B, T): e - s
    allowed = (offsets >= 0) & (offsets < max_answer_length) & context_mask.bool().unsqueeze(0)
    logits = (end_logits.float() / temperature).unsqueeze(0).expand(allowed.shape)
    return logits.masked_fill(~allowed, float("-inf")).log_softmax(dim=-1)


def span_log_probs(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    starts: torch.Tensor,
    ends: torch.Tensor,
    temperature: float = 1.0,
    max_answer_length: int = 30,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of given spans under the policy, differentiable with respect to the logits.

    Args:
        start_logits (`torch.Tensor` of shape `(B, T)`): The model's start logits.
        end_logits (`torch.Tensor` of shape `(B, T)`): The model's end logits.
        context_mask (`torch.BoolTensor` of shape `(B, T)`): True at context tokens.
        starts (`torch.LongTensor` of shape `(K, B)`): Start positions.
        ends (`torch.LongTensor` of shape `(K, B)`): End positions.
        temperature (`float`, *optional*, defaults to `1.0`): As used for sampling.
        max_answer_length (`int`, *optional*, defaults to `30`): Longest span in tokens, as used for sampling.

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`: `log pi(start)` and `log pi(end | start)`, each `(K, B)`.

    Raises:
        `ValueError`: when a span is outside the policy's support (outside the context, `end < start` or too long).
    """
    _check_inputs(start_logits, end_logits, context_mask, temperature)
    start_lp = start_log_probs(start_logits, context_mask, temperature)  # (B, T)
    end_lp = end_log_probs(end_logits, context_mask, starts, temperature, max_answer_length)  # (K, B, T)
    start_logprobs = start_lp.unsqueeze(0).expand(end_lp.shape).gather(-1, starts.unsqueeze(-1)).squeeze(-1)
    end_logprobs = end_lp.gather(-1, ends.unsqueeze(-1)).squeeze(-1)  # (K, B)
    outside = ~torch.isfinite(start_logprobs) | ~torch.isfinite(end_logprobs)
    if outside.any():
        k, b = outside.nonzero()[0].tolist()
        raise ValueError(
            f"Span (start={int(starts[k, b])}, end={int(ends[k, b])}) of sample {k}, row {b} is outside the policy's "
            f"support: both ends must be context tokens with 0 <= end - start < max_answer_length={max_answer_length}."
        )
    return start_logprobs, end_logprobs


def sample_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    num_samples: int,
    temperature: float = 1.0,
    max_answer_length: int = 30,
    generator: Optional[torch.Generator] = None,
) -> SpanSample:
    """Samples `num_samples` answer spans per row: a start from `pi(s)`, then an end from `pi(e | s)`.

    Args:
        start_logits (`torch.Tensor` of shape `(B, T)`): The model's start logits.
        end_logits (`torch.Tensor` of shape `(B, T)`): The model's end logits.
        context_mask (`torch.BoolTensor` of shape `(B, T)`): True at context tokens (every row needs one).
        num_samples (`int`): K, spans per row.
        temperature (`float`, *optional*, defaults to `1.0`): Softmax temperature of both distributions.
        max_answer_length (`int`, *optional*, defaults to `30`): Longest span in tokens (`end - start + 1`).
        generator (`torch.Generator`, *optional*): Source of randomness, for reproducible rollouts.

    Returns:
        [`SpanSample`]: `starts`, `ends` (`(K, B)`, `start <= end`, both in the context) and their log-probabilities
        `start_logprobs`, `end_logprobs` (`(K, B)`, detached; equal to [`span_log_probs`] on the same logits).
    """
    _check_inputs(start_logits, end_logits, context_mask, temperature)
    if max_answer_length < 1 or num_samples < 1:
        raise ValueError(f"num_samples={num_samples} and max_answer_length={max_answer_length} must be >= 1.")
    with torch.no_grad():
        start_lp = start_log_probs(start_logits, context_mask, temperature)  # (B, T)
        starts = torch.multinomial(start_lp.exp(), num_samples, replacement=True, generator=generator).T  # (K, B)
        end_lp = end_log_probs(end_logits, context_mask, starts, temperature, max_answer_length)  # (K, B, T)
        flat = end_lp.exp().reshape(-1, end_lp.shape[-1])  # (K*B, T)
        ends = torch.multinomial(flat, 1, generator=generator).view(starts.shape)  # (K, B)
        start_logprobs = start_lp.gather(-1, starts.T).T  # (K, B)
        end_logprobs = end_lp.gather(-1, ends.unsqueeze(-1)).squeeze(-1)  # (K, B)
    return SpanSample(starts, ends, start_logprobs, end_logprobs)


def best_spans(
    start_logits: torch.Tensor, end_logits: torch.Tensor, context_mask: torch.Tensor, max_answer_length: int = 30
) -> tuple[torch.Tensor, torch.Tensor]:
    """The highest-scoring valid span per row, `argmax start_logits[s] + end_logits[e]` over context tokens with
    `0 <= e - s < max_answer_length`: the greedy decode (and a self-critical baseline, as in DCN+).

    Example:

    ```python
    >>> start = torch.tensor([[9.0, 1.0, 3.0, 0.0]])
    >>> end = torch.tensor([[9.0, 0.0, 1.0, 2.0]])
    >>> context = torch.tensor([[False, True, True, True]])  # position 0 is [CLS], outside the context
    >>> best_spans(start, end, context)
    (tensor([2]), tensor([3]))

    ```

    Returns:
        `tuple[torch.LongTensor, torch.LongTensor]`: starts and ends, each `(B,)`.
    """
    _check_inputs(start_logits, end_logits, context_mask, 1.0)
    length = start_logits.shape[-1]
    positions = torch.arange(length, device=start_logits.device)
    span_length = positions.view(1, -1) - positions.view(-1, 1)  # (T, T): e - s
    allowed = (span_length >= 0) & (span_length < max_answer_length)  # (T, T)
    mask = context_mask.bool()
    allowed = allowed.unsqueeze(0) & mask.unsqueeze(2) & mask.unsqueeze(1)  # (B, T, T)
    scores = start_logits.float().unsqueeze(2) + end_logits.float().unsqueeze(1)  # (B, T, T)
    best = scores.masked_fill(~allowed, float("-inf")).flatten(1).argmax(dim=-1)  # (B,)
    return best // length, best % length


def span_cross_entropy(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Per-window cross-entropy of the gold start and end, `(CE(start) + CE(end)) / 2`, as the loss of
    `AutoModelForQuestionAnswering` but not averaged, over every real token of the window (`[CLS]` included: it is
    the target of windows that do not hold the answer) and never over padding, so dynamic padding does not change it.

    Args:
        start_logits (`torch.Tensor` of shape `(B, T)`): The model's start logits.
        end_logits (`torch.Tensor` of shape `(B, T)`): The model's end logits.
        start_positions (`torch.LongTensor` of shape `(B,)`): Gold start tokens.
        end_positions (`torch.LongTensor` of shape `(B,)`): Gold end tokens.
        attention_mask (`torch.Tensor` of shape `(B, T)`, *optional*): 0 at padding.

    Returns:
        `torch.Tensor` of shape `(B,)`.
    """
    losses = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        logits = logits.float()
        if attention_mask is not None:
            logits = logits.masked_fill(~attention_mask.bool(), float("-inf"))
        log_probs = logits.log_softmax(dim=-1)  # (B, T)
        losses.append(-log_probs.gather(-1, positions.long().unsqueeze(-1)).squeeze(-1))
    return (losses[0] + losses[1]) / 2


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    return (logits.float() / temperature).masked_fill(~mask.bool(), float("-inf")).log_softmax(dim=-1)


def _probs_and_safe_log_probs(logits: torch.Tensor, mask: torch.Tensor, temperature: float):
    """`p` (exactly 0 off the mask) and `log p` with 0 instead of -inf off the mask, so that `p * log p` has a zero
    gradient there instead of NaN (`0 * -inf`)."""
    log_probs = _masked_log_softmax(logits, mask, temperature)
    return log_probs.exp(), log_probs.masked_fill(~mask.bool(), 0.0)


def context_kl(
    logits: torch.Tensor, ref_logits: torch.Tensor, context_mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Exact `KL(p || q)` between the policy's and the reference's softmax over the context tokens of one head (start
    or end), `sum_{t in context} p(t) (log p(t) - log q(t))`. Shapes `(B, T)` -> `(B,)`.

    Example:

    ```python
    >>> logits, context = torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([[False, True, True]])
    >>> context_kl(logits, logits, context).tolist()  # the [CLS] logit is outside the context: ignored
    [0.0]

    ```
    """
    p, logp = _probs_and_safe_log_probs(logits, context_mask, temperature)
    _, logq = _probs_and_safe_log_probs(ref_logits, context_mask, temperature)
    return (p * (logp - logq)).sum(-1)


def context_entropy(logits: torch.Tensor, context_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Exact entropy of the softmax over the context tokens of one head (start or end). Shapes `(B, T)` -> `(B,)`."""
    p, logp = _probs_and_safe_log_probs(logits, context_mask, temperature)
    return -(p * logp).sum(-1)
