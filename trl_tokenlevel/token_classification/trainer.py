"""[`TokenClassificationRLTrainer`]: token-level RL for token classifiers (NER and other tagging tasks).

One training step (equations map to `compute_loss` and `policy_gradient_term`):

    logits            = f_theta(x)                                   # (B, T, C)
    a[k]  ~ softmax(logits / tau)  for k < K;  g = argmax logits        # (K, B, T), (B, T)
    r[k]  = sum_i w_i(t) * reward_i(a[k], y, mask)                     # (K, B, T), zero off the word positions;
                                                                      # or normalised / constrained: dynamic/combiner.py
    A[k]  = r[k] - baseline                                           # greedy self-critic, leave-one-out, ...
    PG    = -(1/K) sum_k sum_{(b,t) in mask} A[k,b,t] log pi_tau(a[k,b,t] | x)
    loss  = (rl_coef PG + ce_coef CE + kl_coef KL - entropy_coef H) / N

where CE, KL (exact, over the C labels) and H (exact) are sums over active tokens and N is the number of active
tokens in the whole optimizer step (all gradient-accumulation micro-batches, all processes), so splitting a batch
as 1x8 or 2x4 gives the same update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

import torch
from transformers import EvalPrediction, PreTrainedModel
from transformers.trainer_utils import EvalLoopOutput

from ..core import (
    IGNORE_INDEX,
    action_logprobs,
    exact_entropy,
    exact_kl,
    masked_sum,
    policy_gradient_sum,
    sample_actions,
    token_advantages,
    token_cross_entropy,
)
from ..data.alignment import prepare_token_classification_dataset, tokenize_and_align_labels
from ..metrics.ner import build_compute_metrics, preprocess_logits_for_metrics as argmax_logits
from ..rewards.token import EntitySpanReward, TokenAccuracyReward, compute_token_rewards
from ..rewards.token.span_feedback import words_to_positions
from ..supervised import SupervisedRLTrainer
from .collator import FORWARD_KEYS, MODEL_INPUT_KEYS, TokenClassificationRLCollator
from .config import TokenClassificationRLConfig
from .reference_cache import REFERENCE_INDEX_COLUMN, ReferenceLogprobCache
from .windows import SENTENCE_COLUMN, merge_windows, prepare_eval_windows, split_sentences


logger = logging.getLogger(__name__)


def label_list_from(dataset, model) -> list[str] | None:
    """Label names from a dataset's `ner_tags` ClassLabel, else from a model's real `id2label` (not `LABEL_i`)."""
    features = getattr(dataset, "features", None)
    if features is not None and "ner_tags" in features and hasattr(features["ner_tags"], "feature"):
        names = getattr(features["ner_tags"].feature, "names", None)
        if names:
            return list(names)
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if id2label and not all(str(v).startswith("LABEL_") for v in id2label.values()):
        return [id2label[i] for i in range(len(id2label))]
    return None



class TokenClassificationRLTrainer(SupervisedRLTrainer):
    """Token-level RL for `AutoModelForTokenClassification` models. See the module docstring for the step and
    [`TokenClassificationRLConfig`] for the options.

    Args:
        model (`PreTrainedModel` or `str`): a token classifier, or a name/path to load one (with the config's
            `model_init_kwargs`, k-bit keys included; never with remote code unless `trust_remote_code`).
        reward_funcs (`Sequence[Callable]`, *optional*): per-token rewards (interface in `rewards/token/base.py`).
            Defaults to `[EntitySpanReward(), TokenAccuracyReward()]` with weights `[1.0, 0.5]`.
        args ([`TokenClassificationRLConfig`] or [`TokenLevelRLConfig`], *optional*): training configuration.
        train_dataset, eval_dataset (`datasets.Dataset`, *optional*): either tokenized (`input_ids`, `labels`) or raw
            (`tokens`, `ner_tags`); raw datasets are tokenized with `processing_class` (first sub-token labelled).
            A raw training sentence longer than `args.max_length` is truncated (counted in a warning); a raw
            evaluation sentence is split into windows ([`prepare_dataset`]), so evaluation scores every word.
        processing_class (`PreTrainedTokenizerBase`, *optional*): loaded from the model's path if not given.
        reward_weights (`Sequence[float]`, *optional*): overrides `args.reward_weights`.
        peft_config (`peft.PeftConfig`, *optional*): wraps the model with PEFT; the KL reference is then the base
            model with adapters disabled.
        label_list (`list[str]`, *optional*): label names by id. Read from the dataset's `ner_tags` ClassLabel or the
            model's `id2label` if not given.
        compute_metrics (`Callable`, *optional*): defaults to entity-level seqeval scores plus token accuracy.
    """

    model_kind = "token-classification"
    config_class = TokenClassificationRLConfig

    auto_model_class = "AutoModelForTokenClassification"

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None = None,
        args: TokenClassificationRLConfig | None = None,
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
        self.label_list = list(label_list) if label_list is not None else label_list_from(train_dataset, model)
        if self.label_list is None and isinstance(model, str):
            raise ValueError(
                "Could not find the label names: pass `label_list=[...]` or use a dataset whose `ner_tags` column is "
                "a ClassLabel."
            )
        if reward_funcs is None:
            reward_funcs = [EntitySpanReward(), TokenAccuracyReward()]
            reward_weights = reward_weights or [1.0, 0.5]
        if compute_metrics is None:
            compute_metrics = build_compute_metrics(self.label_list or [])
            preprocess_logits_for_metrics = preprocess_logits_for_metrics or argmax_logits
        super().__init__(
            model, reward_funcs, args, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=processing_class,
            reward_weights=reward_weights, peft_config=peft_config, callbacks=callbacks, optimizers=optimizers,
            data_collator=data_collator, compute_metrics=compute_metrics,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        self.model_accepts_loss_kwargs = True  # Trainer counts `num_items_in_batch` (active tokens) for us
        self.reference_cache: ReferenceLogprobCache | None = None
        self._reference_was_reset = False

    # ------------------------------------------------------------------ set-up hooks
    def prepare_datasets(self, train_dataset, eval_dataset, processing_class, args):
        """Tokenizes raw `tokens`/`ner_tags` datasets (first sub-token labelled; training truncated, evaluation in
        windows) and, for the reference cache, numbers the training examples."""
        train_dataset = tokenize_if_raw(train_dataset, processing_class, args)
        if args.precompute_reference_logprobs and train_dataset is not None:
            train_dataset = train_dataset.map(
                lambda _, index: {REFERENCE_INDEX_COLUMN: index}, with_indices=True, desc="Indexing for the cache"
            )
        if isinstance(eval_dataset, dict):
            eval_dataset = {
                k: tokenize_if_raw(v, processing_class, args, windows=True) for k, v in eval_dataset.items()
            }
        else:
            eval_dataset = tokenize_if_raw(eval_dataset, processing_class, args, windows=True)
        return train_dataset, eval_dataset

    def default_data_collator(self, processing_class):
        return TokenClassificationRLCollator(processing_class)

    def prepare_dataset(self, dataset):
        """Tokenizes a raw `tokens`/`ner_tags` dataset for `evaluate` / `predict`, as the trainer does its
        `eval_dataset`: first sub-token labelled; a sentence longer than `max_length` becomes several rows (windows
        overlapping by `eval_stride`, counted in a warning) in which each word is labelled once, in the window where
        it has the most context, and `evaluation_loop` joins them again. Tokenized datasets pass through."""
        return tokenize_if_raw(dataset, self.processing_class, self.args, windows=True)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval") -> EvalLoopOutput:
        """Trainer's loop, except on a dataset whose sentences span several windows ([`prepare_dataset`]): the
        windows of each sentence are laid end to end again ([`merge_windows`]) before `compute_metrics` and in the
        returned predictions and labels, so the metric sees one row per sentence holding every gold word once."""
        loop = partial(super().evaluation_loop, dataloader, description, prediction_loss_only, ignore_keys,
                       metric_key_prefix)
        sentence_index = split_sentences(getattr(dataloader, "dataset", None))
        if sentence_index is None:
            return loop()
        if self.args.batch_eval_metrics or not self.args.eval_do_concat_batches:
            raise ValueError(
                "Some evaluation sentences are split into windows, which are joined again before the metric; that "
                "needs every batch at once. Fix: batch_eval_metrics=False and eval_do_concat_batches=True (defaults)."
            )
        compute_metrics, merged = self.compute_metrics, {}

        def on_sentences(prediction: EvalPrediction):
            width = prediction.label_ids.shape[1]
            merged["predictions"] = merge_windows(prediction.predictions, sentence_index, width)
            merged["label_ids"] = merge_windows(prediction.label_ids, sentence_index)
            return compute_metrics(EvalPrediction(
                merged["predictions"], merged["label_ids"], inputs=merge_windows(prediction.inputs, sentence_index),
                losses=prediction.losses,
            ))

        self.compute_metrics = on_sentences if compute_metrics is not None else None
        try:
            output = loop()
        finally:
            self.compute_metrics = compute_metrics
        if not merged and output.label_ids is not None:  # no compute_metrics: join the windows all the same
            width = output.label_ids.shape[1]
            merged = {"predictions": merge_windows(output.predictions, sentence_index, width),
                      "label_ids": merge_windows(output.label_ids, sentence_index)}
        return EvalLoopOutput(predictions=merged.get("predictions", output.predictions),
                              label_ids=merged.get("label_ids", output.label_ids), metrics=output.metrics,
                              num_samples=output.num_samples)

    # ------------------------------------------------------------------ the step

    @torch.no_grad()
    def reference_logits(self, forward_inputs: dict[str, torch.Tensor], num_positions: int) -> torch.Tensor:
        """The reference's logits at the last `num_positions` positions (prompt tuning prepends virtual tokens)."""
        with self.reference_model() as reference:
            return reference(**forward_inputs).logits[:, -num_positions:]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        forward_inputs = {k: inputs[k] for k in FORWARD_KEYS if k in inputs}
        extras = {k: v for k, v in inputs.items() if k not in MODEL_INPUT_KEYS}
        reference_index = extras.pop(REFERENCE_INDEX_COLUMN, None)
        logits = model(**forward_inputs).logits
        logits = logits[:, -labels.shape[1] :]  # prompt tuning prepends virtual tokens: keep the real positions
        if not model.training:
            mask = labels != IGNORE_INDEX
            loss = masked_sum(token_cross_entropy(logits, labels), mask) / mask.sum().clamp(min=1)
            return (loss, {"logits": logits}) if return_outputs else loss
        if self.args.reset_reference_at_rl_start and self.rl_active() and not self._reference_was_reset:
            self.ref_model = self.frozen_copy(model)  # KL from now on: to the warmed-up model
            self._reference_was_reset = True
        ref_logits = None
        if self.args.kl_coef > 0:
            ref_logits = self._cached_or_live_reference(forward_inputs, labels, reference_index)
        loss = self.token_classification_loss(logits, labels, ref_logits, extras, num_items_in_batch)
        return (loss, {"logits": logits}) if return_outputs else loss

    def _cached_or_live_reference(self, forward_inputs, labels, reference_index) -> torch.Tensor:
        if reference_index is None:
            return self.reference_logits(forward_inputs, labels.shape[1])
        if self.reference_cache is None:
            self.reference_cache = ReferenceLogprobCache.build(
                lambda inputs: self.reference_logits(inputs, inputs["input_ids"].shape[1]), self.train_dataset,
                self.data_collator, self.args.per_device_eval_batch_size, labels.device,
            )
            self.ref_model = None  # a frozen copy has served its purpose; free it
        return self.reference_cache.lookup(reference_index, labels, len(self.label_list))

    def token_classification_loss(self, logits, labels, ref_logits, extras, num_items_in_batch) -> torch.Tensor:
        """`(rl_coef PG + ce_coef CE + kl_coef KL - entropy_coef H) / N` for one micro-batch (module docstring)."""
        args = self.args
        mask = labels != IGNORE_INDEX  # (B, T)
        num_active = mask.sum()
        coefs = self.loss_coefficients()
        ce = token_cross_entropy(logits, labels)  # (B, T)
        if args.ce_weight_column is not None:
            ce = ce * self.ce_word_weights(extras, mask).to(ce.dtype)
        loss_sum = coefs["ce"] * masked_sum(ce, mask)
        self.record_metric("ce_loss", masked_sum(ce.detach(), mask), num_active)
        entropy = exact_entropy(logits, args.temperature)  # (B, T)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * masked_sum(entropy, mask)
        self.record_metric("entropy", masked_sum(entropy.detach(), mask), num_active)
        if self.rl_active():
            loss_sum = loss_sum + coefs["rl"] * self.policy_gradient_term(logits, labels, mask, extras)
        if ref_logits is not None:
            kl = exact_kl(logits, ref_logits, args.temperature)
            loss_sum = loss_sum + self.kl_controller.value * masked_sum(kl, mask)
            self.record_metric("kl", masked_sum(kl.detach(), mask), num_active)
        self.record_metric("rl_active", float(self.rl_active()), 1)
        return loss_sum / self.loss_denominator(num_items_in_batch, num_active, logits.device)

    def ce_word_weights(self, extras, mask) -> torch.Tensor:
        """(B, T) per-position CE weights from the per-word `ce_weight_column` (first sub-token of each word)."""
        column = self.args.ce_weight_column
        if column not in extras:
            raise ValueError(
                f"ce_weight_column={column!r} but the batch has no such column (it has {sorted(extras)}). Fix: add "
                "one weight per word to the dataset (e.g. feedback_dataset(..., ce_weight=True)) and keep "
                "remove_unused_columns=False."
            )
        return words_to_positions(extras[column], mask, extras.get("num_words_kept"), column, dtype=torch.float32)

    def policy_gradient_term(self, logits, labels, mask, extras) -> torch.Tensor:
        """Samples K label sequences and the greedy one, scores them, and returns the summed PG surrogate."""
        args, num_samples = self.args, self.args.num_samples
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
        self._record_rollout(per_reward, rewards, greedy_rewards, advantages, samples, greedy, mask)
        return policy_gradient_sum(logprobs, advantages, mask)

    def _record_rollout(self, per_reward, rewards, greedy_rewards, advantages, samples, greedy, mask) -> None:
        num_samples = samples.shape[0]
        sample_mask = mask.unsqueeze(0).expand_as(rewards)
        num_sampled = sample_mask.sum()
        for name, values in per_reward.items():
            self.record_metric(f"rewards/{name}/mean", masked_sum(values[:num_samples], sample_mask), num_sampled)
        self.record_metric("reward", masked_sum(rewards, sample_mask), num_sampled)
        self.record_metric("reward_greedy", masked_sum(greedy_rewards, mask), mask.sum())
        self.record_metric("advantages/mean", masked_sum(advantages, sample_mask), num_sampled)
        self.record_metric("advantages/sq_mean", masked_sum(advantages**2, sample_mask), num_sampled)
        self.record_metric("sample_greedy_agreement", masked_sum((samples == greedy).float(), sample_mask), num_sampled)

    # ------------------------------------------------------------------ online learning hooks
    def online_features(self, examples: list[dict]) -> list[dict]:
        """Features of raw (`tokens`, `ner_tags` label ids) or tokenized (`input_ids`, `labels`) examples.

        Every other column is kept: the collator passes it to the rewards (e.g. `feedback_word` and `missed` for
        `SpanFeedbackReward`). Raw examples gain the tokenizer outputs, `labels`, `num_words` and `num_words_kept`,
        as `prepare_dataset` adds them. All resulting features must have the same columns ([`check_same_columns`]).
        """
        rows = [dict(e) for e in examples]
        raw = [row for row in rows if "input_ids" not in row]
        if any("tokens" not in row or "ner_tags" not in row for row in raw):
            raise ValueError(
                "Each online example needs `tokens` and `ner_tags` (label ids), or `input_ids` and `labels`; got keys "
                f"{sorted(next(r for r in raw if 'tokens' not in r or 'ner_tags' not in r))}."
            )
        if raw:
            batch = tokenize_and_align_labels(
                {"tokens": [r["tokens"] for r in raw], "ner_tags": [r["ner_tags"] for r in raw]}, self.processing_class,
                max_length=self.args.max_length, label_all_tokens=self.args.label_all_tokens,
                label_names=self.label_list,
            )
            for i, row in enumerate(raw):
                row.update({k: batch[k][i] for k in (*MODEL_INPUT_KEYS, "num_words", "num_words_kept") if k in batch})
        for row in rows:
            row.update({k: list(row[k]) for k in MODEL_INPUT_KEYS if k in row})
        check_same_columns(rows)
        return rows

    def online_batch(self, features: list[dict]):
        check_same_columns(features, what="new examples first, then replayed ones")
        batch = self.data_collator(features)
        return batch, (batch["labels"] != IGNORE_INDEX).sum()

    def online_evaluate(self, name: str, dataset) -> None:
        self.evaluate(eval_dataset=self.prepare_dataset(dataset), metric_key_prefix=f"eval_{name}")


