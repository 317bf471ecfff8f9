"""[`TokenLevelRLTrainer`]: the shared base of the token-level RL trainers, and the entry point that picks one.

A `transformers.Trainer` whose actions are tokens and whose rewards are per token. What every algorithm path
shares lives here, written once:

- model preparation: load by name (safetensors, no remote code, `model_init_kwargs`' `load_in_8bit`/`load_in_4bit`
  as a bitsandbytes config), dropout off, k-bit preparation, PEFT wrapping ([`prepare_model`]);
- rewards and their combination: weights, schedules, running normalisation, Lagrange constraints
  (`dynamic/`), the CE/RL coefficient schedules and the KL controller;
- the reference: a frozen copy of the starting model, or under PEFT the same network with its adapters disabled,
  both behind one context manager ([`reference_model`]);
- metric recording, reduced across processes at every logging step ([`record_metric`], [`log`]);
- resume of the extra state (KL coefficient, multipliers, running statistics) and, through [`HubExportMixin`],
  model cards, merged exports and Hub pushes; online learning ([`learn_online`]).

Each path is a subclass that sets `model_kind` (a pipeline task of `models/kinds.py`) and `config_class`, and
implements `compute_loss` plus the data hooks: [`~trl_tokenlevel.token_classification.TokenClassificationRLTrainer`]
and [`~trl_tokenlevel.generation.GenerationRLTrainer`]. Defining the subclass registers it.

`TokenLevelRLTrainer(model=..., ...)` itself returns an instance of the subclass registered for the model's kind,
so user code and recipes need not know the path; its config may be a [`~trl_tokenlevel.TokenLevelRLConfig`] (the
fields of every path, the other path's refused) or the path's own config.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, Trainer, enable_full_determinism, set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl.trainer.utils import disable_dropout_in_model

from .base_config import TokenLevelRLBaseConfig
from .callbacks import FiniteGradientsCallback
from .dynamic import (
    DynamicRewardsCallback,
    build_coef_schedules,
    build_reward_combiner,
    load_dynamic_state_file,
    make_kl_controller,
)
from .hub.mixin import HubExportMixin
from .models.kinds import MODEL_KINDS, is_peft_model, kind_for_task, kind_of
from .models.loading import load_pretrained
from .models.packaged import resolve_model_path
from .models.quantization import prepare_quantized_model
from .online.loop import learn_online
from .rewards.common import resolve_reward_weights, reward_name, unique_reward_names
from .runtime import check_distributed_launch
from .run_identity import RUN_FILE, check_output_dir, check_same_run, run_fingerprint


logger = logging.getLogger(__name__)


class TokenLevelRLTrainer(HubExportMixin, Trainer):
    """Trainer for token-level RL; see the module docstring. Constructing `TokenLevelRLTrainer(model=..., ...)`
    returns the trainer registered for the model's kind (token classifier or causal LM), with that trainer's
    arguments (see `TokenClassificationRLTrainer` and `GenerationRLTrainer` for them).

    Subclass attributes:
        model_kind (`str`): the pipeline task of the model kind the subclass trains (`models/kinds.py`).
        config_class (`type`): its config; `args` must be one, or a `TokenLevelRLConfig` (checked for the path).
        coefficient_names (`tuple[str, ...]`): loss coefficients with a `<name>_coef` field and optional schedule.
    """

    model_kind: str | None = None
    config_class: type[TokenLevelRLBaseConfig] = TokenLevelRLBaseConfig
    coefficient_names: tuple[str, ...] = ("rl",)
    _tag_names = ["trl", "trl-tokenlevel", "token-level-rl"]
    _registry: dict[str, type[TokenLevelRLTrainer]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "model_kind" in cls.__dict__ and cls.model_kind is not None:
            TokenLevelRLTrainer._registry[cls.model_kind] = cls

    def __new__(cls, model=None, *args, **kwargs):
        if cls is TokenLevelRLTrainer:
            cls = cls.trainer_class_for(model)
        return super().__new__(cls)

    @classmethod
    def trainer_class_for(cls, model: PreTrainedModel | str) -> type[TokenLevelRLTrainer]:
        """The registered trainer for `model`'s kind (a model, PEFT model, or name/path)."""
        kind = kind_of(model, default=None)
        if kind is None or kind.pipeline_task not in cls._registry:
            name = model if isinstance(model, str) else type(model).__name__
            raise ValueError(
                f"No token-level RL trainer for {name!r}; supported model kinds: {sorted(cls._registry)} "
                f"({', '.join(k.auto_class for k in MODEL_KINDS if k.pipeline_task in cls._registry)})."
            )
        return cls._registry[kind.pipeline_task]

    def __init__(
        self,
        model: PreTrainedModel | str,
        reward_funcs: Sequence[Callable] | None,
        args: TokenLevelRLBaseConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_weights: Sequence[float] | None = None,
        peft_config=None,
        callbacks=None,
        optimizers=(None, None),
        **trainer_kwargs,
    ):
        if type(self) is TokenLevelRLTrainer:
            raise TypeError("TokenLevelRLTrainer is constructed through a registered subclass (see trainer_class_for).")
        args = self.resolve_args(args, model)
        check_distributed_launch(args)  # before loading anything: N launched processes must form one run
        # as Trainer does first thing, but before prepare_model: adapters (LoRA's A matrices) and heads created here
        # are then the same in every run with this seed, not drawn from whatever the process's RNG holds
        enable_full_determinism(args.seed) if args.full_determinism else set_seed(args.seed)
        model = self.prepare_model(model, args, peft_config)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(resolve_model_path(model.config._name_or_path))
        self.reward_funcs = list(reward_funcs)
        self.reward_weights = resolve_reward_weights(self.reward_funcs, reward_weights, args.reward_weights)
        check_not_empty(train_dataset, "train_dataset")
        for name, dataset in (eval_dataset.items() if isinstance(eval_dataset, dict) else [("", eval_dataset)]):
            check_not_empty(dataset, f"eval_dataset[{name!r}]" if name else "eval_dataset")
        train_dataset, eval_dataset = self.prepare_datasets(train_dataset, eval_dataset, processing_class, args)
        if trainer_kwargs.get("data_collator") is None:
            trainer_kwargs["data_collator"] = self.default_data_collator(processing_class)
        super().__init__(
            model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
            processing_class=processing_class, callbacks=callbacks, optimizers=optimizers, **trainer_kwargs,
        )
        self.loss_is_scaled_for_ga = True  # every path divides by the token count of the whole optimizer step
        self.ref_model = self.frozen_copy(self.model) if args.kl_coef > 0 and not is_peft_model(self.model) else None
        self.kl_controller = make_kl_controller(args.kl_coef, args.target_kl, args.kl_horizon)
        self._init_dynamic_rewards()
        self.add_callback(FiniteGradientsCallback())
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(lambda: [0.0, 0.0])}
        self._last_sent_values: dict[str, float] = {}  # dynamic values as trackers last received them
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ------------------------------------------------------------------ set-up (shared)
    def resolve_args(self, args, model) -> TokenLevelRLBaseConfig:
        """`args`, checked for this trainer: a default config when `None`; the path's checks for the union config."""
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            return self.config_class(output_dir=f"{str(name).split('/')[-1]}-token-level-rl")
        if hasattr(args, "check_for_path"):  # TokenLevelRLConfig: every path's fields
            args.check_for_path(self.config_class)
        elif not isinstance(args, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__} (or a TokenLevelRLConfig), got "
                f"{type(args).__name__}."
            )
        return args

    def load_model(self, name: str, args: TokenLevelRLBaseConfig) -> PreTrainedModel:
        """Loads the model kind this trainer trains from a name or path (hook: a path adds its own arguments)."""
        import transformers

        return load_pretrained(getattr(transformers, kind_for_task(self.model_kind).auto_class), name, args)

    def prepare_model(self, model, args: TokenLevelRLBaseConfig, peft_config=None) -> nn.Module:
        """Loads `model` when given by name, turns dropout off (`disable_dropout`), prepares a k-bit backbone for
        adapters and wraps the model with PEFT. `model_init_kwargs` (k-bit flags included) only apply to a model
        given by name: with a model object they are refused."""
        if isinstance(model, str):
            model = self.load_model(model, args)
        else:
            if args.model_init_kwargs:
                raise ValueError(
                    "model_init_kwargs is set but the model was passed already loaded, so it would be ignored. Fix: "
                    "pass the model's name or path instead, or drop model_init_kwargs."
                )
        if args.disable_dropout:
            disable_dropout_in_model(model)
        model = prepare_quantized_model(model, peft_config, args.gradient_checkpointing)
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        return model

    def prepare_datasets(self, train_dataset, eval_dataset, processing_class, args):
        """Hook: checks and preprocesses the datasets before `Trainer.__init__` (they pass through here)."""
        return train_dataset, eval_dataset

    def default_data_collator(self, processing_class) -> Callable | None:
        """Hook: the collator used when none is given (`None`: Trainer's default)."""
        return None

    def _init_dynamic_rewards(self) -> None:
        """Reward combiner (weights, schedules, normalisation, constraints), loss-coefficient schedules, callback."""
        def reduce_across_processes(values):
            return self.accelerator.reduce(values.to(self.args.device), reduction="sum").cpu()

        reduce = reduce_across_processes if self.accelerator.num_processes > 1 else None
        self.reward_names = unique_reward_names([reward_name(f) for f in self.reward_funcs])
        self.reward_combiner = build_reward_combiner(self.args, self.reward_names, self.reward_weights, reduce)
        self.coef_schedules = build_coef_schedules(self.args, self.coefficient_names)
        self.add_callback(DynamicRewardsCallback(self))

    # ------------------------------------------------------------------ the reference
    def frozen_copy(self, model: nn.Module) -> nn.Module:
        """A copy of `model` (unwrapped) in eval mode with no gradients: the reference when there are no adapters."""
        reference = copy.deepcopy(self.accelerator.unwrap_model(model))
        reference.eval()
        for parameter in reference.parameters():
            parameter.requires_grad_(False)
        return reference.to(self.args.device)

    @contextlib.contextmanager
    def reference_model(self) -> Iterator[nn.Module]:
        """Yields the module whose forward is the reference policy: the frozen copy when there is one, otherwise
        the policy itself with its PEFT adapters disabled and dropout off (restored on exit). Use under no_grad."""
        if self.ref_model is not None:
            yield self.ref_model
            return
        unwrapped = self.accelerator.unwrap_model(self.model)
        was_training = unwrapped.training
        unwrapped.eval()
        try:
            with unwrapped.disable_adapter():
                yield unwrapped
        finally:
            unwrapped.train(was_training)

    # ------------------------------------------------------------------ coefficients
    def loss_coefficients(self) -> dict[str, float]:
        """`{name: value}` of the loss coefficients at the current optimizer step (e.g. `{"rl": 1.0, "ce": 0.5}`)."""
        return {name: float(schedule(self.state.global_step)) for name, schedule in self.coef_schedules.items()}

    # ------------------------------------------------------------------ metrics and logging
    def record_metric(self, key: str, value_sum, count) -> None:
        """Adds to a metric's running sum and count; [`log`] reports sum/count over all processes and resets."""
        entry = self._metrics["train"][key]
        entry[0] += float(value_sum)
        entry[1] += float(count)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        is_train_log = not any(k.startswith(("eval_", "test_", "predict_")) for k in logs)
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
            # coefficients and weights go to the console and trackers when they change (and at the first log);
            # `state.log_history` (trainer_state.json) keeps every value at every step
            dynamic = self.dynamic_log_values()
            unchanged = {k: v for k, v in dynamic.items() if self._last_sent_values.get(k) == v}
            self._last_sent_values.update(dynamic)
            logs = {**logs, **means, **{k: v for k, v in dynamic.items() if k not in unchanged}}
            self._metrics["train"].clear()
            super().log(logs, start_time)
            self.state.log_history[-1].update(unchanged)
            return
        super().log(logs, start_time)

    def dynamic_log_values(self) -> dict[str, float]:
        """Current values of everything that changes during training: the loss coefficients (`rl_coef`, and
        `ce_coef` where the path has one), the KL coefficient, reward weights, multipliers, running statistics.
        [`log`] sends each value to the console and trackers at the first log and whenever it changed since; every
        entry of `state.log_history` has all of them."""
        logs = {f"{name}_coef": value for name, value in self.loss_coefficients().items()}
        logs["kl_coef"] = self.kl_controller.value
        logs.update(self.reward_combiner.log_values(self.state.global_step))
        return logs

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """`Trainer.training_step`, refusing a non-finite loss before any optimizer step uses its gradients."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"The training loss is {float(loss)} at optimizer step {self.state.global_step + 1}: training stopped "
                "before this update, so no parameter took a non-finite step (the last saved checkpoint, if any, is "
                "intact). Check the rewards' scale (`rewards/<name>/mean` in the logs), the reward weights and the "
                "learning rate."
            )
        return loss

    # ------------------------------------------------------------------ checkpoints and online learning
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None):
        """[`~transformers.Trainer.train`], plus restoring the state saved beside each checkpoint: the KL
        controller, Lagrange multipliers and running reward statistics (`token_level_rl_state.json`), and what a
        path adds ([`load_extra_state`])."""
        if resume_from_checkpoint is not None and resume_from_checkpoint is not False:
            folder = get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True else resume_from_checkpoint
            if folder is not None:
                if not check_same_run(self.run_fingerprint(), folder):
                    logger.warning(f"{folder} has no {RUN_FILE}: cannot check that it belongs to this run.")
                if not load_dynamic_state_file(self, folder):
                    logger.warning(f"{folder} has no token-level RL state file: KL coefficient and multipliers restart.")
                self.load_extra_state(folder)
        elif self.args.should_save:
            check_output_dir(self.args.output_dir, self.args.overwrite_output_dir)
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval)

    def run_fingerprint(self) -> dict:
        """The config fields and training data that define this run (saved in every checkpoint, checked on resume)."""
        return run_fingerprint(self.args, self.train_dataset)

    def load_extra_state(self, folder: str) -> None:
        """Hook: restore what a path saves beside a checkpoint besides the model and optimizer (nothing here)."""

    def check_online(self) -> None:
        """Hook of [`learn_online`]: refuse settings the online loop cannot honour (nothing here)."""

    def online_features(self, examples: list[dict]) -> list[dict]:
        """Hook of [`learn_online`]: turns stream examples into what [`online_batch`] takes and the replay buffer
        keeps (JSON-serialisable)."""
        raise NotImplementedError

    def online_batch(self, features: list[dict]) -> tuple[dict, torch.Tensor | None]:
        """Hook of [`learn_online`]: `(inputs, num_items_in_batch)` for `training_step` from features."""
        raise NotImplementedError

    def online_evaluate(self, name: str, dataset) -> None:
        """Hook of [`learn_online`]: evaluate on a held-out set and log it under `eval_<name>_...`."""
        raise NotImplementedError

    def learn_online(self, stream, **kwargs):
        """Keep learning from a stream of new examples with replay; see [`~trl_tokenlevel.online.learn_online`]."""
        return learn_online(self, stream, **kwargs)


def check_not_empty(dataset, name: str) -> None:
    """Refuses a dataset with no rows before anything tokenizes or samples it (upstream errors name neither)."""
    if dataset is not None and hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError(
            f"{name} has no rows. Fix: pass at least one example (check the split name, and any filter or "
            "max_*_samples that emptied it), or pass None."
        )
