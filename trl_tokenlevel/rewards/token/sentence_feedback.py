"""One reward per sentence from accept/reject feedback: the bandit signal of Sokolov et al. (ACL 2016), without credit.

The same feedback as [`SpanFeedbackReward`] (the dataset's `ner_tags` are the shown labelling, `feedback_word` the
per-word verdicts), pooled into a single number per sampled labelling and put on every word. Comparing the two
rewards separates what per-token credit assignment adds from what the feedback itself carries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import TokenReward
from .span_feedback import words_to_positions
from .spans import extract_spans


class SentenceFeedbackReward(TokenReward):
    """The fraction of the judged shown entities that a sampled labelling gets right by the feedback, on every word.

    For a sampled labelling `a` of a sentence whose shown labelling had `n` judged entities:

        R(a) = (#accepted entities `a` reproduces - reject_weight * #rejected entities `a` reproduces) / max(n, 1)

    where `a` reproduces an entity when it has an entity with the same words and type (a valid `B-`-opened one for
    an accepted entity, as seqeval would count it; any, for a rejected one). For the shown labelling itself with
    `reject_weight=0` this is the fraction of its entities the user accepted. `R(a)` is given to every word position
    of the sentence (0 on special tokens, continuation sub-tokens and padding); sentences without a judged entity get
    0 everywhere. Nothing else is read: no gold label, no `missed` count.

    Args:
        reject_weight (`float`, *optional*, defaults to `1.0`): Penalty per rejected entity the sample repeats.
        feedback_column (`str`, *optional*, defaults to `"feedback_word"`): Per-word `1` / `-1` / `0` column made by
            `trl_tokenlevel.data.feedback.feedback_dataset`.

    Example:
        Shown `B-PER I-PER O B-LOC O`: PER accepted, LOC rejected. Sample 0 repeats it (1 - 1 = 0 over 2 judged
        entities); sample 1 keeps PER and drops LOC (1 / 2 on every word):

        >>> names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        >>> shown = torch.tensor([[-100, 1, 2, 0, 3, 0, -100]])  # [CLS] five words [SEP]
        >>> sampled = torch.tensor([[[0, 1, 2, 0, 3, 0, 0]], [[0, 1, 2, 0, 0, 0, 0]]])
        >>> SentenceFeedbackReward()(sampled, shown, shown != -100, names, feedback_word=[[1, 1, 0, -1, 0]]).tolist()
        [[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], [[0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]]]
    """

    def __init__(self, reject_weight: float = 1.0, feedback_column: str = "feedback_word"):
        self.reject_weight = reject_weight
        self.feedback_column = feedback_column

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names: Sequence[str], **kwargs) -> torch.Tensor:
        if self.feedback_column not in kwargs:
            raise ValueError(
                f"SentenceFeedbackReward needs the `{self.feedback_column}` column (per-word feedback) but the batch "
                f"has {sorted(kwargs)}. Fix: train on `feedback_dataset(records, label_list)`."
            )
        names = list(label_names)
        word_mask = word_mask.bool()
        feedback = words_to_positions(
            kwargs[self.feedback_column], word_mask, kwargs.get("num_words_kept"), self.feedback_column
        )  # (B, T), checks the alignment
        scores = torch.zeros(sampled_labels.shape[:2])  # (K, B)
        sampled_cpu, shown_cpu = sampled_labels.cpu(), gold_labels.cpu()
        for b in range(gold_labels.shape[0]):
            positions = word_mask[b].nonzero().squeeze(-1).cpu()
            verdicts = feedback[b, positions.to(feedback.device)].tolist()
            judged = [(span, verdicts[span.start]) for span in
                      extract_spans([names[i] for i in shown_cpu[b, positions].tolist()]) if verdicts[span.start] != 0]
            if not judged:
                continue
            for k in range(sampled_labels.shape[0]):
                spans = extract_spans([names[i] for i in sampled_cpu[k, b, positions].tolist()])
                found = {(s.start, s.end, s.type): s.valid for s in spans}
                accepted = sum(found.get(span[:3], False) for span, verdict in judged if verdict == 1)
                rejected = sum(span[:3] in found for span, verdict in judged if verdict == -1)
                scores[k, b] = (accepted - self.reject_weight * rejected) / len(judged)
        return scores.to(word_mask.device)[:, :, None] * word_mask.float()  # (K, B, T)
