"""Saving, model cards, adapter merging and the Hub for [`TokenLevelRLTrainer`].

`save_model()` and `push_to_hub()` write a model card (`model_card.py`) and `training_args.json`; with
`args.merge_adapters` the final save is a plain merged model (`export.py`) and the adapter goes to `adapter/`.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..models.kinds import is_peft_model
from ..models.quantization import is_quantized
from .export import (
    ADAPTER_SUBFOLDER,
    finalize_adapter_folder,
    merge_adapter_checkpoint,
    merge_adapters,
    save_training_args_json,
)
from .model_card import model_card_from_trainer


logger = logging.getLogger(__name__)


class HubExportMixin:
    """Overrides `save_model`, `push_to_hub` and `create_model_card` of `transformers.Trainer`."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Saves like `Trainer.save_model`, then (main process) replaces the pickled `training_args.bin` with
        `training_args.json` and, for a final save (a user call or `push_to_hub`, not a checkpoint), writes the model
        card. With `args.merge_adapters`, a final save writes the merged plain model at the top of `output_dir` and
        the adapter in `output_dir/adapter/`."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        final = not _internal_call or self._final_save
        merge = final and self.args.merge_adapters and is_peft_model(self.accelerator.unwrap_model(self.model))
        model_folder = os.path.join(output_dir, ADAPTER_SUBFOLDER) if merge else output_dir
        super().save_model(model_folder, _internal_call=True)
        if self.args.should_save:
            finalize_adapter_folder(model_folder)  # Hub id as the base, no empty PEFT template card
            if merge:
                self._save_merged(output_dir)
            self._replace_pickled_args(os.path.join(output_dir, ADAPTER_SUBFOLDER) if merge else output_dir)
            if merge:
                save_training_args_json(self.args, output_dir)
            if final:
                self._write_model_card(output_dir)
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, **kwargs):
        """`Trainer.push_to_hub`, with the final save of [`save_model`] (merged model when `merge_adapters`) and our
        model card. Extra keyword arguments (`dataset_name`, `tags`, `license`, ...) go to the card."""
        with self._final_save_context():
            return super().push_to_hub(commit_message=commit_message, blocking=blocking, **kwargs)

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None,
                          license: str | None = None, dataset: str | list[str] | None = None, **kwargs) -> None:
        """Writes `README.md` in `args.output_dir` (see [`~trl_tokenlevel.model_card.build_model_card`]). Trainer's
        other card arguments (`language`, `finetuned_from`, ...) are accepted and ignored."""
        if self.is_world_process_zero():
            dataset = dataset_name or (dataset[0] if isinstance(dataset, list) else dataset)
            self._write_model_card(self.args.output_dir, model_name=model_name, dataset=dataset, tags=tags, license=license)

    def _write_model_card(self, output_dir: str, model_name=None, dataset=None, tags=None, license=None) -> None:
        if isinstance(tags, str):
            tags = [tags]
        hub_id = self.args.hub_model_id
        model_name = model_name or (hub_id.split("/")[-1] if hub_id else os.path.basename(os.path.abspath(output_dir)))
        card = model_card_from_trainer(
            self, model_name, dataset=dataset or getattr(self, "dataset_name", None),
            merged=self.args.merge_adapters, repo_id=hub_id or model_name, tags=list(tags or []), license=license,
        )
        card.save(os.path.join(output_dir, "README.md"))

    def _save_merged(self, output_dir: str) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            logger.warning(
                "merge_adapters under DeepSpeed/FSDP: the adapter is saved in %s/%s; merge it offline with "
                "`trl_tokenlevel.export.merge_adapter_checkpoint`.", output_dir, ADAPTER_SUBFOLDER,
            )
            return
        model = self.accelerator.unwrap_model(self.model)
        if is_quantized(model):  # merge into a full-precision copy of the base, never into int8/NF4 weights
            config = model.get_base_model().config
            merge_adapter_checkpoint(os.path.join(output_dir, ADAPTER_SUBFOLDER), output_dir, config=config)
            return
        merged = merge_adapters(model)
        merged.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)

    def _replace_pickled_args(self, folder: str) -> None:
        # Trainer pickles the arguments into training_args.bin; nothing in transformers or here loads it back, and
        # pickles are unsafe to load from a Hub repo. Ship readable JSON instead.
        pickled = os.path.join(folder, "training_args.bin")
        if os.path.exists(pickled):
            os.remove(pickled)
        if os.path.isdir(folder):
            save_training_args_json(self.args, folder)

    @property
    def _final_save(self) -> bool:
        return getattr(self, "_final_save_depth", 0) > 0

    @contextlib.contextmanager
    def _final_save_context(self):
        self._final_save_depth = getattr(self, "_final_save_depth", 0) + 1
        try:
            yield
        finally:
            self._final_save_depth -= 1
