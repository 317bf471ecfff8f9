"""Wiring of the dynamic-reward objects into a Trainer: construction from the config, the per-step callback, and the
state file saved next to every checkpoint.

The trainer owns a [`RewardCombiner`] (weights over time, normalisation, Lagrange multipliers) and a KL controller.
Their state is small and must survive a restart, so [`DynamicRewardsCallback`] writes it to
`checkpoint-<step>/token_level_rl_state.json` in `on_save` (a public `TrainerCallback` event that fires right after
Trainer has written the checkpoint folder), and `TokenLevelRLTrainer.train(resume_from_checkpoint=...)` reads it back
before training resumes. The file name is pinned by a test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .combiner import Constraint, RewardCombiner
from .normalization import RunningRewardNormalizer
from ..run_identity import save_run_file
from .schedules import ConstantSchedule, build_schedule, build_schedules


DYNAMIC_STATE_NAME = "token_level_rl_state.json"


def build_reward_combiner(args, names: Sequence[str], weights: Sequence[float], reduce: Callable | None = None):
    """A [`RewardCombiner`] from the config's `reward_weight_schedules`, `reward_combination`, `constraints`, ...;
    `weights` are the fixed weights used where no schedule is given."""
    schedules = build_schedules(args.reward_weight_schedules, len(names), weights, "reward_weight_schedules")
    constraints = [Constraint.from_spec(s, names, f"constraints[{i}]") for i, s in enumerate(args.constraints or [])]
    normalizer = None
    if args.reward_combination == "normalize_then_sum":
        normalizer = RunningRewardNormalizer(momentum=args.reward_norm_momentum, reduce=reduce)
    return RewardCombiner(
        names, schedules, args.reward_combination, constraints, normalizer,
        lagrange_lr=args.lagrange_lr, lagrange_init=args.lagrange_init, lagrange_max=args.lagrange_max, reduce=reduce,
    )


def build_coef_schedules(args, names: Sequence[str] = ("rl",)) -> dict[str, Callable[[int], float]]:
    """`{name: schedule}` for each loss coefficient in `names` (e.g. `("rl", "ce")`): the config's
    `<name>_coef_schedule` when set, else a constant at `<name>_coef`."""
    schedules = {}
    for name in names:
        spec = getattr(args, f"{name}_coef_schedule")
        schedules[name] = build_schedule(spec, f"{name}_coef_schedule") if spec is not None else ConstantSchedule(
            getattr(args, f"{name}_coef")
        )
    return schedules


def dynamic_state(trainer) -> dict:
    return {"kl_controller": trainer.kl_controller.state_dict(), "reward_combiner": trainer.reward_combiner.state_dict()}


def load_dynamic_state(trainer, state: dict) -> None:
    trainer.kl_controller.load_state_dict(state["kl_controller"])
    trainer.reward_combiner.load_state_dict(state["reward_combiner"])


def save_dynamic_state_file(trainer, folder: str) -> None:
    with open(os.path.join(folder, DYNAMIC_STATE_NAME), "w") as f:
        json.dump(dynamic_state(trainer), f, indent=1)


def load_dynamic_state_file(trainer, folder: str) -> bool:
    """Restore the state saved in `folder`; `False` (and nothing changes) if the checkpoint has no such file."""
    path = os.path.join(folder, DYNAMIC_STATE_NAME)
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        load_dynamic_state(trainer, json.load(f))
    return True


class DynamicRewardsCallback(TrainerCallback):
    """Moves the Lagrange multipliers at the end of every optimizer step and saves the dynamic state and the run's
    fingerprint (`run_identity.py`) with every checkpoint. Added by `TokenLevelRLTrainer` itself."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.reward_combiner.end_step()

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if args.should_save and os.path.isdir(folder):
            save_dynamic_state_file(self.trainer, folder)
            save_run_file(self.trainer.run_fingerprint(), folder)
