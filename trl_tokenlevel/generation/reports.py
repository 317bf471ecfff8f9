"""The end of the generation recipes (translation, dialogue, summarization), as the encoder recipes end: final scores
through `trainer.log` and into `run_*`-style result files, then one save path for model, card and Hub."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

SPLIT_PREFIXES = {"validation": "eval", "test": "predict"}
"""Evaluated split -> metric prefix, as `run_ner.py` / `run_translation.py` name them (dev `eval_*`, test `predict_*`)."""


def write_results_json(results: dict, path: str) -> None:
    """A recipe's `results.json` (scores before and after, every output), readable UTF-8; written before
    [`log_and_save`], so a failed save or upload keeps the scores."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, ensure_ascii=False)


def log_and_save(trainer, scores: Mapping[str, Mapping[str, float]], num_examples: Mapping[str, int],
                 train_metrics: Mapping[str, float] | None = None, dataset_name: str | None = None) -> dict:
    """Reports a finished generation run and saves it.

    - each split's final scores (numbers only) go through `trainer.log` as `eval_*` (`validation`) or `predict_*`
      (`test`), so trackers, `trainer_state.json` and the model card's `model-index` see them, and into
      `eval_results.json` / `predict_results.json` (+ `train_results.json` from `train_metrics`) and `all_results.json`;
    - the trainer saves the model (`trainer.save_model`): model card and `training_args.json`; with `merge_adapters` a
      plain merged model at the top of `output_dir` and the adapter in `adapter/`; with `push_to_hub` an upload.

    Args:
        trainer ([`GenerationRLTrainer`]): after training.
        scores (`Mapping[str, Mapping[str, float]]`): split name (`validation`, `test`) -> metric name -> value.
        num_examples (`Mapping[str, int]`): split name -> examples scored (written as `{prefix}_samples`).
        train_metrics (`Mapping[str, float]`, *optional*): `trainer.train()`'s metrics.
        dataset_name (`str`, *optional*): the Hub id of the data, for the model card.

    Returns:
        `dict`: `{"train": ..., "eval": ..., "predict": ...}`, the metrics written.
    """
    results = {}
    if train_metrics is not None:
        results["train"] = dict(train_metrics)
    for split, metrics in scores.items():
        if split not in SPLIT_PREFIXES:
            raise ValueError(f"Unknown split {split!r}: scores are reported for {sorted(SPLIT_PREFIXES)}.")
        prefix = SPLIT_PREFIXES[split]
        values = {f"{prefix}_{key}": float(value) for key, value in metrics.items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool)}
        results[prefix] = {**values, f"{prefix}_samples": int(num_examples[split])}
    for prefix, metrics in results.items():
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        if prefix != "train":
            trainer.log(dict(metrics))  # a copy (log adds `epoch`)
    trainer.save_state()
    if dataset_name is not None:
        trainer.dataset_name = dataset_name
    trainer.save_model(trainer.args.output_dir)
    return results
