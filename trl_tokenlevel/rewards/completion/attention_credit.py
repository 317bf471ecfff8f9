"""Attention-based credit (ABC): a sequence reward model's score spread over the completion by its own attention.

Chan, Sun, Holt and van der Schaar, "Dense Reward for Free in Reinforcement Learning from Human Feedback" (ICML 2024,
arXiv:2402.00782). For one completion `y_1..y_T` of the policy, read by a sequence classifier with its own tokenizer:

    s    = score of the reward model on the text                  (`score="log_odds"`: logit_pos - logit_neg)
    a_j  = attention from the classification position to reward-model token j, last layer, mean over heads,
           kept only for the tokens j inside the completion's characters (prompt, [CLS], [SEP] dropped)
    w_t  = sum_j a_j * |chars(j) & chars(t)| / |chars(j)|           (reward-model tokens -> policy tokens)
    w_t <- w_t / sum_t w_t                                          (sums to 1 over the completion)
    r_t  = beta * s * w_t + (1 - beta) * s * [t == T]                (dense part + sparse part on the last token)

so `sum_t r_t = s`: the return of every completion is its sequence score, as with the sequence reward alone. With
`beta=0` this is the plain end-of-sequence reward; with `beta=1` all of it follows the attention. The paper mixes the
two; `beta=0.5` is the default of the authors' IMDb experiments (`rlhf_imdb.py` in XanderJC/attention-based-credit),
which also score a 2-label sentiment classifier by its logit difference and average the last layer's heads.

The classification position: the paper's GPT-2 reward model reads its score at the last token, so the row of that
token is used. A BERT-like classifier reads the score from the [CLS] hidden state of the last layer (pooler and
classifier see nothing else), so its last-layer [CLS] row (`classification_position="first"`) holds the weights with
which that state mixes the other tokens. BERT's heads put much of that mass on [CLS] and [SEP] themselves (Clark et
al., 2019, "What Does BERT Look At?"); those positions are dropped and the rest renormalised.

The policy's tokens are mapped to characters by decoding growing prefixes of the sampled ids (`rewards/alignment.py`);
the reward model's tokens by its tokenizer's offsets. A reward-model token shared by several policy tokens gives each
the share of its attention that matches the characters they share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .alignment import token_char_spans
from .base import CompletionReward
from .reward_models import SCORES, join_prompt_completion as _join, prompt_text as _prompt_text, scores_from_logits


INPUT_FORMATS = ("joined", "pair", "completion")
POSITIONS = ("first", "last")


def attention_to_policy_tokens(
    attention_per_rm_token: Sequence[float],
    rm_offsets: Sequence[tuple[int, int] | None],
    policy_offsets: Sequence[tuple[int, int]],
) -> list[float]:
    """Unnormalised attention of each policy token: each reward-model token's attention split by shared characters.

    Args:
        attention_per_rm_token (`Sequence[float]`): one non-negative weight per reward-model token.
        rm_offsets (`Sequence[tuple[int, int] | None]`): the `(start, end)` characters of each reward-model token in
            the completion's text, `None` for tokens outside it (prompt, special tokens).
        policy_offsets (`Sequence[tuple[int, int]]`): the `(start, end)` characters each policy token added (from
            `token_char_spans`); empty for EOS.

    Example: "unbelievable" as `un|##believ|##able` for the reward model and `unb|elievable` for the policy; one of
    the six characters of `##believ` lies in `unb`, so `unb` gets 0.1 + 0.6 / 6:
        >>> weights = attention_to_policy_tokens([0.1, 0.6, 0.3], [(0, 2), (2, 8), (8, 12)], [(0, 3), (3, 12)])
        >>> [round(w, 6) for w in weights]
        [0.2, 0.8]
    """
    if len(attention_per_rm_token) != len(rm_offsets):
        raise ValueError(
            f"Got {len(attention_per_rm_token)} attention weights for {len(rm_offsets)} reward-model offsets; pass "
            "one weight per reward-model token (None offsets for the tokens outside the completion)."
        )
    weights = [0.0] * len(policy_offsets)
    for j, (attention, offset) in enumerate(zip(attention_per_rm_token, rm_offsets)):
        if offset is None or offset[1] <= offset[0]:
            continue
        if not attention >= 0.0:  # also catches NaN
            raise ValueError(f"Attention of reward-model token {j} is {attention}; attention weights are >= 0.")
        start, end = offset
        for t, (policy_start, policy_end) in enumerate(policy_offsets):
            shared = min(end, policy_end) - max(start, policy_start)
            if shared > 0:
                weights[t] += float(attention) * shared / (end - start)
    return weights


def redistribute_by_attention(
    score: float,
    attention_per_rm_token: Sequence[float],
    rm_offsets: Sequence[tuple[int, int] | None],
    policy_offsets: Sequence[tuple[int, int]],
    beta: float = 0.5,
) -> list[float]:
    """Per-policy-token rewards `beta * score * w_t + (1 - beta) * score * [t == T]`, summing to `score`.

    `w_t` is [`attention_to_policy_tokens`] normalised to sum to 1. When no attention lands on the completion's
    characters (an empty completion, only EOS), the dense part goes to the last token too, so the sum is still
    `score`.

    Args:
        score (`float`): the reward model's score of the completion.
        attention_per_rm_token, rm_offsets, policy_offsets: as in [`attention_to_policy_tokens`].
        beta (`float`, defaults to `0.5`): share of the score spread by attention; the rest is placed on the last token.

    Returns:
        `list[float]`: one reward per policy token (`[]` for a completion without tokens).

    Example: RM tokens `good` (attention 0.6) and `fun` (0.2); policy tokens `go|od| fun|</s>`:
        >>> rewards = redistribute_by_attention(2.0, [0.1, 0.6, 0.2], [None, (0, 4), (5, 8)], [(0, 2), (2, 4), (4, 8), (8, 8)])
        >>> [round(r, 3) for r in rewards], round(sum(rewards), 6)
        ([0.375, 0.375, 0.25, 1.0], 2.0)
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta} is outside [0, 1]: it is the share of the score spread by attention.")
    if not math.isfinite(score):
        raise ValueError(f"The reward model's score is {score}; expected a finite number.")
    if not policy_offsets:
        return []
    weights = attention_to_policy_tokens(attention_per_rm_token, rm_offsets, policy_offsets)
    total = sum(weights)
    if total <= 0.0:
        weights, total = [0.0] * (len(policy_offsets) - 1) + [1.0], 1.0
    rewards = [beta * score * w / total for w in weights]
    rewards[-1] += (1.0 - beta) * score
    return rewards


