"""What makes a run this run: a fingerprint of its config and training data, saved in every checkpoint, so that a
resume never continues another run's checkpoint, and a new run never overwrites an old one without being asked.

- `train(resume_from_checkpoint=...)` compares the checkpoint's `token_level_rl_run.json` with the current run and
  refuses a different config or different training data, naming the fields that differ and both sides.
- A new run (no resume) into an `output_dir` that already holds a model or checkpoints is refused unless
  `overwrite_output_dir=True` (as `run_ner.py` users know it) or the user resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

from transformers import TrainingArguments


RUN_FILE = "token_level_rl_run.json"
TRAINING_FIELDS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "seed", "data_seed", "lr_scheduler_type", "weight_decay", "warmup_steps", "optim", "adam_beta1", "adam_beta2",
    "adam_epsilon", "max_grad_norm", "train_sampling_strategy",
)
"""The `TrainingArguments` fields that change what a run computes (bookkeeping such as logging or saving does not).
The length (`max_steps`, `num_train_epochs`) is left out, so a run can be resumed to train longer."""
NOT_DEFINING = re.compile(r"^(online_|replay_|merge_adapters$|overwrite_output_dir$)")
PREVIOUS_RUN = re.compile(r"^((online-)?checkpoint-\d+|model\.safetensors|adapter_model\.safetensors|trainer_state\.json)$")
PREVIOUS_ONLINE_RUN = re.compile(r"^online-checkpoint-\d+$")


def run_fingerprint(args, train_dataset=None) -> dict:
    """`{"config": {...}, "data": {...}}`: the fields that define the run, and the training data's size and
    `datasets` fingerprint (content hash) when it has one."""
    shared = {f.name for f in dataclasses.fields(TrainingArguments)}
    names = [f.name for f in dataclasses.fields(args) if (f.name not in shared and not NOT_DEFINING.match(f.name))]
    names += [name for name in TRAINING_FIELDS if hasattr(args, name)]
    config = json.loads(json.dumps({name: getattr(args, name) for name in sorted(names)}, default=str))
    data = None
    if train_dataset is not None:
        data = {"rows": len(train_dataset), "fingerprint": getattr(train_dataset, "_fingerprint", None)}
    return {"config": config, "data": data}


def save_run_file(fingerprint: dict, folder: str) -> None:
    with open(os.path.join(folder, RUN_FILE), "w") as handle:
        json.dump(fingerprint, handle, indent=1, sort_keys=True)


def check_same_run(fingerprint: dict, folder: str) -> bool:
    """Raises `ValueError` if `folder` was written by a run with another config or other training data. Returns
    `False` (and checks nothing) for a checkpoint without a run file (written before run files existed)."""
    path = os.path.join(folder, RUN_FILE)
    if not os.path.isfile(path):
        return False
    with open(path) as handle:
        saved = json.load(handle)
    saved_config, config = saved.get("config", {}), fingerprint["config"]
    differences = [f"{k}: checkpoint {saved_config.get(k)!r} vs now {config.get(k)!r}"
                   for k in sorted(set(saved_config) | set(config)) if saved_config.get(k) != config.get(k)]
    if saved.get("data") and fingerprint.get("data") and saved["data"] != fingerprint["data"]:
        differences.append(f"training data: checkpoint {saved['data']} vs now {fingerprint['data']}")
    if differences:
        raise ValueError(
            f"{folder} was written by another run, so resuming from it would continue that run instead of this one. "
            f"Differences: {'; '.join(differences[:8])}{' ...' if len(differences) > 8 else ''}. Fix: resume with the "
            "same config and data, or start a new run in a new output_dir."
        )
    return True


def check_output_dir(output_dir: str, overwrite: bool, previous_run: re.Pattern = PREVIOUS_RUN) -> None:
    """Refuses to start a new run in a folder that holds another run's model or checkpoints (unless `overwrite`);
    `previous_run` matches the names that count (`learn_online` counts only `online-checkpoint-*`)."""
    if overwrite or not os.path.isdir(output_dir):
        return
    found = sorted(name for name in os.listdir(output_dir) if previous_run.match(name))
    if found:
        raise ValueError(
            f"output_dir {output_dir!r} already holds a run ({', '.join(found[:4])}{' ...' if len(found) > 4 else ''}); "
            "a new run there would overwrite its model and checkpoints. Fix: pass resume_from_checkpoint to continue "
            "it, set overwrite_output_dir=True (--overwrite_output_dir true) to replace it, or choose another output_dir."
        )


def resume_argument(value) -> str | bool | None:
    """`--resume_from_checkpoint` as a recipe receives it (a string) turned into what `train()` takes: `"true"` ->
    `True` (the last checkpoint in output_dir), `"false"`/empty -> `None`, a path -> the path (which must exist)."""
    if value is None or isinstance(value, bool):
        return value or None
    if str(value).lower() in ("", "false", "no", "none"):
        return None
    if str(value).lower() in ("true", "yes", "last"):
        return True
    if not os.path.isdir(value):
        raise FileNotFoundError(f"--resume_from_checkpoint {value!r} is not a folder. Fix: pass a checkpoint-* folder or true.")
    return value
