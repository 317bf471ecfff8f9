"""KL coefficient controllers: a fixed coefficient, or one adapted toward a target KL."""

from __future__ import annotations


class FixedKLController:
    """Keeps the KL coefficient constant."""

    def __init__(self, kl_coef: float):
        self.value = float(kl_coef)

    def update(self, observed_kl: float, num_steps: int = 1) -> float:
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Proportional controller of Ziegler et al. (2019), "Fine-Tuning Language Models from Human Preferences":

        e = clip(KL_observed / KL_target - 1, -0.2, 0.2);   beta <- beta * (1 + e * n_steps / horizon)

    The coefficient grows while the policy drifts further than `target_kl` from the reference, and shrinks when it
    stays closer.

    Args:
        init_kl_coef (`float`): starting coefficient.
        target_kl (`float`): KL (per token, in nats) to steer toward.
        horizon (`int`, defaults to `10000`): steps over which a 20% error changes beta by a factor e^0.2.

    Example:
        >>> controller = AdaptiveKLController(0.1, target_kl=0.05, horizon=10)
        >>> round(controller.update(observed_kl=0.5, num_steps=1), 4)  # KL 10x the target: +2% (clipped error 0.2)
        0.102
    """

    def __init__(self, init_kl_coef: float, target_kl: float, horizon: int = 10000):
        if target_kl <= 0:
            raise ValueError(f"target_kl must be > 0, got {target_kl}.")
        if horizon <= 0:
            raise ValueError(f"horizon must be > 0, got {horizon}.")
        self.value = float(init_kl_coef)
        self.target = float(target_kl)
        self.horizon = int(horizon)

    def update(self, observed_kl: float, num_steps: int = 1) -> float:
        error = min(max(observed_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * num_steps / self.horizon
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = float(state["value"]), float(state["target"]), int(state["horizon"])


def make_kl_controller(kl_coef: float, target_kl: float | None = None, horizon: int = 10000):
    """`AdaptiveKLController` when `target_kl` is set, else `FixedKLController`."""
    if target_kl is None:
        return FixedKLController(kl_coef)
    return AdaptiveKLController(kl_coef, target_kl, horizon)
