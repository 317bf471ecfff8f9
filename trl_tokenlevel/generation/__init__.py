"""The generation path: causal LMs (and encoder-decoder models, `seq2seq.py`) sample K completions per prompt and
learn from per-token rewards."""

from .config import GenerationRLConfig
from .seq2seq import Seq2SeqGenerationRLTrainer
from .trainer import GenerationRLTrainer

__all__ = ["GenerationRLConfig", "GenerationRLTrainer", "Seq2SeqGenerationRLTrainer"]
