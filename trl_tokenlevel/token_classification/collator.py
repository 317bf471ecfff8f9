"""Batch collation that keeps the dataset's non-tensor columns for the reward functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase


FORWARD_KEYS = ("input_ids", "attention_mask", "token_type_ids")
"""What the model's forward takes from a batch."""
MODEL_INPUT_KEYS = (*FORWARD_KEYS, "labels")
"""What the collator pads; every other column passes through to the rewards."""


@dataclass
class TokenClassificationRLCollator:
    """Pads `input_ids`/`attention_mask`/`token_type_ids`/`labels` like
    [`~transformers.DataCollatorForTokenClassification`] (labels padded with -100) and passes every other column
    through as a plain list under its own name, so rewards receive it as a keyword argument.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): used for padding.
        pad_to_multiple_of (`int`, *optional*): pad lengths to a multiple of this (8 helps tensor cores).
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None

    def __post_init__(self):
        self._pad = DataCollatorForTokenClassification(
            self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        model_features = [{k: v for k, v in f.items() if k in MODEL_INPUT_KEYS} for f in features]
        batch = dict(self._pad(model_features))
        for key in features[0]:
            if key not in MODEL_INPUT_KEYS:
                batch[key] = [f[key] for f in features]
        return batch
