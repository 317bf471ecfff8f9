"""Callbacks every token-level RL trainer adds: nothing non-finite reaches the weights."""

from __future__ import annotations

import torch
from torch import nn
from transformers import TrainerCallback


def check_finite_gradients(model: nn.Module, step: int) -> None:
    """Raises `FloatingPointError` naming the first parameter whose gradient holds NaN or +-inf."""
    bad = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        raise FloatingPointError(
            f"Non-finite gradients at optimizer step {step} in {len(bad)} parameters (first: {bad[0]}): training "
            "stopped before the update. Check the rewards' scale, the reward weights and the learning rate."
        )


class FiniteGradientsCallback(TrainerCallback):
    """Stops training before an optimizer step whose gradients hold NaN or +-inf, so a non-finite update never reaches
    the weights, the checkpoints or the saved model."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is not None:
            check_finite_gradients(model, state.global_step + 1)
