"""Windows for [`QuestionAnsweringRLTrainer`]: raw SQuAD-format examples to training and evaluation windows, and the
collator that pads them.

A training window keeps, besides the model inputs and the gold `start_positions`/`end_positions`, what span rewards
read: `offset_mapping` (`(-1, -1)` outside the context), and the example's `id` (`example_id`), `question`,
`context` and `answers`. Evaluation windows keep `example_id` and `offset_mapping` (`None` outside the context) for
[`~trl_tokenlevel.data.qa_features.postprocess_qa_predictions`].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.qa_features import NO_OFFSET, prepare_qa_eval_features, prepare_qa_train_features
from ..data.squad import check_answers


MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
TARGET_KEYS = ("start_positions", "end_positions")
RAW_COLUMNS = ("id", "question", "context", "answers")
WINDOW_COLUMNS = ("input_ids", "attention_mask", "start_positions", "end_positions", "offset_mapping", "context",
                  "answers")  # fmt: skip
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "offset_mapping": NO_OFFSET}


def check_raw_examples(dataset, source: str, needs_answers: bool = True) -> None:
    """Raises `ValueError` naming the missing columns, or [`~trl_tokenlevel.data.squad.SquadFormatError`] naming the
    question id of an answer whose `answer_start` does not point at its text."""
    columns = RAW_COLUMNS if needs_answers else RAW_COLUMNS[:3]
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{source} lacks the columns {missing} (has {dataset.column_names}). Fix: pass SQuAD-format examples "
            f"({list(columns)}, e.g. from `trl_tokenlevel.data.load_squad`), or windows with {list(WINDOW_COLUMNS)}."
        )
    if "answers" in dataset.column_names:
        for example in dataset:
            check_answers(example, source)


def train_windows(dataset, tokenizer, max_length: int, doc_stride: int):
    """Cuts raw examples (`id`, `question`, `context`, `answers`) into training windows (module docstring)."""
    check_raw_examples(dataset, "train_dataset")

    def featurize(examples):
        features = prepare_qa_train_features(
            examples, tokenizer, max_length=max_length, doc_stride=doc_stride, padding=False, keep_offsets=True
        )
        row_of = {example_id: i for i, example_id in enumerate(examples["id"])}
        rows = [row_of[example_id] for example_id in features["example_id"]]
        for column in ("question", "context", "answers"):
            features[column] = [examples[column][row] for row in rows]
        return features

    return dataset.map(featurize, batched=True, remove_columns=dataset.column_names, desc="QA training windows")


def eval_windows(examples, tokenizer, max_length: int, doc_stride: int):
    """Evaluation windows of raw examples (`id`, `question`, `context`), with `example_id` and `offset_mapping`."""
    return examples.map(
        prepare_qa_eval_features, batched=True, remove_columns=examples.column_names, desc="QA evaluation windows",
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "doc_stride": doc_stride, "padding": False},
    )


def _right_pad(rows: Sequence[Sequence], length: int, value) -> torch.Tensor:
    return torch.tensor([list(row) + [value] * (length - len(row)) for row in rows])


class QuestionAnsweringCollator:
    """Pads windows on the right (token positions, and so the gold start/end, stay valid whatever the tokenizer's
    padding side) to the longest in the batch: `input_ids` with the pad token, `attention_mask`/`token_type_ids` with
    0, `offset_mapping` with `(-1, -1)`. Targets become tensors; every other column stays a list (reward kwargs)."""

    def __init__(self, tokenizer):
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __call__(self, features: list[dict]) -> dict:
        length = max(len(f["input_ids"]) for f in features)
        batch = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if key in MODEL_INPUT_KEYS or key == "offset_mapping":
                batch[key] = _right_pad(values, length, _PAD_VALUES.get(key, self.pad_token_id))
            elif key in TARGET_KEYS:
                batch[key] = torch.tensor(values, dtype=torch.long)
            else:
                batch[key] = values
        return batch


@torch.no_grad()
def answer_questions(
    model,
    tokenizer,
    examples,
    max_length: int = 256,
    doc_stride: int = 64,
    max_answer_length: int = 30,
    n_best: int = 20,
    batch_size: int = 32,
) -> dict[str, str]:
    """Answers SQuAD-format examples with a QA model, exactly as [`QuestionAnsweringRLTrainer.predict`] does: the
    same windows, the model's start/end logits, then `postprocess_qa_predictions`. Use it on a saved model: transformers
    5 removed the `"question-answering"` pipeline.

    Args:
        model (`PreTrainedModel`): An `AutoModelForQuestionAnswering` model (e.g. reloaded from `save_model`'s folder).
        tokenizer (`PreTrainedTokenizerFast`): Its fast tokenizer.
        examples (`datasets.Dataset`): Columns `id`, `question`, `context`.
        max_length, doc_stride, max_answer_length, n_best: As in [`QuestionAnsweringRLConfig`] (use the training run's).
        batch_size (`int`, *optional*, defaults to `32`): Windows per forward pass.

    Returns:
        `dict[str, str]`: question id to answer text.
    """
    from ..data.qa_features import postprocess_qa_predictions

    windows = eval_windows(examples, tokenizer, max_length, doc_stride)
    collate = QuestionAnsweringCollator(tokenizer)
    model_windows = windows.remove_columns(["example_id", "offset_mapping"])
    was_training = model.training
    model.eval()
    start_rows, end_rows = [], []
    for first in range(0, len(windows), batch_size):
        batch = collate([model_windows[i] for i in range(first, min(first + batch_size, len(windows)))])
        outputs = model(**{k: v.to(model.device) for k, v in batch.items() if k in MODEL_INPUT_KEYS})
        for b in range(len(batch["input_ids"])):
            length = int(batch["attention_mask"][b].sum()) if "attention_mask" in batch else batch["input_ids"].shape[1]
            start_rows.append(outputs.start_logits[b, :length].float().cpu().numpy())
            end_rows.append(outputs.end_logits[b, :length].float().cpu().numpy())
    model.train(was_training)
    return postprocess_qa_predictions(examples, windows, start_rows, end_rows, n_best, max_answer_length)
