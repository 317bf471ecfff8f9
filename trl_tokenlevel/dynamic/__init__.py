"""Dynamic rewards: schedules over steps, the reward combiner (weights, running normalisation, Lagrange-constrained
objectives), KL control, and the state that must survive a restart."""

from .combiner import COMBINATIONS, Constraint, RewardCombiner, lagrange_update
from .kl_control import AdaptiveKLController, FixedKLController, make_kl_controller
from .normalization import RunningRewardNormalizer
from .schedules import SCHEDULE_TYPES, build_schedule, build_schedules, parse_json_field
from .state import (
    DYNAMIC_STATE_NAME,
    DynamicRewardsCallback,
    build_coef_schedules,
    build_reward_combiner,
    dynamic_state,
    load_dynamic_state,
    load_dynamic_state_file,
    save_dynamic_state_file,
)


__all__ = [
    "COMBINATIONS",
    "DYNAMIC_STATE_NAME",
    "SCHEDULE_TYPES",
    "AdaptiveKLController",
    "Constraint",
    "DynamicRewardsCallback",
    "FixedKLController",
    "RewardCombiner",
    "RunningRewardNormalizer",
    "build_coef_schedules",
    "build_reward_combiner",
    "build_schedule",
    "build_schedules",
    "dynamic_state",
    "lagrange_update",
    "load_dynamic_state",
    "load_dynamic_state_file",
    "make_kl_controller",
    "parse_json_field",
    "save_dynamic_state_file",
]