class AttentionCreditReward(CompletionReward):
    """Dense: the sequence score of a reward model spread over the completion's tokens by its attention (ABC).

    Token `t` gets `beta * s * w_t`, its share `w_t` of the reward model's attention (see the module docstring and the
    worked example of [`redistribute_by_attention`]); the last token also gets `(1 - beta) * s`. Every completion's
    rewards sum to its score `s`. Costs one reward-model forward per completion, like the sequence reward.

    Args:
        model: an `AutoModelForSequenceClassification` loaded with `attn_implementation="eager"` (SDPA and flash
            kernels return no attention weights). The reward puts it in eval mode (no attention dropout).
        tokenizer: the reward model's fast tokenizer (its character offsets place its tokens).
        policy_tokenizer: the policy's tokenizer, to map the sampled ids to characters (never re-encoded).
        label_index (`int`, *optional*): the class whose score is the reward (SST-2: 1 = positive). Required when the
            model has more than one label.
        beta (`float`, defaults to `0.5`): share of the score spread by attention, in [0, 1]; the rest stays on the
            last token. 0 = the end-of-sequence reward.
        score (`str`, defaults to `"log_odds"`): `"log_odds"` is `log p / (1 - p)` of `label_index`, i.e.
            `logit_i - logsumexp(other logits)` (with 2 labels the logit difference of the paper, with 1 label the logit
            itself); `"logit"` the raw logit; `"probability"` the softmax (sigmoid for 1 label) probability, in [0, 1].
        input_format (`str`, defaults to `"joined"`): what the reward model reads. `"joined"`: prompt, one space,
            completion as one text (the paper feeds query + response; suits a classifier trained on single sentences);
            `"pair"`: `(prompt, completion)` as a text pair, like [`SequenceRewardModelShaping`]; `"completion"`: the
            completion alone. Chat prompts are read as their messages' contents joined by newlines.
        classification_position (`str`, defaults to `"first"`): the row of attention used. `"first"` for BERT-like
            models ([CLS]); `"last"` for decoder reward models (the last non-padding token).
        max_length (`int`, *optional*): reward-model tokens per text; defaults to the tokenizer's `model_max_length`
            capped by `max_position_embeddings`. `"pair"` truncates the prompt first; a completion that still does not
            fit raises an error instead of losing its end.
        batch_size (`int`, defaults to `32`): completions per reward-model forward.

    Usage:
        reward = AttentionCreditReward(rm, rm_tokenizer, policy_tokenizer, label_index=1)
        reward(["the film"], [" is a joy"], [ids])  # [[r_1, ..., r_T]] with sum = log-odds of "the film is a joy"
    """

    def __init__(
        self,
        model,
        tokenizer,
        policy_tokenizer,
        label_index: int | None = None,
        beta: float = 0.5,
        score: str = "log_odds",
        input_format: str = "joined",
        classification_position: str = "first",
        max_length: int | None = None,
        batch_size: int = 32,
    ):
        if tokenizer is None or policy_tokenizer is None:
            raise ValueError("AttentionCreditReward needs the reward model's tokenizer and the policy's tokenizer.")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("The reward model's tokenizer must be a fast tokenizer (it must return offset mappings).")
        implementation = getattr(model.config, "_attn_implementation", None)
        if implementation != "eager":
            raise ValueError(
                f"The reward model uses attn_implementation={implementation!r}, which returns no attention weights. Fix: "
                "load it with `attn_implementation='eager'` or call `model.set_attn_implementation('eager')`."
            )
        num_labels = model.config.num_labels
        if label_index is None:
            if num_labels != 1:
                raise ValueError(f"The reward model has {num_labels} labels: pass label_index=... (SST-2: 1 = positive).")
            label_index = 0
        if not 0 <= label_index < num_labels:
            raise ValueError(f"label_index={label_index} is not a label of a model with {num_labels} labels.")
        for name, value, choices in (("score", score, SCORES), ("input_format", input_format, INPUT_FORMATS),
                                     ("classification_position", classification_position, POSITIONS)):  # fmt: skip
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {choices}.")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta} is outside [0, 1]: it is the share of the score spread by attention.")
        limits = [tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", None), max_length]
        self.max_length = min(int(n) for n in limits if n is not None and n < 10**9)
        self.model, self.tokenizer, self.policy_tokenizer = model.eval(), tokenizer, policy_tokenizer
        self.label_index, self.beta, self.score = label_index, float(beta), score
        self.input_format, self.classification_position, self.batch_size = input_format, classification_position, batch_size

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        return scores_from_logits(logits, self.label_index, self.score)

    def _encode(self, prompts: list, texts: list[str]):
        """Tokenizes what the reward model reads; returns the encoding and where each completion starts in its segment."""
        kwargs = {"max_length": self.max_length, "padding": True, "return_offsets_mapping": True, "return_tensors": "pt"}
        if self.input_format == "pair":
            encoding = self.tokenizer([_prompt_text(p) for p in prompts], texts, truncation="only_first", **kwargs)
            return encoding, [0] * len(texts)
        if self.input_format == "completion":
            return self.tokenizer(texts, truncation=True, **kwargs), [0] * len(texts)
        joined = [_join(_prompt_text(p), text) for p, text in zip(prompts, texts)]
        return self.tokenizer([j for j, _ in joined], truncation=True, **kwargs), [start for _, start in joined]

    def _completion_offsets(self, encoding, row: int, start: int) -> list[tuple[int, int] | None]:
        segment = 1 if self.input_format == "pair" else 0
        offsets = encoding["offset_mapping"][row].tolist()
        return [
            (max(s, start) - start, e - start) if sequence == segment and e > start else None
            for (s, e), sequence in zip(offsets, encoding.sequence_ids(row))
        ]

    @torch.no_grad()
    def _batch(self, prompts: list, items: list, first_index: int) -> list[list[float]]:
        encoding, starts = self._encode(prompts, [text for text, _ in items])
        inputs = {k: v.to(self.model.device) for k, v in encoding.items() if k != "offset_mapping"}
        output = self.model(**inputs, output_attentions=True)
        if not output.attentions:
            raise ValueError("The reward model returned no attention weights; load it with attn_implementation='eager'.")
        attention = output.attentions[-1].float().mean(dim=1)  # (B, L, L): last layer, mean over heads
        mask = inputs["attention_mask"]
        if self.classification_position == "first":
            positions = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
        else:  # the last non-padding token, whichever side is padded
            positions = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)
        rows = attention[torch.arange(mask.shape[0], device=mask.device), positions].cpu()  # (B, L)
        scores = self._scores(output.logits.float()).tolist()
        results = []
        for b, (text, spans) in enumerate(items):
            rm_offsets = self._completion_offsets(encoding, b, starts[b])
            covered = max((o[1] for o in rm_offsets if o is not None), default=0)
            if covered < len(text.rstrip()) and int(mask[b].sum()) >= self.max_length:
                raise ValueError(
                    f"Completion {first_index + b} does not fit in the reward model's max_length={self.max_length}: its "
                    f"characters {covered}..{len(text.rstrip())} were cut off. Fix: lower max_new_tokens, shorten the "
                    "prompt, use input_format='pair' (truncates the prompt first), or raise max_length."
                )
            results.append(redistribute_by_attention(scores[b], rows[b].tolist(), rm_offsets, spans, self.beta))
        return results

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list:
        items = [token_char_spans(self.policy_tokenizer, list(ids)) for ids in completion_ids]
        if prompts is None:
            prompts = [""] * len(items)
        rewards = []
        for i in range(0, len(items), self.batch_size):
            rewards += self._batch(list(prompts[i : i + self.batch_size]), items[i : i + self.batch_size], i)
        return rewards
