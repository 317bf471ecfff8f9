"""`TokenLevelRLTrainer`: a `transformers.Trainer` whose actions are tokens and whose rewards are per token.

The trainer picks the task from the model: token classifiers take the path below; causal LMs take the generation
path (rollout with `generate`, dense completion rewards, leave-one-out or GAE advantages), implemented in
`trl_tokenlevel/generation/trainer_mixin.py` and documented in `docs/generation.md`.

One training step for a token classifier (equations map to `_token_classification_loss`):

    logits            = f_theta(x)                                   # (B, T, C)
    a[k]  ~ softmax(logits / tau)  for k < K;  g = argmax logits        # (K, B, T), (B, T)
    r[k]  = sum_i w_i(t) * reward_i(a[k], y, mask)                     # (K, B, T), zero off the word positions;
                                                                      # or normalised / constrained: multi_objective.py
    A[k]  = r[k] - baseline                                           # greedy self-critic, leave-one-out, ...
    PG    = -(1/K) sum_k sum_{(b,t) in mask} A[k,b,t] log pi_tau(a[k,b,t] | x)
    loss  = (rl_coef PG + ce_coef CE + kl_coef KL - entropy_coef H) / N

where CE, KL (exact, over the C labels) and H (exact) are sums over active tokens and N is the number of active
tokens in the whole optimizer step (all gradient-accumulation micro-batches, all processes), so splitting a batch
as 1x8 or 2x4 gives the same update.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from transformers import AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel, Trainer

from .collator import MODEL_INPUT_KEYS, TokenClassificationRLCollator
from .config import TokenLevelRLConfig
from .generation.trainer_mixin import GenerationTrainerMixin, is_generative_model
from .hub_mixin import HubExportMixin
from .core import (
    disable_dropout,
    action_logprobs,
    exact_entropy,
    exact_kl,
    masked_sum,
    policy_gradient_sum,
    sample_actions,
    token_advantages,
    token_cross_entropy,
)
from .dynamic import (
    DynamicRewardsCallback,
    build_coef_schedules,
    build_reward_combiner,
    load_dynamic_state_file,
    unique_reward_names,
)
from .export import is_peft_model
from .kl_control import make_kl_controller
from .quantization import prepare_quantized_model, resolve_model_init_kwargs
from .reference_cache import REFERENCE_INDEX_COLUMN, ReferenceLogprobCache
from .rewards import EntitySpanReward, TokenAccuracyReward, compute_token_rewards, reward_name
from .rewards.base import resolve_reward_weights


logger = logging.getLogger(__name__)

FORWARD_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _label_list_from(dataset, model) -> list[str] | None:
    features = getattr(dataset, "features", None)
    if features is not None and "ner_tags" in features and hasattr(features["ner_tags"], "feature"):
        names = getattr(features["ner_tags"].feature, "names", None)
        if names:
            return list(names)
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if id2label and not all(str(v).startswith("LABEL_") for v in id2label.values()):
        return [id2label[i] for i in range(len(id2label))]
    return None


class TokenLevelRLTrainer(HubExportMixin, GenerationTrainerMixin, Trainer):
    """Trainer for token-level RL. See the module docstring for the step and [`TokenLevelRLConfig`] for options.

    Args:
        model (`PreTrainedModel` or `str`): an `AutoModelForTokenClassification` model, or a name/path to load one
            (with `config.model_init_kwargs`; never with remote code unless `config.trust_remote_code`).
        reward_funcs (`Sequence[Callable]`, *optional*): per-token rewards (interface in `trl_tokenlevel/rewards/base.py`).
            Defaults to `[EntitySpanReward(), TokenAccuracyReward()]` with weights `[1.0, 0.5]`.
        args ([`TokenLevelRLConfig`], *optional*): training configuration.
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): either tokenized (`input_ids`, `labels`) or raw
            (`tokens`, `ner_tags`); raw datasets are tokenized with `processing_class` (first sub-token labelled).
        processing_class (`PreTrainedTokenizerBase`, *optional*): loaded from the model's path if not given.
        reward_weights (`Sequence[float]`, *optional*): overrides `args.reward_weights`.
        peft_config (`peft.PeftConfig`, *optional*): wraps the model with PEFT; the KL reference is then the base
            model with adapters disabled.
        label_list (`list[str]`, *optional*): label names by id. Read from the dataset's `ner_tags` ClassLabel or the
            model's `id2label` if not given.
        compute_metrics (`Callable`, *optional*): defaults to entity-level seqeval scores plus token accuracy.
    """

    _tag_names = ["trl", "trl-tokenlevel", "token-level-rl"]

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None = None,
        args: TokenLevelRLConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_weights: Sequence[float] | None = None,
        peft_config=None,
        label_list: Sequence[str] | None = None,
        data_collator=None,
        compute_metrics: Callable | None = None,
        callbacks=None,
        optimizers=(None, None),
        preprocess_logits_for_metrics: Callable | None = None,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = TokenLevelRLConfig(f"{str(name).split('/')[-1]}-token-level-rl")
        if is_generative_model(model):  # causal LM: the generation path (trl_tokenlevel/generation/trainer_mixin.py)
            return self._init_generation(
                model, reward_funcs, args, train_dataset, eval_dataset, processing_class, reward_weights,
                peft_config, callbacks, optimizers,
            )
        label_list = list(label_list) if label_list is not None else _label_list_from(train_dataset, model)
        if isinstance(model, str):
            model = self._load_model(model, args, label_list)
        if label_list is None:
            raise ValueError(
                "Could not find the label names: pass `label_list=[...]`, use a dataset whose `ner_tags` column is a "
                "ClassLabel, or a model whose config has a real `id2label`."
            )
        if model.config.num_labels != len(label_list):
            raise ValueError(
                f"The model has {model.config.num_labels} labels but label_list has {len(label_list)}: {label_list}."
            )
        self.label_list = label_list
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(model.config._name_or_path)
        if args.disable_dropout:
            disable_dropout(model)
        model = prepare_quantized_model(model, peft_config, args.gradient_checkpointing)
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)

        if reward_funcs is None:
            reward_funcs = [EntitySpanReward(), TokenAccuracyReward()]
            reward_weights = reward_weights or [1.0, 0.5]
        self.reward_funcs = list(reward_funcs)
        self.reward_weights = resolve_reward_weights(self.reward_funcs, reward_weights, args.reward_weights)

        train_dataset = self._tokenize_if_raw(train_dataset, processing_class, args)
        if args.precompute_reference_logprobs and train_dataset is not None:
            train_dataset = train_dataset.map(
                lambda _, index: {REFERENCE_INDEX_COLUMN: index}, with_indices=True, desc="Indexing for the cache"
            )
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: self._tokenize_if_raw(v, processing_class, args) for k, v in eval_dataset.items()}
        else:
            eval_dataset = self._tokenize_if_raw(eval_dataset, processing_class, args)
        if data_collator is None:
            data_collator = TokenClassificationRLCollator(processing_class)
        if compute_metrics is None:
            from .metrics import build_compute_metrics, preprocess_logits_for_metrics as _argmax

            compute_metrics = build_compute_metrics(label_list)
            preprocess_logits_for_metrics = preprocess_logits_for_metrics or _argmax

        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        # Our loss divides by the active-token count of the whole optimizer step: ask Trainer to count it
        # (`num_items_in_batch`) and not to divide by the accumulation steps again.
        self.model_accepts_loss_kwargs = True
        self.loss_is_scaled_for_ga = True
        self.ref_model = None
        if args.kl_coef > 0 and not is_peft_model(self.model):
            self.ref_model = self._frozen_copy(self.model)
        self._reference_was_reset = False
        self.reference_cache: ReferenceLogprobCache | None = None
        self.kl_controller = make_kl_controller(args.kl_coef, args.target_kl, args.kl_horizon)
        self._init_dynamic_rewards()
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(lambda: [0.0, 0.0])}
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ------------------------------------------------------------------ set-up helpers
    def _init_dynamic_rewards(self) -> None:
        """Reward combiner (weights, schedules, normalisation, constraints), CE/RL schedules and their callback."""
        def reduce_across_processes(values):
            return self.accelerator.reduce(values.to(self.args.device), reduction="sum").cpu()

        reduce = reduce_across_processes if self.accelerator.num_processes > 1 else None
        self.reward_names = unique_reward_names([reward_name(f) for f in self.reward_funcs])
        self.reward_combiner = build_reward_combiner(self.args, self.reward_names, self.reward_weights, reduce)
        self.coef_schedules = build_coef_schedules(self.args)
        self.add_callback(DynamicRewardsCallback(self))

    @staticmethod
    def _load_model(name: str, args: TokenLevelRLConfig, label_list: Sequence[str] | None) -> PreTrainedModel:
        kwargs = dict(args.model_init_kwargs or {})
        kwargs.setdefault("load_in_8bit", args.load_in_8bit)
        kwargs.setdefault("load_in_4bit", args.load_in_4bit)
        kwargs = resolve_model_init_kwargs(kwargs, use_cpu=args.use_cpu)
        kwargs.setdefault("use_safetensors", True)
        kwargs["trust_remote_code"] = args.trust_remote_code
        if label_list is not None:
            kwargs.setdefault("num_labels", len(label_list))
            kwargs.setdefault("id2label", dict(enumerate(label_list)))
            kwargs.setdefault("label2id", {n: i for i, n in enumerate(label_list)})
        return AutoModelForTokenClassification.from_pretrained(name, **kwargs)

    def prepare_dataset(self, dataset):
        """Tokenizes a raw `tokens`/`ner_tags` dataset the way the trainer does for its own datasets (first
        sub-token labelled, `max_length` truncation counted in a warning); tokenized datasets pass through."""
        return self._tokenize_if_raw(dataset, self.processing_class, self.args)

    @staticmethod
    def _tokenize_if_raw(dataset, tokenizer, args: TokenLevelRLConfig):
        if dataset is None or "input_ids" in getattr(dataset, "column_names", ["input_ids"]):
            return dataset
        from .data import prepare_token_classification_dataset

        return prepare_token_classification_dataset(
            dataset, tokenizer, max_length=args.max_length, label_all_tokens=args.label_all_tokens, remove_columns=False
        )

    def _frozen_copy(self, model: nn.Module) -> nn.Module:
        reference = copy.deepcopy(self.accelerator.unwrap_model(model))
        reference.eval()
        for parameter in reference.parameters():
            parameter.requires_grad_(False)
        return reference.to(self.args.device)

    # ------------------------------------------------------------------ the step
    def loss_coefficients(self) -> dict[str, float]:
        """`{"ce": ..., "rl": ...}` at the current optimizer step (constants unless `*_coef_schedule` is set)."""
        return {name: float(schedule(self.state.global_step)) for name, schedule in self.coef_schedules.items()}

    def rl_active(self) -> bool:
        """Whether the RL term is on at the current step (see `rl_start_step` / `rl_start_epoch`, `rl_coef_schedule`)."""
        if self.loss_coefficients()["rl"] == 0:
            return False
        if self.args.rl_start_epoch is not None:
            return (self.state.epoch or 0.0) >= self.args.rl_start_epoch
        return self.state.global_step >= self.args.rl_start_step

    @torch.no_grad()
    def _reference_logits(self, model: nn.Module, forward_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.ref_model is not None:
            return self.ref_model(**forward_inputs).logits
        unwrapped = self.accelerator.unwrap_model(model)
        was_training = unwrapped.training
        unwrapped.eval()  # no dropout in the reference
        try:
            with unwrapped.disable_adapter():
                return unwrapped(**forward_inputs).logits
        finally:
            unwrapped.train(was_training)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.task == "generation":
            return self._generation_loss(model, inputs)
        labels = inputs["labels"]
        forward_inputs = {k: inputs[k] for k in FORWARD_KEYS if k in inputs}
        extras = {k: v for k, v in inputs.items() if k not in MODEL_INPUT_KEYS}
        reference_index = extras.pop(REFERENCE_INDEX_COLUMN, None)
        logits = model(**forward_inputs).logits
        logits = logits[:, -labels.shape[1] :]  # prompt tuning prepends virtual tokens: keep the real positions
        if not model.training:
            mask = labels != -100
            loss = masked_sum(token_cross_entropy(logits, labels), mask) / mask.sum().clamp(min=1)
            return (loss, {"logits": logits}) if return_outputs else loss
        if self.args.reset_reference_at_rl_start and self.rl_active() and not self._reference_was_reset:
            self.ref_model = self._frozen_copy(model)  # KL from now on: to the warmed-up model
            self._reference_was_reset = True
        ref_logits = None
        if self.args.kl_coef > 0:
            ref_logits = self._cached_or_live_reference(model, forward_inputs, labels, reference_index)
        loss = self._token_classification_loss(model, logits, labels, ref_logits, extras, num_items_in_batch)
        return (loss, {"logits": logits}) if return_outputs else loss

    def _cached_or_live_reference(self, model, forward_inputs, labels, reference_index) -> torch.Tensor:
        if reference_index is None:
            return self._reference_logits(model, forward_inputs)[:, -labels.shape[1] :]
        if self.reference_cache is None:
            self.reference_cache = ReferenceLogprobCache.build(
                lambda inputs: self._reference_logits(model, inputs), self.train_dataset, self.data_collator,
                self.args.per_device_eval_batch_size, labels.device,
            )
            self.ref_model = None  # a frozen copy has served its purpose; free it
        return self.reference_cache.lookup(reference_index, labels, len(self.label_list))

    def _token_classification_loss(self, model, logits, labels, ref_logits, extras, num_items_in_batch):
        args = self.args
        mask = labels != -100  # (B, T)
        num_active = mask.sum()
        if num_items_in_batch is None:  # a direct call, outside Trainer's accumulation loop
            num_items_in_batch = num_active
        denominator = torch.as_tensor(num_items_in_batch, device=logits.device).float().clamp(min=1.0)
        if args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            # num_items_in_batch is then the global count, and DDP averages gradients over processes.
            denominator = denominator / self.accelerator.num_processes

        coefs = self.loss_coefficients()
        ce = token_cross_entropy(logits, labels)  # (B, T)
        loss_sum = coefs["ce"] * masked_sum(ce, mask)
        self._record("ce_loss", masked_sum(ce.detach(), mask), num_active)
        entropy = exact_entropy(logits, args.temperature)  # (B, T)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * masked_sum(entropy, mask)
        self._record("entropy", masked_sum(entropy.detach(), mask), num_active)

        if self.rl_active():
            loss_sum = loss_sum + coefs["rl"] * self._policy_gradient_sum(logits, labels, mask, extras)
        if ref_logits is not None:
            kl = exact_kl(logits, ref_logits, args.temperature)
            loss_sum = loss_sum + self.kl_controller.value * masked_sum(kl, mask)
            self._record("kl", masked_sum(kl.detach(), mask), num_active)
        self._record("rl_active", float(self.rl_active()), 1)
        return loss_sum / denominator

    def _policy_gradient_sum(self, logits, labels, mask, extras) -> torch.Tensor:
        args = self.args
        num_samples = args.num_samples
        samples = sample_actions(logits, num_samples, args.temperature)  # (K, B, T)
        greedy = logits.detach().argmax(-1)  # (B, T)
        actions = torch.cat([samples, greedy.unsqueeze(0)])  # (K+1, B, T): one reward call for both
        _, per_reward = compute_token_rewards(
            self.reward_funcs, self.reward_weights, actions, labels, mask, self.label_list,
            trainer_state=self.state, **extras,
        )
        # Running statistics and constraint measurements use the K samples only, never the greedy row.
        sampled_rewards = {name: values[:num_samples] for name, values in per_reward.items()}
        functions = dict(zip(self.reward_names, self.reward_funcs))
        measurements = self.reward_combiner.measure(
            sampled_rewards, mask,
            lambda name: functions[name].statistics(samples, labels, mask, self.label_list, **extras),
        )
        self.reward_combiner.observe(sampled_rewards, mask, measurements)
        total = self.reward_combiner.combine(per_reward, mask, self.state.global_step)  # (K+1, B, T)
        rewards, greedy_rewards = total[:num_samples], total[num_samples]
        advantages = token_advantages(
            rewards, mask, args.baseline, greedy_rewards=greedy_rewards, whiten=args.whiten_advantages
        )
        logprobs = action_logprobs(logits, samples, args.temperature)  # (K, B, T)

        sample_mask = mask.unsqueeze(0).expand_as(rewards)
        num_sampled = sample_mask.sum()
        for name, values in per_reward.items():
            self._record(f"rewards/{name}/mean", masked_sum(values[:num_samples], sample_mask), num_sampled)
        self._record("reward", masked_sum(rewards, sample_mask), num_sampled)
        self._record("reward_greedy", masked_sum(greedy_rewards, mask), mask.sum())
        self._record("advantages/mean", masked_sum(advantages, sample_mask), num_sampled)
        self._record("advantages/sq_mean", masked_sum(advantages**2, sample_mask), num_sampled)
        self._record("sample_greedy_agreement", masked_sum((samples == greedy).float(), sample_mask), num_sampled)
        return policy_gradient_sum(logprobs, advantages, mask)

    # ------------------------------------------------------------------ logging
    def _record(self, key: str, value_sum, count) -> None:
        entry = self._metrics["train"][key]
        entry[0] += float(value_sum)
        entry[1] += float(count)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        is_train_log = not any(k.startswith("eval_") or k.startswith("test_") for k in logs)
        if is_train_log and self._metrics["train"]:
            keys = sorted(self._metrics["train"])
            totals = torch.tensor([self._metrics["train"][k] for k in keys], device=self.args.device)
            totals = self.accelerator.reduce(totals, reduction="sum")  # (n_keys, 2): sums and counts of all ranks
            means = {k: (s / max(c, 1.0)) for k, (s, c) in zip(keys, totals.tolist())}
            if "advantages/sq_mean" in means:
                variance = max(means.pop("advantages/sq_mean") - means["advantages/mean"] ** 2, 0.0)
                means["advantages/std"] = variance**0.5
            if "kl" in means:
                self.kl_controller.update(means["kl"], num_steps=max(self.args.logging_steps, 1))
            logs = {**logs, **means, **self.dynamic_log_values()}
            self._metrics["train"].clear()
        super().log(logs, start_time)

    def dynamic_log_values(self) -> dict[str, float]:
        """Current values of everything that changes during training: reward weights, CE/RL coefficients, KL
        coefficient, Lagrange multipliers, running reward statistics."""
        step = self.state.global_step
        coefs = self.loss_coefficients()
        logs = {"ce_coef": coefs["ce"], "rl_coef": coefs["rl"], "kl_coef": self.kl_controller.value}
        if self.task == "generation":
            del logs["ce_coef"]  # no CE term on the generation path
        logs.update(self.reward_combiner.log_values(step))
        return logs

    # ------------------------------------------------------------------ checkpoints and online learning
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None):
        """[`~transformers.Trainer.train`], plus restoring the KL controller, Lagrange multipliers and running reward
        statistics saved in the checkpoint's `token_level_rl_state.json` (see `dynamic.py`) and, for a generation
        run with a value head, `value_head.safetensors`."""
        if resume_from_checkpoint is not None and resume_from_checkpoint is not False:
            folder = resume_from_checkpoint
            if folder is True:
                from transformers.trainer_utils import get_last_checkpoint

                folder = get_last_checkpoint(self.args.output_dir)
            if folder is not None and not load_dynamic_state_file(self, folder):
                logger.warning(f"{folder} has no token-level RL state file: KL coefficient and multipliers restart.")
            if folder is not None and self.task == "generation":
                self._load_value_head_from_checkpoint(folder)
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval)

    def learn_online(self, stream, **kwargs):
        """Keep learning from a stream of new labelled examples with replay; see [`~trl_tokenlevel.online.learn_online`]."""
        from .online import learn_online

        return learn_online(self, stream, **kwargs)
