"""Online / continual learning: `TokenLevelRLTrainer.learn_online(stream)`.

Each update takes `online_batch_size` new labelled examples from the stream (sentences with corrected NER tags),
mixes in `replay_batch_size` examples drawn from a reservoir-sampled replay buffer, and takes one optimizer step on
the trainer's usual loss (CE + per-token RL + KL, with the dynamic reward weights of the current step):

    new    = next(online_batch_size examples of the stream)
    replay = buffer.sample(replay_batch_size)            # uniform over everything the buffer has seen
    inputs, n = trainer.online_batch(new + replay)      # collated features (or prompt rows)
    loss   = trainer.training_step(model, inputs, n)     # Trainer's own forward + backward
    clip gradients;  optimizer.step();  buffer.add(new);  position += len(new)

Restart safety: every `online_save_steps` updates, `online-checkpoint-<update>/` holds the model weights, the
optimizer state, the replay buffer (with its RNG), the stream position, the torch RNG, the KL controller and reward
combiner state, and the log history. It is written to a temporary folder and renamed, so a process killed while
saving leaves the previous checkpoint intact. `learn_online(stream, resume_from_checkpoint=True)` restores all of it
and skips the first `position` examples of the stream, so a restarted run applies every example exactly once and
ends with the same parameters as a run that was never interrupted (tested). Every file is safetensors or JSON, or
(optimizer and RNG state) read back with `torch.load(weights_only=True)`, which refuses pickled code. The stream must therefore replay the
same examples in the same order (a list, a `Dataset`, a file, a queue with offsets).

The learning rate is constant (`args.learning_rate`): an open-ended stream has no horizon for a decaying schedule.
After `trainer.train()`, whose schedule may have taken the rate to 0, the optimizer keeps its moments but every
parameter group's rate is set back to its initial value.
Raw `tokens` are tokenized with the trainer's tokenizer; the stream's other columns are kept and reach the rewards
(e.g. `feedback_word` for `SpanFeedbackReward`), so every row, seed_examples included, must have the same columns.

For a causal LM the stream yields prompt rows instead, `{prompt_column: ...,
**other columns}`; each update samples K completions of the new and replayed prompts, scores them with the reward
functions (which see the other columns: that is how feedback arrives) and takes one step on the generation loss.
The replay buffer holds past prompt rows. The path-specific steps are the trainer's public hooks
`online_features`, `online_batch`, `online_evaluate` and `check_online`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice

import torch
from safetensors.torch import load_model, save_model

from ..callbacks import check_finite_gradients
from ..dynamic.state import dynamic_state, load_dynamic_state
from ..run_identity import PREVIOUS_ONLINE_RUN, check_output_dir, check_same_run, run_fingerprint, save_run_file
from .buffer import ReservoirBuffer


ONLINE_CHECKPOINT_PREFIX = "online-checkpoint"
STATE_NAME = "online_state.json"
OPTIMIZER_NAME = "optimizer_and_rng.pt"


def last_online_checkpoint(output_dir: str) -> str | None:
    """The `online-checkpoint-<n>` folder with the largest `n` in `output_dir`, or `None`."""
    pattern = re.compile(rf"^{ONLINE_CHECKPOINT_PREFIX}-(\d+)$")
    names = os.listdir(output_dir) if os.path.isdir(output_dir) else []
    found = [(int(m.group(1)), name) for name in names if (m := pattern.match(name))]
    return os.path.join(output_dir, max(found)[1]) if found else None


def save_online_checkpoint(trainer, optimizer, buffer: ReservoirBuffer, position: int) -> str:
    """Writes everything a restart needs to `online-checkpoint-<step>/` (via a temporary folder and a rename)."""
    folder = os.path.join(trainer.args.output_dir, f"{ONLINE_CHECKPOINT_PREFIX}-{trainer.state.global_step}")
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_model(trainer.accelerator.unwrap_model(trainer.model), os.path.join(tmp, "model.safetensors"))
    torch.save(
        {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        os.path.join(tmp, OPTIMIZER_NAME),
    )
    state = {"position": position, "global_step": trainer.state.global_step, "buffer": buffer.state_dict(),
             "dynamic": dynamic_state(trainer), "log_history": trainer.state.log_history}
    with open(os.path.join(tmp, STATE_NAME), "w") as f:
        json.dump(state, f)
    save_run_file(run_fingerprint(trainer.args), tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def load_online_checkpoint(trainer, optimizer, buffer: ReservoirBuffer, folder: str) -> int:
    """Restore everything `save_online_checkpoint` wrote; returns the stream position to continue from."""
    load_model(trainer.accelerator.unwrap_model(trainer.model), os.path.join(folder, "model.safetensors"))
    saved = torch.load(os.path.join(folder, OPTIMIZER_NAME), weights_only=True)  # tensors and plain data only
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    with open(os.path.join(folder, STATE_NAME)) as f:
        state = json.load(f)
    buffer.load_state_dict(state["buffer"])
    load_dynamic_state(trainer, state["dynamic"])
    trainer.state.global_step = state["global_step"]
    trainer.state.log_history = state["log_history"]
    return state["position"]


def online_optimizer(trainer):
    """The trainer's optimizer at a constant rate: created if needed; after `train()` its moments are kept and every
    parameter group's rate is set back to its initial value (a finished schedule may have left it at 0)."""
    optimizer = trainer.create_optimizer()
    for group in optimizer.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
    return optimizer


