"""Rollout for causal LMs: render and tokenize prompts, sample K completions with `generate`, score tokens.

Token ids travel from `generate` to the loss unchanged: completions are decoded only to hand text to the reward
functions, never re-tokenized. Log-probabilities always use the sampling temperature:
`log pi_tau(a | s) = log_softmax(logits / tau)[a]`, for sampling, for the rollout's "old" log-probs, for the
reference and for training, so the ratio and the KL compare the same distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import GenerationConfig


@dataclass
class Rollout:
    """K sampled completions for each of B prompts (N = B * K rows; a prompt's K completions are contiguous).

    Attributes:
        prompt_ids, prompt_mask (`torch.LongTensor` of shape `(N, P)`): left-padded prompts.
        completion_ids (`torch.LongTensor` of shape `(N, T)`): sampled ids, padded after EOS.
        completion_mask (`torch.LongTensor` of shape `(N, T)`): 1 on the sampled tokens up to and including EOS.
        old_logprobs (`torch.Tensor` of shape `(N, T)`): `log pi_tau` of the sampled ids when they were sampled.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    old_logprobs: torch.Tensor


def render_prompts(prompts: list, tokenizer) -> tuple[list[str], bool]:
    """Text prompts pass through; chat prompts (lists of `{"role", "content"}`) go through the chat template.

    Returns the texts and whether they were rendered by the template (then they already hold the special tokens
    the template adds, and must be tokenized with `add_special_tokens=False`).
    """
    if all(isinstance(p, str) for p in prompts):
        return list(prompts), False
    if all(isinstance(p, (list, tuple)) and all(isinstance(m, dict) for m in p) for p in prompts):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "The prompts are chat messages but the tokenizer has no chat_template: set tokenizer.chat_template, "
                "or give the prompt column as plain text."
            )
        texts = [tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True) for p in prompts]
        return texts, True
    kinds = sorted({type(p).__name__ for p in prompts})
    raise TypeError(f"Prompts must all be strings or all be lists of chat messages; got {kinds}.")


def tokenize_prompts(prompts: list, tokenizer, max_prompt_length: int | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded `(input_ids, attention_mask)` of shape `(B, P)`; long prompts keep their last tokens."""
    texts, templated = render_prompts(prompts, tokenizer)
    encoded = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
    if max_prompt_length is not None:
        encoded = [ids[-max_prompt_length:] for ids in encoded]
    length = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (length - len(ids)) + ids for ids in encoded], device=device)
    attention_mask = torch.tensor([[0] * (length - len(ids)) + [1] * len(ids) for ids in encoded], device=device)
    return input_ids, attention_mask


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_token_ids: list[int]) -> torch.Tensor:
    """1 up to and including the first EOS (or everywhere when no EOS was sampled: the completion was truncated).

    Example:
        >>> completion_mask_from_ids(torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8]]), [2]).tolist()
        [[1, 1, 0, 0], [1, 1, 1, 1]]
    """
    is_eos = torch.isin(completion_ids, torch.tensor(eos_token_ids, device=completion_ids.device))
    length = completion_ids.shape[1]
    first_eos = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], length, dtype=torch.long))
    positions = torch.arange(length, device=completion_ids.device).unsqueeze(0)
    return (positions <= first_eos.unsqueeze(1)).long()


def eos_ids(tokenizer, model) -> list[int]:
    ids = model.generation_config.eos_token_id if model.generation_config is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@torch.no_grad()
def sample_completions(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    num_samples: int,
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    max_new_tokens: int,
    eos_token_ids: list[int],
    pad_token_id: int,
) -> Rollout:
    """Sample `num_samples` completions per prompt with `generate` and keep the raw logits of every step.

    The old log-probs come from `generate`'s raw logits (before top-p/top-k), divided by the temperature, so no
    extra forward pass is needed. With `top_p < 1` or `top_k > 0` the sampling distribution is truncated and these
    log-probs are those of the untruncated tempered policy, as in TRL's GRPO.
    """
    prompt_ids = prompt_ids.repeat_interleave(num_samples, 0)  # (N, P)
    prompt_mask = prompt_mask.repeat_interleave(num_samples, 0)
    config = GenerationConfig(
        do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_ids, pad_token_id=pad_token_id, output_logits=True, return_dict_in_generate=True,
    )
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config)
    finally:
        model.train(was_training)
    completion_ids = out.sequences[:, prompt_ids.shape[1] :]  # (N, T)
    logits = torch.stack(out.logits, dim=1)  # (N, T, V), raw scores of each step
    completion_mask = completion_mask_from_ids(completion_ids, eos_token_ids)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_token_id)
    old_logprobs = token_logprobs(logits, completion_ids, temperature) * completion_mask
    return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, old_logprobs)


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """`log_softmax(logits / temperature)[ids]`; `(N, T, V)`, `(N, T)` -> `(N, T)`."""
    return torch.gather(F.log_softmax(logits.float() / temperature, dim=-1), -1, ids.unsqueeze(-1)).squeeze(-1)


def policy_forward(model, rollout_or_batch: dict, output_hidden_states: bool = False):
    """Forward pass over prompt + completion; returns `(raw float logits of the completion positions, hidden)`.

    `logits[:, t]` predicts completion token `t`, `hidden[:, t]` is the last hidden state at the same position
    (the state a value head scores). Position ids are rebuilt from the attention mask as `generate` does, so
    left-padded prompts get the positions they had while sampling.
    """
    prompt_ids, completion_ids = rollout_or_batch["prompt_ids"], rollout_or_batch["completion_ids"]
    attention_mask = torch.cat([rollout_or_batch["prompt_mask"], rollout_or_batch["completion_mask"]], dim=1)
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    length = completion_ids.shape[1]
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, logits_to_keep=length + 1,
        output_hidden_states=output_hidden_states, use_cache=False,
    )
    logits = out.logits[:, -(length + 1) : -1].float()  # (N, T, V); callers apply the temperature
    hidden = out.hidden_states[-1][:, -(length + 1) : -1] if output_hidden_states else None  # (N, T, H)
    return logits, hidden
