"""[`QuestionAnsweringRLConfig`]: the training arguments of [`QuestionAnsweringRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..base_config import TokenLevelRLBaseConfig, validate_ce_and_baseline


@dataclass
class QuestionAnsweringRLConfig(TokenLevelRLBaseConfig):
    r"""
    Configuration of [`QuestionAnsweringRLTrainer`] (extractive QA, `AutoModelForQuestionAnswering`): the shared
    fields of [`TokenLevelRLBaseConfig`] plus the ones below. The loss of one step is

        loss = (ce_coef CE + rl_coef PG + kl_coef KL - entropy_coef H) / N

    where each term is a sum over windows and N is the number of windows in the whole optimizer step (all gradient-
    accumulation micro-batches and processes). CE is the cross-entropy of the gold start and end (`[CLS]` when the
    answer is not inside the window, as in `run_qa.py`); PG credits each sampled span's reward (span F1 by default) to
    its start and end actions, on the windows that contain the answer; KL and H are exact, over the context tokens, of
    the start and the end softmax.

    Added parameters: data (`max_length`, `doc_stride`), spans (`max_answer_length`, `n_best`), advantages
    (`baseline`), loss (`ce_coef`, `ce_coef_schedule`). `learn_online` is not supported on this path (its `online_*`
    and `replay_*` fields are refused by `learn_online`).
    """

    trainer_name: ClassVar[str] = "QuestionAnsweringRLTrainer (extractive QA)"

    # > Data
    max_length: int = field(
        default=256,
        metadata={
            "help": "Tokens per window (question, context and special tokens) when the trainer cuts raw SQuAD-format "
            "examples into windows. 256 with a stride costs far less than run_qa.py's 384 on CPU; shorter windows "
            "mean more windows per long context."
        },
    )
    doc_stride: int = field(
        default=64,
        metadata={
            "help": "Tokens shared by consecutive windows of one long context, so every answer lies whole in at "
            "least one window. Must be smaller than max_length minus the question."
        },
    )
    # > Spans
    max_answer_length: int = field(
        default=30,
        metadata={
            "help": "Longest answer span in tokens, for sampling during training and for decoding at evaluation "
            "(run_qa.py's default)."
        },
    )
    n_best: int = field(
        default=20,
        metadata={
            "help": "Evaluation: the best start and end candidates per window paired by the post-processing "
            "(run_qa.py's n_best_size). More = closer to the exact best span, slower."
        },
    )
    # > Advantages
    baseline: str = field(
        default="greedy",
        metadata={
            "help": "Per-window baseline: 'greedy' (self-critic: the reward of the best-scoring span, the span the "
            "model answers with; DCN+, Xiong et al., 2018), 'leave_one_out' (mean of the other K-1 spans; needs "
            "K>=2), 'batch_mean' (depends on how the batch is split: not invariant to gradient accumulation) or "
            "'none' (plain REINFORCE, high variance)."
        },
    )
    # > Loss
    ce_coef: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the cross-entropy on the gold start and end tokens (DCN+ mixes it with the RL term). "
            "0 = learn from rewards alone."
        },
    )
    ce_coef_schedule: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Schedule of the CE weight, overriding `ce_coef`. JSON string on the command line."},
    )

    def __post_init__(self):
        super().__post_init__()
        self.validate_path()

    def validate_path(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"max_length={self.max_length} is too short for a question and some context; use >= 64.")
        if not 0 <= self.doc_stride < self.max_length:
            raise ValueError(f"doc_stride={self.doc_stride} must be >= 0 and smaller than max_length={self.max_length}.")
        if self.max_answer_length < 1 or self.n_best < 1:
            raise ValueError(f"max_answer_length={self.max_answer_length} and n_best={self.n_best} must be >= 1.")
        validate_ce_and_baseline(self)
