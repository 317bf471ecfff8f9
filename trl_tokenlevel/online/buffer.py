"""A reservoir-sampled replay buffer whose state (items and RNG) is plain JSON."""

from __future__ import annotations

import random
from collections.abc import Mapping


class ReservoirBuffer:
    """Keeps a uniform random sample of at most `capacity` of all items ever added (Vitter's algorithm R).

    Example:
        >>> buffer = ReservoirBuffer(capacity=3, seed=0)
        >>> for i in range(100):
        ...     buffer.add(i)
        >>> len(buffer), buffer.num_seen
        (3, 100)
    """

    def __init__(self, capacity: int, seed: int = 0):
        self.capacity = int(capacity)
        self.items: list = []
        self.num_seen = 0
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item) -> None:
        self.num_seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
        elif self.capacity > 0:
            slot = self.rng.randrange(self.num_seen)
            if slot < self.capacity:
                self.items[slot] = item

    def sample(self, n: int) -> list:
        return self.rng.sample(self.items, min(n, len(self.items)))

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"capacity": self.capacity, "items": self.items, "num_seen": self.num_seen,
                "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: Mapping) -> None:
        self.capacity, self.items, self.num_seen = int(state["capacity"]), list(state["items"]), int(state["num_seen"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
