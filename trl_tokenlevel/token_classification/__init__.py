"""The token-classification path: the actions are the labels of the words, rewarded per token."""

from .collator import TokenClassificationRLCollator
from .config import TokenClassificationRLConfig
from .trainer import TokenClassificationRLTrainer


__all__ = ["TokenClassificationRLCollator", "TokenClassificationRLConfig", "TokenClassificationRLTrainer"]
