"""Datasets for token-level training: CoNLL reading and word-to-sub-token label alignment."""

from .alignment import (
    check_prefix_space_for_words,
    prepare_token_classification_dataset,
    tokenize_and_align_labels,
    with_prefix_space,
)
from .conll import (
    CONLL2003_LABELS,
    ConllFormatError,
    default_conll2003_dir,
    iob1_to_iob2,
    load_conll2003,
    read_conll,
)


__all__ = [
    "CONLL2003_LABELS",
    "ConllFormatError",
    "check_prefix_space_for_words",
    "default_conll2003_dir",
    "iob1_to_iob2",
    "load_conll2003",
    "prepare_token_classification_dataset",
    "read_conll",
    "tokenize_and_align_labels",
    "with_prefix_space",
]
