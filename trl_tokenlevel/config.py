"""`TokenLevelRLConfig`: the training arguments of [`TokenLevelRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .core import BASELINES
from .multi_objective import COMBINATIONS, Constraint
from .schedules import build_schedule, build_schedules, parse_json_field


@dataclass
class TokenLevelRLConfig(TrainingArguments):
    r"""
    Configuration of [`TokenLevelRLTrainer`]. Only the fields specific to token-level RL are listed here; see
    [`~transformers.TrainingArguments`] for the rest. Every field is a command-line flag through
    [`~trl.TrlParser`] / [`~transformers.HfArgumentParser`] and a key of the recipes' YAML files.

    The loss of one step is

        loss = rl_coef * PG + ce_coef * CE + kl_coef * KL(policy || reference) - entropy_coef * H(policy)

    where every term is a sum over active tokens (word positions with a gold label) divided by the number of
    active tokens in the whole optimizer step, across gradient accumulation and processes.
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
    max_length: int = field(
        default=128,
        metadata={
            "help": "Maximum sub-word length when the trainer tokenizes `tokens`/`ner_tags` datasets itself. Longer "
            "sentences are truncated and counted in one warning."
        },
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Label continuation sub-tokens too (B-X becomes I-X). Default: first sub-token only."},
    )
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
    # > Advantages
    baseline: str = field(
        default="greedy",
        metadata={
            "help": "Per-token baseline: 'greedy' (self-critic: the reward of the argmax labels), 'leave_one_out' "
            "(mean of the other K-1 samples; needs K>=2), 'batch_mean' (depends on how the batch is split, so it is "
            "not invariant to gradient accumulation), or 'none' (plain REINFORCE, high variance)."
        },
    )
    whiten_advantages: bool = field(
        default=False,
        metadata={
            "help": "Standardise advantages over the micro-batch's active tokens. Steadier step sizes, but the scale "
            "then depends on the micro-batch, not only on the rewards."
        },
    )
    reward_weights: list[float] | None = field(
        default=None,
        metadata={"help": "Weight of each reward function (same order). Default: 1.0 for every reward."},
    )
    # > Loss
    rl_coef: float = field(default=1.0, metadata={"help": "Weight of the policy-gradient term. 0 = plain fine-tuning."})
    ce_coef: float = field(
        default=1.0,
        metadata={"help": "Weight of the supervised cross-entropy term. 0 = learn from rewards alone."},
    )
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
    precompute_reference_logprobs: bool = field(
        default=False,
        metadata={
            "help": "Compute the reference's label log-probabilities for every training example once, in one "
            "inference pass before the first step, and reuse them instead of a reference forward in every step. "
            "Exact for a frozen reference; costs n_words x C floats of memory. Needs kl_coef > 0."
        },
    )
    entropy_coef: float = field(
        default=0.0,
        metadata={"help": "Entropy bonus weight. Keeps sampling exploratory; too high and the policy stays uniform."},
    )
    # > Schedule
    rl_start_step: int = field(
        default=0,
        metadata={
            "help": "Optimizer step at which the RL term switches on; before it the loss is CE only (no sampling, no "
            "reward calls). A CE warm-up lets rewards start from a sensible policy."
        },
    )
    rl_start_epoch: float | None = field(
        default=None,
        metadata={"help": "Like `rl_start_step` but in epochs (e.g. 1.0). If set, it takes precedence."},
    )
    reset_reference_at_rl_start: bool = field(
        default=False,
        metadata={
            "help": "When RL switches on, make the reference a frozen copy of the model at that moment (the warmed-up "
            "model) instead of the starting model. Costs one model copy in memory."
        },
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
    ce_coef_schedule: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Schedule of the CE weight, overriding `ce_coef` (e.g. cosine 1 -> 0 for a CE-to-RL hand-over). "
            "JSON string on the command line."
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
    # > Scaling and export
    load_in_8bit: bool = field(
        default=False,
        metadata={
            "help": "Load the backbone in 8-bit (bitsandbytes LLM.int8; CUDA, or a CPU with AVX512) when the trainer "
            "loads it from a name; the head stays in full precision. Needs a peft_config. About half the fp32 "
            "weight memory of an encoder's linear layers, at some speed cost."
        },
    )
    load_in_4bit: bool = field(
        default=False,
        metadata={"help": "Load the backbone in 4-bit NF4 (QLoRA). Less memory than 8-bit, larger rounding error."},
    )
    merge_adapters: bool = field(
        default=False,
        metadata={
            "help": "save_model()/push_to_hub() write the PEFT adapters merged into a plain model (loads without "
            "PEFT) and keep the adapter in an `adapter/` subfolder. Off: the adapter alone is saved (smaller)."
        },
    )
    # > Generation (causal LMs; ignored for token classifiers)
    prompt_column: str = field(
        default="prompt",
        metadata={"help": "Dataset column holding the prompts: text, or chat messages rendered with the chat template."},
    )
    max_prompt_length: int | None = field(
        default=512,
        metadata={"help": "Prompts longer than this many tokens keep their last tokens. None = no truncation."},
    )
    max_new_tokens: int = field(
        default=64,
        metadata={"help": "Maximum completion length. Longer = more signal per prompt, slower rollouts."},
    )
    top_p: float = field(
        default=1.0,
        metadata={
            "help": "Nucleus sampling. Below 1.0 the samples come from a truncated distribution while the log-probs "
            "are those of the full tempered policy (as in TRL's GRPO): a small bias, fewer degenerate tokens."
        },
    )
    top_k: int = field(default=0, metadata={"help": "Top-k sampling; 0 disables it (transformers' default is 50)."})
    sequence_reward_placement: str = field(
        default="last",
        metadata={
            "help": "Where a reward that returns one float per completion goes: 'last' (on the final token; with "
            "gamma=1 every token's return-to-go includes it) or 'spread' (R/L on each of the L tokens)."
        },
    )
    kl_placement: str = field(
        default="reward",
        metadata={
            "help": "How the per-token KL to the reference enters: 'reward' subtracts kl_coef * k1 (log pi - log "
            "pi_ref) from each token's reward (Ziegler et al., 2019; PPO-RLHF), 'loss' adds kl_coef * k3 to the "
            "loss (GRPO). Only used when kl_coef > 0."
        },
    )
    advantage_estimator: str = field(
        default="leave_one_out",
        metadata={
            "help": "'leave_one_out' (critic-free: discounted returns-to-go minus the mean of the other K-1 "
            "completions of the prompt) or 'gae' (PPO: a value head on the last hidden states, GAE(gamma, lam))."
        },
    )
    group_baseline: str = field(
        default="per_position",
        metadata={
            "help": "Leave-one-out baseline: 'per_position' (siblings' return-to-go at the same position; suits dense "
            "rewards) or 'per_sequence' (siblings' total return; RLOO for sequence rewards)."
        },
    )
    gamma: float = field(default=1.0, metadata={"help": "Discount of the returns-to-go. 1.0 = undiscounted (RLHF)."})
    lam: float = field(
        default=0.95, metadata={"help": "GAE lambda: lower = less variance, more bias from the value head."}
    )
    num_ppo_epochs: int = field(
        default=1,
        metadata={
            "help": "Optimizer passes over each rollout batch (one pass = one optimizer step). More = more sample "
            "reuse, further off-policy (the clipped ratio keeps it in check)."
        },
    )
    cliprange: float = field(default=0.2, metadata={"help": "PPO ratio clip epsilon (Schulman et al., 2017)."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Clip of the value update around the rollout value."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss (advantage_estimator='gae')."})

    def __post_init__(self):
        super().__post_init__()
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}; for greedy decoding set rl_coef=0.")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}.")
        if self.baseline == "leave_one_out" and self.num_samples < 2:
            raise ValueError("baseline='leave_one_out' needs num_samples >= 2: raise num_samples or use 'greedy'.")
        for name in ("rl_coef", "ce_coef", "kl_coef", "entropy_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.rl_coef == 0 and self.ce_coef == 0 and self.rl_coef_schedule is None and self.ce_coef_schedule is None:
            raise ValueError("rl_coef and ce_coef are both 0: nothing would be learned. Set one of them > 0.")
        if self.rl_start_step < 0:
            raise ValueError(f"rl_start_step must be >= 0, got {self.rl_start_step}.")
        if self.reset_reference_at_rl_start and self.kl_coef == 0:
            raise ValueError("reset_reference_at_rl_start needs kl_coef > 0 (the reference is only used by the KL).")
        if self.precompute_reference_logprobs and self.kl_coef == 0:
            raise ValueError("precompute_reference_logprobs needs kl_coef > 0 (the cache only serves the KL term).")
        if self.precompute_reference_logprobs and self.reset_reference_at_rl_start:
            raise ValueError(
                "precompute_reference_logprobs caches the starting model, but reset_reference_at_rl_start replaces "
                "the reference during training: use one of the two."
            )
        if self.target_kl is not None and self.kl_coef == 0:
            raise ValueError("target_kl needs an initial kl_coef > 0 (the adaptive controller scales it).")
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("load_in_8bit and load_in_4bit are both set: choose one (8-bit is closer to fp32).")
        if self.reward_weights is not None and any(w is None for w in self.reward_weights):
            raise ValueError(f"reward_weights must be numbers, got {self.reward_weights}.")
        self._check_dynamic_rewards()
        self._validate_generation()

    def _check_dynamic_rewards(self) -> None:
        """Decode the JSON-string forms and build every schedule once, so a bad spec fails here, not mid-training."""
        self.reward_weight_schedules = parse_json_field(self.reward_weight_schedules, "reward_weight_schedules")
        if self.reward_weight_schedules is not None:
            n = len(self.reward_weight_schedules)
            build_schedules(self.reward_weight_schedules, n, [1.0] * n, "reward_weight_schedules")
        for name in ("ce_coef_schedule", "rl_coef_schedule"):
            setattr(self, name, parse_json_field(getattr(self, name), name))
            if getattr(self, name) is not None:
                build_schedule(getattr(self, name), name)
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
        for name in ("online_batch_size", "replay_buffer_size", "replay_batch_size", "online_eval_steps", "online_save_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.online_batch_size == 0:
            raise ValueError("online_batch_size must be >= 1 (new examples per online update).")

    def _validate_generation(self):
        choices = {
            "sequence_reward_placement": ("last", "spread"),
            "kl_placement": ("reward", "loss"),
            "advantage_estimator": ("leave_one_out", "gae"),
            "group_baseline": ("per_position", "per_sequence"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.advantage_estimator == "leave_one_out" and self.num_samples < 2 and self.rl_coef > 0:
            raise ValueError("advantage_estimator='leave_one_out' needs num_samples >= 2; raise it or use 'gae'.")
        if self.max_new_tokens < 1 or self.num_ppo_epochs < 1:
            raise ValueError(f"max_new_tokens and num_ppo_epochs must be >= 1, got {self.max_new_tokens}, {self.num_ppo_epochs}.")
        if not 0 < self.top_p <= 1 or not 0 <= self.gamma <= 1 or not 0 <= self.lam <= 1:
            raise ValueError(f"top_p must be in (0, 1], gamma and lam in [0, 1]; got {self.top_p}, {self.gamma}, {self.lam}.")
