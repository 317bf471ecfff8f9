"""Datasets: readers for every task's data (local copies under ../shared/data or the Hub), word-to-sub-token label
alignment, span feedback records, and the QA sliding-window features."""

from .alignment import (
    check_prefix_space_for_words,
    prepare_token_classification_dataset,
    tokenize_and_align_labels,
    with_prefix_space,
)
from .dialogue import DialogueFormatError, load_samsum_turns, next_turn_examples, parse_turns
from .feedback import (
    FeedbackFormatError,
    accepted_span_targets,
    feedback_dataset,
    feedback_word_values,
    partial_label_targets,
    read_feedback_records,
    simulate_feedback,
    validate_feedback_record,
)
from .multi30k import load_multi30k, read_parallel_files, translation_prompt
from .shared import find_shared_data_dir
from .qa_features import postprocess_qa_predictions, prepare_qa_eval_features, prepare_qa_train_features
from .semeval import (
    ENTITY_MARKERS,
    SEMEVAL2010_TASK8_LABELS,
    SemEvalFormatError,
    add_entity_marker_tokens,
    load_semeval2010_task8,
    read_semeval2010_task8,
)
from .squad import SquadFormatError, load_squad, read_squad_json
from .sst2 import SST2_LABELS, Sst2FormatError, load_sst2, read_sst2_tsv
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
    "DialogueFormatError",
    "ENTITY_MARKERS",
    "FeedbackFormatError",
    "SEMEVAL2010_TASK8_LABELS",
    "SST2_LABELS",
    "SemEvalFormatError",
    "SquadFormatError",
    "Sst2FormatError",
    "accepted_span_targets",
    "add_entity_marker_tokens",
    "check_prefix_space_for_words",
    "default_conll2003_dir",
    "feedback_dataset",
    "feedback_word_values",
    "find_shared_data_dir",
    "iob1_to_iob2",
    "load_conll2003",
    "load_multi30k",
    "load_samsum_turns",
    "load_semeval2010_task8",
    "load_squad",
    "load_sst2",
    "next_turn_examples",
    "parse_turns",
    "partial_label_targets",
    "postprocess_qa_predictions",
    "prepare_qa_eval_features",
    "prepare_qa_train_features",
    "prepare_token_classification_dataset",
    "read_conll",
    "read_feedback_records",
    "read_parallel_files",
    "read_semeval2010_task8",
    "read_squad_json",
    "read_sst2_tsv",
    "simulate_feedback",
    "tokenize_and_align_labels",
    "translation_prompt",
    "validate_feedback_record",
    "with_prefix_space",
]
