"""Per-token rewards from accept/reject feedback on a shown labelling (no gold labels).

The feedback (format in `trl_tokenlevel/data/feedback.py`) judges the entities of one *shown* labelling; the trainer
gives the reward that labelling as `gold_labels` (the dataset's `ner_tags` are the shown tags) and the per-word
feedback as the `feedback_word` column. Each sampled label is then scored against what the feedback says about its
word, and the per-token baseline (greedy or leave-one-out) turns the scores into advantages: only differences between
the labels sampled at the same token matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import TokenReward
from .spans import extract_spans


def words_to_positions(
    word_values: Sequence[Sequence[int]], word_mask: torch.Tensor, num_words_kept: Sequence[int] | None = None,
    column: str = "feedback_word", dtype: torch.dtype = torch.long,
) -> torch.Tensor:
    """Places per-word values on the sub-token positions of their words: the k-th `True` of `word_mask[b]` is word k.

    This holds for the trainer's batches, where the first sub-token of each word carries its label and every other
    position is -100 (`trl_tokenlevel/data/alignment.py` with `label_all_tokens=False`); truncation removes words
    from the end only. A row whose count of word positions differs from its (kept) words is refused rather than
    misaligned: that happens with `label_all_tokens=True` or when a word vanished in tokenization.

    Args:
        word_values (`list[list[int]]`): One list per sentence, one value per word.
        word_mask (`torch.BoolTensor` of shape `(B, T)`): The word positions.
        num_words_kept (`list[int]`, *optional*): Words left after truncation (the trainer's `num_words_kept` column);
            without it every word must have a position.
        column (`str`, *optional*, defaults to `"feedback_word"`): Name used in error messages.
        dtype (`torch.dtype`, *optional*, defaults to `torch.long`): Of the result (`torch.float32` for weights).

    Returns:
        Tensor of shape `(B, T)` and `dtype`, zero outside `word_mask`.

    Example:
        >>> mask = torch.tensor([[False, True, False, True, True, False]])  # [CLS] w0 w0## w1 w2 [SEP]
        >>> words_to_positions([[1, -1, 0]], mask).tolist()
        [[0, 1, 0, -1, 0, 0]]
    """
    if len(word_values) != word_mask.shape[0]:
        raise ValueError(f"`{column}` has {len(word_values)} rows for a batch of {word_mask.shape[0]} sentences.")
    out = torch.zeros(word_mask.shape, dtype=dtype)
    for b, values in enumerate(word_values):
        positions = word_mask[b].nonzero().squeeze(-1).cpu()
        expected = len(values) if num_words_kept is None else int(num_words_kept[b])
        if len(positions) != expected or expected > len(values):
            raise ValueError(
                f"Row {b}: {len(positions)} word positions (labels != -100) but `{column}` has {len(values)} words "
                f"({expected} kept after truncation), so word k cannot be matched to the k-th labelled position. Fix: "
                "tokenize with label_all_tokens=False (one label per word), and drop or replace words the tokenizer "
                "turns into no sub-token."
            )
        out[b, positions] = torch.as_tensor(list(values[: len(positions)]), dtype=dtype)
    return out.to(word_mask.device)


class SpanFeedbackReward(TokenReward):
    """Token rewards from accept/reject bits on the entities of a shown labelling.

    Per word (the shown tag `s`, the sampled tag `a`):

    - word of an **accepted** entity (its right tag is known): `+accept_weight` if `a` is the entity's tag (the shown
      one; `B-X` at the start of a shown stray `I-X` run), else 0;
    - word of a **rejected** entity (its shown tag is probably wrong; which word is wrong is unknown):
      `-reject_weight` if `a == s`, else `rejected_alternative_credit` (default 0: any change is as good as another);
    - word **outside** every shown entity (`s = O`): if `a = O`, `o_weight - missed_weight * missed / n_outside`
      (the sentence's `missed` entities lie among its `n_outside` outside words or rejected entities, so each `O`
      there is less trustworthy the more entities were missed); otherwise 0. A separate penalty for non-`O` there is
      not needed: with a per-token baseline only the difference between `O` and non-`O` matters;
    - word of an **unjudged** shown entity, padding, special tokens and continuation sub-tokens: 0.

    Defaults (`o_weight = missed_weight = 0`) use the bits only: outside words get no gradient, so no unverified `O`
    is reinforced. `o_weight > 0` trusts the shown `O` (self-training on it, wrong where entities were missed);
    `missed_weight > 0` pushes the policy off `O` in sentences with missed entities, an exploration bonus that pays
    only when samples or later shown labellings propose the missed entities. No gold label is read: the reward
    sees only the shown labelling (`gold_labels`), the bits and `missed`.

    Cold start: a random model's entities are mostly rejected (about 10 rejections per acceptance in the tests), so
    the rejections move probability onto `O`, where no feedback arrives any more, and the policy can collapse to
    all-`O`. Learning from feedback alone (`tests/test_feedback.py`) worked when the shown labelling was sampled from
    the policy, with an entropy bonus (`entropy_coef=0.05`) and `reject_weight=0.3`; with `reject_weight=1.0` and no
    entropy bonus it collapsed on every seed tried. A model warm-started with cross-entropy sees far more acceptances.

    Args:
        accept_weight (`float`, *optional*, defaults to `1.0`): Reward for keeping an accepted word's tag.
        reject_weight (`float`, *optional*, defaults to `1.0`): Penalty for repeating a rejected word's shown tag.
        rejected_alternative_credit (`float`, *optional*, defaults to `0.0`): Reward for any other tag there.
        o_weight (`float`, *optional*, defaults to `0.0`): Reward for `O` on words outside every shown entity.
        missed_weight (`float`, *optional*, defaults to `0.0`): Penalty per missed entity, spread over the outside
            words' `O` predictions of the sentence. Needs the `missed_column`.
        feedback_column (`str`, *optional*, defaults to `"feedback_word"`): Per-word `1` (accepted), `-1` (rejected),
            `0` (no feedback) column, as made by `trl_tokenlevel.data.feedback.feedback_dataset`.
        missed_column (`str`, *optional*, defaults to `"missed"`): Per-sentence count (`None` = unknown = 0).

    Example:
        Shown `B-PER I-PER O B-LOC O`; the PER entity is accepted, the LOC one rejected, one entity was missed.
        Sample 0 repeats the shown labelling; sample 1 cuts PER short and moves LOC one word right:

        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> shown = torch.tensor([[-100, 1, 2, 0, 3, 0, -100]])  # [CLS] five words [SEP]
        >>> sampled = torch.tensor([[[0, 1, 2, 0, 3, 0, 0]], [[0, 1, 0, 0, 0, 3, 0]]])
        >>> columns = {"feedback_word": [[1, 1, 0, -1, 0]], "missed": [1]}
        >>> SpanFeedbackReward()(sampled, shown, shown != -100, names, **columns).tolist()
        [[[0.0, 1.0, 1.0, 0.0, -1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]

        Trusting the shown `O` (`o_weight=0.5`) but spreading 2 per missed entity over the two outside words
        (`0.5 - 2 * 1 / 2 = -0.5` on each `O` there; with `missed = 0` it would be `+0.5`):

        >>> trusting = SpanFeedbackReward(o_weight=0.5, missed_weight=2.0)
        >>> trusting(sampled, shown, shown != -100, names, **columns).tolist()
        [[[0.0, 1.0, 1.0, -0.5, -1.0, -0.5, 0.0]], [[0.0, 1.0, 0.0, -0.5, 0.0, 0.0, 0.0]]]
    """

    def __init__(
        self,
        accept_weight: float = 1.0,
        reject_weight: float = 1.0,
        rejected_alternative_credit: float = 0.0,
        o_weight: float = 0.0,
        missed_weight: float = 0.0,
        feedback_column: str = "feedback_word",
        missed_column: str = "missed",
    ):
        self.accept_weight = accept_weight
        self.reject_weight = reject_weight
        self.rejected_alternative_credit = rejected_alternative_credit
        self.o_weight = o_weight
        self.missed_weight = missed_weight
        self.feedback_column = feedback_column
        self.missed_column = missed_column

    def _feedback(self, gold_labels, word_mask, kwargs) -> torch.Tensor:
        if self.feedback_column not in kwargs:
            raise ValueError(
                f"SpanFeedbackReward needs the `{self.feedback_column}` column (per-word feedback) but the batch has "
                f"{sorted(kwargs)}. Fix: train on `feedback_dataset(records, label_list)` and keep "
                "remove_unused_columns=False."
            )
        feedback = words_to_positions(
            kwargs[self.feedback_column], word_mask, kwargs.get("num_words_kept"), self.feedback_column
        ).to(gold_labels.device)
        if "ner_tags" in kwargs:  # the column the labels were aligned from: catches a misaligned or foreign column
            aligned = words_to_positions(kwargs["ner_tags"], word_mask, kwargs.get("num_words_kept"), "ner_tags")
            if not torch.equal(aligned.to(gold_labels.device)[word_mask], gold_labels[word_mask]):
                raise ValueError("The batch's `ner_tags` do not match its labels at the word positions: the per-word "
                                 "feedback cannot be aligned. Fix: build the dataset with `feedback_dataset`.")
        if not set(feedback[word_mask].unique().tolist()) <= {-1, 0, 1}:
            raise ValueError(f"`{self.feedback_column}` must hold 1 (accepted), -1 (rejected) or 0 per word.")
        return feedback

    def _accepted_targets(self, gold_labels, word_mask, feedback, names) -> torch.Tensor:
        """The shown labels, with `B-X` at the start of an accepted stray `I-X` run."""
        targets = gold_labels.clone()
        for b in range(gold_labels.shape[0]):
            positions = word_mask[b].nonzero().squeeze(-1).tolist()
            tags = [names[i] for i in gold_labels[b, positions].tolist()]
            for span in extract_spans(tags):
                start = positions[span.start]
                if not span.valid and feedback[b, start] == 1:
                    if f"B-{span.type}" not in names:
                        raise ValueError(f"Accepted entity {span.type!r} needs the label 'B-{span.type}' in {names}.")
                    targets[b, start] = names.index(f"B-{span.type}")
        return targets

    def _o_rewards(self, outside, kwargs) -> torch.Tensor:
        """(B,) reward for `O` on an outside word of each sentence."""
        o_reward = torch.full((outside.shape[0],), float(self.o_weight), device=outside.device)
        if self.missed_weight == 0:
            return o_reward
        if self.missed_column not in kwargs:
            raise ValueError(f"missed_weight={self.missed_weight} needs the `{self.missed_column}` column; the batch "
                             f"has {sorted(kwargs)}. Fix: add it, or set missed_weight=0.")
        missed = torch.tensor([float(m or 0) for m in kwargs[self.missed_column]], device=outside.device)
        return o_reward - self.missed_weight * missed / outside.sum(-1).clamp(min=1)

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs) -> torch.Tensor:
        names = list(label_names)
        if "O" not in names:
            raise ValueError(f"SpanFeedbackReward needs an 'O' label; got {names}.")
        word_mask = word_mask.bool()
        feedback = self._feedback(gold_labels, word_mask, kwargs)  # (B, T)
        outside_id = names.index("O")
        if bool(((feedback != 0) & (gold_labels == outside_id) & word_mask).any()):
            raise ValueError("Feedback on a word whose shown label is 'O': the labels must be the shown labelling.")
        accepted = (feedback == 1) & word_mask  # (B, T)
        rejected = (feedback == -1) & word_mask
        outside = (feedback == 0) & (gold_labels == outside_id) & word_mask
        targets = self._accepted_targets(gold_labels, word_mask, feedback, names)
        o_reward = self._o_rewards(outside, kwargs)[:, None]  # (B, 1)

        rewards = self.accept_weight * (accepted & (sampled_labels == targets)).float()  # (K, B, T)
        repeat = (sampled_labels == gold_labels).float()
        rejected_score = -self.reject_weight * repeat + self.rejected_alternative_credit * (1.0 - repeat)
        rewards = rewards + rejected.float() * rejected_score
        rewards = rewards + (outside & (sampled_labels == outside_id)).float() * o_reward
        return rewards
