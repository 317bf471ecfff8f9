"""Generation (causal LM) path of [`TokenLevelRLTrainer`]: rollout buffering, advantages and the clipped loss.

`TokenLevelRLTrainer` inherits this mixin; `__init__` calls `_init_generation` when the model can generate, and
`compute_loss` calls `_generation_loss`. Everything else is a Trainer hook that does nothing new for token
classifiers (`self.task != "generation"` falls through to `super()`).

How a rollout batch meets Trainer (the same scheme as TRL's GRPO `_prepare_inputs` buffering):

- The dataloader yields *rollout batches* of `per_device_train_batch_size x gradient_accumulation_steps` prompts,
  and the sampler repeats each one `num_ppo_epochs x gradient_accumulation_steps` times (`RepeatSampler`).
- `_prepare_inputs` samples K completions per prompt on the first of those calls, scores them, computes
  advantages, and buffers the rollout as `gradient_accumulation_steps` micro-batches of
  `per_device_train_batch_size` prompts x K completions; the following calls return buffered micro-batches.
  So one pass over a rollout batch is one optimizer step, and `num_ppo_epochs` passes reuse it.

One step (`_generation_loss`; equations in `docs/generation.md`):

    r[t]   = sum_i w_i(t) reward_i[t]  (- kl_coef (log pi_old[t] - log pi_ref[t])   if kl_placement == "reward")
             (or normalised / constrained: `reward_combination`, multi_objective.py)
    A[t]   = G[t] - b[t]  with G the discounted return-to-go and b the leave-one-out group baseline, or GAE
    ratio  = exp(log pi_tau(a_t) - log pi_old(a_t))
    loss   = [ rl_coef(t) sum_t max(-A ratio, -A clip(ratio)) + kl_coef sum_t k3[t] (kl_placement == "loss")
               - entropy_coef sum_t H[t] + vf_coef sum_t clipped value loss (gae) ] / N_tokens

Loss normalisation: Trainer counts `num_items_in_batch` from `labels`, which a rollout does not have, so the
rollout counts the active completion tokens itself. N_tokens is the number of active completion tokens of the
whole rollout batch (= all micro-batches of the optimizer step) summed over processes and divided by the number
of processes (DDP averages gradients). Every micro-batch divides its token sum by this same number, so an
optimizer step minimises the mean over all its completion tokens however it is split into micro-batches and
processes; long completions weigh more than short ones (token-level mean, as DAPO and Dr. GRPO argue).
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
from trl.trainer.utils import RepeatSampler

from ..core import disable_dropout, exact_entropy, masked_sum, masked_whiten
from ..kl_control import make_kl_controller
from ..rewards.base import resolve_reward_weights
from ..rewards.completion import compute_completion_rewards
from .advantages import (
    clipped_policy_loss,
    clipped_value_loss,
    discounted_returns,
    explained_variance,
    generalized_advantages,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
)
from .rollout import eos_ids, policy_forward, sample_completions, token_logprobs, tokenize_prompts
from .value_head import VALUE_HEAD_FILE, ValueHead


def is_generative_model(model) -> bool:
    """True for causal LMs (given as a model, possibly PEFT-wrapped, or as a name/path)."""
    if isinstance(model, str):
        from transformers import AutoConfig

        return any(a.endswith("ForCausalLM") for a in (AutoConfig.from_pretrained(model).architectures or []))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__name__.endswith("ForCausalLM")


def _rows(features: list[dict]) -> list[dict]:
    """Collator of the generation path: keep the dataset rows as they are (prompts are tokenized at rollout)."""
    return features


class GenerationTrainerMixin:
    task = "token_classification"

    # ------------------------------------------------------------------ set-up
    def _init_generation(
        self, model, reward_funcs: Sequence[Callable] | None, args, train_dataset, eval_dataset, processing_class,
        reward_weights, peft_config, callbacks, optimizers,
    ) -> None:
        if isinstance(model, str):
            kwargs = dict(args.model_init_kwargs or {}, trust_remote_code=args.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(model, **kwargs)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(model.config._name_or_path)
        if processing_class.pad_token_id is None:
            processing_class.pad_token = processing_class.eos_token
        if not reward_funcs:
            raise ValueError("A causal LM needs reward_funcs=[...]: callables (prompts, completions, completion_ids, **kw).")
        if eval_dataset is not None:
            raise ValueError(
                "eval_dataset is not supported for generation: evaluate by sampling with `generate` and scoring the "
                "text (see recipes/summarize_lora.py), and pass eval_dataset=None."
            )
        if train_dataset is not None and args.prompt_column not in train_dataset.column_names:
            raise ValueError(
                f"The train dataset has no {args.prompt_column!r} column (columns: {train_dataset.column_names}); "
                "set prompt_column in TokenLevelRLConfig."
            )
        if args.disable_dropout:
            disable_dropout(model)
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        if args.advantage_estimator == "gae":
            model.value_head = self._value_head_for(model)
            # The value head runs on the hidden states outside the DDP forward. With find_unused_parameters, DDP marks
            # its parameters unused at the end of the forward and then fails when their gradients arrive ("Expected
            # to mark a variable ready only once"); without it, their gradients are averaged like any other.
            if args.ddp_find_unused_parameters:
                raise ValueError(
                    "advantage_estimator='gae' cannot run with ddp_find_unused_parameters=True (the value head is "
                    "applied outside the DDP forward): leave ddp_find_unused_parameters unset or set it to False."
                )
            args.ddp_find_unused_parameters = False
        self.reward_funcs = list(reward_funcs)
        self.reward_weights = resolve_reward_weights(self.reward_funcs, reward_weights, args.reward_weights)
        self.task = "generation"
        self.label_list = None
        Trainer.__init__(
            self, model=model, args=args, data_collator=_rows, train_dataset=train_dataset,
            processing_class=processing_class, callbacks=callbacks, optimizers=optimizers,
        )
        self.loss_is_scaled_for_ga = True  # the loss is already divided by the step's token count
        self.ref_model = None
        if args.kl_coef > 0 and not hasattr(self.accelerator.unwrap_model(self.model), "disable_adapter"):
            self.ref_model = copy.deepcopy(self.accelerator.unwrap_model(self.model)).eval().requires_grad_(False)
        self.kl_controller = make_kl_controller(args.kl_coef, args.target_kl, args.kl_horizon)
        self._init_dynamic_rewards()
        self._check_generation_dynamic_rewards()
        self._metrics = {"train": defaultdict(lambda: [0.0, 0.0])}
        self._buffered_rollout, self._rollout_calls = None, 0

    @staticmethod
    def _value_head_for(model) -> ValueHead:
        """The value head saved beside the model (`value_head.safetensors` in its folder), else a new zero head."""
        folder = str(getattr(model.config, "_name_or_path", "") or "")
        if folder and os.path.isfile(os.path.join(folder, VALUE_HEAD_FILE)):
            return ValueHead.from_pretrained(folder)
        return ValueHead(model.config.get_text_config().hidden_size)

    # ------------------------------------------------------------------ data: repeat each rollout batch
    def get_train_dataloader(self):
        if self.task != "generation":
            return super().get_train_dataloader()
        return self._get_dataloader(
            dataset=self.train_dataset, description="Training",
            batch_size=self._train_batch_size * self.args.gradient_accumulation_steps,
            sampler_fn=self._get_train_sampler, is_training=True,
        )

    def _get_train_sampler(self, dataset=None):
        if self.task != "generation":
            return super()._get_train_sampler(dataset)
        args = self.args
        return RepeatSampler(
            data_source=dataset if dataset is not None else self.train_dataset, mini_repeat_count=1,
            batch_size=self._train_batch_size * args.gradient_accumulation_steps * args.world_size,
            repeat_count=args.num_ppo_epochs * args.gradient_accumulation_steps, shuffle=True, seed=args.seed,
        )

    def _prepare_inputs(self, inputs):
        if self.task != "generation" or not self.model.training:
            return super()._prepare_inputs(inputs)
        accumulation = self.args.gradient_accumulation_steps
        if self._rollout_calls % (accumulation * self.args.num_ppo_epochs) == 0 or self._buffered_rollout is None:
            self._buffered_rollout = self._make_rollout(inputs)
        batch = self._buffered_rollout[self._rollout_calls % accumulation]
        self._rollout_calls += 1
        return batch

    # ------------------------------------------------------------------ rollout: sample, score, advantages
    @torch.no_grad()
    def _sample_and_score(self, rows: list[dict], reward_weights: Sequence[float]):
        """`num_samples` completions of each row's prompt from the current policy, scored by every reward function
        (which sees the row's other columns). Returns `(rollout, total, per_reward)` as in
        [`~trl_tokenlevel.rewards.completion.compute_completion_rewards`], with `total` weighted by `reward_weights`.
        Used for training rollouts and for the online path's held-out evaluation."""
        args, tokenizer, num_samples = self.args, self.processing_class, self.args.num_samples
        unwrapped = self.accelerator.unwrap_model(self.model)
        prompts = [row[args.prompt_column] for row in rows]
        extras = {k: [row[k] for row in rows for _ in range(num_samples)] for k in rows[0] if k != args.prompt_column}
        prompt_ids, prompt_mask = tokenize_prompts(prompts, tokenizer, args.max_prompt_length, self.accelerator.device)
        rollout = sample_completions(
            unwrapped, prompt_ids, prompt_mask, num_samples, temperature=args.temperature, top_p=args.top_p,
            top_k=args.top_k, max_new_tokens=args.max_new_tokens, eos_token_ids=eos_ids(tokenizer, unwrapped),
            pad_token_id=tokenizer.pad_token_id,
        )
        mask = rollout.completion_mask  # (N, T)
        lengths = mask.sum(1).tolist()
        completion_ids = [row[:n].tolist() for row, n in zip(rollout.completion_ids, lengths)]
        total, per_reward = compute_completion_rewards(
            self.reward_funcs, reward_weights, [p for p in prompts for _ in range(num_samples)],
            tokenizer.batch_decode(completion_ids, skip_special_tokens=True), completion_ids, tuple(mask.shape),
            args.sequence_reward_placement, mask.device,
            prompt_ids=[row[m.bool()].tolist() for row, m in zip(rollout.prompt_ids, rollout.prompt_mask)],
            trainer_state=self.state, **extras,
        )
        return rollout, total, per_reward

    @torch.no_grad()
    def _make_rollout(self, rows: list[dict]) -> list[dict]:
        args, num_samples = self.args, self.args.num_samples
        unwrapped = self.accelerator.unwrap_model(self.model)
        rollout, _, per_reward = self._sample_and_score(rows, self.reward_weights)
        batch = dict(vars(rollout))
        mask = rollout.completion_mask  # (N, T)
        rewards = self._combine_completion_rewards(per_reward)  # (N, T): weights, normalisation, multipliers
        num_completions, num_tokens = mask.shape[0], mask.sum()
        for name, (values, applies, _) in per_reward.items():
            self._record(f"rewards/{name}/mean", values.sum(1)[applies].sum(), applies.sum())
        self._record("reward", rewards.sum(), num_completions)
        self._record("completion_length", num_tokens, num_completions)
        if args.kl_coef > 0:
            batch["ref_logprobs"] = self._reference_logprobs(batch)
            kl = kl_k1(rollout.old_logprobs, batch["ref_logprobs"]) * mask  # (N, T)
            self._record("kl", kl.sum(), num_tokens)
            self._record("kl_coef", self.kl_controller.value, 1)
            if args.kl_placement == "reward":
                rewards = rewards - self.kl_controller.value * kl
        if args.advantage_estimator == "gae":
            _, hidden = policy_forward(self.model, batch, output_hidden_states=True)
            batch["old_values"] = unwrapped.value_head(hidden) * mask
            advantages, batch["returns"] = generalized_advantages(rewards, batch["old_values"], mask, args.gamma, args.lam)
        else:
            returns = discounted_returns(rewards, mask, args.gamma)
            advantages = returns - leave_one_out_baseline(returns, mask, num_samples, args.group_baseline)
        if args.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        batch["advantages"] = advantages
        self._record("advantages/mean", masked_sum(advantages, mask), num_tokens)
        self._record("advantages/sq_mean", masked_sum(advantages**2, mask), num_tokens)
        # The optimizer step's token count over all micro-batches and processes, divided by the number of processes
        # because DDP averages the gradients (see the module docstring).
        total = self.accelerator.reduce(num_tokens.float().reshape(1), reduction="sum")
        batch["num_tokens"] = (total / self.accelerator.num_processes).reshape(())
        return self._split(batch, self.args.gradient_accumulation_steps)

    @staticmethod
    def _split(batch: dict, parts: int) -> list[dict]:
        size = batch["completion_ids"].shape[0] // parts  # whole prompt groups: K divides it
        return [
            {k: (v if v.dim() == 0 else v[i * size : (i + 1) * size]) for k, v in batch.items()} for i in range(parts)
        ]

    def _reference_logprobs(self, batch: dict) -> torch.Tensor:
        unwrapped = self.accelerator.unwrap_model(self.model)
        if self.ref_model is not None:
            logits, _ = policy_forward(self.ref_model, batch)
        else:  # PEFT: the base model is the reference
            was_training = unwrapped.training
            unwrapped.eval()
            try:
                with unwrapped.disable_adapter():
                    logits, _ = policy_forward(unwrapped, batch)
            finally:
                unwrapped.train(was_training)
        return token_logprobs(logits, batch["completion_ids"], self.args.temperature) * batch["completion_mask"]

    # ------------------------------------------------------------------ loss
    def _generation_loss(self, model, inputs: dict) -> torch.Tensor:
        args = self.args
        mask = inputs["completion_mask"]
        num_tokens = mask.sum()
        logits, hidden = policy_forward(model, inputs, output_hidden_states=args.advantage_estimator == "gae")
        logprobs = token_logprobs(logits, inputs["completion_ids"], args.temperature)  # (N, T)
        policy_loss, clipped = clipped_policy_loss(logprobs, inputs["old_logprobs"], inputs["advantages"], args.cliprange)
        loss_sum = self._policy_coef() * masked_sum(policy_loss, mask)
        entropy = exact_entropy(logits, args.temperature)  # (N, T)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * masked_sum(entropy, mask)
        if args.kl_coef > 0 and args.kl_placement == "loss":
            k3 = kl_k3(logprobs, inputs["ref_logprobs"])
            loss_sum = loss_sum + self.kl_controller.value * masked_sum(k3, mask)
            self._record("kl_k3", masked_sum(k3.detach(), mask), num_tokens)
        if args.advantage_estimator == "gae":
            values = self.accelerator.unwrap_model(model).value_head(hidden)  # (N, T)
            value_loss = clipped_value_loss(values, inputs["old_values"], inputs["returns"], args.cliprange_value)
            loss_sum = loss_sum + args.vf_coef * masked_sum(value_loss, mask)
            self._record("value_loss", masked_sum(value_loss.detach(), mask), num_tokens)
            self._record("explained_variance", explained_variance(values.detach(), inputs["returns"], mask), 1)
        log_ratio = (logprobs - inputs["old_logprobs"]).detach()
        self._record("policy_loss", masked_sum(policy_loss.detach(), mask), num_tokens)
        self._record("approx_kl", masked_sum(torch.exp(log_ratio) - 1 - log_ratio, mask), num_tokens)
        self._record("clip_fraction", masked_sum(clipped.float(), mask), num_tokens)
        self._record("entropy", masked_sum(entropy.detach(), mask), num_tokens)
        return loss_sum / inputs["num_tokens"].clamp(min=1.0)

    # ------------------------------------------------------------------ dynamic rewards (docs/dynamic_rewards.md)
    def _check_generation_dynamic_rewards(self) -> None:
        """Reject the dynamic-reward settings that mean nothing for generation, naming the fix."""
        if self.args.ce_coef_schedule is not None:
            raise ValueError(
                "ce_coef_schedule is set, but a causal LM is trained from rewards alone (there are no target labels, "
                "so no CE term): drop ce_coef_schedule, or schedule the policy term with rl_coef_schedule."
            )
        for constraint in self.reward_combiner.constraints:
            if constraint.statistic != "mean":
                raise ValueError(
                    f"Constraint on {constraint.reward!r} asks for statistic {constraint.statistic!r}; on the generation "
                    "path a constraint measures the mean of the reward where it is placed ('statistic': 'mean'). For a "
                    "rate (e.g. a pass rate), return 1.0/0.0 per completion with sequence_reward_placement='last'."
                )

    def _combine_completion_rewards(self, per_reward: dict) -> torch.Tensor:
        """`(N, T)` rewards of one rollout through `self.reward_combiner` at the current step.

        Each reward counts only on the tokens that carry it (`support` of `compute_completion_rewards`): all tokens
        of a dense or spread reward, the last token of a sequence reward placed there, nothing where it returned
        `None`. Running statistics and constraint measurements use those tokens; the combiner's `end_step` (run by
        `DynamicRewardsCallback` after every optimizer step) moves the multipliers.
        """
        values = {name: v for name, (v, _, _) in per_reward.items()}
        supports = {name: s for name, (_, _, s) in per_reward.items()}
        combiner = self.reward_combiner
        measurements = combiner.measure(values, supports, statistics=None)  # "mean" only (checked at init)
        combiner.observe(values, supports, measurements)
        return combiner.combine(values, supports, self.state.global_step)

    def _policy_coef(self) -> float:
        """Weight of the clipped policy term at this step: `rl_coef`, or `rl_coef_schedule` when set. While it is 0
        rollouts are still sampled and scored, so a value head (`gae`) or a KL term in the loss keeps training."""
        return self.loss_coefficients()["rl"]

    # ------------------------------------------------------------------ resuming: the value head from a checkpoint
    def _load_value_head_from_checkpoint(self, folder: str) -> None:
        """Before `train(resume_from_checkpoint=...)`: the value head back from `folder/value_head.safetensors`.
        Trainer restores the model's own weights and the optimizer (which holds the head's parameters); the head
        lives outside the model's files, so it is restored here."""
        head = getattr(self.accelerator.unwrap_model(self.model), "value_head", None)
        if head is None:
            return
        path = os.path.join(folder, VALUE_HEAD_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{folder} has no {VALUE_HEAD_FILE}, but this run trains a value head (advantage_estimator='gae'): "
                "resume from a checkpoint written by a 'gae' run, or start without resume_from_checkpoint."
            )
        head.load_state_dict(ValueHead.from_pretrained(folder).state_dict())

    # ------------------------------------------------------------------ saving: the value head beside the model
    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        unwrapped = self.accelerator.unwrap_model(self.model)
        head = unwrapped._modules.pop("value_head", None)  # keep the model folder a plain HF checkpoint
        try:
            super()._save(output_dir, state_dict=state_dict)
        finally:
            if head is not None:
                unwrapped.value_head = head
        if head is not None and self.args.should_save:
            head.save_pretrained(output_dir if output_dir is not None else self.args.output_dir)
