"""[`TokenLevelRLBaseConfig`]: the training arguments every token-level RL trainer shares.

A path's config (`TokenClassificationRLConfig`, `GenerationRLConfig`) subclasses it and adds only the fields its
trainer reads; [`TokenLevelRLConfig`] (in `config.py`) is the union the `TokenLevelRLTrainer` entry point accepts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .core import BASELINES
from .dynamic.combiner import COMBINATIONS, Constraint
from .dynamic.schedules import build_schedule, build_schedules, parse_json_field


@dataclass
class TokenLevelRLBaseConfig(TrainingArguments):
    r"""
    Fields shared by every token-level RL trainer. Only the fields added to [`~transformers.TrainingArguments`] are
    listed; every field is a command-line flag through [`~trl.TrlParser`] and a key of the recipes' YAML files.

    Parameters are grouped as: model loading (`model_init_kwargs`, `trust_remote_code`, `disable_dropout`; a k-bit
    backbone for a model given by name: `model_init_kwargs={"load_in_8bit": True}`; the recipes take TRL's
    `--load_in_8bit` / `--load_in_4bit` through [`~trl_tokenlevel.TokenLevelModelConfig`]), sampling (`num_samples`,
    `temperature`), rewards (`reward_weights`,
    `whiten_advantages`), loss (`rl_coef`, `kl_coef`, `target_kl`, `kl_horizon`, `entropy_coef`), dynamic rewards
    (`reward_weight_schedules`, `rl_coef_schedule`, `reward_combination`, `constraints`, `lagrange_*`), online
    learning (`online_*`, `replay_*`) and export (`merge_adapters`).
    """

    # > Model loading
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Keyword arguments for `from_pretrained` when `model` is given as a name or path. "
            "`load_in_8bit`/`load_in_4bit` keys are turned into a BitsAndBytesConfig."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow model code from the Hub. Off by default: only enable it for repositories you trust."},
    )
    disable_dropout: bool = field(
        default=False,
        metadata={
            "help": "Set every dropout probability to 0. Makes the KL to the reference exact at step 0 and sampling "
            "reproducible; plain fine-tuning usually keeps dropout as a regulariser."
        },
    )
    # > Data
    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Kept False so the dataset's other columns reach the reward functions as keyword arguments."
        },
    )
    # > Sampling
    num_samples: int = field(
        default=4,
        metadata={"help": "K: label sequences sampled per sentence. More = lower-variance gradients, more reward calls."},
    )
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Sampling temperature. Training log-probabilities use the same temperature, so the gradient is "
            "that of the sampling policy."
        },
    )
    # > Rewards and advantages
    reward_weights: list[float] | None = field(
        default=None,
        metadata={"help": "Weight of each reward function (same order). Default: 1.0 for every reward."},
    )
    whiten_advantages: bool = field(
        default=False,
        metadata={
            "help": "Standardise advantages over the micro-batch's active tokens. Steadier step sizes, but the scale "
            "then depends on the micro-batch, not only on the rewards."
        },
    )
    # > Loss
    rl_coef: float = field(default=1.0, metadata={"help": "Weight of the policy-gradient term. 0 = plain fine-tuning."})
    kl_coef: float = field(
        default=0.0,
        metadata={
            "help": "Weight of the exact KL(policy || reference) summed over labels. If 0.0 no reference forward "
            "runs. The reference is the starting model, frozen (under PEFT: the base with adapters disabled)."
        },
    )
    target_kl: float | None = field(
        default=None,
        metadata={
            "help": "If set, the KL coefficient adapts toward this per-token KL (Ziegler et al., 2019), starting "
            "from `kl_coef`. If None, `kl_coef` stays fixed."
        },
    )
    kl_horizon: int = field(
        default=10000,
        metadata={"help": "Horizon (steps) of the adaptive KL controller: larger = slower changes of the coefficient."},
    )
    entropy_coef: float = field(
        default=0.0,
        metadata={"help": "Entropy bonus weight. Keeps sampling exploratory; too high and the policy stays uniform."},
    )
    # > Dynamic rewards and multi-objective combination (docs/dynamic_rewards.md)
    reward_weight_schedules: list[Any] | str | None = field(
        default=None,
        metadata={
            "help": "One schedule per reward (same order), overriding `reward_weights` over time: a number, None "
            "(keep the fixed weight) or a spec such as {'type': 'linear', 'start': 0.0, 'end': 1.0, 'steps': 500}. "
            "Types: constant, linear, cosine, step, warmup (see `trl_tokenlevel/schedules.py`). A JSON string on "
            "the command line."
        },
    )
    rl_coef_schedule: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Schedule of the policy-gradient weight, overriding `rl_coef` (e.g. linear 0 -> 1). While it is 0 "
            "no labels are sampled and no reward is called."
        },
    )
    reward_combination: str = field(
        default="weighted_sum",
        metadata={
            "help": "'weighted_sum' (sum of w_i r_i), 'normalize_then_sum' (each reward standardised by its running "
            "mean/std over active tokens first: rewards on different scales weigh as their weights say, but a "
            "reward's absolute level is lost), or 'constrained' (maximise the unconstrained rewards subject to "
            "`constraints`, with Lagrange multipliers)."
        },
    )
    reward_norm_momentum: float = field(
        default=0.99,
        metadata={"help": "Momentum of the running reward mean/std ('normalize_then_sum'). Higher = steadier, slower."},
    )
    constraints: list[dict[str, Any]] | str | None = field(
        default=None,
        metadata={
            "help": "For 'constrained': list of {'reward': <name>, 'threshold': float, 'statistic': 'mean' | a "
            "statistic the reward exposes, e.g. 'precision'}. The measured value is a ratio of sums over the "
            "sampled sequences of one optimizer step."
        },
    )
    lagrange_lr: float = field(
        default=0.05,
        metadata={"help": "Step size of the Lagrange multipliers per optimizer step. Larger = faster, more oscillation."},
    )
    lagrange_init: float = field(default=0.0, metadata={"help": "Starting value of every Lagrange multiplier."})
    lagrange_max: float = field(default=100.0, metadata={"help": "Cap on every Lagrange multiplier."})
    # > Online learning (`trainer.learn_online`, docs/online.md)
    online_batch_size: int = field(
        default=8, metadata={"help": "New stream examples consumed per online update."}
    )
    replay_buffer_size: int = field(
        default=0,
        metadata={
            "help": "Examples kept by reservoir sampling over everything seen (including the initial training set "
            "if `learn_online(seed_examples=...)`). 0 = no replay: fastest, forgets most."
        },
    )
    replay_batch_size: int = field(
        default=8, metadata={"help": "Replayed examples mixed into each online update (when the buffer is not empty)."}
    )
    online_eval_steps: int = field(
        default=0, metadata={"help": "Evaluate on the held-out old and new data every this many online updates (0 = never)."}
    )
    online_save_steps: int = field(
        default=0,
        metadata={
            "help": "Save an online checkpoint (model, optimizer, buffer, stream position, RNG) every this many "
            "updates (0 = never); `learn_online(resume_from_checkpoint=...)` continues from it."
        },
    )
    # > Outputs
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow a new run (no resume_from_checkpoint) in an output_dir that already holds a model or "
            "checkpoints, replacing them. Off: such a run is refused, so nothing is overwritten by accident."
        },
    )
    merge_adapters: bool = field(
        default=False,
        metadata={
            "help": "save_model()/push_to_hub() write the PEFT adapters merged into a plain model (loads without "
            "PEFT) and keep the adapter in an `adapter/` subfolder. Off: the adapter alone is saved (smaller)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.validate_shared()

    def validate_shared(self) -> None:
        """Checks of the shared fields (run by every config's `__post_init__`)."""
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}; for greedy decoding set rl_coef=0.")
        if self.learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}.")
        for name in ("rl_coef", "kl_coef", "entropy_coef"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
        if self.target_kl is not None and self.kl_coef == 0:
            raise ValueError("target_kl needs an initial kl_coef > 0 (the adaptive controller scales it).")
        if self.reward_weights is not None:
            for i, weight in enumerate(self.reward_weights):
                if weight is None or not math.isfinite(float(weight)):
                    raise ValueError(f"reward_weights[{i}] is {weight}: reward weights must be finite numbers.")
        self._check_dynamic_rewards()
        self._check_online()

    def _check_dynamic_rewards(self) -> None:
        """Decode the JSON-string forms and build every schedule once, so a bad spec fails here, not mid-training."""
        self.reward_weight_schedules = parse_json_field(self.reward_weight_schedules, "reward_weight_schedules")
        if self.reward_weight_schedules is not None:
            n = len(self.reward_weight_schedules)
            build_schedules(self.reward_weight_schedules, n, [1.0] * n, "reward_weight_schedules")
        self.rl_coef_schedule = parse_json_field(self.rl_coef_schedule, "rl_coef_schedule")
        if self.rl_coef_schedule is not None:
            build_schedule(self.rl_coef_schedule, "rl_coef_schedule")
        if self.reward_combination not in COMBINATIONS:
            raise ValueError(f"reward_combination must be one of {COMBINATIONS}, got {self.reward_combination!r}.")
        self.constraints = parse_json_field(self.constraints, "constraints")
        if self.reward_combination == "constrained":
            if not self.constraints:
                raise ValueError(
                    "reward_combination='constrained' needs `constraints`, e.g. "
                    "[{'reward': 'SpanPrecisionReward', 'threshold': 0.9, 'statistic': 'precision'}]."
                )
            for i, spec in enumerate(self.constraints):
                Constraint.from_spec(spec, [], f"constraints[{i}]")
        elif self.constraints:
            raise ValueError("`constraints` are only used with reward_combination='constrained': set it or drop them.")
        if not 0.0 <= self.reward_norm_momentum < 1.0:
            raise ValueError(f"reward_norm_momentum must be in [0, 1), got {self.reward_norm_momentum}.")
        if self.lagrange_lr < 0 or self.lagrange_init < 0:
            raise ValueError(f"lagrange_lr and lagrange_init must be >= 0, got {self.lagrange_lr}, {self.lagrange_init}.")

    def _check_online(self) -> None:
        for name in ("online_batch_size", "replay_buffer_size", "replay_batch_size", "online_eval_steps", "online_save_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.online_batch_size == 0:
            raise ValueError("online_batch_size must be >= 1 (new examples per online update).")

    def validate_path(self) -> None:
        """Checks of the path's own fields; a path config overrides it and calls it from `__post_init__`."""


def fields_of_path(config_class: type) -> dict[str, dataclasses.Field]:
    """The fields a path's config adds to [`TokenLevelRLBaseConfig`], by name."""
    shared = {f.name for f in dataclasses.fields(TokenLevelRLBaseConfig)}
    return {f.name: f for f in dataclasses.fields(config_class) if f.name not in shared}


def field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def validate_ce_and_baseline(config) -> None:
    """The checks every path with a CE term and a per-sample baseline shares (`baseline`, `ce_coef`,
    `ce_coef_schedule`, and not both coefficients 0): token and sequence classification, extractive QA."""
    if config.baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {config.baseline!r}.")
    if config.baseline == "leave_one_out" and config.num_samples < 2:
        raise ValueError("baseline='leave_one_out' needs num_samples >= 2: raise num_samples or use 'greedy'.")
    if config.ce_coef < 0:
        raise ValueError(f"ce_coef must be >= 0, got {config.ce_coef}.")
    config.ce_coef_schedule = parse_json_field(config.ce_coef_schedule, "ce_coef_schedule")
    if config.ce_coef_schedule is not None:
        build_schedule(config.ce_coef_schedule, "ce_coef_schedule")
    if config.rl_coef == 0 and config.ce_coef == 0 and config.rl_coef_schedule is None and config.ce_coef_schedule is None:
        raise ValueError("rl_coef and ce_coef are both 0: nothing would be learned. Set one of them > 0.")
