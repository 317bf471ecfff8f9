"""A value head: one linear layer on the policy's last hidden states, giving a value per token (for PPO / GAE).

TRL removed its value-head models; this is the small piece PPO needs. The trainer attaches the head to the policy
as the submodule `value_head`, so the optimizer, gradient accumulation and DDP treat it like any other parameter.
It is saved next to the model as `value_head.safetensors` (the model's own files stay a plain Hugging Face folder
that `from_pretrained` loads without warnings) and loaded back with [`ValueHead.from_pretrained`].
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file
from torch import nn


VALUE_HEAD_FILE = "value_head.safetensors"


class ValueHead(nn.Module):
    """`V(s_t) = w . h_t + b` on the last hidden state `h_t` (the state before completion token t is sampled).

    Args:
        hidden_size (`int`): width of the policy's hidden states.
        init_std (`float`, defaults to `0.0`): std of the initial weights. 0 starts every value at 0, so the first
            advantages are the plain returns.
    """

    def __init__(self, hidden_size: int, init_std: float = 0.0):
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.summary = nn.Linear(self.hidden_size, 1)
        nn.init.normal_(self.summary.weight, std=init_std) if init_std > 0 else nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(N, T, H)` -> `(N, T)` values, in float32 whatever the policy's dtype."""
        return self.summary(hidden_states.to(self.summary.weight.dtype)).squeeze(-1).float()

    def save_pretrained(self, directory: str) -> str:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, VALUE_HEAD_FILE)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, path, metadata={"hidden_size": json.dumps(self.hidden_size)})
        return path

    @classmethod
    def from_pretrained(cls, directory: str) -> ValueHead:
        path = os.path.join(directory, VALUE_HEAD_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No {VALUE_HEAD_FILE} in {directory!r}: it is written by TokenLevelRLTrainer.save_model when "
                "advantage_estimator='gae'. Train with a value head, or start a new one with ValueHead(hidden_size)."
            )
        tensors = load_file(path)
        head = cls(tensors["summary.weight"].shape[1])
        head.load_state_dict(tensors)
        return head
