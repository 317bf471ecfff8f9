"""Reference log-probabilities computed once per training example, instead of a reference forward every step.

For a frozen reference the label distribution of every training token never changes, so the KL term needs one
inference pass over the training set, not one extra forward per step. The cache holds, per example, the reference
log-probabilities at its word positions: `n_words x C` floats (CoNLL-2003 train: 204k words x 9 labels, ~7 MB).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


REFERENCE_INDEX_COLUMN = "reference_index"
"""Column the trainer adds to the training set so a batch knows which cached rows it needs."""


class ReferenceLogprobCache:
    """Per-example reference log-probabilities at word positions (`labels != -100`)."""

    def __init__(self, rows: list[torch.Tensor]):
        self.rows = rows

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        reference_logits: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        dataset,
        collator: Callable,
        batch_size: int,
        device: torch.device,
        forward_keys=("input_ids", "attention_mask", "token_type_ids"),
    ) -> ReferenceLogprobCache:
        """Runs `reference_logits` over `dataset` in order (row `i` of the cache is example `i`)."""
        rows: list[torch.Tensor] = []
        for start in range(0, len(dataset), batch_size):
            batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            labels = batch["labels"]
            inputs = {k: batch[k].to(device) for k in forward_keys if k in batch}
            logprobs = F.log_softmax(reference_logits(inputs)[:, -labels.shape[1] :].float(), dim=-1).cpu()
            mask = labels != -100
            rows.extend(logprobs[b][mask[b]] for b in range(labels.shape[0]))
        return cls(rows)

    def lookup(self, indices: list[int], labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Reference log-probs for a batch as `(B, T, C)`; positions off the word mask hold 0 (never used).

        Raises:
            `ValueError` if an example's number of word positions changed since the cache was built (for instance
            a different `max_length`): the cache would then be misaligned.
        """
        mask = labels != -100
        out = torch.zeros(*labels.shape, num_classes, device=labels.device)
        for b, index in enumerate(indices):
            row = self.rows[int(index)]
            if row.shape[0] != int(mask[b].sum()):
                raise ValueError(
                    f"Cached reference for training example {index} has {row.shape[0]} word positions but the batch "
                    f"has {int(mask[b].sum())}. The dataset changed after the cache was built; rebuild the trainer."
                )
            out[b][mask[b]] = row.to(out.device)
        return out
