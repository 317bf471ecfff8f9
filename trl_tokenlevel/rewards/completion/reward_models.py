"""Learned rewards for completions: a token-level reward model, and a sequence reward model made dense.

Both accept a reward model that shares the policy's vocabulary (then the sampled ids are fed to it as they are)
or one with its own tokenizer (then it reads the text, and its scores are mapped back onto the policy's tokens
through character spans, see `rewards/alignment.py`; the policy's ids are never re-encoded by the policy's
tokenizer).
"""

from __future__ import annotations

import torch

from .alignment import token_char_spans
from .base import CompletionReward


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


def _pad_right(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (length - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], device=device)
    return ids, mask


class TokenClassifierReward(CompletionReward):
    """Dense: the per-token score of an `AutoModelForTokenClassification` is the reward of each completion token.

    The score of token t is the classifier's logit for `label_index` at that token (or its probability with
    `use_probability=True`), read with the prompt as left context.

    Args:
        model: an `AutoModelForTokenClassification` (1 label: a regression-style score).
        tokenizer (*optional*): the reward model's tokenizer. None = it shares the policy's vocabulary and reads
            `prompt_ids + completion_ids` directly.
        policy_tokenizer (*optional*): needed with `tokenizer`, to map the policy's tokens to characters.
        label_index (`int`, *optional*): which label's score is the reward; required when the model has >1 label.
    """

    def __init__(self, model, tokenizer=None, policy_tokenizer=None, label_index: int | None = None, use_probability: bool = False):
        if label_index is None:
            if model.config.num_labels != 1:
                raise ValueError(f"The reward model has {model.config.num_labels} labels: pass label_index=... .")
            label_index = 0
        if tokenizer is not None and policy_tokenizer is None:
            raise ValueError("A reward model with its own tokenizer needs policy_tokenizer=... to align tokens.")
        self.model, self.tokenizer, self.policy_tokenizer = model.eval(), tokenizer, policy_tokenizer
        self.label_index, self.use_probability = label_index, use_probability

    @torch.no_grad()
    def _scores(self, **inputs) -> torch.Tensor:
        logits = self.model(**inputs).logits.float()  # (B, L, C)
        scores = logits.softmax(-1) if self.use_probability else logits
        return scores[..., self.label_index]

    def __call__(self, prompts, completions, completion_ids, prompt_ids=None, **kwargs) -> list:
        device = self.model.device
        if self.tokenizer is None:
            if prompt_ids is None:
                raise ValueError("TokenClassifierReward without its own tokenizer needs prompt_ids (the trainer passes them).")
            rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
            ids, mask = _pad_right(rows, 0, device)
            scores = self._scores(input_ids=ids, attention_mask=mask)
            return [scores[i, len(p) : len(p) + len(c)].tolist() for i, (p, c) in enumerate(zip(prompt_ids, completion_ids))]
        out = []
        for prompt, ids in zip(prompts, completion_ids):
            text, spans = token_char_spans(self.policy_tokenizer, ids)
            encoding = self.tokenizer(_prompt_text(prompt), text, return_offsets_mapping=True, truncation="only_first", return_tensors="pt")
            offsets, sequence_ids = encoding.pop("offset_mapping")[0].tolist(), encoding.sequence_ids(0)
            scores = self._scores(**encoding.to(device))[0].tolist()
            rewards = []
            for start, end in spans:
                hits = [scores[j] for j, ((s, e), seq) in enumerate(zip(offsets, sequence_ids)) if seq == 1 and s < end and start < e]
                rewards.append(sum(hits) / len(hits) if hits and end > start else 0.0)
            out.append(rewards)
        return out


class SequenceRewardModelShaping(CompletionReward):
    """Dense from a sequence reward model by prefix differences: `r_t = R(x, y_<=t) - R(x, y_<t)`.

    `R` is the score (logit `label_index`) of an `AutoModelForSequenceClassification` on the prompt and a prefix of
    the completion. The per-token rewards telescope: `sum_t r_t = R(x, y) - R(x, empty)`, so every completion's
    return is its sequence score minus a constant of the prompt. This is potential-based reward shaping (Ng,
    Harada and Russell, 1999) with potential `Phi(s) = R(x, y_<t)` and gamma = 1: `F = Phi(s') - Phi(s)` changes
    the return of every completion of a prompt by the same amount `-Phi(s_0)`, so the ranking of completions, and
    hence the optimal policy, is that of the sequence reward model, while the credit now arrives token by token
    (a token that makes the summary worse gets a negative reward right where it happens). With gamma < 1 the
    shaping would be `gamma Phi(s') - Phi(s)`; this class assumes gamma = 1, the trainer's default.

    Costs one reward-model forward per completion token (batched by `batch_size`).

    Args:
        model: an `AutoModelForSequenceClassification`.
        tokenizer, policy_tokenizer (*optional*): as in [`TokenClassifierReward`]. With the shared vocabulary the
            model must find the last token of right-padded rows (`config.pad_token_id` set).
        label_index (`int`, defaults to `0`).
    """

    def __init__(self, model, tokenizer=None, policy_tokenizer=None, label_index: int = 0, batch_size: int = 64):
        if tokenizer is not None and policy_tokenizer is None:
            raise ValueError("A reward model with its own tokenizer needs policy_tokenizer=... to align tokens.")
        self.model, self.tokenizer, self.policy_tokenizer = model.eval(), tokenizer, policy_tokenizer
        self.label_index, self.batch_size = label_index, batch_size

    @torch.no_grad()
    def _score_ids(self, rows: list[list[int]]) -> list[float]:
        pad = self.model.config.pad_token_id if self.model.config.pad_token_id is not None else 0
        scores = []
        for i in range(0, len(rows), self.batch_size):
            ids, mask = _pad_right(rows[i : i + self.batch_size], pad, self.model.device)
            scores += self.model(input_ids=ids, attention_mask=mask).logits[:, self.label_index].float().tolist()
        return scores

    @torch.no_grad()
    def _score_text(self, prompt: str, prefixes: list[str]) -> list[float]:
        scores = []
        for i in range(0, len(prefixes), self.batch_size):
            chunk = prefixes[i : i + self.batch_size]
            encoding = self.tokenizer([prompt] * len(chunk), chunk, truncation="only_first", padding=True, return_tensors="pt")
            scores += self.model(**encoding.to(self.model.device)).logits[:, self.label_index].float().tolist()
        return scores

    def __call__(self, prompts, completions, completion_ids, prompt_ids=None, **kwargs) -> list:
        out = []
        for index, ids in enumerate(completion_ids):
            if self.tokenizer is None:
                if prompt_ids is None:
                    raise ValueError("SequenceRewardModelShaping without its own tokenizer needs prompt_ids.")
                prefix_scores = self._score_ids([list(prompt_ids[index]) + list(ids[:t]) for t in range(len(ids) + 1)])
            else:
                text, spans = token_char_spans(self.policy_tokenizer, ids)
                prefixes = [""] + [text[:end] for _, end in spans]
                prefix_scores = self._score_text(_prompt_text(prompts[index]), prefixes)
            out.append([b - a for a, b in zip(prefix_scores[:-1], prefix_scores[1:])])
        return out
