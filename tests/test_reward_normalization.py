"""Tier 1: running per-reward statistics on hand-written tensors."""

import pytest
import torch

from trl_tokenlevel.dynamic.normalization import RunningRewardNormalizer


def test_masked_statistics_with_momentum():
    norm = RunningRewardNormalizer(momentum=0.75)
    mask = torch.tensor([[True, True, True, False]])  # (B=1, T=4), last position is padding
    first = torch.tensor([[[1.0, 2.0, 3.0, 50.0]], [[1.0, 2.0, 3.0, -50.0]]])  # (K=2, B, T)
    norm.update({"a": first, "b": 10 * first}, mask)
    # first batch initialises: mean 2, E[r^2] = 14/3, var 2/3 (padding ignored)
    assert norm.mean["a"] == pytest.approx(2.0) and norm.std("a") == pytest.approx((2 / 3) ** 0.5)
    assert norm.mean["b"] == pytest.approx(20.0) and norm.std("b") == pytest.approx(10 * (2 / 3) ** 0.5)
    norm.update({"a": torch.full((2, 1, 4), 6.0)}, mask)  # batch mean 6, E[r^2] 36
    mean = 0.75 * 2 + 0.25 * 6
    sq = 0.75 * 14 / 3 + 0.25 * 36
    assert norm.mean["a"] == pytest.approx(mean) and norm.std("a") == pytest.approx((sq - mean**2) ** 0.5)
    assert norm.count == {"a": 2, "b": 1}
    out = norm.normalize({"a": first, "unseen": first}, mask)
    expected = (first - mean) / (sq - mean**2) ** 0.5 * mask
    torch.testing.assert_close(out["a"], expected)
    assert out["a"][..., 3].abs().sum() == 0 and out["unseen"] is first


def test_normalised_rewards_have_unit_scale_and_state_round_trips():
    torch.manual_seed(0)
    norm = RunningRewardNormalizer(momentum=0.9)
    mask = torch.ones(8, 16, dtype=torch.bool)
    for _ in range(200):
        norm.update({"r": 5.0 + 3.0 * torch.randn(4, 8, 16)}, mask)
    assert norm.mean["r"] == pytest.approx(5.0, abs=0.1) and norm.std("r") == pytest.approx(3.0, rel=0.05)
    batch = 5.0 + 3.0 * torch.randn(4, 8, 16)
    normalised = norm.normalize({"r": batch}, mask)["r"]
    assert normalised.mean().abs() < 0.1 and normalised.std() == pytest.approx(1.0, abs=0.1)
    restored = RunningRewardNormalizer()
    restored.load_state_dict(norm.state_dict())
    torch.testing.assert_close(restored.normalize({"r": batch}, mask)["r"], normalised)


def test_an_empty_mask_changes_nothing_and_bad_momentum_is_refused():
    norm = RunningRewardNormalizer()
    norm.update({"r": torch.ones(2, 1, 3)}, torch.zeros(1, 3, dtype=torch.bool))
    assert norm.mean == {}
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        RunningRewardNormalizer(momentum=1.0)


def test_per_reward_masks_count_each_reward_where_it_is_carried():
    # generation: a dense reward on every completion token, a sequence reward on the last token of the completions
    # it applies to (completion 1 returned None for it); position 3 of completion 0 is padding
    dense = torch.tensor([[1.0, 1.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    sequence = torch.tensor([[0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    masks = {"dense": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), "sequence": torch.tensor([[0, 0, 1, 0], [0, 0, 0, 0]])}
    norm = RunningRewardNormalizer(momentum=0.5)
    norm.update({"dense": dense, "sequence": sequence}, masks)
    assert norm.mean["dense"] == pytest.approx(9 / 7) and norm.mean["sequence"] == pytest.approx(4.0)
    out = norm.normalize({"dense": dense, "sequence": sequence}, masks)
    assert out["sequence"].count_nonzero() == 0  # (4 - 4) / std on its one token, 0 everywhere else
    assert out["dense"][0, 3] == 0 and out["dense"][0, 2] > 0
