"""[`SupervisedRLConfig`] and [`SupervisedRLTrainer`]: what the paths with gold targets share (token
classification, sequence classification): a baseline for the sampled labels, a cross-entropy term mixed with the
policy gradient (`ce_coef`, `ce_coef_schedule`), and a CE-then-RL schedule (`rl_start_step`, `rl_start_epoch`).

    loss = (rl_coef(t) * PG * [RL on] + ce_coef(t) * CE + kl_coef * KL - entropy_coef * H) / N

with N the count of what the path averages over (active tokens, examples) in the whole optimizer step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .base_config import TokenLevelRLBaseConfig, validate_ce_and_baseline
from .models.loading import load_pretrained
from .trainer import TokenLevelRLTrainer


@dataclass
class SupervisedRLConfig(TokenLevelRLBaseConfig):
    r"""
    The fields of [`TokenLevelRLBaseConfig`] plus those of a path with gold targets: advantages (`baseline`), the CE
    term (`ce_coef`, `ce_coef_schedule`) and the CE-then-RL schedule (`rl_start_step`, `rl_start_epoch`).
    """

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

    def validate_path(self) -> None:
        """Checks of the supervised fields; a path config extends it with its own."""
        validate_ce_and_baseline(self)
        if self.rl_start_step < 0:
            raise ValueError(f"rl_start_step must be >= 0, got {self.rl_start_step}.")
        if self.rl_start_epoch is not None and self.rl_start_epoch < 0:
            raise ValueError(f"rl_start_epoch must be >= 0, got {self.rl_start_epoch}.")


class SupervisedRLTrainer(TokenLevelRLTrainer):
    """Base of the trainers with gold targets: the CE and RL coefficients, the CE-then-RL switch and the loss
    denominator (Trainer's `num_items_in_batch`: the step's count of labelled positions or examples)."""

    coefficient_names = ("rl", "ce")
    auto_model_class: str = ""
    """Subclasses: the `transformers` auto class that loads a model given by name (e.g. `"AutoModelForTokenClassification"`)."""
    label_list: list[str] | None = None

    def prepare_model(self, model, args, peft_config=None):
        """The base preparation, then the label names written into the config (saved models and pipelines name the
        real labels; a different set of names is refused by [`sync_label_names`])."""
        model = super().prepare_model(model, args, peft_config)
        if self.label_list is None:
            raise ValueError(
                "Could not find the label names: pass `label_list=[...]`, use a dataset whose label column is a "
                "ClassLabel, or a model whose config has a real `id2label`."
            )
        sync_label_names(model.config, self.label_list)
        return model

    def load_model(self, name: str, args):
        """A model given by name: `auto_model_class` with a head of `len(label_list)` labels named after them."""
        import transformers

        labels = self.label_list
        return load_pretrained(
            getattr(transformers, self.auto_model_class), name, args, num_labels=len(labels),
            id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        )

    def rl_active(self) -> bool:
        """Whether the RL term is on at the current step (`rl_start_step` / `rl_start_epoch`, `rl_coef_schedule`)."""
        if self.loss_coefficients()["rl"] == 0:
            return False
        if self.args.rl_start_epoch is not None:
            return (self.state.epoch or 0.0) >= self.args.rl_start_epoch
        return self.state.global_step >= self.args.rl_start_step

    def loss_denominator(self, num_items_in_batch, num_local, device) -> torch.Tensor:
        """N: the count of the whole optimizer step (all micro-batches; Trainer's `num_items_in_batch`), per process
        because DDP averages the gradients. Outside Trainer's loop (a direct call) the micro-batch's own count."""
        if num_items_in_batch is None:
            num_items_in_batch = num_local
        denominator = torch.as_tensor(num_items_in_batch, device=device).float().clamp(min=1.0)
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            denominator = denominator / self.accelerator.num_processes  # num_items_in_batch is the global count
        return denominator


def sync_label_names(config, label_list: Sequence[str]) -> None:
    """Makes the saved config name the labels the model is trained on. The counts must match; a config with
    placeholder names (`LABEL_0`, ...) takes `label_list`; a config with other real names is refused, because the
    saved model would then report the old names for the new classes (e.g. in `pipeline`)."""
    if config.num_labels != len(label_list):
        raise ValueError(
            f"The model has {config.num_labels} labels but label_list has {len(label_list)}: {list(label_list)}. "
            f"Fix: load the model with num_labels={len(label_list)} (and the label names)."
        )
    current = [str(config.id2label[i]) for i in range(config.num_labels)] if config.id2label else []
    if current and not all(name == f"LABEL_{i}" for i, name in enumerate(current)) and current != list(label_list):
        raise ValueError(
            f"The model's labels {current} differ from the training labels {list(label_list)} (same count, other "
            "names or order). Fix: load the model with the training labels, or pass label_list in the model's order."
        )
    config.id2label = dict(enumerate(label_list))
    config.label2id = {name: i for i, name in enumerate(label_list)}