def online_update(trainer, optimizer, features: list[dict]) -> float:
    """One optimizer step on `features` through the trainer's own `training_step`; returns the loss."""
    model = trainer.model
    inputs, num_items = trainer.online_batch(features)
    loss = trainer.training_step(model, inputs, num_items)
    if trainer.args.max_grad_norm and trainer.args.max_grad_norm > 0:
        trainer.accelerator.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)
    check_finite_gradients(model, trainer.state.global_step + 1)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    trainer.state.global_step += 1
    trainer.reward_combiner.end_step()
    return float(loss)


def evaluate_online(trainer, eval_sets: Mapping[str, object]) -> None:
    with torch.random.fork_rng():  # evaluating (or not) never changes the training trajectory
        for name, dataset in eval_sets.items():
            trainer.online_evaluate(name, dataset)


def learn_online(
    trainer,
    stream: Iterable[Mapping],
    *,
    seed_examples: Iterable[Mapping] | None = None,
    eval_datasets: Mapping[str, object] | None = None,
    max_updates: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> list[dict]:
    """Learn from `stream` in small updates with replay; see the module docstring.

    Args:
        trainer (`TokenLevelRLTrainer`): its model, loss, rewards, tokenizer and `args` (`online_batch_size`,
            `replay_buffer_size`, `replay_batch_size`, `online_eval_steps`, `online_save_steps`, `logging_steps`).
        stream (`Iterable[Mapping]`): examples with `tokens` + `ner_tags` (label ids), or `input_ids` + `labels`;
            for a causal LM, prompt rows (`prompt_column` plus the columns the rewards read; JSON-serialisable).
        seed_examples (`Iterable[Mapping]`, *optional*): the data the model was trained on before deployment; they
            enter the reservoir first, so replay rehearses old data. Ignored when resuming (the buffer is restored).
        eval_datasets (`Mapping[str, Dataset]`, *optional*): e.g. `{"old": ..., "new": ...}`, evaluated at the
            start, every `online_eval_steps` updates and at the end; logged as `eval_<name>_f1` etc. For a causal
            LM: prompt rows, scored by sampling `num_samples` completions each (`eval_<name>_reward`,
            `eval_<name>_rewards/<reward>/mean`), under a forked RNG.
        max_updates (`int`, *optional*): stop after this many updates in total (counting those before a resume).
        resume_from_checkpoint (`str` or `bool`, *optional*): an `online-checkpoint-*` folder, or `True` for the
            latest one in `args.output_dir`.

    Returns:
        `list[dict]`: the trainer's log history (train and eval entries).
    """
    args = trainer.args
    trainer.check_online()
    optimizer = online_optimizer(trainer)
    buffer = ReservoirBuffer(args.replay_buffer_size, seed=args.seed)
    eval_sets = dict(eval_datasets or {})
    position = 0
    if resume_from_checkpoint is True:
        resume_from_checkpoint = last_online_checkpoint(args.output_dir)
        if resume_from_checkpoint is None:
            raise ValueError(f"No {ONLINE_CHECKPOINT_PREFIX}-* folder in {args.output_dir}: pass a path or start fresh.")
    if resume_from_checkpoint:
        check_same_run(run_fingerprint(args), resume_from_checkpoint)
        position = load_online_checkpoint(trainer, optimizer, buffer, resume_from_checkpoint)
    else:
        if args.online_save_steps:
            check_output_dir(args.output_dir, args.overwrite_output_dir, PREVIOUS_ONLINE_RUN)
        trainer.state.global_step = 0
        for feature in trainer.online_features(list(seed_examples or [])) if args.replay_buffer_size else []:
            buffer.add(feature)
        evaluate_online(trainer, eval_sets)
    examples: Iterator = islice(iter(stream), position, None)
    losses: list[float] = []
    while max_updates is None or trainer.state.global_step < max_updates:
        new = list(islice(examples, args.online_batch_size))
        if not new:
            break
        features = trainer.online_features(new)
        replay = buffer.sample(args.replay_batch_size) if args.replay_batch_size else []
        losses.append(online_update(trainer, optimizer, features + replay))
        for feature in features:
            buffer.add(feature)
        position += len(new)
        step = trainer.state.global_step
        if args.logging_steps and step % args.logging_steps == 0:
            trainer.log({"loss": sum(losses) / len(losses), "online/examples_seen": position,
                         "online/buffer_size": len(buffer), "online/replayed": len(replay)})
            losses = []
        if args.online_eval_steps and step % args.online_eval_steps == 0:
            evaluate_online(trainer, eval_sets)
        if args.online_save_steps and step % args.online_save_steps == 0:
            save_online_checkpoint(trainer, optimizer, buffer, position)
    if args.online_eval_steps and trainer.state.global_step % args.online_eval_steps != 0:
        evaluate_online(trainer, eval_sets)
    if args.online_save_steps and trainer.state.global_step % args.online_save_steps != 0:
        save_online_checkpoint(trainer, optimizer, buffer, position)
    return trainer.state.log_history
