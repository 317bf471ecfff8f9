"""Running per-reward normalisation: exponential moving mean and standard deviation over active tokens.

Task-agnostic: it takes a dict `{reward name: tensor}` plus a mask of the positions that count, so the same object
serves token classification (`(K, B, T)` rewards over word positions) and generation (`(N, T)` rewards over
completion tokens). The mask is one tensor for every reward, or a dict `{reward name: mask}` when rewards live on
different positions (generation: a sequence reward placed on the last token counts there only, and a reward that
returned `None` for a completion does not count on it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch


def mask_of(mask: torch.Tensor | Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    """The mask of reward `name`: `mask[name]` when masks are given per reward, else the shared `mask`."""
    return mask[name] if isinstance(mask, Mapping) else mask


class RunningRewardNormalizer:
    """Keeps, for every reward, an exponential moving average of the masked batch mean and of the masked batch second
    moment, and standardises rewards with them:

        m_b = sum(r * mask) / sum(mask),  s_b = sum(r^2 * mask) / sum(mask)          # this batch, active tokens only
        mean <- momentum * mean + (1 - momentum) * m_b;  sq <- momentum * sq + (1 - momentum) * s_b
        std = sqrt(max(sq - mean^2, 0) + eps);  normalized r = (r - mean) / std     # zero outside the mask

    The first batch initialises the statistics (no zero-initialisation bias). Statistics are updated with the batch
    before it is normalised, so the current batch counts. Updating per micro-batch means the normalisation of the
    second micro-batch of an accumulated step sees the first one: with `momentum` close to 1 the effect is small.

    Args:
        momentum (`float`, defaults to `0.99`): weight of the past; 0 = normalise every batch by its own statistics.
        eps (`float`, defaults to `1e-8`): added to the variance.
        reduce (`Callable`, *optional*): sums a 1-D tensor over processes (e.g. `accelerator.reduce(x, "sum")`),
            so every rank keeps the same statistics. Identity by default.

    Example:
        >>> norm = RunningRewardNormalizer(momentum=0.5)
        >>> mask = torch.tensor([True, True, False])
        >>> norm.update({"f1": torch.tensor([1.0, 3.0, 100.0])}, mask)  # the masked-out 100 is ignored
        >>> norm.stats("f1")
        {'mean': 2.0, 'std': 1.0, 'count': 1}
        >>> norm.normalize({"f1": torch.tensor([1.0, 3.0, 100.0])}, mask)["f1"].tolist()
        [-1.0, 1.0, 0.0]
    """

    def __init__(self, momentum: float = 0.99, eps: float = 1e-8, reduce: Callable | None = None):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.reduce = reduce
        self.mean: dict[str, float] = {}
        self.sq_mean: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def update(self, rewards: Mapping[str, torch.Tensor], mask: torch.Tensor | Mapping[str, torch.Tensor]) -> None:
        for name, values in rewards.items():
            weights = mask_of(mask, name).to(values.dtype).expand_as(values)
            sums = torch.stack([(values * weights).sum(), (values**2 * weights).sum(), weights.sum()]).detach()
            if self.reduce is not None:
                sums = self.reduce(sums)
            total, total_sq, n = sums.tolist()
            if n == 0:
                continue
            batch_mean, batch_sq = total / n, total_sq / n
            if name not in self.mean:
                self.mean[name], self.sq_mean[name], self.count[name] = batch_mean, batch_sq, 0
            else:
                m = self.momentum
                self.mean[name] = m * self.mean[name] + (1 - m) * batch_mean
                self.sq_mean[name] = m * self.sq_mean[name] + (1 - m) * batch_sq
            self.count[name] += 1

    def std(self, name: str) -> float:
        return (max(self.sq_mean[name] - self.mean[name] ** 2, 0.0) + self.eps) ** 0.5

    def stats(self, name: str) -> dict[str, float]:
        """`{'mean', 'std', 'count'}` of one reward (`count` = batches seen)."""
        return {"mean": round(self.mean[name], 6), "std": round(self.std(name), 6), "count": self.count[name]}

    def normalize(
        self, rewards: Mapping[str, torch.Tensor], mask: torch.Tensor | Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Standardised copies of `rewards` (rewards never seen by `update` are returned unchanged)."""
        out = {}
        for name, values in rewards.items():
            if name not in self.mean:
                out[name] = values
                continue
            weights = mask_of(mask, name).to(values.dtype).expand_as(values)
            out[name] = (values - self.mean[name]) / self.std(name) * weights
        return out

    def state_dict(self) -> dict:
        return {"momentum": self.momentum, "eps": self.eps, "mean": dict(self.mean), "sq_mean": dict(self.sq_mean),
                "count": dict(self.count)}

    def load_state_dict(self, state: Mapping) -> None:
        self.momentum, self.eps = float(state["momentum"]), float(state["eps"])
        self.mean, self.sq_mean = dict(state["mean"]), dict(state["sq_mean"])
        self.count = {k: int(v) for k, v in state["count"].items()}
