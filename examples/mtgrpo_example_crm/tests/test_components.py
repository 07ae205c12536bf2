"""The ``crm`` component set and the ``outcome_first`` estimator."""

import pytest
import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.types import EstimatorInput, TurnInfo
from openrlhf_mtgrpo.rewards import tau
from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput

from mtgrpo_example_crm.components import NAMES, crm_components
from mtgrpo_example_crm.estimator import OutcomeFirstOptions, outcome_first
from mtgrpo_example_crm.tools import TOOL_KINDS

FLAG = "unnamed_target_write"


def _turn(*calls, user=""):
    return TurnInput(calls=[CallRecord(n, a, e) for n, a, e in calls], last_user_message=user)


def test_the_set_is_tau_plus_its_flag():
    s = crm_components(TOOL_KINDS)
    assert s.names == tau.NAMES + (FLAG,) == NAMES and s.pinned == tau.PINNED


def test_the_flag_fires_on_a_write_to_a_record_nobody_named_or_looked_up():
    task = type("T", (), {"actions": []})()
    s = crm_components(TOOL_KINDS).new_episode(task)
    x = s.features(_turn(("update_ticket", {"ticket_id": "T-2002", "status": "open"}, False),
                         ("get_ticket", {"ticket_id": "T-2001"}, False), user="My ticket T-2001 is fixed."))
    assert x[FLAG] == 0.5  # one of the turn's two calls
    x = s.features(_turn(("update_ticket", {"ticket_id": "T-2001", "status": "resolved"}, False), user="Yes."))
    assert x[FLAG] == 0.0  # the customer named T-2001 (an earlier message)
    x = s.features(_turn(("get_customer", {"customer_id": "C-1001"}, False),
                         ("change_plan", {"customer_id": "C-1001", "plan_id": "basic"}, False), user="Yes."))
    assert x[FLAG] == 0.0  # looked up first
    x = s.features(_turn(("change_plan", {"customer_id": "C-1009", "plan_id": "basic"}, True), user="Yes."))
    assert x[FLAG] == 0.0  # a refused write changed nothing (tool_error counts it)


def test_the_tau_values_are_the_built_in_sets():
    task = type("T", (), {"actions": [type("A", (), {"name": "get_ticket", "arguments": {"ticket_id": "T-2001"}})()]})()
    ours, theirs = crm_components(TOOL_KINDS).new_episode(task), tau.tau_components(TOOL_KINDS).new_episode(task)
    for turn in (_turn(("get_ticket", {"ticket_id": "T-2001"}, False)), _turn(),
                 _turn(("update_ticket", {"ticket_id": "T-2002", "status": "open"}, False), user="ok")):
        x = ours.features(turn)
        assert {k: v for k, v in x.items() if k != FLAG} == theirs.features(turn)


def _inp(turn_rewards, num_turns, outcome, group, lam=0.3, **own):
    r = torch.tensor(turn_rewards, dtype=torch.float64)
    n, k = r.shape
    spans = torch.stack([torch.arange(k), torch.arange(k) + 1], 1).unsqueeze(0).expand(n, k, 2).contiguous()
    nt = torch.tensor(num_turns)
    mask = torch.arange(k).unsqueeze(0) < nt.unsqueeze(1)
    return EstimatorInput(rewards=torch.tensor(outcome, dtype=torch.float64), group_index=torch.tensor(group),
                          action_mask=mask, turns=TurnInfo(spans, nt, r), options=OutcomeFirstOptions(lam=lam, **own))


def test_outcome_first_is_the_outcome_advantage_plus_lam_times_the_normalised_returns():
    inp = _inp([[0.5, 0.0, 0.2], [1.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.2, 0.2, 0.0]], [3, 2, 1, 2], [1.0, 0.0, 0.0, 1.0],
               [0, 0, 0, 0])
    out = outcome_first(inp).advantages.double()
    o = inp.options
    ret = core.discounted_turn_returns(inp.turns.rewards, inp.turns.num_turns, inp.rewards, o.gamma)
    valid = inp.turns.valid
    gn = core.group_normalize(ret, inp.group_index, valid, per_column=True)
    a_o = core.outcome_advantage(inp.rewards, inp.group_index, torch.ones(4, dtype=torch.bool))
    want = torch.where(valid, a_o.unsqueeze(1) + 0.3 * gn, torch.zeros(()).double())
    torch.testing.assert_close(out, want, atol=1e-6, rtol=1e-6)
    # the signs follow the outcome wherever the turn spread is small against it
    assert (out[0, :3] > 0).all() and (out[1, :2] < 0).all()


def test_outcome_first_gives_identical_rollouts_nothing_and_needs_turns():
    inp = _inp([[0.5], [0.5]], [1, 1], [1.0, 1.0], [0, 0])
    assert outcome_first(inp).advantages.abs().sum() == 0
    inp.turns = None
    with pytest.raises(ValueError, match="needs per-turn data"):
        outcome_first(inp)


def test_outcome_weight_is_the_estimators_own_option():
    """OutcomeFirstOptions adds outcome_weight to the shared options: A = outcome_weight * A^O + lam * GN(R)."""
    from openrlhf_mtgrpo.registry import advantage_estimator_options

    rows = ([[0.5, 0.0, 0.2], [1.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.2, 0.2, 0.0]], [3, 2, 1, 2], [1.0, 0.0, 0.0, 1.0],
            [0, 0, 0, 0])
    one, three = (outcome_first(_inp(*rows, outcome_weight=w)).advantages.double() for w in (1.0, 3.0))
    no_turns = outcome_first(_inp(*rows, lam=0.0, outcome_weight=3.0)).advantages.double()
    a_o = core.outcome_advantage(torch.tensor(rows[2], dtype=torch.float64), torch.tensor(rows[3]),
                                 torch.ones(4, dtype=torch.bool))
    valid = torch.arange(3)[None] < torch.tensor(rows[1])[:, None]
    torch.testing.assert_close(three - one, torch.where(valid, 2.0 * a_o[:, None], torch.zeros(()).double()),
                               atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(no_turns, torch.where(valid, 3.0 * a_o[:, None], torch.zeros(()).double()),
                               atol=1e-6, rtol=1e-6)
    assert advantage_estimator_options("outcome_first") is OutcomeFirstOptions  # registered with its options
    with pytest.raises(ValueError, match=r"outcome_weight must be >= 0 \(got -1.0\)"):
        OutcomeFirstOptions(outcome_weight=-1.0)
