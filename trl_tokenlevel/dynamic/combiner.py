"""Combining several per-token rewards into one: weighted sum, normalise-then-sum, or a constrained problem.

Everything here takes a dict `{reward name: (K, B, T) tensor}` and a `(B, T)` (or broadcastable) mask of the
positions that count, so it is the same for token classification (mask = word positions) and generation
(`(N, T)` rewards; one mask per reward, `{name: mask}`, of the tokens that carry it: all completion tokens for a
dense reward, the last one for a sequence reward placed there, none of a completion it returned `None` for).
The trainer calls, per micro-batch (generation: per rollout):

    combiner.observe(per_reward, mask, measurements)   # running statistics, constraint measurements
    total = combiner.combine(per_reward, mask, step)   # (K, B, T)

and once per optimizer step `combiner.end_step()`, which moves the Lagrange multipliers.

Constrained mode (maximise the unconstrained objectives subject to `measured_i >= threshold_i`; RCPO, Tessler et
al. 2019) optimises the Lagrangian with per-token reward

    r = (sum_{j not constrained} w_j(t) r_j + sum_i lambda_i r_i) / (1 + sum_i lambda_i)

dividing by `1 + sum lambda` keeps the reward scale bounded as multipliers grow. After each optimizer step

    lambda_i <- clip(lambda_i + lr * (threshold_i - measured_i), 0, lambda_max)

so a multiplier rises while its constraint is violated and decays to 0 once it holds.

**The measured value of an objective** is a ratio of sums over one optimizer step (all micro-batches, all
processes), computed on the K *sampled* sequences (the policy being optimised, not the greedy output):

- `statistic="mean"` (default): the mean per-token reward, `sum(r_i * mask) / sum(mask)`;
- any other name: the reward object's `statistics(sampled, gold, mask, label_names)` returns
  `{name: (numerator, denominator)}`, e.g. [`SpanPrecisionReward`] gives span precision `(TP, TP + FP)`. A step in
  which the denominator is 0 (no predicted span at all) leaves the multiplier unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from .normalization import RunningRewardNormalizer, mask_of


COMBINATIONS = ("weighted_sum", "normalize_then_sum", "constrained")


@dataclass
class Constraint:
    """`measured(reward, statistic) >= threshold`, enforced with a Lagrange multiplier."""

    reward: str
    threshold: float
    statistic: str = "mean"

    @classmethod
    def from_spec(cls, spec: Mapping, names: Sequence[str], where: str = "constraints") -> Constraint:
        if not isinstance(spec, Mapping) or not {"reward", "threshold"} <= set(spec):
            raise ValueError(f"{where}: each constraint needs 'reward' and 'threshold' (optional 'statistic'), got {spec!r}.")
        if unknown := set(spec) - {"reward", "threshold", "statistic"}:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} in {dict(spec)}.")
        if names and spec["reward"] not in names:
            raise ValueError(f"{where}: constraint on unknown reward {spec['reward']!r}; the rewards are {list(names)}.")
        return cls(str(spec["reward"]), float(spec["threshold"]), str(spec.get("statistic", "mean")))


def lagrange_update(multiplier: float, threshold: float, measured: float, lr: float, max_value: float) -> float:
    """One projected gradient step on the dual variable: up when `measured < threshold`, down (to >= 0) otherwise.

    Example:
        >>> lagrange_update(0.0, threshold=0.9, measured=0.5, lr=1.0, max_value=10.0)  # violated by 0.4
        0.4
        >>> round(lagrange_update(0.4, threshold=0.9, measured=1.0, lr=1.0, max_value=10.0), 4)  # met: decays
        0.3
        >>> lagrange_update(0.05, threshold=0.9, measured=1.0, lr=1.0, max_value=10.0)  # never below 0
        0.0
    """
    return min(max(multiplier + lr * (threshold - measured), 0.0), max_value)


class RewardCombiner:
    """Per-reward weights over time, normalisation and constraints: see the module docstring.

    Args:
        names (`Sequence[str]`): reward names, in order.
        weight_schedules (`Sequence[Callable[[int], float]]`): one schedule per reward (`schedules.py`).
        combination (`str`, defaults to `"weighted_sum"`): one of `COMBINATIONS`.
        constraints (`Sequence[Constraint]`, *optional*): required for (and only used by) `"constrained"`.
        normalizer ([`RunningRewardNormalizer`], *optional*): required for `"normalize_then_sum"`.
        lagrange_lr (`float`, defaults to `0.05`), lagrange_init (`float`, defaults to `0.0`),
        lagrange_max (`float`, defaults to `100.0`): dual step size, start value and cap.
        reduce (`Callable`, *optional*): sums a 1-D tensor over processes.
    """

    def __init__(
        self,
        names: Sequence[str],
        weight_schedules: Sequence[Callable[[int], float]],
        combination: str = "weighted_sum",
        constraints: Sequence[Constraint] | None = None,
        normalizer: RunningRewardNormalizer | None = None,
        lagrange_lr: float = 0.05,
        lagrange_init: float = 0.0,
        lagrange_max: float = 100.0,
        reduce: Callable | None = None,
    ):
        if combination not in COMBINATIONS:
            raise ValueError(f"reward_combination must be one of {COMBINATIONS}, got {combination!r}.")
        if combination == "constrained" and not constraints:
            raise ValueError("reward_combination='constrained' needs `constraints`, e.g. [{'reward': ..., 'threshold': 0.9}].")
        if combination == "normalize_then_sum" and normalizer is None:
            normalizer = RunningRewardNormalizer()
        self.names = list(names)
        self.weight_schedules = list(weight_schedules)
        self.combination = combination
        self.constraints = list(constraints or []) if combination == "constrained" else []
        self.normalizer = normalizer
        self.lagrange_lr, self.lagrange_max = float(lagrange_lr), float(lagrange_max)
        self.multipliers = {c.reward: float(lagrange_init) for c in self.constraints}
        self.reduce = reduce
        self._measured_sums = {c.reward: [0.0, 0.0] for c in self.constraints}
        self.last_measured: dict[str, float] = {}

    def weights(self, step: int) -> dict[str, float]:
        """The scheduled weight of every reward at `step`."""
        return {name: float(schedule(step)) for name, schedule in zip(self.names, self.weight_schedules)}

    def measure(self, per_reward: Mapping[str, torch.Tensor], mask, statistics: Callable[[str], dict]):
        """`{constraint reward: (numerator, denominator)}` for this micro-batch. `statistics(name)` returns the
        reward's `(numerator, denominator)` dict; it is only called for constraints whose statistic is not `mean`."""
        out = {}
        for constraint in self.constraints:
            if constraint.statistic == "mean":
                values = per_reward[constraint.reward]
                weights = mask_of(mask, constraint.reward).to(values.dtype).expand_as(values)
                out[constraint.reward] = (float((values * weights).sum()), float(weights.sum()))
            else:
                stats = statistics(constraint.reward)
                if constraint.statistic not in stats:
                    raise ValueError(f"Reward {constraint.reward!r} has no statistic {constraint.statistic!r}; it offers {sorted(stats)}.")
                out[constraint.reward] = tuple(float(x) for x in stats[constraint.statistic])
        return out

    def observe(self, per_reward: Mapping[str, torch.Tensor], mask, measurements: Mapping | None = None):
        """Update running statistics with the sampled rewards and add up this micro-batch's constraint measurements."""
        if self.normalizer is not None and self.combination == "normalize_then_sum":
            self.normalizer.update(per_reward, mask)
        for name, (numerator, denominator) in (measurements or {}).items():
            self._measured_sums[name][0] += numerator
            self._measured_sums[name][1] += denominator

    def combine(self, per_reward: Mapping[str, torch.Tensor], mask, step: int) -> torch.Tensor:
        """The per-token reward `(K, B, T)` optimised at `step`. `mask` is a tensor, or a dict with one per reward."""
        weights = self.weights(step)
        if self.combination == "normalize_then_sum":
            per_reward = self.normalizer.normalize(per_reward, mask)
        total = sum(weights[n] * per_reward[n] for n in self.names if n not in self.multipliers)
        if self.combination == "constrained":
            total = total + sum(self.multipliers[n] * per_reward[n] for n in self.multipliers)
            total = total / (1.0 + sum(self.multipliers.values()))
        return total

    def end_step(self) -> dict[str, float]:
        """Move every multiplier with the measurements of the finished optimizer step; returns the measured values."""
        if not self.constraints:
            return {}
        sums = torch.tensor([self._measured_sums[c.reward] for c in self.constraints], dtype=torch.float64)
        if self.reduce is not None:
            sums = self.reduce(sums)
        measured = {}
        for constraint, (numerator, denominator) in zip(self.constraints, sums.tolist()):
            if denominator > 0:
                measured[constraint.reward] = numerator / denominator
                self.multipliers[constraint.reward] = lagrange_update(
                    self.multipliers[constraint.reward], constraint.threshold, measured[constraint.reward],
                    self.lagrange_lr, self.lagrange_max,
                )
        self._measured_sums = {c.reward: [0.0, 0.0] for c in self.constraints}
        self.last_measured.update(measured)
        return measured

    def log_values(self, step: int) -> dict[str, float]:
        """Current weights (`reward_weights/<name>`), multipliers (`lagrange/<name>`), the last measured constraint
        values (`constraints/<name>`) and the running statistics (`reward_norm/<name>/{mean,std}`)."""
        logs = {f"reward_weights/{n}": w for n, w in self.weights(step).items() if n not in self.multipliers}
        logs.update({f"lagrange/{n}": v for n, v in self.multipliers.items()})
        logs.update({f"constraints/{n}": v for n, v in self.last_measured.items()})
        if self.normalizer is not None:
            for name in self.normalizer.mean:
                logs[f"reward_norm/{name}/mean"] = self.normalizer.mean[name]
                logs[f"reward_norm/{name}/std"] = self.normalizer.std(name)
        return logs

    def state_dict(self) -> dict:
        return {
            "multipliers": dict(self.multipliers),
            "last_measured": dict(self.last_measured),
            "normalizer": self.normalizer.state_dict() if self.normalizer is not None else None,
        }

    def load_state_dict(self, state: Mapping) -> None:
        self.multipliers.update({k: float(v) for k, v in state["multipliers"].items()})
        self.last_measured = dict(state.get("last_measured", {}))
        if self.normalizer is not None and state.get("normalizer") is not None:
            self.normalizer.load_state_dict(state["normalizer"])
