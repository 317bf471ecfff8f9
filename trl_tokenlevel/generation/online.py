"""The generation half of `learn_online` (`trl_tokenlevel/online.py`): prompts in, completions sampled and scored.

For a causal LM the stream yields prompt rows, `{prompt_column: ..., **other columns}`, the same rows as a training
dataset. Feedback arrives through the trainer's reward functions, which see the other columns (a user rating
looked up by prompt id, a reference answer, a reward model): one update is

    rows     = new prompt rows + replayed prompt rows          # replay: the reservoir of past prompts
    rollout  = trainer._make_rollout(rows)                    # K completions each, rewards, advantages
    loss     = trainer.compute_loss(model, rollout)           # the clipped token-level loss of the offline path

so every update is on-policy: the completions come from the current model, as the clipped ratio assumes.
Completions produced (and rated) earlier by another model would be off-policy; turn such ratings into a reward
function or a reward model instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch



def check_online_generation(args) -> None:
    """`learn_online` takes one optimizer step per rollout, on the whole rollout."""
    if args.num_ppo_epochs != 1 or args.gradient_accumulation_steps != 1:
        raise ValueError(
            f"learn_online on a causal LM takes one optimizer step per update on the whole rollout; got "
            f"num_ppo_epochs={args.num_ppo_epochs}, gradient_accumulation_steps={args.gradient_accumulation_steps}. "
            "Set both to 1 (lower online_batch_size / replay_batch_size to save memory)."
        )


def prompt_rows(trainer, examples: list[Mapping]) -> list[dict]:
    """The stream's rows as plain dicts; all must hold the prompt column and the same other columns."""
    column = trainer.args.prompt_column
    rows = [dict(example) for example in examples]
    for index, row in enumerate(rows):
        if column not in row:
            raise ValueError(
                f"Online example {index} has no {column!r} column (keys: {sorted(row)}); a causal LM learns online from "
                "prompt rows: set prompt_column in TokenLevelRLConfig or add the column."
            )
        if set(row) != set(rows[0]):
            raise ValueError(
                f"Online example {index} has columns {sorted(row)} but example 0 has {sorted(rows[0])}: replayed and "
                "new rows are scored together, so every row (seed_examples included) needs the same columns."
            )
    return rows


def rollout_loss(trainer, rows: list[dict]) -> torch.Tensor:
    """Sample and score completions of `rows`, and backpropagate the generation loss; returns the loss."""
    rows = prompt_rows(trainer, rows)  # new and replayed rows are scored together: same columns
    (batch,) = trainer._make_rollout(rows)  # one micro-batch: gradient_accumulation_steps == 1
    loss = trainer.compute_loss(trainer.model, batch)
    trainer.accelerator.backward(loss)
    return loss.detach()


@torch.no_grad()
def evaluate_rewards(trainer, name: str, dataset) -> dict[str, float]:
    """Mean reward of `num_samples` sampled completions per held-out prompt, logged as `eval_<name>_reward` (raw
    rewards weighted by the current scheduled weights, per completion) and `eval_<name>_rewards/<reward>/mean`."""
    batch_size = trainer.args.per_device_eval_batch_size
    rows = prompt_rows(trainer, [dataset[i] for i in range(len(dataset))])
    scheduled = trainer.reward_combiner.weights(trainer.state.global_step)
    weights = [scheduled[n] for n in trainer.reward_names]
    sums: dict[str, list[float]] = {"reward": [0.0, 0.0]}
    for start in range(0, len(rows), batch_size):
        _, total, per_reward = trainer._sample_and_score(rows[start : start + batch_size], weights)
        sums["reward"][0] += float(total.sum())
        sums["reward"][1] += total.shape[0]
        for reward, (values, applies, _) in per_reward.items():
            entry = sums.setdefault(f"rewards/{reward}/mean", [0.0, 0.0])
            entry[0] += float(values.sum(1)[applies].sum())
            entry[1] += float(applies.sum())
    return {f"eval_{name}_{key}": total / max(count, 1.0) for key, (total, count) in sums.items()}
