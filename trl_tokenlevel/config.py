"""[`TokenLevelRLConfig`]: the config of the [`TokenLevelRLTrainer`] entry point.

It carries the fields of every path ([`TokenClassificationRLConfig`], [`GenerationRLConfig`] and
[`SequenceClassificationRLConfig`] on the shared [`TokenLevelRLBaseConfig`]) because the entry point learns the path
from the model only. When the trainer knows the path, [`TokenLevelRLConfig.check_for_path`] refuses every field of
another path that was set (with the field's name and the trainer that would use it) and runs the chosen path's own
checks. The path-specific configs do not have the other path's fields at all, so nothing can be set and silently
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base_config import TokenLevelRLBaseConfig, field_default, fields_of_path
from .generation.config import GenerationRLConfig
from .question_answering.config import QuestionAnsweringRLConfig
from .sequence_classification.config import SequenceClassificationRLConfig
from .token_classification.config import TokenClassificationRLConfig


PATH_CONFIGS = (TokenClassificationRLConfig, GenerationRLConfig, SequenceClassificationRLConfig, QuestionAnsweringRLConfig)


@dataclass
class TokenLevelRLConfig(
    TokenClassificationRLConfig, GenerationRLConfig, SequenceClassificationRLConfig, QuestionAnsweringRLConfig
):
    r"""
    Configuration of the [`TokenLevelRLTrainer`] entry point: the fields of [`TokenClassificationRLConfig`],
    [`GenerationRLConfig`] and [`SequenceClassificationRLConfig`] (see them for the help of each field). Only the
    shared checks run at construction, so a setting valid for one path (e.g. `num_samples=1, baseline="greedy"` for a
    token classifier) is not refused by the other path's rules; the trainer runs the chosen path's checks and
    refuses the other path's fields.

    Prefer the path's own config when you know the model kind: it has exactly the fields its trainer uses.
    """

    def __post_init__(self):
        TokenLevelRLBaseConfig.__post_init__(self)  # the path's checks run in check_for_path

    def check_for_path(self, config_class: type[TokenLevelRLBaseConfig]) -> None:
        """Refuses the fields of the other paths that were set (differ from their defaults), gives the chosen path's
        defaults to the fields left unset, then runs `config_class`'s checks.

        Raises:
            `ValueError` naming the field, its value, and the trainer that would use it.
        """
        own = fields_of_path(config_class)
        unset = {name: field_default(f) for name, f in fields_of_path(type(self)).items()}  # the union's defaults
        for name, f in own.items():
            # a field several paths share with different defaults (e.g. max_length): left unset, it takes the
            # chosen path's default
            if getattr(self, name) == unset[name] and field_default(f) != unset[name]:
                setattr(self, name, field_default(f))
        for other in PATH_CONFIGS:
            if other is config_class:
                continue
            for name in fields_of_path(other):
                if name not in own and getattr(self, name) != unset[name]:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} is a setting of {other.trainer_name}, but this model is "
                        f"trained by {config_class.trainer_name}, which does not use it. Fix: remove {name}, or use "
                        f"{config_class.__name__}, which has only the fields this trainer reads."
                    )
        config_class.validate_path(self)


__all__ = [
    "TokenLevelRLBaseConfig", "TokenLevelRLConfig", "TokenClassificationRLConfig", "GenerationRLConfig",
    "SequenceClassificationRLConfig", "QuestionAnsweringRLConfig",
]
