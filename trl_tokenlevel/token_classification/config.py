"""[`TokenClassificationRLConfig`]: the training arguments of [`TokenClassificationRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from typing import Any

from ..base_config import TokenLevelRLBaseConfig
from ..core import BASELINES
from ..dynamic.schedules import build_schedule, parse_json_field


@dataclass
class TokenClassificationRLConfig(TokenLevelRLBaseConfig):
    r"""
    Configuration of [`TokenClassificationRLTrainer`]: the shared fields of [`TokenLevelRLBaseConfig`] plus the
    token-classification ones below. The loss of one step is

        loss = rl_coef * PG + ce_coef * CE + kl_coef * KL(policy || reference) - entropy_coef * H(policy)

    where every term is a sum over active tokens (word positions with a gold label) divided by the number of
    active tokens in the whole optimizer step, across gradient accumulation and processes.

    Added parameters: data (`max_length`, `label_all_tokens`), advantages (`baseline`), loss (`ce_coef`,
    `ce_coef_schedule`, `precompute_reference_logprobs`), schedule (`rl_start_step`, `rl_start_epoch`,
    `reset_reference_at_rl_start`).
    """

    trainer_name: ClassVar[str] = "TokenClassificationRLTrainer (token classifiers)"

    # > Data
    max_length: int = field(
        default=128,
        metadata={
            "help": "Maximum sub-word length when the trainer tokenizes `tokens`/`ner_tags` datasets itself. Longer "
            "sentences are truncated and counted in one warning."
        },
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Label continuation sub-tokens too (B-X becomes I-X). Default: first sub-token only."},
    )
    # > Advantages
    baseline: str = field(
        default="greedy",
        metadata={
            "help": "Per-token baseline: 'greedy' (self-critic: the reward of the argmax labels), 'leave_one_out' "
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
    precompute_reference_logprobs: bool = field(
        default=False,
        metadata={
            "help": "Compute the reference's label log-probabilities for every training example once, in one "
            "inference pass before the first step, and reuse them instead of a reference forward in every step. "
            "Exact for a frozen reference; costs n_words x C floats of memory. Needs kl_coef > 0."
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
    reset_reference_at_rl_start: bool = field(
        default=False,
        metadata={
            "help": "When RL switches on, make the reference a frozen copy of the model at that moment (the warmed-up "
            "model) instead of the starting model. Costs one model copy in memory."
        },
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
        if self.reset_reference_at_rl_start and self.kl_coef == 0:
            raise ValueError("reset_reference_at_rl_start needs kl_coef > 0 (the reference is only used by the KL).")
        if self.precompute_reference_logprobs and self.kl_coef == 0:
            raise ValueError("precompute_reference_logprobs needs kl_coef > 0 (the cache only serves the KL term).")
        if self.precompute_reference_logprobs and self.reset_reference_at_rl_start:
            raise ValueError(
                "precompute_reference_logprobs caches the starting model, but reset_reference_at_rl_start replaces "
                "the reference during training: use one of the two."
            )
