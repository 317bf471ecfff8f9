"""[`GenerationRLConfig`]: the training arguments of [`GenerationRLTrainer`]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..base_config import TokenLevelRLBaseConfig
from ..rewards.completion.base import PLACEMENTS
from ..dynamic.schedules import parse_json_field
from .advantages import ADVANTAGE_ESTIMATORS, GROUP_BASELINES, KL_PLACEMENTS


GENERATION_KEYS_SET_BY_THE_TRAINER = {
    "do_sample": "rollouts always sample",
    "temperature": "use the temperature field",
    "top_p": "use the top_p field",
    "top_k": "use the top_k field",
    "max_new_tokens": "use the max_new_tokens field",
    "max_length": "use max_new_tokens",
    "num_return_sequences": "use num_samples",
    "num_beams": "beam search does not sample from the policy",
    "eos_token_id": "the trainer passes the tokenizer's and the model's EOS ids",
    "pad_token_id": "the trainer passes the tokenizer's pad id",
    "output_logits": "the trainer needs the logits",
    "return_dict_in_generate": "the trainer needs the dict",
}


@dataclass
class GenerationRLConfig(TokenLevelRLBaseConfig):
    r"""
    Configuration of [`GenerationRLTrainer`]: the shared fields of [`TokenLevelRLBaseConfig`] plus the generation
    ones below. One step minimises, over the completion tokens of the whole optimizer step,

        loss = [ rl_coef * clipped PG + kl_coef * k3 (kl_placement="loss") - entropy_coef * H + vf_coef * value loss ] / N

    (equations in docs/generation.md). There is no cross-entropy term: the generator learns from rewards alone.
    The same config serves causal LMs and encoder-decoder models (`Seq2SeqGenerationRLTrainer`).

    Added parameters: prompts and sampling (`prompt_column`, `max_prompt_length`, `max_new_tokens`, `top_p`,
    `top_k`), rewards and advantages (`sequence_reward_placement`, `advantage_estimator`, `group_baseline`, `gamma`,
    `lam`), KL and PPO (`kl_placement`, `num_ppo_epochs`, `cliprange`, `cliprange_value`, `vf_coef`).
    """

    trainer_name: ClassVar[str] = "GenerationRLTrainer (causal and encoder-decoder LMs)"

    # > Prompts and sampling
    prompt_column: str = field(
        default="prompt",
        metadata={"help": "Dataset column holding the prompts: text, or chat messages rendered with the chat template "
            "(encoder-decoder models: the encoder's input text)."},
    )
    max_prompt_length: int | None = field(
        default=512,
        metadata={
            "help": "Prompts longer than this many tokens are cut: a causal LM keeps their last tokens, an "
            "encoder-decoder model their first (the tokenizer's truncation, special tokens kept). None = no truncation."
        },
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
    generation_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "Further `GenerationConfig` arguments for the rollouts, as TRL's GRPOConfig takes them: e.g. "
            "{'min_new_tokens': 16} (equal lengths, for timing), {'repetition_penalty': 1.1}, {'suppress_tokens': "
            "[...]}. The sampled tokens' log-probs stay those of the plain tempered policy (as with top_p). Keys the "
            "trainer sets itself are refused (see GENERATION_KEYS_SET_BY_THE_TRAINER). A JSON string on the command line."
        },
    )
    # > Rewards and advantages
    sequence_reward_placement: str = field(
        default="last",
        metadata={
            "help": "Where a reward that returns one float per completion goes: 'last' (on the final token; with "
            "gamma=1 every token's return-to-go includes it) or 'spread' (R/L on each of the L tokens)."
        },
    )
    advantage_estimator: str = field(
        default="leave_one_out",
        metadata={
            "help": "'leave_one_out' (critic-free: discounted returns-to-go minus the mean of the other K-1 "
            "completions of the prompt) or 'gae' (PPO: a value head on the last hidden states, the decoder's for "
            "encoder-decoder models, GAE(gamma, lam))."
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
    # > KL and PPO
    kl_placement: str = field(
        default="reward",
        metadata={
            "help": "How the per-token KL to the reference enters: 'reward' subtracts kl_coef * k1 (log pi - log "
            "pi_ref) from each token's reward (Ziegler et al., 2019; PPO-RLHF), 'loss' adds kl_coef * k3 to the "
            "loss (GRPO). Only used when kl_coef > 0."
        },
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
        self.validate_path()

    def validate_path(self) -> None:
        self.generation_kwargs = parse_json_field(self.generation_kwargs, "generation_kwargs")
        if self.generation_kwargs is not None:
            if not isinstance(self.generation_kwargs, dict):
                raise ValueError(f"generation_kwargs must be a dict, got {self.generation_kwargs!r}.")
            taken = {k: v for k, v in GENERATION_KEYS_SET_BY_THE_TRAINER.items() if k in self.generation_kwargs}
            if taken:
                raise ValueError(f"generation_kwargs sets {sorted(taken)}, which the trainer sets itself: {taken}.")
            from transformers import GenerationConfig

            defaults = GenerationConfig()
            unknown = sorted(k for k in self.generation_kwargs if not hasattr(defaults, k))
            if unknown:  # GenerationConfig would keep a misspelt key as an attribute and ignore it
                raise ValueError(f"generation_kwargs: {unknown} are not GenerationConfig arguments (misspelt?).")
            try:
                GenerationConfig(do_sample=True, **self.generation_kwargs).validate(strict=True)
            except (TypeError, ValueError) as error:
                raise ValueError(f"generation_kwargs={self.generation_kwargs!r} is not a valid GenerationConfig: {error}") from error
        choices = {
            "sequence_reward_placement": PLACEMENTS,
            "kl_placement": KL_PLACEMENTS,
            "advantage_estimator": ADVANTAGE_ESTIMATORS,
            "group_baseline": GROUP_BASELINES,
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
