"""Online / continual learning: `trainer.learn_online(stream)` with a replay buffer and restart-safe checkpoints."""

from .buffer import ReservoirBuffer
from .loop import ONLINE_CHECKPOINT_PREFIX, last_online_checkpoint, learn_online


__all__ = ["ONLINE_CHECKPOINT_PREFIX", "ReservoirBuffer", "last_online_checkpoint", "learn_online"]
