"""trl_tokenlevel: token-level reinforcement learning for Hugging Face models."""

__version__ = "0.1.0.dev0"

from .runtime import filter_upstream_noise


filter_upstream_noise()  # before anything below imports bitsandbytes / peft (see runtime.py)

from .base_config import TokenLevelRLBaseConfig
from .config import TokenLevelRLConfig
from .model_config import TokenLevelModelConfig
from .generation import GenerationRLConfig, GenerationRLTrainer, Seq2SeqGenerationRLTrainer
from .question_answering import QuestionAnsweringRLConfig, QuestionAnsweringRLTrainer
from .sequence_classification import SequenceClassificationRLConfig, SequenceClassificationRLTrainer
from .token_classification import TokenClassificationRLConfig, TokenClassificationRLTrainer
from .trainer import TokenLevelRLTrainer


__all__ = [
    "GenerationRLConfig",
    "GenerationRLTrainer",
    "Seq2SeqGenerationRLTrainer",
    "QuestionAnsweringRLConfig",
    "QuestionAnsweringRLTrainer",
    "SequenceClassificationRLConfig",
    "SequenceClassificationRLTrainer",
    "TokenClassificationRLConfig",
    "TokenClassificationRLTrainer",
    "TokenLevelModelConfig",
    "TokenLevelRLBaseConfig",
    "TokenLevelRLConfig",
    "TokenLevelRLTrainer",
    "__version__",
]
