"""[`SequenceClassificationRLConfig`]: the training arguments of [`SequenceClassificationRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..supervised import SupervisedRLConfig


@dataclass
class SequenceClassificationRLConfig(SupervisedRLConfig):
    r"""
    Configuration of [`SequenceClassificationRLTrainer`]: the fields of [`SupervisedRLConfig`] (baseline, CE mix,
    CE-then-RL schedule) plus the sequence-classification ones below. The action is the label of a whole sequence; the loss of one step is

        loss = rl_coef * PG + ce_coef * CE + kl_coef * KL(policy || reference) - entropy_coef * H(policy)

    where every term is a sum over the examples divided by the number of examples in the whole optimizer step, across
    gradient accumulation and processes.

    Added parameters: data (`text_column`, `text_pair_column`, `label_column`, `max_length`).
    """

    trainer_name: ClassVar[str] = "SequenceClassificationRLTrainer (sequence classifiers)"

    # > Data
    text_column: str = field(
        default="sentence",
        metadata={"help": "Column with the text to classify when the trainer tokenizes a raw dataset itself."},
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Optional second text column (sentence pairs, e.g. NLI); encoded as `[CLS] a [SEP] b [SEP]`."},
    )
    label_column: str = field(
        default="label",
        metadata={
            "help": "Column with the gold label of a raw dataset: an id, or a label name (mapped with the label list; "
            "an unknown name is refused with the row)."
        },
    )
    max_length: int = field(
        default=128,
        metadata={
            "help": "Maximum sub-word length when the trainer tokenizes a raw dataset. Longer texts are truncated at "
            "the end and counted in one warning."
        },
    )
    # > Advantages
    # > Loss
    # > Schedule

    def __post_init__(self):
        super().__post_init__()
        self.validate_path()

    def validate_path(self) -> None:
        # explicit, not super(): in the union TokenLevelRLConfig the next class in the MRO is another path's config
        SupervisedRLConfig.validate_path(self)
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for the special tokens), got {self.max_length}.")
        if not self.text_column or not self.label_column:
            raise ValueError("text_column and label_column must name dataset columns (e.g. 'sentence' and 'label').")
