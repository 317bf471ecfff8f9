"""[`SequenceClassificationRLConfig`]: the training arguments of [`SequenceClassificationRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..base_config import TokenLevelRLBaseConfig
from ..core import BASELINES
from ..dynamic.schedules import build_schedule, parse_json_field


@dataclass
class SequenceClassificationRLConfig(TokenLevelRLBaseConfig):
    r"""
    Configuration of [`SequenceClassificationRLTrainer`]: the shared fields of [`TokenLevelRLBaseConfig`] plus the
    sequence-classification ones below. The action is the label of a whole sequence; the loss of one step is

        loss = rl_coef * PG + ce_coef * CE + kl_coef * KL(policy || reference) - entropy_coef * H(policy)

    where every term is a sum over the examples divided by the number of examples in the whole optimizer step, across
    gradient accumulation and processes.

    Added parameters: data (`text_column`, `text_pair_column`, `label_column`, `max_length`), advantages
    (`baseline`), loss (`ce_coef`, `ce_coef_schedule`), schedule (`rl_start_step`, `rl_start_epoch`).
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
    baseline: str = field(
        default="greedy",
        metadata={
            "help": "Per-example baseline: 'greedy' (self-critic: the reward of the argmax label), 'leave_one_out' "
            "(mean of the other K-1 samples; needs K>=2), 'batch_mean' (depends on how the batch is split, so it is "
            "not invariant to gradient accumulation), or 'none' (plain REINFORCE, high variance)."
        },
    )
    # > Loss
    ce_coef: float = field(
        default=1.0,
        metadata={"help": "Weight of the supervised cross-entropy term. 0 = learn from rewards alone."},
    )
    ce_coef_schedule: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Schedule of the CE weight, overriding `ce_coef` (e.g. cosine 1 -> 0 for a CE-to-RL hand-over). "
            "JSON string on the command line."
        },
    )
    # > Schedule
    rl_start_step: int = field(
        default=0,
        metadata={
            "help": "Optimizer step at which the RL term switches on; before it the loss is CE only (no sampling, no "
            "reward calls). A CE warm-up lets rewards start from a sensible policy."
        },
    )
    rl_start_epoch: float | None = field(
        default=None,
        metadata={"help": "Like `rl_start_step` but in epochs (e.g. 1.0). If set, it takes precedence."},
    )

    def __post_init__(self):
        super().__post_init__()
        self.validate_path()

    def validate_path(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}.")
        if self.baseline == "leave_one_out" and self.num_samples < 2:
            raise ValueError("baseline='leave_one_out' needs num_samples >= 2: raise num_samples or use 'greedy'.")
        if self.ce_coef < 0:
            raise ValueError(f"ce_coef must be >= 0, got {self.ce_coef}.")
        self.ce_coef_schedule = parse_json_field(self.ce_coef_schedule, "ce_coef_schedule")
        if self.ce_coef_schedule is not None:
            build_schedule(self.ce_coef_schedule, "ce_coef_schedule")
        if self.rl_coef == 0 and self.ce_coef == 0 and self.rl_coef_schedule is None and self.ce_coef_schedule is None:
            raise ValueError("rl_coef and ce_coef are both 0: nothing would be learned. Set one of them > 0.")
        if self.rl_start_step < 0:
            raise ValueError(f"rl_start_step must be >= 0, got {self.rl_start_step}.")
        if self.rl_start_epoch is not None and self.rl_start_epoch < 0:
            raise ValueError(f"rl_start_epoch must be >= 0, got {self.rl_start_epoch}.")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for the special tokens), got {self.max_length}.")
        if not self.text_column or not self.label_column:
            raise ValueError("text_column and label_column must name dataset columns (e.g. 'sentence' and 'label').")
