"""Saving, model cards, adapter merging and the Hub: the trainer mixin and the functions behind it."""

from .export import ADAPTER_SUBFOLDER, TRAINING_ARGS_JSON, merge_adapter_checkpoint, merge_adapters, save_training_args_json
from .mixin import HubExportMixin
from .model_card import build_model_card, model_card_from_trainer


__all__ = [
    "ADAPTER_SUBFOLDER",
    "TRAINING_ARGS_JSON",
    "HubExportMixin",
    "build_model_card",
    "merge_adapter_checkpoint",
    "merge_adapters",
    "model_card_from_trainer",
    "save_training_args_json",
]
