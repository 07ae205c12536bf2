"""The two misalignment measures (issue #13 point 4) and NaN-free step diagnostics (issue #14)."""

import math

import pytest
import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.rewards.sets import component_names

COMPONENTS = component_names("tau")  # the built-in set's axis

GOLD, STATE = COMPONENTS.index("gold_exact"), COMPONENTS.index("state_change")


def fixture():
    """One group: rollouts 0-2 succeed, 3 fails; 2 turns each; gold fires on every first turn, a non-gold
    write on the failure's second turn."""
    outcome = torch.tensor([1.0, 1.0, 1.0, 0.0])
    group = torch.zeros(4, dtype=torch.long)
    a_o = core.outcome_advantage(outcome, group, torch.ones(4, dtype=torch.bool))
    valid = torch.ones(4, 2, dtype=torch.bool)
    fires = torch.zeros(4, 2, len(COMPONENTS), dtype=torch.bool)
    fires[:, 0, GOLD] = True
    fires[3, 1, STATE] = True
    direction = torch.zeros(len(COMPONENTS))
    direction[GOLD], direction[STATE] = 1.0, -1.0
    return outcome, group, a_o, valid, fires, direction


def test_outcome_only_grpo_is_judged_by_the_component_measure():
    outcome, group, a_o, valid, fires, direction = fixture()
    adv = a_o.unsqueeze(1).expand(4, 2)
    turn = core.alignment_diagnostics(adv, a_o, outcome, valid, group)
    assert turn["misalignment_rate"] == 0.0  # the turn-level measure cannot see it
    comp = core.component_alignment(adv, fires, valid, direction)
    # the failure's gold first turn gets a negative advantage: 1 of 4 gold turns and 0 of 1 write turn
    assert comp["opposing"][GOLD] == 1 and comp["turns"][GOLD] == 4
    assert comp["opposing"][STATE] == 0 and comp["turns"][STATE] == 1
    assert float(comp["opposing_rate"]) == pytest.approx(1 / 5)
    assert bool(comp["agrees"][GOLD]) and int(comp["misaligned_components"]) == 0


def test_intended_turn_credit_is_not_misalignment_for_the_component_measure():
    outcome, group, a_o, valid, fires, direction = fixture()
    # turn-level credit as intended: the failure's gold first turn is rewarded, its bad write punished
    adv = torch.tensor([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5], [0.3, -1.5]])
    turn = core.alignment_diagnostics(adv, a_o, outcome, valid, group)
    assert turn["misalignment_rate"] == pytest.approx(1 / 8)  # the gold turn of the failure counts against
    comp = core.component_alignment(adv, fires, valid, direction)
    assert float(comp["opposing_rate"]) == 0.0 and int(comp["misaligned_components"]) == 0
    # a component that points against its direction on average is a mismatch
    bad = torch.tensor([[-1.0, 0.5], [-1.0, 0.5], [-1.0, 0.5], [0.3, 1.5]])
    comp = core.component_alignment(bad, fires, valid, direction)
    assert int(comp["misaligned_components"]) == 2 and not bool(comp["agrees"][GOLD])
    assert float(comp["mean_advantage"][STATE]) == pytest.approx(1.5)


def test_dead_turns_and_undirected_components_are_not_judged():
    outcome, group, a_o, valid, fires, direction = fixture()
    adv = torch.zeros(4, 2)
    comp = core.component_alignment(adv, fires, valid, direction)
    assert float(comp["opposing_rate"]) == 0.0 and int(comp["turns"].sum()) == 0
    direction[:] = 0
    comp = core.component_alignment(a_o.unsqueeze(1).expand(4, 2), fires, valid, direction)
    assert int(comp["misaligned_components"]) == 0 and not bool(comp["judged"].any())


@pytest.mark.parametrize("outcomes", [[1.0, 1.0], [0.0, 0.0]])
def test_one_class_batch_logs_no_nan(outcomes):
    o = torch.tensor(outcomes)
    g = torch.zeros(2, dtype=torch.long)
    a_o = core.outcome_advantage(o, g, torch.ones(2, dtype=torch.bool))
    d = core.alignment_diagnostics(torch.zeros(2, 3), a_o, o, torch.ones(2, 3, dtype=torch.bool), g)
    assert all(not math.isnan(v) for v in d.values())
    present, absent = ("success", "failure") if outcomes[0] else ("failure", "success")
    assert f"adv_mean_{absent}" not in d and d[f"{absent}_turns"] == 0.0
    assert d[f"adv_mean_{present}"] == 0.0 and d[f"{present}_turns"] == 6.0
