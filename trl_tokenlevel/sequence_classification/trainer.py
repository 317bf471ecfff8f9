"""[`SequenceClassificationRLTrainer`]: RL for sequence classifiers (sentiment, topic, relation extraction).

The action is one label per sequence. One training step (equations map to `sequence_classification_loss` and
`policy_gradient_term`):

    logits = f_theta(x)                                                 # (B, C)
    a[k]  ~ softmax(logits / tau)  for k < K;  g = argmax logits        # (K, B), (B,)
    r[k]  = sum_i w_i(t) * reward_i(a[k], y)                           # (K, B); or normalised / constrained
    A[k]  = r[k] - baseline                                             # greedy self-critic, leave-one-out, ...
    PG    = -(1/K) sum_k sum_b A[k,b] log pi_tau(a[k,b] | x)
    loss  = (rl_coef PG + ce_coef CE + kl_coef KL - entropy_coef H) / N

where CE, KL (exact, over the C labels) and H (exact) are sums over the examples and N is the number of examples in
the whole optimizer step (all gradient-accumulation micro-batches, all processes), so splitting a batch as 1x8 or
2x4 gives the same update. The per-token math of `core.py` and the reward combiner serve unchanged: a sequence is
treated as one position, `(B, C)` logits as `(B, 1, C)`, `(K, B)` rewards as `(K, B, 1)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..core import (
    action_logprobs,
    exact_entropy,
    exact_kl,
    policy_gradient_sum,
    sample_actions,
    token_advantages,
)
from ..metrics.classification import build_classification_compute_metrics
from ..rewards.sequence import CorrectLabelReward, compute_sequence_rewards
from ..supervised import SupervisedRLTrainer
from .config import SequenceClassificationRLConfig

logger = logging.getLogger(__name__)

FORWARD_KEYS = ("input_ids", "attention_mask", "token_type_ids")
MODEL_INPUT_KEYS = (*FORWARD_KEYS, "labels")


@dataclass
class SequenceClassificationRLCollator:
    """Pads the model inputs ([`~transformers.DataCollatorWithPadding`]; `labels` become a `(B,)` tensor) and passes
    every other column through as a plain list, so rewards receive it as a keyword argument."""

    tokenizer: PreTrainedTokenizerBase

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = dict(DataCollatorWithPadding(self.tokenizer)([{k: f[k] for k in MODEL_INPUT_KEYS if k in f} for f in features]))
        batch.update({key: [f[key] for f in features] for key in features[0] if key not in MODEL_INPUT_KEYS})
        return batch


def label_list_from(dataset, model, label_column: str = "label") -> list[str] | None:
    """Label names from the dataset's `label_column` ClassLabel, else from a model's real `id2label` (not `LABEL_i`)."""
    feature = (getattr(dataset, "features", None) or {}).get(label_column)
    if getattr(feature, "names", None):
        return list(feature.names)
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if id2label and not all(str(v).startswith("LABEL_") for v in id2label.values()):
        return [id2label[i] for i in range(len(id2label))]
    return None


def _record(dataset, index: int) -> str:
    """`row 12 (id '8013')`: the row and, when the dataset has one, its own id."""
    key = next((k for k in ("id", "idx") if k in dataset.column_names), None)
    return f"row {index}" + (f" ({key} {dataset[index][key]!r})" if key else "")


def label_ids(dataset, label_column: str, label_list: Sequence[str]) -> list[int]:
    """The gold label id of every row: ClassLabel ids (their names must be `label_list`), label names, or ids.

    Raises:
        `ValueError` naming the first row whose label is unknown (with its `id`/`idx`), and the known labels.
    """
    if label_column not in dataset.column_names:
        raise ValueError(f"The dataset has no label column {label_column!r} (columns: {dataset.column_names}). "
                         "Fix: set `label_column`.")  # fmt: skip
    names = getattr(dataset.features[label_column], "names", None)
    if names is not None and list(names) != list(label_list):
        raise ValueError(
            f"The dataset's {label_column!r} ClassLabel names {names} differ from the label list {list(label_list)}: "
            "ids would mean other classes. Fix: pass `label_list` in the dataset's order."
        )
    index_of = {name: i for i, name in enumerate(label_list)}
    ids = []
    for row, value in enumerate(dataset[label_column]):
        label = index_of.get(value) if isinstance(value, str) else value
        if not isinstance(label, int) or not 0 <= label < len(label_list):
            raise ValueError(
                f"{_record(dataset, row)}: unknown label {value!r} in column {label_column!r}. Fix: use one of the "
                f"{len(label_list)} labels {list(label_list)} (by name or id 0..{len(label_list) - 1})."
            )
        ids.append(label)
    return ids


def tokenize_if_raw(dataset, tokenizer, args: SequenceClassificationRLConfig, label_list: Sequence[str]):
    """Tokenizes a raw dataset (`args.text_column`, optional `args.text_pair_column`, `args.label_column`) into
    `input_ids`/`attention_mask`/`labels`, keeping the other columns for the rewards; texts longer than
    `args.max_length` are truncated and counted in one warning. A tokenized dataset (with `input_ids`) or `None`
    passes through."""
    if dataset is None or "input_ids" in dataset.column_names:
        return dataset
    for column in (args.text_column, args.text_pair_column):
        if column is not None and column not in dataset.column_names:
            raise ValueError(f"The dataset has no text column {column!r} (columns: {dataset.column_names}). Fix: set "
                             "`text_column` / `text_pair_column`.")  # fmt: skip
    labels = label_ids(dataset, args.label_column, label_list)

    def encode(batch):
        pairs = batch[args.text_pair_column] if args.text_pair_column else None
        full = tokenizer(batch[args.text_column], pairs)["input_ids"]
        encoded = tokenizer(batch[args.text_column], pairs, truncation=True, max_length=args.max_length)
        encoded["truncated"] = [len(ids) > args.max_length for ids in full]
        return encoded

    dataset = dataset.map(encode, batched=True, desc="Tokenizing")
    truncated = sum(dataset["truncated"])
    if truncated:
        logger.warning(f"{truncated} of {len(dataset)} texts are longer than max_length={args.max_length} sub-words "
                       "and were truncated at the end.")  # fmt: skip
    dataset = dataset.remove_columns(["truncated"])
    if args.label_column == "labels":
        dataset = dataset.remove_columns(["labels"])
    return dataset.add_column("labels", labels)


class SequenceClassificationRLTrainer(SupervisedRLTrainer):
    """RL for `AutoModelForSequenceClassification` models. See the module docstring for the step and
    [`SequenceClassificationRLConfig`] for the options.

    Args:
        model (`PreTrainedModel` or `str`): a sequence classifier, or a name/path to load one with a fresh head for
            `label_list`.
        reward_funcs (`Sequence[Callable]`, *optional*): per-example rewards (interface in
            `rewards/sequence/classification.py`). Defaults to `[CorrectLabelReward()]` (the mean reward is the
            accuracy of the samples).
        args ([`SequenceClassificationRLConfig`] or [`TokenLevelRLConfig`], *optional*): training configuration.
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): tokenized (`input_ids`, `labels`) or raw
            (`args.text_column`, `args.label_column`); the other columns reach the rewards as keyword arguments.
        processing_class (`PreTrainedTokenizerBase`, *optional*): loaded from the model's path if not given.
        reward_weights (`Sequence[float]`, *optional*): overrides `args.reward_weights`.
        peft_config (`peft.PeftConfig`, *optional*): wraps the model with PEFT (use `task_type="SEQ_CLS"`, which
            trains the head); the KL reference is then the base model with adapters disabled.
        label_list (`list[str]`, *optional*): label names by id. Read from the label column's ClassLabel or the
            model's `id2label` if not given; written to the model's config so saved models name their labels.
        compute_metrics (`Callable`, *optional*): defaults to accuracy and macro-F1
            ([`~trl_tokenlevel.metrics.build_classification_compute_metrics`]).
    """

    model_kind = "text-classification"
    config_class = SequenceClassificationRLConfig

    auto_model_class = "AutoModelForSequenceClassification"

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None = None,
        args: SequenceClassificationRLConfig | None = None,
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
        label_column = getattr(args, "label_column", "label")
        self.label_list = list(label_list) if label_list is not None else label_list_from(train_dataset, model, label_column)
        if self.label_list is None:
            raise ValueError(
                "Could not find the label names: pass `label_list=[...]`, use a dataset whose label column is a "
                "ClassLabel, or a model whose config has a real `id2label`."
            )
        super().__init__(
            model, reward_funcs or [CorrectLabelReward()], args, train_dataset=train_dataset, eval_dataset=eval_dataset,
            processing_class=processing_class, reward_weights=reward_weights, peft_config=peft_config,
            callbacks=callbacks, optimizers=optimizers, data_collator=data_collator,
            compute_metrics=compute_metrics or build_classification_compute_metrics(self.label_list),
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        # Trainer then counts `labels != -100` over the optimizer step: with (B,) labels, the number of examples
        self.model_accepts_loss_kwargs = True

    # ------------------------------------------------------------------ set-up hooks
    def prepare_datasets(self, train_dataset, eval_dataset, processing_class, args):
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: tokenize_if_raw(v, processing_class, args, self.label_list) for k, v in eval_dataset.items()}
        else:
            eval_dataset = tokenize_if_raw(eval_dataset, processing_class, args, self.label_list)
        return tokenize_if_raw(train_dataset, processing_class, args, self.label_list), eval_dataset

    def default_data_collator(self, processing_class):
        return SequenceClassificationRLCollator(processing_class)

    def prepare_dataset(self, dataset):
        """Tokenizes a raw dataset the way the trainer does its own (for `predict` on a test split)."""
        return tokenize_if_raw(dataset, self.processing_class, self.args, self.label_list)

    # ------------------------------------------------------------------ the step

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]  # (B,)
        forward_inputs = {k: inputs[k] for k in FORWARD_KEYS if k in inputs}
        extras = {k: v for k, v in inputs.items() if k not in MODEL_INPUT_KEYS}
        logits = model(**forward_inputs).logits  # (B, C)
        if not model.training:
            loss = F.cross_entropy(logits.float(), labels)
            return (loss, {"logits": logits}) if return_outputs else loss
        ref_logits = None
        if self.args.kl_coef > 0:
            with torch.no_grad(), self.reference_model() as reference:
                ref_logits = reference(**forward_inputs).logits
        loss = self.sequence_classification_loss(logits, labels, ref_logits, extras, num_items_in_batch)
        return (loss, {"logits": logits}) if return_outputs else loss

    def sequence_classification_loss(self, logits, labels, ref_logits, extras, num_items_in_batch) -> torch.Tensor:
        """`(rl_coef PG + ce_coef CE + kl_coef KL - entropy_coef H) / N` for one micro-batch (module docstring)."""
        args, coefs = self.args, self.loss_coefficients()
        num_examples = labels.shape[0]
        ce = F.cross_entropy(logits.float(), labels, reduction="none")  # (B,)
        loss_sum = coefs["ce"] * ce.sum()
        self.record_metric("ce_loss", ce.detach().sum(), num_examples)
        entropy = exact_entropy(logits.unsqueeze(1), args.temperature)  # (B, 1)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * entropy.sum()
        self.record_metric("entropy", entropy.detach().sum(), num_examples)
        if self.rl_active():
            loss_sum = loss_sum + coefs["rl"] * self.policy_gradient_term(logits, labels, extras)
        if ref_logits is not None:
            kl = exact_kl(logits.unsqueeze(1), ref_logits.unsqueeze(1), args.temperature)  # (B, 1)
            loss_sum = loss_sum + self.kl_controller.value * kl.sum()
            self.record_metric("kl", kl.detach().sum(), num_examples)
        self.record_metric("rl_active", float(self.rl_active()), 1)
        return loss_sum / self.loss_denominator(num_items_in_batch, num_examples, logits.device)

    def policy_gradient_term(self, logits, labels, extras) -> torch.Tensor:
        """Samples K labels per example and the greedy one, scores them, and returns the summed PG surrogate."""
        args, num_samples = self.args, self.args.num_samples
        positions = logits.unsqueeze(1)  # (B, 1, C): one action position per sequence
        mask = torch.ones_like(labels, dtype=torch.bool).unsqueeze(1)  # (B, 1)
        samples = sample_actions(positions, num_samples, args.temperature)  # (K, B, 1)
        greedy = logits.detach().argmax(-1)  # (B,)
        actions = torch.cat([samples.squeeze(-1), greedy.unsqueeze(0)])  # (K+1, B): one reward call for both
        _, per_reward = compute_sequence_rewards(
            self.reward_funcs, self.reward_weights, actions, labels, self.label_list, trainer_state=self.state, **extras
        )
        per_reward = {name: values.unsqueeze(-1) for name, values in per_reward.items()}  # (K+1, B, 1)
        sampled_rewards = {name: values[:num_samples] for name, values in per_reward.items()}
        measurements = self.reward_combiner.measure(sampled_rewards, mask, self._statistics_unsupported)
        self.reward_combiner.observe(sampled_rewards, mask, measurements)
        total = self.reward_combiner.combine(per_reward, mask, self.state.global_step)  # (K+1, B, 1)
        rewards, greedy_rewards = total[:num_samples], total[num_samples]
        advantages = token_advantages(
            rewards, mask, args.baseline, greedy_rewards=greedy_rewards, whiten=args.whiten_advantages
        )  # (K, B, 1)
        logprobs = action_logprobs(positions, samples, args.temperature)  # (K, B, 1)
        self._record_rollout(per_reward, rewards, greedy_rewards, advantages, samples, greedy)
        return policy_gradient_sum(logprobs, advantages, mask)

    @staticmethod
    def _statistics_unsupported(name: str):
        raise ValueError(
            f"A constraint on {name!r} asks for a statistic other than 'mean', which sequence-classification rewards "
            "do not provide. Fix: use statistic='mean' (the mean reward of the sampled labels)."
        )

    def _record_rollout(self, per_reward, rewards, greedy_rewards, advantages, samples, greedy) -> None:
        num_samples, num_sampled = rewards.shape[0], rewards.numel()
        for name, values in per_reward.items():
            self.record_metric(f"rewards/{name}/mean", values[:num_samples].sum(), num_sampled)
        self.record_metric("reward", rewards.sum(), num_sampled)
        self.record_metric("reward_greedy", greedy_rewards.sum(), greedy_rewards.numel())
        self.record_metric("advantages/mean", advantages.sum(), num_sampled)
        self.record_metric("advantages/sq_mean", (advantages**2).sum(), num_sampled)
        agreement = (samples.squeeze(-1) == greedy.unsqueeze(0)).float()
        self.record_metric("sample_greedy_agreement", agreement.sum(), num_sampled)
