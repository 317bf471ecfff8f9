"""trl_tokenlevel: token-level reinforcement learning for Hugging Face models."""

__version__ = "0.1.0.dev0"

from .base_config import TokenLevelRLBaseConfig
from .config import TokenLevelRLConfig
from .generation import GenerationRLConfig, GenerationRLTrainer
from .token_classification import TokenClassificationRLConfig, TokenClassificationRLTrainer
from .trainer import TokenLevelRLTrainer


__all__ = [
    "GenerationRLConfig",
    "GenerationRLTrainer",
    "TokenClassificationRLConfig",
    "TokenClassificationRLTrainer",
    "TokenLevelRLBaseConfig",
    "TokenLevelRLConfig",
    "TokenLevelRLTrainer",
    "__version__",
]
