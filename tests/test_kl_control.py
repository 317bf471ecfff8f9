import pytest

from trl_tokenlevel.dynamic.kl_control import AdaptiveKLController, FixedKLController, make_kl_controller


def test_fixed_controller_never_moves():
    controller = make_kl_controller(0.3)
    assert isinstance(controller, FixedKLController)
    assert controller.update(10.0, 100) == 0.3


def test_adaptive_controller_rises_above_target_falls_below_and_clips():
    controller = AdaptiveKLController(0.1, target_kl=0.1, horizon=100)
    controller.update(0.2, num_steps=10)  # error +1 clipped to +0.2
    assert controller.value == pytest.approx(0.1 * 1.02)
    controller.update(0.05, num_steps=10)  # error -0.5 clipped to -0.2
    assert controller.value == pytest.approx(0.1 * 1.02 * 0.98)
    controller.update(0.1, num_steps=10)  # on target: unchanged
    assert controller.value == pytest.approx(0.1 * 1.02 * 0.98)
    restored = AdaptiveKLController(1.0, 1.0)
    restored.load_state_dict(controller.state_dict())
    assert restored.value == controller.value and restored.target == 0.1


def test_adaptive_controller_rejects_bad_targets():
    with pytest.raises(ValueError, match="target_kl must be > 0"):
        AdaptiveKLController(0.1, target_kl=0.0)
