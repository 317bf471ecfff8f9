"""Scalar schedules over optimizer steps, built from YAML-friendly specs.

A schedule maps the optimizer step `t` (Trainer's `state.global_step`, or the update count of `learn_online`) to a
float. The trainer uses them for the weight of each reward (`reward_weight_schedules`) and for the CE-to-RL mix
(`ce_coef_schedule`, `rl_coef_schedule`). Specs are plain dicts, so they fit in YAML and, as JSON strings, on the
command line:

    {"type": "constant", "value": 0.5}
    {"type": "linear", "start": 0.0, "end": 1.0, "steps": 500, "offset": 0}     # ramp over [offset, offset+steps]
    {"type": "cosine", "start": 1.0, "end": 0.0, "steps": 500, "offset": 0}     # half-cosine from start to end
    {"type": "step", "values": [0.0, 0.5, 1.0], "boundaries": [100, 300]}       # piecewise constant
    {"type": "warmup", "value": 1.0, "steps": 100, "start": 0.0}              # linear warm-up, then constant

Before `offset` a ramp holds `start`; after `offset + steps` it holds `end`. A bare number is a constant schedule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConstantSchedule:
    value: float

    def __call__(self, step: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class LinearSchedule:
    """`start + (end - start) * clip((step - offset) / steps, 0, 1)`.

    Example:
        >>> [LinearSchedule(0.0, 1.0, steps=4)(t) for t in (0, 2, 4, 10)]
        [0.0, 0.5, 1.0, 1.0]
    """

    start: float
    end: float
    steps: int
    offset: int = 0

    def progress(self, step: int) -> float:
        return min(max((step - self.offset) / self.steps, 0.0), 1.0)

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * self.progress(step)


@dataclass(frozen=True)
class CosineSchedule(LinearSchedule):
    """`end + (start - end) * (1 + cos(pi * p)) / 2` with `p` the clipped progress of [`LinearSchedule`].

    Example:
        >>> [round(CosineSchedule(1.0, 0.0, steps=4)(t), 4) for t in (0, 2, 4)]
        [1.0, 0.5, 0.0]
    """

    def __call__(self, step: int) -> float:
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))


@dataclass(frozen=True)
class StepSchedule:
    """`values[i]` for `boundaries[i-1] <= step < boundaries[i]` (so `len(values) == len(boundaries) + 1`).

    Example:
        >>> [StepSchedule((0.0, 0.5, 1.0), (2, 4))(t) for t in (0, 1, 2, 3, 4, 9)]
        [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    """

    values: tuple[float, ...]
    boundaries: tuple[int, ...]

    def __call__(self, step: int) -> float:
        index = sum(1 for boundary in self.boundaries if step >= boundary)
        return float(self.values[index])


def _warmup(value: float, steps: int, start: float = 0.0) -> LinearSchedule:
    return LinearSchedule(start=start, end=value, steps=steps)


_BUILDERS = {
    "constant": (ConstantSchedule, {"value"}, set()),
    "linear": (LinearSchedule, {"start", "end", "steps"}, {"offset"}),
    "cosine": (CosineSchedule, {"start", "end", "steps"}, {"offset"}),
    "step": (StepSchedule, {"values", "boundaries"}, set()),
    "warmup": (_warmup, {"value", "steps"}, {"start"}),
}
SCHEDULE_TYPES = tuple(_BUILDERS)


def parse_json_field(value: Any, field_name: str) -> Any:
    """Decode a config field that may arrive as a JSON string from the command line (`--x '{"type": ...}'`)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise ValueError(f"{field_name}: could not parse {value!r} as JSON ({err}). Quote it like '{{\"type\": \"linear\", ...}}'.") from err


def build_schedule(spec: Any, where: str = "schedule"):
    """Build a schedule from a number, a dict spec (see the module docstring) or its JSON string.

    Args:
        spec (`float`, `dict` or `str`): the spec.
        where (`str`, defaults to `"schedule"`): the config field, named in error messages.

    Example:
        >>> build_schedule({"type": "warmup", "value": 2.0, "steps": 10})(5)
        1.0
        >>> build_schedule('{"type": "constant", "value": 3}')(100)
        3.0
    """
    spec = parse_json_field(spec, where)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ConstantSchedule(float(spec))
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{where}: expected a number or a dict with a 'type' in {SCHEDULE_TYPES}, got {spec!r}.")
    kind = spec["type"]
    if kind not in _BUILDERS:
        raise ValueError(f"{where}: unknown schedule type {kind!r}; choose one of {SCHEDULE_TYPES}.")
    builder, required, optional = _BUILDERS[kind]
    keys = set(spec) - {"type"}
    if missing := required - keys:
        raise ValueError(f"{where}: a {kind!r} schedule needs {sorted(missing)}; got {dict(spec)}.")
    if unknown := keys - required - optional:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} for a {kind!r} schedule (allowed: {sorted(required | optional)}).")
    kwargs = {k: spec[k] for k in keys}
    if "steps" in kwargs and int(kwargs["steps"]) <= 0:
        raise ValueError(f"{where}: 'steps' must be > 0, got {kwargs['steps']}.")
    if kind == "step":
        values, boundaries = tuple(float(v) for v in kwargs["values"]), tuple(int(b) for b in kwargs["boundaries"])
        if len(values) != len(boundaries) + 1 or list(boundaries) != sorted(boundaries):
            raise ValueError(
                f"{where}: a 'step' schedule needs len(values) == len(boundaries) + 1 and increasing boundaries; "
                f"got values={list(values)}, boundaries={list(boundaries)}."
            )
        return StepSchedule(values, boundaries)
    return builder(**kwargs)


def build_schedules(specs: Sequence[Any] | None, num: int, defaults: Sequence[float], where: str) -> list:
    """One schedule per reward: `specs[i]` if given (None entries fall back), else a constant `defaults[i]`."""
    specs = parse_json_field(specs, where)
    if specs is None:
        return [ConstantSchedule(float(d)) for d in defaults]
    if not isinstance(specs, (list, tuple)) or len(specs) != num:
        raise ValueError(f"{where}: expected a list of {num} schedules (one per reward, in order), got {specs!r}.")
    return [
        ConstantSchedule(float(d)) if s is None else build_schedule(s, f"{where}[{i}]")
        for i, (s, d) in enumerate(zip(specs, defaults))
    ]
