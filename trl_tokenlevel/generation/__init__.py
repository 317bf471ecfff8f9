"""The generation path: causal LMs sample K completions per prompt and learn from per-token rewards."""

from .config import GenerationRLConfig
from .trainer import GenerationRLTrainer


__all__ = ["GenerationRLConfig", "GenerationRLTrainer"]
