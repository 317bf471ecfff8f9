"""Online / continual learning: `TokenLevelRLTrainer.learn_online(stream)`.

Each update takes `online_batch_size` new labelled examples from the stream (sentences with corrected NER tags),
mixes in `replay_batch_size` examples drawn from a reservoir-sampled replay buffer, and takes one optimizer step on
the trainer's usual loss (CE + per-token RL + KL, with the dynamic reward weights of the current step):

    new    = next(online_batch_size examples of the stream)
    replay = buffer.sample(replay_batch_size)            # uniform over everything the buffer has seen
    loss   = trainer.compute_loss(model, collate(new + replay))
    optimizer.step();  buffer.add(new);  position += len(new)

Restart safety: every `online_save_steps` updates, `online-checkpoint-<update>/` holds the model weights, the
optimizer state, the replay buffer (with its RNG), the stream position, the torch RNG, the KL controller and reward
combiner state, and the log history. It is written to a temporary folder and renamed, so a process killed while
saving leaves the previous checkpoint intact. `learn_online(stream, resume_from_checkpoint=True)` restores all of it
and skips the first `position` examples of the stream, so a restarted run applies every example exactly once and
ends with the same parameters as a run that was never interrupted (tested). The stream must therefore replay the
same examples in the same order (a list, a `Dataset`, a file, a queue with offsets).

The learning rate is constant (`args.learning_rate`): an open-ended stream has no horizon for a decaying schedule.
Only the model-input columns of an example are kept (`tokens` are tokenized with the trainer's tokenizer), so
rewards that need other dataset columns do not see them here.

For a causal LM (`trainer.task == "generation"`) the stream yields prompt rows instead, `{prompt_column: ...,
**other columns}`; each update samples K completions of the new and replayed prompts, scores them with the reward
functions (which see the other columns: that is how feedback arrives) and takes one step on the generation loss.
The replay buffer holds past prompt rows. See `generation/online.py`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice

import torch
from safetensors.torch import load_model, save_model

from .collator import MODEL_INPUT_KEYS
from .dynamic import dynamic_state, load_dynamic_state
from .generation.online import check_online_generation, evaluate_rewards, prompt_rows, rollout_loss


ONLINE_CHECKPOINT_PREFIX = "online-checkpoint"
STATE_NAME = "online_state.json"


class ReservoirBuffer:
    """Keeps a uniform random sample of at most `capacity` of all items ever added (Vitter's algorithm R).

    Example:
        >>> buffer = ReservoirBuffer(capacity=3, seed=0)
        >>> for i in range(100):
        ...     buffer.add(i)
        >>> len(buffer), buffer.num_seen
        (3, 100)
    """

    def __init__(self, capacity: int, seed: int = 0):
        self.capacity = int(capacity)
        self.items: list = []
        self.num_seen = 0
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item) -> None:
        self.num_seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
        elif self.capacity > 0:
            slot = self.rng.randrange(self.num_seen)
            if slot < self.capacity:
                self.items[slot] = item

    def sample(self, n: int) -> list:
        return self.rng.sample(self.items, min(n, len(self.items)))

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"capacity": self.capacity, "items": self.items, "num_seen": self.num_seen,
                "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: Mapping) -> None:
        self.capacity, self.items, self.num_seen = int(state["capacity"]), list(state["items"]), int(state["num_seen"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def _features(trainer, examples: list[Mapping]) -> list[dict]:
    """Model-input features of raw (`tokens`, `ner_tags`) or tokenized (`input_ids`, `labels`) examples; for a causal
    LM, the prompt rows themselves (completions are sampled at each update)."""
    if trainer.task == "generation":
        return prompt_rows(trainer, examples)
    raw = [e for e in examples if "input_ids" not in e]
    if raw and any("tokens" not in e or "ner_tags" not in e for e in raw):
        raise ValueError(
            "Each online example needs `tokens` and `ner_tags` (label ids), or `input_ids` and `labels`; got keys "
            f"{sorted(raw[0])}."
        )
    tokenized = iter(())
    if raw:
        from .data import tokenize_and_align_labels

        batch = tokenize_and_align_labels(
            {"tokens": [e["tokens"] for e in raw], "ner_tags": [e["ner_tags"] for e in raw]}, trainer.processing_class,
            max_length=trainer.args.max_length, label_all_tokens=trainer.args.label_all_tokens,
            label_names=trainer.label_list,
        )
        tokenized = iter([{k: batch[k][i] for k in MODEL_INPUT_KEYS if k in batch} for i in range(len(raw))])
    return [
        next(tokenized) if "input_ids" not in e else {k: list(e[k]) for k in MODEL_INPUT_KEYS if k in e}
        for e in examples
    ]


def last_online_checkpoint(output_dir: str) -> str | None:
    pattern = re.compile(rf"^{ONLINE_CHECKPOINT_PREFIX}-(\d+)$")
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := pattern.match(name))] if os.path.isdir(output_dir) else []
    return os.path.join(output_dir, max(found)[1]) if found else None


def save_online_checkpoint(trainer, optimizer, buffer: ReservoirBuffer, position: int) -> str:
    folder = os.path.join(trainer.args.output_dir, f"{ONLINE_CHECKPOINT_PREFIX}-{trainer.state.global_step}")
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_model(trainer.accelerator.unwrap_model(trainer.model), os.path.join(tmp, "model.safetensors"))
    torch.save(
        {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        os.path.join(tmp, "optimizer_and_rng.pt"),
    )
    state = {"position": position, "global_step": trainer.state.global_step, "buffer": buffer.state_dict(),
             "dynamic": dynamic_state(trainer), "log_history": trainer.state.log_history}
    with open(os.path.join(tmp, STATE_NAME), "w") as f:
        json.dump(state, f)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def load_online_checkpoint(trainer, optimizer, buffer: ReservoirBuffer, folder: str) -> int:
    """Restore everything `save_online_checkpoint` wrote; returns the stream position to continue from."""
    load_model(trainer.accelerator.unwrap_model(trainer.model), os.path.join(folder, "model.safetensors"))
    saved = torch.load(os.path.join(folder, "optimizer_and_rng.pt"), weights_only=False)
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


def _online_update(trainer, optimizer, features: list[dict]) -> float:
    model = trainer.model
    model.train()
    if trainer.task == "generation":
        loss = rollout_loss(trainer, features)
    else:
        batch = trainer.data_collator(features)
        batch = {k: v.to(trainer.args.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        num_items = (batch["labels"] != -100).sum()
        loss = trainer.compute_loss(model, batch, num_items_in_batch=num_items)
        trainer.accelerator.backward(loss)
    if trainer.args.max_grad_norm and trainer.args.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    trainer.state.global_step += 1
    trainer.reward_combiner.end_step()
    return float(loss.detach())


def _evaluate(trainer, eval_sets: Mapping[str, object]) -> None:
    with torch.random.fork_rng():  # evaluating (or not) never changes the training trajectory
        for name, dataset in eval_sets.items():
            if trainer.task == "generation":  # no eval loss for sampled text: the mean reward of sampled completions
                trainer.log(evaluate_rewards(trainer, name, dataset))
            else:
                trainer.evaluate(eval_dataset=dataset, metric_key_prefix=f"eval_{name}")


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
    trainer.create_optimizer()
    optimizer = trainer.optimizer
    buffer = ReservoirBuffer(args.replay_buffer_size, seed=args.seed)
    if trainer.task == "generation":
        check_online_generation(args)
        eval_sets = dict(eval_datasets or {})
    else:
        eval_sets = {k: trainer.prepare_dataset(v) for k, v in (eval_datasets or {}).items()}
    position = 0
    if resume_from_checkpoint is True:
        resume_from_checkpoint = last_online_checkpoint(args.output_dir)
        if resume_from_checkpoint is None:
            raise ValueError(f"No {ONLINE_CHECKPOINT_PREFIX}-* folder in {args.output_dir}: pass a path or start fresh.")
    if resume_from_checkpoint:
        position = load_online_checkpoint(trainer, optimizer, buffer, resume_from_checkpoint)
    else:
        trainer.state.global_step = 0
        for feature in _features(trainer, list(seed_examples or [])) if args.replay_buffer_size else []:
            buffer.add(feature)
        _evaluate(trainer, eval_sets)
    examples: Iterator = islice(iter(stream), position, None)
    losses: list[float] = []
    while max_updates is None or trainer.state.global_step < max_updates:
        new = list(islice(examples, args.online_batch_size))
        if not new:
            break
        features = _features(trainer, new)
        replay = buffer.sample(args.replay_batch_size) if args.replay_batch_size else []
        losses.append(_online_update(trainer, optimizer, features + replay))
        for feature in features:
            buffer.add(feature)
        position += len(new)
        step = trainer.state.global_step
        if args.logging_steps and step % args.logging_steps == 0:
            trainer.log({"loss": sum(losses) / len(losses), "online/examples_seen": position,
                         "online/buffer_size": len(buffer), "online/replayed": len(replay)})
            losses = []
        if args.online_eval_steps and step % args.online_eval_steps == 0:
            _evaluate(trainer, eval_sets)
        if args.online_save_steps and step % args.online_save_steps == 0:
            save_online_checkpoint(trainer, optimizer, buffer, position)
    if args.online_eval_steps and trainer.state.global_step % args.online_eval_steps != 0:
        _evaluate(trainer, eval_sets)
    if args.online_save_steps and trainer.state.global_step % args.online_save_steps != 0:
        save_online_checkpoint(trainer, optimizer, buffer, position)
    return trainer.state.log_history