def check_same_columns(rows: list[dict], what: str = "in the order given") -> None:
    """Refuses features whose columns differ: the collator takes the columns of the first row, so another column
    would be dropped silently and a missing one would fail inside a reward."""
    for index, row in enumerate(rows):
        if set(row) != set(rows[0]):
            raise ValueError(
                f"Online example {index} ({what}) has columns {sorted(row)} but example 0 has {sorted(rows[0])} "
                f"(only in {index}: {sorted(set(row) - set(rows[0]))}; only in 0: {sorted(set(rows[0]) - set(row))}). "
                "New, replayed and seed_examples rows are batched together, so give every row the same columns."
            )


def tokenize_if_raw(dataset, tokenizer, args, windows: bool = False):
    """Tokenizes a raw `tokens`/`ner_tags` dataset with `args.max_length` / `args.label_all_tokens`: truncating long
    sentences (training), or with `windows=True` splitting them into windows of `args.eval_stride` overlap
    (evaluation and prediction). A tokenized dataset (with `input_ids`) or `None` passes through."""
    if dataset is None or "input_ids" in getattr(dataset, "column_names", ["input_ids"]):
        return dataset
    if not windows:
        return prepare_token_classification_dataset(
            dataset, tokenizer, max_length=args.max_length, label_all_tokens=args.label_all_tokens, remove_columns=False
        )
    dataset = prepare_eval_windows(
        dataset, tokenizer, max_length=args.max_length, stride=args.eval_stride, label_all_tokens=args.label_all_tokens
    )
    if args.remove_unused_columns and split_sentences(dataset) is not None:
        raise ValueError(
            f"Some evaluation sentences are longer than max_length={args.max_length} and split into windows, which "
            f"are joined again by their `{SENTENCE_COLUMN}` column; remove_unused_columns=True would drop it. Fix: "
            "remove_unused_columns=False (the default)."
        )
    return dataset
