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


SCORES = ("log_odds", "logit", "probability")
"""How a sequence classifier's logits become a reward: see [`scores_from_logits`]."""


def prompt_text(prompt) -> str:
    """A prompt as text: a string as it is, chat messages as their contents joined by newlines."""
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


def join_prompt_completion(prompt: str, completion: str) -> tuple[str, int]:
    """`prompt + completion` with one space between them unless either side already has one; and where it starts.

    >>> join_prompt_completion("the film", "is a joy")
    ('the film is a joy', 9)
    >>> join_prompt_completion("the film", " is a joy")
    ('the film is a joy', 8)
    """
    separator = "" if not prompt or prompt[-1].isspace() or completion[:1].isspace() else " "
    return prompt + separator + completion, len(prompt) + len(separator)


def scores_from_logits(logits: torch.Tensor, label_index: int, score: str) -> torch.Tensor:
    """One score per row of `logits` (B, C) for class `label_index`.

    `"log_odds"`: `log p / (1 - p)` = `logit_i - logsumexp(other logits)` (2 labels: the logit difference; 1 label:
    the logit itself); `"logit"`: the raw logit; `"probability"`: softmax (1 label: sigmoid) probability.

    >>> scores_from_logits(torch.tensor([[1.0, 3.0]]), 1, "log_odds").tolist()
    [2.0]
    >>> scores_from_logits(torch.tensor([[1.0, 3.0]]), 1, "logit").tolist()
    [3.0]
    """
    if score not in SCORES:
        raise ValueError(f"score={score!r} is not one of {SCORES}.")
    i = label_index
    if score == "logit":
        return logits[:, i]
    if logits.shape[-1] == 1:
        return logits[:, 0] if score == "log_odds" else logits[:, 0].sigmoid()
    if score == "probability":
        return logits.softmax(-1)[:, i]
    others = torch.cat([logits[:, :i], logits[:, i + 1 :]], dim=-1)
    return logits[:, i] - others.logsumexp(-1)


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
            encoding = self.tokenizer(prompt_text(prompt), text, return_offsets_mapping=True, truncation="only_first", return_tensors="pt")
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

    `R` is the score (by default the logit `label_index`) of an `AutoModelForSequenceClassification` on the prompt
    and a prefix of the completion. The per-token rewards telescope: `sum_t r_t = R(x, y) - R(x, empty)`, so every
    completion's return is its sequence score minus a constant of the prompt. This is potential-based reward shaping
    (Ng, Harada and Russell, 1999) with potential `Phi(s) = R(x, y_<t)` and gamma = 1: `F = Phi(s') - Phi(s)` changes
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
        score (`str`, defaults to `"logit"`): `"logit"`, `"log_odds"` or `"probability"` of `label_index`
            ([`scores_from_logits`]); the same choices as [`AttentionCreditReward`], so the two can be compared.
        input_format (`str`, defaults to `"pair"`): with the reward model's own tokenizer, `"pair"` reads
            `(prompt, prefix)` as a text pair (the prompt is truncated first); `"joined"` reads prompt, one space and
            prefix as one text, as [`AttentionCreditReward`]'s default (suits a classifier trained on single sentences).
    """

    INPUT_FORMATS = ("pair", "joined")

    def __init__(
        self,
        model,
        tokenizer=None,
        policy_tokenizer=None,
        label_index: int = 0,
        batch_size: int = 64,
        score: str = "logit",
        input_format: str = "pair",
    ):
        if tokenizer is not None and policy_tokenizer is None:
            raise ValueError("A reward model with its own tokenizer needs policy_tokenizer=... to align tokens.")
        if score not in SCORES:
            raise ValueError(f"score={score!r} is not one of {SCORES}.")
        if input_format not in self.INPUT_FORMATS:
            raise ValueError(f"input_format={input_format!r} is not one of {self.INPUT_FORMATS}.")
        if input_format != "pair" and tokenizer is None:
            raise ValueError("input_format='joined' reads text: pass the reward model's tokenizer (and policy_tokenizer).")
        self.model, self.tokenizer, self.policy_tokenizer = model.eval(), tokenizer, policy_tokenizer
        self.label_index, self.batch_size, self.score, self.input_format = label_index, batch_size, score, input_format

    def _score_logits(self, logits: torch.Tensor) -> list[float]:
        return scores_from_logits(logits.float(), self.label_index, self.score).tolist()

    @torch.no_grad()
    def _score_ids(self, rows: list[list[int]]) -> list[float]:
        pad = self.model.config.pad_token_id if self.model.config.pad_token_id is not None else 0
        scores = []
        for i in range(0, len(rows), self.batch_size):
            ids, mask = _pad_right(rows[i : i + self.batch_size], pad, self.model.device)
            scores += self._score_logits(self.model(input_ids=ids, attention_mask=mask).logits)
        return scores

    @torch.no_grad()
    def _score_text(self, prompt: str, prefixes: list[str]) -> list[float]:
        scores = []
        for i in range(0, len(prefixes), self.batch_size):
            chunk = prefixes[i : i + self.batch_size]
            if self.input_format == "pair":
                encoding = self.tokenizer([prompt] * len(chunk), chunk, truncation="only_first", padding=True, return_tensors="pt")
            else:
                texts = [join_prompt_completion(prompt, prefix)[0] for prefix in chunk]
                encoding = self.tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
            scores += self._score_logits(self.model(**encoding.to(self.model.device)).logits)
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
                prefix_scores = self._score_text(prompt_text(prompts[index]), prefixes)
            out.append([b - a for a, b in zip(prefix_scores[:-1], prefix_scores[1:])])
        return out
