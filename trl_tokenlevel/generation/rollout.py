"""Rollout for causal and encoder-decoder LMs: render and tokenize prompts, sample K completions with `generate`,
score tokens.

Token ids travel from `generate` to the loss unchanged: completions are decoded only to hand text to the reward
functions, never re-tokenized. Log-probabilities always use the sampling temperature:
`log pi_tau(a | s) = log_softmax(logits / tau)[a]`, for sampling, for the rollout's "old" log-probs, for the
reference and for training, so the ratio and the KL compare the same distributions.

Encoder-decoder models (`AutoModelForSeq2SeqLM`) differ in two places only: prompts are the encoder's input,
right-padded and truncated at the end as in pre-training (`tokenize_prompts(padding_side="right")`), and the
training forward feeds the completion to the decoder shifted right behind `decoder_start_token_id`
(`policy_forward(decoder_start_token_id=...)`). `generate` returns `[decoder_start] + completion` for them and
`prompt + completion` for causal LMs; both end with one token per generated step, which is how
[`sample_completions`] finds the completion without asking which kind of model it has.
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
        prompt_ids, prompt_mask (`torch.LongTensor` of shape `(N, P)`): prompts, left-padded for causal LMs (right-
            padded encoder inputs for encoder-decoder models).
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


def tokenize_prompts(
    prompts: list, tokenizer, max_prompt_length: int | None, device, padding_side: str = "left"
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids, attention_mask)` of shape `(B, P)`.

    `padding_side="left"` (causal LMs: the completion follows the prompt): long prompts keep their last tokens.
    `"right"` (encoder inputs of encoder-decoder models, padded as in pre-training; Marian's sinusoidal positions
    would shift under left padding): the tokenizer truncates to `max_prompt_length`, keeping its special tokens.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
    texts, templated = render_prompts(prompts, tokenizer)
    if padding_side == "right":
        truncate = max_prompt_length is not None
        encoded = tokenizer(texts, add_special_tokens=not templated, truncation=truncate, max_length=max_prompt_length)
        encoded = encoded["input_ids"]
    else:
        encoded = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
        if max_prompt_length is not None:
            encoded = [ids[-max_prompt_length:] for ids in encoded]
    length = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id
    padding = [[pad] * (length - len(ids)) for ids in encoded]
    masks = [[1] * len(ids) for ids in encoded]
    if padding_side == "right":
        rows, mask_rows = [ids + p for ids, p in zip(encoded, padding)], [m + [0] * len(p) for m, p in zip(masks, padding)]
    else:
        rows, mask_rows = [p + ids for ids, p in zip(encoded, padding)], [[0] * len(p) + m for m, p in zip(masks, padding)]
    return torch.tensor(rows, device=device), torch.tensor(mask_rows, device=device)


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
    generation_kwargs: dict | None = None,
) -> Rollout:
    """Sample `num_samples` completions per prompt with `generate` and keep the raw logits of every step.

    The old log-probs come from `generate`'s raw logits (before top-p/top-k), divided by the temperature, so no
    extra forward pass is needed. With `top_p < 1` or `top_k > 0` the sampling distribution is truncated and these
    log-probs are those of the untruncated tempered policy, as in TRL's GRPO. `generation_kwargs` (e.g.
    `min_new_tokens`) go to the `GenerationConfig`; they too change what is sampled, not these log-probs.
    """
    prompt_ids = prompt_ids.repeat_interleave(num_samples, 0)  # (N, P)
    prompt_mask = prompt_mask.repeat_interleave(num_samples, 0)
    config = GenerationConfig(
        do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_ids, pad_token_id=pad_token_id, output_logits=True, return_dict_in_generate=True,
        **(generation_kwargs or {}),
    )
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config)
    finally:
        model.train(was_training)
    logits = torch.stack(out.logits, dim=1)  # (N, T, V), raw scores of each step
    # the last T positions: after the prompt (causal LM) or after decoder_start_token_id (encoder-decoder)
    completion_ids = out.sequences[:, -logits.shape[1] :]  # (N, T)
    completion_mask = completion_mask_from_ids(completion_ids, eos_token_ids)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_token_id)
    old_logprobs = token_logprobs(logits, completion_ids, temperature) * completion_mask
    return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, old_logprobs)


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """`log_softmax(logits / temperature)[ids]`; `(N, T, V)`, `(N, T)` -> `(N, T)`."""
    return torch.gather(F.log_softmax(logits.float() / temperature, dim=-1), -1, ids.unsqueeze(-1)).squeeze(-1)


def policy_forward(
    model, rollout_or_batch: dict, output_hidden_states: bool = False, decoder_start_token_id: int | None = None
):
    """Forward pass over prompt + completion; returns `(raw float logits of the completion positions, hidden)`.

    `logits[:, t]` predicts completion token `t`, `hidden[:, t]` is the last hidden state at the same position
    (the state a value head scores). Causal LMs (`decoder_start_token_id=None`) read prompt + completion as one
    sequence; position ids are rebuilt from the attention mask as `generate` does, so left-padded prompts get the
    positions they had while sampling. Encoder-decoder models (`decoder_start_token_id` set) encode the prompt and
    decode `[decoder_start] + completion[:-1]`, as `generate` did, so `hidden` is the decoder's last hidden state.
    """
    if decoder_start_token_id is not None:
        return _encoder_decoder_forward(model, rollout_or_batch, output_hidden_states, decoder_start_token_id)
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


def _encoder_decoder_forward(model, batch: dict, output_hidden_states: bool, decoder_start_token_id: int):
    completion_ids = batch["completion_ids"]  # (N, T)
    start = completion_ids.new_full((completion_ids.shape[0], 1), decoder_start_token_id)
    decoder_input_ids = torch.cat([start, completion_ids[:, :-1]], dim=1)  # (N, T): token t is predicted at t
    # no decoder mask: the decoder is causal, so a token never sees the padding after its EOS (as in `generate`)
    out = model(
        input_ids=batch["prompt_ids"], attention_mask=batch["prompt_mask"], decoder_input_ids=decoder_input_ids,
        output_hidden_states=output_hidden_states, use_cache=False,
    )
    hidden = out.decoder_hidden_states[-1] if output_hidden_states else None  # (N, T, H)
    return out.logits.float(), hidden  # (N, T, V); callers apply the temperature
