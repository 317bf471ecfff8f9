"""[`Seq2SeqGenerationRLTrainer`]: the generation path for encoder-decoder models (`AutoModelForSeq2SeqLM`: T5,
BART, Marian, mBART, NLLB, ...).

Everything but two hooks is [`GenerationRLTrainer`]'s: the rollout buffering, rewards, advantages (leave-one-out or
GAE with the value head on the decoder's last hidden states), the per-token KL to the reference (the frozen copy,
or the same network with its adapters disabled), the clipped loss, saving, model cards and online learning. What
differs for an encoder-decoder model:

- [`encode_prompts`]: a prompt is the encoder's input, right-padded and truncated at its end by the tokenizer, as
  in pre-training (causal LMs pad on the left and keep the prompt's end);
- [`policy_logits`]: the decoder reads `[decoder_start_token_id] + completion[:-1]` and its logits at position
  `t` score completion token `t` (see `rollout.policy_forward`). `generate` starts every decoder sequence with the
  same `decoder_start_token_id`, which the rollout strips.

Loading by name uses `AutoModelForSeq2SeqLM` (the `text2text-generation` row of `models/kinds.py`); LoRA targets
for T5, BART and Marian come from `models/peft_presets.default_target_modules` (`task_type="SEQ_2_SEQ_LM"`). The
saved folder loads with `AutoModelForSeq2SeqLM.from_pretrained`; transformers 5 removed the `text2text-generation`
and `translation` pipelines, so decode with `model.generate` (the model card shows how).
"""

from __future__ import annotations

import torch

from .rollout import policy_forward, tokenize_prompts
from .trainer import GenerationRLTrainer


def decoder_start_token_id(model) -> int:
    """The token every decoder sequence starts with: `generation_config`'s, else `config`'s (PEFT unwrapped).

    Raises:
        `ValueError` when neither is set, naming the field to set.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for source in (getattr(base, "generation_config", None), base.config):
        value = getattr(source, "decoder_start_token_id", None)
        if value is not None:
            return int(value)
    raise ValueError(
        f"{type(base).__name__} has no decoder_start_token_id in its config or generation_config, so neither "
        "`generate` nor the training forward knows how to start the decoder. Fix: set "
        "model.config.decoder_start_token_id (T5 and Marian use the pad token id, BART the EOS id)."
    )


def disable_rate_dropout(model: torch.nn.Module) -> int:
    """Sets to 0 the dropout (and LayerDrop) *rates* that modules keep as float attributes and apply themselves,
    e.g. `F.dropout(x, p=self.dropout, training=self.training)` or `dropout=self.dropout` passed to the attention
    kernel: T5's and BART/Marian's attention and layers in transformers 5. TRL's `disable_dropout_in_model` only
    zeroes `nn.Dropout` modules, so without this a T5 in train mode still drops attention weights and the training
    forward disagrees with the rollout's log-probs. Returns how many rates were zeroed.

    Example:
        >>> layer = torch.nn.Module(); layer.dropout, layer.attention_dropout, layer.layerdrop = 0.1, 0.0, 0.2
        >>> disable_rate_dropout(layer), layer.dropout, layer.layerdrop
        (2, 0.0, 0.0)
    """
    rates = [
        (module, name) for module in model.modules() for name, value in vars(module).items()
        if ("dropout" in name or name == "layerdrop") and isinstance(value, float) and value > 0
    ]
    for module, name in rates:
        setattr(module, name, 0.0)
    return len(rates)


class Seq2SeqGenerationRLTrainer(GenerationRLTrainer):
    """Token-level RL for `AutoModelForSeq2SeqLM` models: [`GenerationRLTrainer`] with the encoder-decoder prompt
    encoding and training forward (module docstring). Same arguments and config ([`GenerationRLConfig`]); prompts
    are plain text (the encoder's input; chat messages need a tokenizer with a chat template)."""

    model_kind = "text2text-generation"

    def __init__(self, model, *args, **kwargs):
        super().__init__(model, *args, **kwargs)
        self.decoder_start_token_id = decoder_start_token_id(self.accelerator.unwrap_model(self.model))

    def prepare_model(self, model, args, peft_config=None):
        """[`GenerationRLTrainer.prepare_model`]; with `disable_dropout`, also the dropout rates T5/BART/Marian
        apply as float attributes ([`disable_rate_dropout`])."""
        model = super().prepare_model(model, args, peft_config)
        if args.disable_dropout:
            disable_rate_dropout(model)
        return model

    def encode_prompts(self, prompts: list) -> tuple[torch.Tensor, torch.Tensor]:
        """`(input_ids, attention_mask)` of the encoder, right-padded; long prompts keep their beginning."""
        return tokenize_prompts(
            prompts, self.processing_class, self.args.max_prompt_length, self.accelerator.device, padding_side="right"
        )

    def policy_logits(self, model, batch: dict, output_hidden_states: bool = False):
        """Encoder over the prompt, decoder over `[decoder_start] + completion[:-1]` (see [`policy_forward`])."""
        return policy_forward(model, batch, output_hidden_states, decoder_start_token_id=self.decoder_start_token_id)


__all__ = ["Seq2SeqGenerationRLTrainer", "decoder_start_token_id", "disable_rate_dropout"]
