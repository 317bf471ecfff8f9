"""[`QuestionAnsweringRLTrainer`]: extractive QA with cross-entropy and span-level policy gradient (DCN+).

DCN+ (Xiong et al., ICLR 2018) mixes the cross-entropy of the gold start/end with self-critical policy learning on
the word-overlap F1 of the predicted span, which gives partial credit CE cannot. One step (`compute_loss`):

    s_logits, e_logits = f_theta(window)                                        # (B, T) each
    (s[k], e[k]) ~ pi(s) pi(e | s),  k < K                                      # (K, B): e >= s, in the context,
                                                                                 #   e - s < max_answer_length
    (s*, e*) = argmax_{valid} s_logits[s] + e_logits[e]                         # (B,): the answer the model gives
    r[k] = sum_i w_i(t) reward_i(span k),  r* = reward of (s*, e*)              # (K, B); span F1 by default
    A[k] = r[k] - r*          (greedy; or leave-one-out, ...)                   # (K, B)
    PG   = -(1/K) sum_k sum_{b answerable} A[k, b] (log pi(s[k]) + log pi(e[k] | s[k]))
    CE   = sum_b (CE(s_logits, s_gold) + CE(e_logits, e_gold)) / 2
    KL   = sum_b KL_context(start) + KL_context(end)    (exact, to `reference_model()`)
    H    = sum_b H_context(start) + H_context(end)
    loss = (ce_coef CE + rl_coef PG + kl_coef KL - entropy_coef H) / N

N is the number of windows in the whole optimizer step (all micro-batches and processes), so splitting a batch as
1x8 or 2x4 gives the same update. Windows whose gold answer is not inside them (long contexts cut by the sliding
window) keep the CE to `[CLS]`, as `run_qa.py` trains them, but take no policy-gradient term: the span policy ranges
over context tokens only and cannot say "not in this window", and a span rewarded there by accidental word overlap
would raise exactly the context scores that the post-processing compares across windows. They are masked out of the
rewards, their statistics and the advantages.

Evaluation runs on raw SQuAD-format examples: [`evaluate`] and [`predict`] cut them into windows, collect the
start/end logits, turn them into answer texts with `postprocess_qa_predictions` (as `run_qa.py` does) and score
them with the official exact match and F1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.trainer_utils import speed_metrics

from ..core import masked_sum, policy_gradient_sum, token_advantages
from ..data.qa_features import postprocess_qa_predictions
from ..metrics.squad import squad_scores
from ..rewards.common import check_finite, reward_name
from ..rewards.sequence.qa import SpanF1Reward
from ..trainer import TokenLevelRLTrainer
from .config import QuestionAnsweringRLConfig
from .data import MODEL_INPUT_KEYS, TARGET_KEYS, QuestionAnsweringCollator, check_raw_examples, eval_windows, train_windows
from .spans import best_spans, context_entropy, context_kl, sample_spans, span_cross_entropy, span_log_probs


class QuestionAnsweringPrediction(NamedTuple):
    """What [`QuestionAnsweringRLTrainer.predict`] returns: `predictions` (question id -> answer text), the windows'
    `start_logits` and `end_logits` (`(num_windows, T)`, padded with -100), and `metrics` (`<prefix>_exact_match`,
    `<prefix>_f1` in percent when the examples have answers, plus speed)."""

    predictions: dict[str, str]
    start_logits: np.ndarray
    end_logits: np.ndarray
    metrics: dict[str, float]


class QuestionAnsweringRLTrainer(TokenLevelRLTrainer):
    """Token-level RL for `AutoModelForQuestionAnswering` models: the actions are the start and end tokens of the
    answer span. See the module docstring for the step and [`QuestionAnsweringRLConfig`] for the options.

    Args:
        model (`PreTrainedModel` or `str`): a QA model, or a name/path to load one (`AutoModelForQuestionAnswering`).
        reward_funcs (`Sequence[Callable]`, *optional*): span rewards, called as `reward(sampled_starts (K, B),
            sampled_ends (K, B), offset_mapping=..., context=..., answers=..., example_id=..., question=...,
            trainer_state=...) -> (K, B)` (see `rewards/sequence/qa.py`). Defaults to `[SpanF1Reward()]`.
        args ([`QuestionAnsweringRLConfig`] or [`TokenLevelRLConfig`], *optional*): training configuration.
        train_dataset (`datasets.Dataset`, *optional*): SQuAD-format examples (`id`, `question`, `context`,
            `answers`; every answer offset is checked), cut into windows here; or windows already made (with
            `input_ids`, `start_positions`, `end_positions`, `offset_mapping`, `context`, `answers`).
        eval_dataset (`datasets.Dataset` or `dict`, *optional*): SQuAD-format examples, scored by [`evaluate`].
        processing_class (`PreTrainedTokenizerFast`, *optional*): a fast tokenizer (offsets are needed); loaded from
            the model's path if not given.
        reward_weights (`Sequence[float]`, *optional*): overrides `args.reward_weights`.
        peft_config (`peft.PeftConfig`, *optional*): wraps the model with PEFT; use `task_type=None` with
            `modules_to_save=["qa_outputs"]` (PEFT's `QUESTION_ANS` model drops `token_type_ids`, so it is refused).
            The KL reference is then the base model with adapters disabled.
    """

    model_kind = "question-answering"
    config_class = QuestionAnsweringRLConfig
    coefficient_names = ("rl", "ce")

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None = None,
        args: QuestionAnsweringRLConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_weights: Sequence[float] | None = None,
        peft_config=None,
        data_collator=None,
        callbacks=None,
        optimizers=(None, None),
    ):
        super().__init__(
            model, reward_funcs if reward_funcs is not None else [SpanF1Reward()], args, train_dataset=train_dataset,
            eval_dataset=eval_dataset, processing_class=processing_class, reward_weights=reward_weights,
            peft_config=peft_config, callbacks=callbacks, optimizers=optimizers, data_collator=data_collator,
        )

    # ------------------------------------------------------------------ set-up hooks
    def prepare_model(self, model, args, peft_config=None):
        """The base's preparation, refusing PEFT's `QUESTION_ANS` task type: in PEFT 0.21 its model's forward drops
        `token_type_ids`, so the adapter would be trained on inputs that differ from those the merged or reloaded
        model sees (on the packaged MiniLM, 5 of 16 test answers changed after merging)."""
        if peft_config is not None and getattr(peft_config, "task_type", None) == "QUESTION_ANS":
            raise ValueError(
                "peft_config has task_type='QUESTION_ANS', whose PEFT model ignores token_type_ids (PEFT 0.21), so "
                "training and inference would see different inputs. Fix: task_type=None with "
                "modules_to_save=['qa_outputs'] (the head then trains and saves as with QUESTION_ANS)."
            )
        return super().prepare_model(model, args, peft_config)

    def prepare_datasets(self, train_dataset, eval_dataset, processing_class, args):
        """Cuts raw training examples into windows; evaluation examples stay raw (windows are made per evaluation)."""
        if not getattr(processing_class, "is_fast", False):
            raise ValueError(
                f"{type(processing_class).__name__} is not a fast tokenizer: QA windows need offset mappings. Fix: "
                "pass `AutoTokenizer.from_pretrained(name, use_fast=True)`."
            )
        if train_dataset is not None and "input_ids" not in train_dataset.column_names:
            train_dataset = train_windows(train_dataset, processing_class, args.max_length, args.doc_stride)
        for name, examples in (eval_dataset.items() if isinstance(eval_dataset, dict) else [("", eval_dataset)]):
            if examples is not None:
                check_raw_examples(examples, f"eval_dataset{f'[{name!r}]' if name else ''}", needs_answers=False)
        return train_dataset, eval_dataset

    def default_data_collator(self, processing_class):
        return QuestionAnsweringCollator(processing_class)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """[`~transformers.Trainer.get_batch_samples`], counting windows: `num_items_in_batch` is the number of
        windows in the optimizer step (summed over processes when `average_tokens_across_devices`), the N that every
        micro-batch divides its summed loss by."""
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if num_items_in_batch is None and batch_samples:
            num_items_in_batch = torch.tensor(sum(len(b["input_ids"]) for b in batch_samples), device=device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                num_items_in_batch = self.accelerator.gather(num_items_in_batch).sum()
        return batch_samples, num_items_in_batch

    def check_online(self) -> None:
        raise NotImplementedError(
            "learn_online is not available for extractive QA yet: train on SQuAD-format examples with train()."
        )

    # ------------------------------------------------------------------ the step
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        forward_inputs = {k: inputs[k] for k in MODEL_INPUT_KEYS if k in inputs}
        outputs = model(**forward_inputs)
        length = inputs["input_ids"].shape[1]  # prompt tuning prepends virtual tokens: keep the real positions
        start_logits, end_logits = outputs.start_logits[:, -length:], outputs.end_logits[:, -length:]
        ce = span_cross_entropy(start_logits, end_logits, inputs["start_positions"], inputs["end_positions"],
                                inputs.get("attention_mask"))  # fmt: skip
        if not model.training:
            loss = ce.mean()
        else:
            loss = self.question_answering_loss(start_logits, end_logits, ce, inputs, num_items_in_batch)
        return (loss, {"start_logits": start_logits, "end_logits": end_logits}) if return_outputs else loss

    def loss_denominator(self, num_items_in_batch, num_windows: int, device) -> torch.Tensor:
        """N: the window count of the whole optimizer step, per process (DDP averages the gradients)."""
        if num_items_in_batch is None:  # a direct call, outside Trainer's accumulation loop
            num_items_in_batch = num_windows
        denominator = torch.as_tensor(num_items_in_batch, device=device).float().clamp(min=1.0)
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            denominator = denominator / self.accelerator.num_processes  # num_items_in_batch is the global count
        return denominator

    def question_answering_loss(self, start_logits, end_logits, ce, inputs, num_items_in_batch) -> torch.Tensor:
        """`(ce_coef CE + rl_coef PG + kl_coef KL - entropy_coef H) / N` for one micro-batch (module docstring)."""
        args, coefs, num_windows = self.args, self.loss_coefficients(), start_logits.shape[0]
        context_mask = inputs["offset_mapping"][..., 0] >= 0  # (B, T)
        loss_sum = coefs["ce"] * ce.sum()
        self.record_metric("ce_loss", ce.detach().sum(), num_windows)
        entropy = context_entropy(start_logits, context_mask, args.temperature) + context_entropy(
            end_logits, context_mask, args.temperature
        )  # (B,)
        if args.entropy_coef > 0:
            loss_sum = loss_sum - args.entropy_coef * entropy.sum()
        self.record_metric("entropy", entropy.detach().sum(), num_windows)
        if coefs["rl"] > 0:
            pg = self.policy_gradient_term(start_logits, end_logits, context_mask, inputs)
            loss_sum = loss_sum + coefs["rl"] * pg
        if args.kl_coef > 0:
            with torch.no_grad(), self.reference_model() as reference:
                ref = reference(**{k: inputs[k] for k in MODEL_INPUT_KEYS if k in inputs})
            length = start_logits.shape[1]
            kl = context_kl(start_logits, ref.start_logits[:, -length:], context_mask, args.temperature) + context_kl(
                end_logits, ref.end_logits[:, -length:], context_mask, args.temperature
            )  # (B,)
            loss_sum = loss_sum + self.kl_controller.value * kl.sum()
            self.record_metric("kl", kl.detach().sum(), num_windows)
        return loss_sum / self.loss_denominator(num_items_in_batch, num_windows, start_logits.device)

    def policy_gradient_term(self, start_logits, end_logits, context_mask, inputs) -> torch.Tensor:
        """Samples K spans per window and the greedy span, scores them, and returns the summed PG surrogate."""
        args, num_samples = self.args, self.args.num_samples
        gold_starts = inputs["start_positions"]
        answerable = context_mask.gather(1, gold_starts.unsqueeze(1))  # (B, 1): the gold answer is in the window
        samples = sample_spans(start_logits.detach(), end_logits.detach(), context_mask, num_samples,
                               args.temperature, args.max_answer_length)  # (K, B) each  # fmt: skip
        greedy_starts, greedy_ends = best_spans(start_logits.detach(), end_logits.detach(), context_mask,
                                                args.max_answer_length)  # (B,) each  # fmt: skip
        starts = torch.cat([samples.starts, greedy_starts.unsqueeze(0)])  # (K+1, B): one reward call for both
        ends = torch.cat([samples.ends, greedy_ends.unsqueeze(0)])
        per_reward = self.span_rewards(starts, ends, inputs)  # {name: (K+1, B, 1)}
        sampled_rewards = {name: values[:num_samples] for name, values in per_reward.items()}
        measurements = self.reward_combiner.measure(sampled_rewards, answerable, self._no_statistics)
        self.reward_combiner.observe(sampled_rewards, answerable, measurements)
        total = self.reward_combiner.combine(per_reward, answerable, self.state.global_step)  # (K+1, B, 1)
        rewards, greedy_rewards = total[:num_samples], total[num_samples]
        advantages = token_advantages(
            rewards, answerable, args.baseline, greedy_rewards=greedy_rewards, whiten=args.whiten_advantages
        )  # (K, B, 1), 0 on windows without the answer
        start_lp, end_lp = span_log_probs(start_logits, end_logits, context_mask, samples.starts, samples.ends,
                                          args.temperature, args.max_answer_length)  # (K, B) each  # fmt: skip
        self._record_rollout(per_reward, rewards, greedy_rewards, advantages, answerable)
        return policy_gradient_sum((start_lp + end_lp).unsqueeze(-1), advantages, answerable)

    def span_rewards(self, starts, ends, inputs) -> dict[str, torch.Tensor]:
        """`{name: (K+1, B, 1)}`: every reward on the spans, shape- and finiteness-checked."""
        extras = {k: v for k, v in inputs.items() if k not in MODEL_INPUT_KEYS + TARGET_KEYS + ("offset_mapping",)}
        offsets = inputs["offset_mapping"].tolist()
        per_reward = {}
        for func, name in zip(self.reward_funcs, self.reward_names):
            value = func(starts, ends, offset_mapping=offsets, trainer_state=self.state, **extras)
            rewards = torch.as_tensor(value, dtype=torch.float32, device=starts.device)
            if rewards.shape != starts.shape:
                raise ValueError(
                    f"Reward {name!r} returned shape {tuple(rewards.shape)}, expected {tuple(starts.shape)} (one reward "
                    "per span: K samples and the greedy span, B windows)."
                )
            check_finite(rewards.unsqueeze(-1), torch.ones_like(rewards, dtype=torch.bool).unsqueeze(-1), name, "window")
            per_reward[name] = rewards.unsqueeze(-1)
        return per_reward

    @staticmethod
    def _no_statistics(name: str) -> dict:
        raise ValueError(
            f"Constraint on {name!r}: span rewards expose only their mean; use statistic='mean' in `constraints`."
        )

    def _record_rollout(self, per_reward, rewards, greedy_rewards, advantages, answerable) -> None:
        sample_mask = answerable.unsqueeze(0).expand_as(rewards)  # (K, B, 1)
        num_sampled, num_answerable = sample_mask.sum(), answerable.sum()
        for name, values in per_reward.items():
            self.record_metric(f"rewards/{name}/mean", masked_sum(values[: rewards.shape[0]], sample_mask), num_sampled)
        self.record_metric("reward", masked_sum(rewards, sample_mask), num_sampled)
        self.record_metric("reward_greedy", masked_sum(greedy_rewards, answerable), num_answerable)
        self.record_metric("advantages/mean", masked_sum(advantages, sample_mask), num_sampled)
        self.record_metric("advantages/sq_mean", masked_sum(advantages**2, sample_mask), num_sampled)
        self.record_metric("answerable_windows", num_answerable, answerable.numel())

    # ------------------------------------------------------------------ evaluation on raw examples
    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test") -> QuestionAnsweringPrediction:
        """Answers SQuAD-format examples (`id`, `question`, `context`; `answers` optional): windows, start/end logits,
        `postprocess_qa_predictions` with `max_answer_length` and `n_best`, then the official exact match and F1
        (in percent) when the examples have answers."""
        check_raw_examples(test_dataset, "predict()", needs_answers=False)
        start_time = time.time()
        windows = eval_windows(test_dataset, self.processing_class, self.args.max_length, self.args.doc_stride)
        dataloader = self.get_eval_dataloader(windows.remove_columns(["example_id", "offset_mapping"]))
        output = self.evaluation_loop(dataloader, "Prediction", prediction_loss_only=False, ignore_keys=ignore_keys,
                                      metric_key_prefix=metric_key_prefix)  # fmt: skip
        start_logits, end_logits = output.predictions[:2]
        answers = postprocess_qa_predictions(test_dataset, windows, start_logits, end_logits, n_best=self.args.n_best,
                                             max_answer_length=self.args.max_answer_length)  # fmt: skip
        metrics = {k: v for k, v in output.metrics.items() if not k.endswith("_loss")}
        if "answers" in test_dataset.column_names:
            scores = squad_scores(answers, dict(zip(test_dataset["id"], test_dataset["answers"])))
            metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()})
        steps = math.ceil(output.num_samples / (self.args.eval_batch_size * self.args.world_size))
        metrics.update(speed_metrics(metric_key_prefix, start_time, num_samples=len(test_dataset), num_steps=steps))
        return QuestionAnsweringPrediction(answers, start_logits, end_logits, metrics)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Official exact match and F1 (`<prefix>_exact_match`, `<prefix>_f1`, percent) on SQuAD-format examples
        (`eval_dataset`, else the trainer's; a dict is scored per name as `<prefix>_<name>_...`), logged."""
        examples = eval_dataset if eval_dataset is not None else self.eval_dataset
        if examples is None:
            raise ValueError("evaluate() needs an eval_dataset: pass one here or to the trainer.")
        if isinstance(examples, dict):
            metrics = {}
            for name, subset in examples.items():
                metrics.update(self.evaluate(subset, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        metrics = self.predict(examples, ignore_keys, metric_key_prefix).metrics
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
