"""[`GenerationRLTrainer`]: token-level RL for causal LMs: rollout buffering, advantages and the clipped loss.
Encoder-decoder models use the same class through [`Seq2SeqGenerationRLTrainer`] (`seq2seq.py`), which overrides
the two model-kind hooks, [`encode_prompts`] and [`policy_logits`].

Model preparation, rewards and their combination, the KL controller, the reference, logging and export come from
the shared base ([`TokenLevelRLTrainer`]); this class adds the rollout and the loss.

How a rollout batch meets Trainer (the same scheme as TRL's GRPO `_prepare_inputs` buffering):

- The dataloader yields *rollout batches* of `per_device_train_batch_size x gradient_accumulation_steps` prompts,
  and the sampler repeats each one `num_ppo_epochs x gradient_accumulation_steps` times (`RepeatSampler`).
- `_prepare_inputs` samples K completions per prompt on the first of those calls, scores them, computes
  advantages, and buffers the rollout as `gradient_accumulation_steps` micro-batches of
  `per_device_train_batch_size` prompts x K completions; the following calls return buffered micro-batches.
  So one pass over a rollout batch is one optimizer step, and `num_ppo_epochs` passes reuse it.

One step (`compute_loss`; equations in `docs/generation.md`):

    r[t]   = sum_i w_i(t) reward_i[t]  (- kl_coef (log pi_old[t] - log pi_ref[t])   if kl_placement == "reward")
             (or normalised / constrained: `reward_combination`, dynamic/combiner.py)
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

import os
from collections.abc import Callable, Mapping, Sequence

import torch
from transformers import PreTrainedModel
from trl.trainer.utils import RepeatSampler, split_tensor_dict

from ..core import exact_entropy, masked_sum, masked_whiten
from ..rewards.completion import compute_completion_rewards
from ..trainer import TokenLevelRLTrainer
from .advantages import (
    approx_kl,
    clipped_policy_loss,
    clipped_value_loss,
    discounted_returns,
    explained_variance,
    generalized_advantages,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
)
from .config import GenerationRLConfig
from .rollout import eos_ids, policy_forward, sample_completions, token_logprobs, tokenize_prompts
from .value_head import VALUE_HEAD_FILE, ValueHead


def keep_rows(features: list[dict]) -> list[dict]:
    """Collator of the generation path: keep the dataset rows as they are (prompts are tokenized at rollout)."""
    return features


class GenerationRLTrainer(TokenLevelRLTrainer):
    """Token-level RL for `AutoModelForCausalLM` models. See the module docstring for the step and
    [`GenerationRLConfig`] for the options.

    Args:
        model (`PreTrainedModel` or `str`): a causal LM, or a name/path to load one (with `model_init_kwargs`,
            whose `load_in_8bit` / `load_in_4bit` keys load it k-bit).
        reward_funcs (`Sequence[Callable]`): completion rewards (interface in `rewards/completion/base.py`).
        args ([`GenerationRLConfig`] or [`TokenLevelRLConfig`], *optional*): training configuration.
        train_dataset (`datasets.Dataset`): rows with a `prompt_column` (text or chat messages); the other columns
            reach the rewards as keyword arguments.
        eval_dataset: not supported (evaluate by sampling; see `recipes/summarize_lora.py` and `evaluate_prompts`).
        processing_class (`PreTrainedTokenizerBase`, *optional*): loaded from the model's path if not given; a
            missing pad token is set to EOS.
        reward_weights (`Sequence[float]`, *optional*): overrides `args.reward_weights`.
        peft_config (`peft.PeftConfig`, *optional*): wraps the model with PEFT (the KL reference is then the base
            model with adapters disabled).
    """

    model_kind = "text-generation"
    config_class = GenerationRLConfig
    coefficient_names = ("rl",)

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None = None,
        args: GenerationRLConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_weights: Sequence[float] | None = None,
        peft_config=None,
        callbacks=None,
        optimizers=(None, None),
    ):
        if not reward_funcs:
            raise ValueError("A generative LM needs reward_funcs=[...]: callables (prompts, completions, completion_ids, **kw).")
        super().__init__(
            model, reward_funcs, args, train_dataset=train_dataset, eval_dataset=eval_dataset,
            processing_class=processing_class, reward_weights=reward_weights, peft_config=peft_config,
            callbacks=callbacks, optimizers=optimizers,
        )
        self._check_constraints()
        self._buffered_rollout, self._rollout_calls = None, 0

    # ------------------------------------------------------------------ set-up hooks
    def prepare_model(self, model, args, peft_config=None):
        model = super().prepare_model(model, args, peft_config)
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
        return model

    def prepare_datasets(self, train_dataset, eval_dataset, processing_class, args):
        if processing_class.pad_token_id is None:
            processing_class.pad_token = processing_class.eos_token
        if eval_dataset is not None:
            raise ValueError(
                "eval_dataset is not supported for generation: evaluate by sampling with `generate` and scoring the "
                "text (see recipes/summarize_lora.py, or `trainer.evaluate_prompts`), and pass eval_dataset=None."
            )
        if train_dataset is not None and args.prompt_column not in train_dataset.column_names:
            raise ValueError(
                f"The train dataset has no {args.prompt_column!r} column (columns: {train_dataset.column_names}); "
                "set prompt_column in the config."
            )
        return train_dataset, eval_dataset

    def default_data_collator(self, processing_class):
        return keep_rows

    @staticmethod
    def _value_head_for(model) -> ValueHead:
        """The value head saved beside the model (`value_head.safetensors` in its folder), else a new zero head."""
        folder = str(getattr(model.config, "_name_or_path", "") or "")
        if folder and os.path.isfile(os.path.join(folder, VALUE_HEAD_FILE)):
            return ValueHead.from_pretrained(folder)
        return ValueHead(model.config.get_text_config().hidden_size)

    def _check_constraints(self) -> None:
        """Reject the constraint statistics that mean nothing for generation, naming the fix."""
        for constraint in self.reward_combiner.constraints:
            if constraint.statistic != "mean":
                raise ValueError(
                    f"Constraint on {constraint.reward!r} asks for statistic {constraint.statistic!r}; on the generation "
                    "path a constraint measures the mean of the reward where it is placed ('statistic': 'mean'). For a "
                    "rate (e.g. a pass rate), return 1.0/0.0 per completion with sequence_reward_placement='last'."
                )

    # ------------------------------------------------------------------ data: repeat each rollout batch
    def get_train_dataloader(self):
        return self._get_dataloader(
            dataset=self.train_dataset, description="Training",
            batch_size=self._train_batch_size * self.args.gradient_accumulation_steps,
            sampler_fn=self._get_train_sampler, is_training=True,
        )

    def _get_train_sampler(self, dataset=None):
        args = self.args
        return RepeatSampler(
            data_source=dataset if dataset is not None else self.train_dataset, mini_repeat_count=1,
            batch_size=self._train_batch_size * args.gradient_accumulation_steps * args.world_size,
            repeat_count=args.num_ppo_epochs * args.gradient_accumulation_steps, shuffle=True, seed=args.seed,
        )

    def _prepare_inputs(self, inputs):
        if not self.model.training:
            return super()._prepare_inputs(inputs)
        accumulation = self.args.gradient_accumulation_steps
        if self._rollout_calls % (accumulation * self.args.num_ppo_epochs) == 0 or self._buffered_rollout is None:
            self._buffered_rollout = self.make_rollout(inputs)
        batch = self._buffered_rollout[self._rollout_calls % accumulation]
        self._rollout_calls += 1
        return batch

    # ------------------------------------------------------------------ model-kind hooks (causal LM here)
    def encode_prompts(self, prompts: list) -> tuple[torch.Tensor, torch.Tensor]:
        """`(prompt_ids, prompt_mask)` of shape `(B, P)` on the device: left-padded, long prompts keep their end."""
        return tokenize_prompts(prompts, self.processing_class, self.args.max_prompt_length, self.accelerator.device)

    def policy_logits(self, model, batch: dict, output_hidden_states: bool = False):
        """`(raw logits (N, T, V), last hidden states (N, T, H) or None)` of `model` at the completion tokens of
        `batch` (the policy, possibly DDP-wrapped, or the reference); see [`policy_forward`]."""
        return policy_forward(model, batch, output_hidden_states)

    # ------------------------------------------------------------------ rollout: sample, score, advantages
    @torch.no_grad()
    def sample_and_score(self, rows: list[dict], reward_weights: Sequence[float] | None = None):
        """`num_samples` completions of each row's prompt from the current policy, scored by every reward function
        (which sees the row's other columns). Returns `(rollout, total, per_reward)` as in
        [`~trl_tokenlevel.rewards.completion.compute_completion_rewards`], with `total` weighted by `reward_weights`
        (default: the trainer's fixed weights). Serves training rollouts and held-out evaluation."""
        args, tokenizer, num_samples = self.args, self.processing_class, self.args.num_samples
        reward_weights = self.reward_weights if reward_weights is None else reward_weights
        unwrapped = self.accelerator.unwrap_model(self.model)
        prompts = [row[args.prompt_column] for row in rows]
        extras = {k: [row[k] for row in rows for _ in range(num_samples)] for k in rows[0] if k != args.prompt_column}
        prompt_ids, prompt_mask = self.encode_prompts(prompts)
        rollout = sample_completions(
            unwrapped, prompt_ids, prompt_mask, num_samples, temperature=args.temperature, top_p=args.top_p,
            top_k=args.top_k, max_new_tokens=args.max_new_tokens, eos_token_ids=eos_ids(tokenizer, unwrapped),
            pad_token_id=tokenizer.pad_token_id, generation_kwargs=args.generation_kwargs,
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
    def make_rollout(self, rows: list[dict]) -> list[dict]:
        """Samples and scores completions of `rows`, computes advantages (and reference log-probs, values), and
        returns the rollout split into `gradient_accumulation_steps` micro-batches for `compute_loss`."""
        args, num_samples = self.args, self.args.num_samples
        unwrapped = self.accelerator.unwrap_model(self.model)
        rollout, _, per_reward = self.sample_and_score(rows)
        batch = dict(vars(rollout))
        mask = rollout.completion_mask  # (N, T)
        rewards = self._combine_completion_rewards(per_reward)  # (N, T): weights, normalisation, multipliers
        num_completions, num_tokens = mask.shape[0], mask.sum()
        for name, (values, applies, _) in per_reward.items():
            self.record_metric(f"rewards/{name}/mean", values.sum(1)[applies].sum(), applies.sum())
        self.record_metric("reward", rewards.sum(), num_completions)
        self.record_metric("completion_length", num_tokens, num_completions)
        if args.kl_coef > 0:
            batch["ref_logprobs"] = self.reference_logprobs(batch)
            kl = kl_k1(rollout.old_logprobs, batch["ref_logprobs"]) * mask  # (N, T)
            self.record_metric("kl", kl.sum(), num_tokens)
            if args.kl_placement == "reward":
                rewards = rewards - self.kl_controller.value * kl
        if args.advantage_estimator == "gae":
            _, hidden = self.policy_logits(self.model, batch, output_hidden_states=True)
            batch["old_values"] = unwrapped.value_head(hidden) * mask
            advantages, batch["returns"] = generalized_advantages(rewards, batch["old_values"], mask, args.gamma, args.lam)
        else:
            returns = discounted_returns(rewards, mask, args.gamma)
            advantages = returns - leave_one_out_baseline(returns, mask, num_samples, args.group_baseline)
        if args.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        batch["advantages"] = advantages
        self.record_metric("advantages/mean", masked_sum(advantages, mask), num_tokens)
        self.record_metric("advantages/sq_mean", masked_sum(advantages**2, mask), num_tokens)
        # The optimizer step's token count over all micro-batches and processes, divided by the number of processes
        # because DDP averages the gradients (see the module docstring).
        total = self.accelerator.reduce(num_tokens.float().reshape(1), reduction="sum")
        batch["num_tokens"] = (total / self.accelerator.num_processes).reshape(())
        # whole prompt groups per micro-batch: K divides N / gradient_accumulation_steps
        return split_tensor_dict(batch, self.args.gradient_accumulation_steps)

    def reference_logprobs(self, batch: dict) -> torch.Tensor:
        """`log pi_ref,tau` of the sampled completion tokens, zero on padding."""
        with self.reference_model() as reference:
            logits, _ = self.policy_logits(reference, batch)
        return token_logprobs(logits, batch["completion_ids"], self.args.temperature) * batch["completion_mask"]

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

    # ------------------------------------------------------------------ loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The clipped token-level loss of one rollout micro-batch (module docstring); `num_items_in_batch` is not
        used: the rollout carries its own token count (`num_tokens`)."""
        args = self.args
        mask = inputs["completion_mask"]
        num_tokens = mask.sum()
        logits, hidden = self.policy_logits(model, inputs, output_hidden_states=args.advantage_estimator == "gae")
        logprobs = token_logprobs(logits, inputs["completion_ids"], args.temperature)  # (N, T)
        policy_loss, clipped = clipped_policy_loss(logprobs, inputs["old_logprobs"], inputs["advantages"], args.cliprange)
        # While the policy coefficient is 0 (rl_coef_schedule) rollouts are still sampled and scored, so a value head
        # (gae) or a KL term in the loss keeps training.
        loss_sum = self.loss_coefficients()["rl"] * masked_sum(policy_loss, mask)
        entropy = exact_entropy(logits, args.temperature)  # (N, T)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * masked_sum(entropy, mask)
        if args.kl_coef > 0 and args.kl_placement == "loss":
            k3 = kl_k3(logprobs, inputs["ref_logprobs"])
            loss_sum = loss_sum + self.kl_controller.value * masked_sum(k3, mask)
            self.record_metric("kl_k3", masked_sum(k3.detach(), mask), num_tokens)
        if args.advantage_estimator == "gae":
            values = self.accelerator.unwrap_model(model).value_head(hidden)  # (N, T)
            value_loss = clipped_value_loss(values, inputs["old_values"], inputs["returns"], args.cliprange_value)
            loss_sum = loss_sum + args.vf_coef * masked_sum(value_loss, mask)
            self.record_metric("value_loss", masked_sum(value_loss.detach(), mask), num_tokens)
            self.record_metric("explained_variance", explained_variance(values.detach(), inputs["returns"], mask), 1)
        self.record_metric("policy_loss", masked_sum(policy_loss.detach(), mask), num_tokens)
        self.record_metric("approx_kl", masked_sum(approx_kl(logprobs.detach(), inputs["old_logprobs"]), mask), num_tokens)
        self.record_metric("clip_fraction", masked_sum(clipped.float(), mask), num_tokens)
        self.record_metric("entropy", masked_sum(entropy.detach(), mask), num_tokens)
        loss = loss_sum / inputs["num_tokens"].clamp(min=1.0)
        return (loss, {"logits": logits}) if return_outputs else loss

    # ------------------------------------------------------------------ checkpoints: the value head beside the model
    def load_extra_state(self, folder: str) -> None:
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

    # ------------------------------------------------------------------ online learning and evaluation
    def check_online(self) -> None:
        """`learn_online` takes one optimizer step per rollout, on the whole rollout."""
        if self.args.num_ppo_epochs != 1 or self.args.gradient_accumulation_steps != 1:
            raise ValueError(
                f"learn_online on a causal LM takes one optimizer step per update on the whole rollout; got "
                f"num_ppo_epochs={self.args.num_ppo_epochs}, gradient_accumulation_steps="
                f"{self.args.gradient_accumulation_steps}. Set both to 1 (lower online_batch_size / replay_batch_size "
                "to save memory)."
            )

    def online_features(self, examples: list[Mapping]) -> list[dict]:
        """The stream's prompt rows as plain dicts; all must hold the prompt column and the same other columns
        (new and replayed rows are scored together)."""
        column = self.args.prompt_column
        rows = [dict(example) for example in examples]
        for index, row in enumerate(rows):
            if column not in row:
                raise ValueError(
                    f"Online example {index} has no {column!r} column (keys: {sorted(row)}); a causal LM learns online "
                    "from prompt rows: set prompt_column in the config or add the column."
                )
            if set(row) != set(rows[0]):
                raise ValueError(
                    f"Online example {index} has columns {sorted(row)} but example 0 has {sorted(rows[0])}: replayed "
                    "and new rows are scored together, so every row (seed_examples included) needs the same columns."
                )
        return rows

    def online_batch(self, features: list[dict]):
        """The rows themselves: `training_step` samples and scores completions of them (one on-policy rollout)."""
        return self.online_features(features), None

    def online_evaluate(self, name: str, dataset) -> None:
        self.log(self.evaluate_prompts(dataset, name))

    @torch.no_grad()
    def evaluate_prompts(self, dataset, name: str = "eval") -> dict[str, float]:
        """Mean reward of `num_samples` sampled completions per held-out prompt row: `eval_<name>_reward` (rewards
        weighted by the current scheduled weights, per completion) and `eval_<name>_rewards/<reward>/mean`."""
        batch_size = self.args.per_device_eval_batch_size
        rows = self.online_features([dataset[i] for i in range(len(dataset))])
        scheduled = self.reward_combiner.weights(self.state.global_step)
        weights = [scheduled[n] for n in self.reward_names]
        sums: dict[str, list[float]] = {"reward": [0.0, 0.0]}
        for start in range(0, len(rows), batch_size):
            _, total, per_reward = self.sample_and_score(rows[start : start + batch_size], weights)
            sums["reward"][0] += float(total.sum())
            sums["reward"][1] += total.shape[0]
            for reward, (values, applies, _) in per_reward.items():
                entry = sums.setdefault(f"rewards/{reward}/mean", [0.0, 0.0])
                entry[0] += float(values.sum(1)[applies].sum())
                entry[1] += float(applies.sum())
        return {f"eval_{name}_{key}": total / max(count, 1.0) for key, (total, count) in sums.items()}
