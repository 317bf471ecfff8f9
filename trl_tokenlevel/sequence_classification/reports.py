"""The train / evaluate / predict sequence of the sequence-classification recipes, with `run_glue.py`'s outputs."""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np

from ..run_identity import resume_argument


def train_evaluate_predict(trainer, dataset, label_list: Sequence[str]) -> dict:
    """Trains (honouring `--resume_from_checkpoint`), scores the dev split and predicts the test split, and writes
    what `run_glue.py` users look for in `output_dir`:

    - `train_results.json`, `eval_results.json` (dev, keys `eval_*`), `predict_results.json` (test, keys `predict_*`)
      and `all_results.json` (the three merged), with `{train,eval,predict}_samples`;
    - `trainer_state.json`: the log history, ending with the test scores (also sent through `trainer.log`, so trackers
      and the model card see them);
    - `predictions.tsv`: one row per test example: `index`, its text (`args.text_column`, and `args.text_pair_column`
      when set), the gold and the predicted label names (the predictions `predict_results.json` scores).

    Args:
        trainer ([`SequenceClassificationRLTrainer`]): with its dev split as `eval_dataset`.
        dataset (`DatasetDict`): raw `train`, `validation` and `test` splits (the test split is tokenized here).
        label_list (`Sequence[str]`): the label names, in the model's id order.

    Returns:
        `dict`: `{"train": ..., "eval": ..., "predict": ...}`, the metrics of each split.
    """
    args = trainer.args
    train_result = trainer.train(resume_from_checkpoint=resume_argument(args.resume_from_checkpoint))
    results = {
        "train": {**train_result.metrics, "train_samples": len(dataset["train"])},
        "eval": {**trainer.evaluate(), "eval_samples": len(dataset["validation"])},
    }
    prediction = trainer.predict(trainer.prepare_dataset(dataset["test"]), metric_key_prefix="predict")
    results["predict"] = {**prediction.metrics, "predict_samples": len(dataset["test"])}
    for split, metrics in results.items():
        trainer.log_metrics(split, metrics)
        trainer.save_metrics(split, metrics)  # {split}_results.json, merged into all_results.json
    trainer.log(dict(results["predict"]))  # a copy (log adds `epoch`): into trainer_state.json and the model card
    trainer.save_state()
    if trainer.is_world_process_zero():
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = np.asarray(logits).argmax(-1).tolist()
        test, names = dataset["test"], list(label_list)
        text_columns = [c for c in (args.text_column, args.text_pair_column) if c]
        with open(f"{args.output_dir}/predictions.tsv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["index", *text_columns, "gold", "predicted"])
            texts = zip(*(test[c] for c in text_columns))
            for index, (text, label, guess) in enumerate(zip(texts, test[args.label_column], predicted, strict=True)):
                writer.writerow([index, *text, names[label] if isinstance(label, int) else label, names[guess]])
    return results
