"""[`TokenClassificationRLConfig`]: the training arguments of [`TokenClassificationRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..supervised import SupervisedRLConfig


@dataclass
class TokenClassificationRLConfig(SupervisedRLConfig):
    r"""
    Configuration of [`TokenClassificationRLTrainer`]: the fields of [`SupervisedRLConfig`] (baseline, CE mix, CE-then-RL
    schedule) plus the token-classification ones below. The loss of one step is

        loss = rl_coef * PG + ce_coef * CE + kl_coef * KL(policy || reference) - entropy_coef * H(policy)

    where every term is a sum over active tokens (word positions with a gold label) divided by the number of
    active tokens in the whole optimizer step, across gradient accumulation and processes.

    Added parameters: data (`max_length`, `eval_stride`, `label_all_tokens`), the CE term's per-word weights
    (`ce_weight_column`), the reference (`precompute_reference_logprobs`, `reset_reference_at_rl_start`).
    """

    trainer_name: ClassVar[str] = "TokenClassificationRLTrainer (token classifiers)"

    # > Data
    max_length: int = field(
        default=128,
        metadata={
            "help": "Maximum sub-word length when the trainer tokenizes `tokens`/`ner_tags` datasets itself. Longer "
            "training sentences are truncated (counted in one warning: their cut words are not trained on); longer "
            "evaluation and prediction sentences are split into windows (see eval_stride), so every word is scored."
        },
    )
    eval_stride: int = field(
        default=32,
        metadata={
            "help": "Sub-tokens shared by consecutive windows when evaluation or prediction splits a sentence longer "
            "than max_length. Each word is read from the window where it has the most context; more overlap = more "
            "context near a window's edge, more windows. Must be smaller than max_length minus the special tokens."
        },
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Label continuation sub-tokens too (B-X becomes I-X). Default: first sub-token only."},
    )
    # > Loss
    ce_weight_column: str | None = field(
        default=None,
        metadata={
            "help": "Dataset column with one weight per word that multiplies that word's CE term (e.g. 0 = leave the "
            "word out of CE, 1 = keep it); the RL term and the normaliser N (every labelled word) are unchanged, so "
            "weights of 0 scale the CE term down, and the logged ce_loss is the weighted one. With feedback data, "
            "`feedback_dataset(records, labels, ce_weight=True)` gives partial-label weights (0 on the words of "
            "rejected or unjudged entities), so CE learns from the accepted entities and the shown O while the "
            "policy gradient also uses the rejections. Needs label_all_tokens=False (one label per word). None = "
            "every labelled word has weight 1."
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
        # explicit, not super(): in the union TokenLevelRLConfig the next class in the MRO is another path's config
        SupervisedRLConfig.validate_path(self)
        if not 0 <= self.eval_stride < self.max_length:
            raise ValueError(
                f"eval_stride={self.eval_stride} must be >= 0 and smaller than max_length={self.max_length} (minus the "
                f"tokenizer's special tokens). Fix: lower eval_stride, e.g. to {self.max_length // 4}."
            )
        if self.ce_weight_column is not None and self.label_all_tokens:
            raise ValueError(
                f"ce_weight_column={self.ce_weight_column!r} holds one weight per word, but label_all_tokens=True labels "
                "every sub-token, so the weights cannot be matched to positions. Fix: label_all_tokens=False."
            )
        if self.reset_reference_at_rl_start and self.kl_coef == 0:
            raise ValueError("reset_reference_at_rl_start needs kl_coef > 0 (the reference is only used by the KL).")
        if self.precompute_reference_logprobs and self.kl_coef == 0:
            raise ValueError("precompute_reference_logprobs needs kl_coef > 0 (the cache only serves the KL term).")
        if self.precompute_reference_logprobs and self.reset_reference_at_rl_start:
            raise ValueError(
                "precompute_reference_logprobs caches the starting model, but reset_reference_at_rl_start replaces "
                "the reference during training: use one of the two."
            )
