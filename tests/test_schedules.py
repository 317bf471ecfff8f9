"""Tier 1: schedule values at given steps, and spec validation."""

import pytest

from trl_tokenlevel.dynamic.schedules import build_schedule, build_schedules


@pytest.mark.parametrize(
    "spec, expected",
    [
        (0.3, {0: 0.3, 1000: 0.3}),
        ({"type": "constant", "value": 2}, {0: 2.0, 50: 2.0}),
        ({"type": "linear", "start": 0.0, "end": 1.0, "steps": 100}, {0: 0.0, 25: 0.25, 100: 1.0, 500: 1.0}),
        ({"type": "linear", "start": 1.0, "end": 0.0, "steps": 10, "offset": 20}, {0: 1.0, 20: 1.0, 25: 0.5, 30: 0.0}),
        ({"type": "cosine", "start": 1.0, "end": 0.0, "steps": 100}, {0: 1.0, 25: 0.853553, 50: 0.5, 100: 0.0, 200: 0.0}),
        ({"type": "step", "values": [0.0, 0.5, 2.0], "boundaries": [10, 30]}, {0: 0.0, 9: 0.0, 10: 0.5, 29: 0.5, 30: 2.0}),
        ({"type": "warmup", "value": 4.0, "steps": 8}, {0: 0.0, 2: 1.0, 8: 4.0, 80: 4.0}),
        ({"type": "warmup", "value": 1.0, "steps": 4, "start": 0.2}, {0: 0.2, 2: 0.6, 4: 1.0}),
        ('{"type": "linear", "start": 2, "end": 0, "steps": 4}', {1: 1.5, 4: 0.0}),  # JSON string (command line)
    ],
)
def test_schedule_values_at_given_steps(spec, expected):
    schedule = build_schedule(spec)
    assert {step: round(schedule(step), 6) for step in expected} == pytest.approx(expected)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "exponential"}, "unknown schedule type 'exponential'"),
        ({"type": "linear", "start": 0.0, "end": 1.0}, r"needs \['steps'\]"),
        ({"type": "linear", "start": 0, "end": 1, "steps": 5, "warm": 1}, r"unknown keys \['warm'\]"),
        ({"type": "linear", "start": 0, "end": 1, "steps": 0}, "'steps' must be > 0"),
        ({"type": "step", "values": [1.0], "boundaries": [3]}, r"len\(values\) == len\(boundaries\) \+ 1"),
        ("{not json", "could not parse"),
        ([1, 2], "expected a number or a dict"),
    ],
)
def test_bad_specs_name_the_field_and_the_fix(spec, message):
    with pytest.raises(ValueError, match=message):
        build_schedule(spec, "reward_weight_schedules[0]")


def test_one_schedule_per_reward_with_fixed_weights_as_fallback():
    schedules = build_schedules([None, {"type": "linear", "start": 0, "end": 1, "steps": 10}], 2, [0.5, 1.0], "w")
    assert [s(5) for s in schedules] == [0.5, 0.5]
    with pytest.raises(ValueError, match="expected a list of 3 schedules"):
        build_schedules([1.0], 3, [1.0] * 3, "reward_weight_schedules")
