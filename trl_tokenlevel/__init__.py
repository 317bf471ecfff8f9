"""trl_tokenlevel: token-level reinforcement learning for Hugging Face models."""

__version__ = "0.1.0.dev0"

from .config import TokenLevelRLConfig
from .trainer import TokenLevelRLTrainer


__all__ = ["TokenLevelRLConfig", "TokenLevelRLTrainer", "__version__"]
