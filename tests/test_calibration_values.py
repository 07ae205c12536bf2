"""Calibration values: YAML's 1e-3 strings accepted, NaN/inf refused, tiers agree with weights (issue #13)."""

import math

import pytest
import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.rewards.calibration import Calibration, CalibrationError, load_calibration, parse_calibration

HEAD = "schema_version: 1\n"


def test_exponent_without_dot_is_a_number():
    cal = parse_calibration(HEAD + "clip: [-1e0, 1e0]\ncomponents:\n  read_only: {weight: 1e-3}\n  gold_exact: 2E-1\n")
    assert cal.weights["read_only"] == pytest.approx(1e-3) and cal.weights["gold_exact"] == pytest.approx(0.2)
    assert cal.clip == (-1.0, 1.0)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "'nan'", "'inf'", "true", "high", "[1]"])
def test_non_finite_or_non_numeric_weights_are_refused(value):
    with pytest.raises(CalibrationError, match="gold_exact.*weight"):
        parse_calibration(HEAD + f"components:\n  gold_exact: {{weight: {value}}}\n")


def test_nan_clip_is_refused():
    with pytest.raises(CalibrationError, match="clip"):
        parse_calibration(HEAD + "clip: [.nan, 1.0]\ncomponents: {gold_exact: 1.0}\n")


def test_nan_weight_would_poison_a_whole_group():
    """Why NaN is refused: one NaN turn reward turns every advantage of its group into NaN."""
    r = torch.tensor([[1.0, math.nan], [0.0, 0.3], [0.5, 0.1], [0.2, 0.2]])
    adv = core.gtpo_hybrid_turn_advantages(r, torch.tensor([2, 2, 2, 2]), torch.tensor([1.0, 0.0, 1.0, 0.0]),
                                           torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.bool),
                                           gamma=0.9, lam=0.3, eps=1e-6, std_norm=True, ddof=1, pool="group",
                                           turn_indexing="zero")[0]
    assert torch.isnan(adv).all()


@pytest.mark.parametrize("tier,weight", [("non_discriminative", -0.1), ("discriminative_positive", 0.0),
                                         ("discriminative_positive", -1.0), ("anti_discriminative", 0.5)])
def test_tier_that_contradicts_its_weight_is_refused(tier, weight):
    with pytest.raises(CalibrationError, match=f"tier {tier}"):
        parse_calibration(HEAD + f"components:\n  state_change: {{weight: {weight}, tier: {tier}}}\n")
    cal = Calibration("x", {"state_change": weight}, {"state_change": tier}, (-1.0, 1.0))
    with pytest.raises(CalibrationError, match=f"tier {tier}"):
        cal.validate()


def test_builtins_are_consistent():
    for name in ("paper-irc", "paper-dense"):
        load_calibration(name).validate()
