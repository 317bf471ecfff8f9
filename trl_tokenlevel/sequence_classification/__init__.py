"""The sequence-classification path: the action is the label of a whole sequence (text classification, relation
extraction), rewarded per example."""

from .config import SequenceClassificationRLConfig
from .trainer import SequenceClassificationRLCollator, SequenceClassificationRLTrainer

__all__ = ["SequenceClassificationRLCollator", "SequenceClassificationRLConfig", "SequenceClassificationRLTrainer"]
