"""The support desk's tools and episode rules, as unit tests (no model, no server)."""

import json

import pytest

from openrlhf_mtgrpo.envs.base import AGENT_STOP, MAX_STEPS, USER_STOP

from mtgrpo_example_crm import tools
from mtgrpo_example_crm.domain import make_domain
from mtgrpo_example_crm.state import EpisodeState, freeze


@pytest.fixture(scope="module")
def domain():
    return make_domain()


def test_find_customer_by_email_ignores_case_and_refuses_an_unknown_address(domain):
    ep = domain.reset("t01")
    res = ep.call_tool("find_customer_by_email", {"email": "Maria.Lopez@Example.com"})
    assert not res.error and json.loads(res.content) == {"customer_id": "C-1001", "name": "Maria Lopez"}
    res = ep.call_tool("find_customer_by_email", {"email": "nobody@example.com"})
    assert res.error and res.content == "Error: no customer with email 'nobody@example.com'"


def test_bad_calls_come_back_as_error_observations(domain):
    ep = domain.reset("t01")
    cases = {
        ("get_ticket", json.dumps({"ticket_id": "T-9999"})): "Error: no ticket with id 'T-9999'",
        ("get_ticket", json.dumps({"ticket_id": 2001})): "Error: argument 'ticket_id' of get_ticket must be a string",
        ("get_ticket", json.dumps({})): "Error: missing argument 'ticket_id' of get_ticket",
        ("get_ticket", json.dumps({"ticket_id": "T-2001", "x": 1})): "Error: get_ticket has no argument 'x'",
        ("refund", json.dumps({})): "Error: unknown tool 'refund'",
        ("update_ticket", json.dumps({"ticket_id": "T-2001"})): "Error: give a new status, a new priority, or both",
        ("update_ticket", json.dumps({"ticket_id": "T-2006", "status": "open"})):
            "Error: ticket T-2006 is closed and cannot be changed",
        ("update_ticket", json.dumps({"ticket_id": "T-2001", "status": "closed"})):
            "Error: status must be one of open, pending, resolved, got 'closed'",
        ("change_plan", json.dumps({"customer_id": "C-1003", "plan_id": "basic"})):
            "Error: account C-1003 is suspended; only active accounts can change plan",
        ("change_plan", json.dumps({"customer_id": "C-1001", "plan_id": "standard"})):
            "Error: customer C-1001 is already on plan 'standard'",
        ("change_plan", json.dumps({"customer_id": "C-1001", "plan_id": "gold"})):
            "Error: no plan 'gold'; plans: basic, pro, standard",
        ("transfer_to_human", json.dumps({"summary": "  "})):
            "Error: give a summary of the customer's request for the human agent",
    }
    for (name, args), want in cases.items():
        res = ep.call_tool(name, json.loads(args))
        assert (res.error, res.content) == (True, want), (name, args)
    assert ep.state.changes() == {}  # no refused call changed anything
    assert ep.call_tool("get_ticket", "T-2001").content == "Error: the arguments of get_ticket must be a JSON object"


def test_a_write_changes_only_the_episodes_own_copy(domain):
    a, b = domain.reset("t01"), domain.reset("t01")
    res = a.call_tool("update_ticket", {"ticket_id": "T-2001", "status": "resolved", "priority": "low"})
    assert not res.error and json.loads(res.content)["status"] == "resolved"
    assert json.loads(a.call_tool("get_ticket", {"ticket_id": "T-2001"}).content)["priority"] == "low"
    assert json.loads(b.call_tool("get_ticket", {"ticket_id": "T-2001"}).content)["status"] == "open"
    assert domain.data.db["tickets"]["T-2001"]["status"] == "open"
    assert a.state.changes() == {"tickets": {"T-2001": dict(domain.data.db["tickets"]["T-2001"], status="resolved",
                                                           priority="low")}}
    assert b.state.changes() == {} and a.state.state_hash() != b.state.state_hash()


def test_the_shared_database_is_read_only():
    base = freeze({"tickets": {"T-1": {"status": "open", "tags": ["a"]}}})
    with pytest.raises(TypeError):
        base["tickets"]["T-1"]["status"] = "resolved"
    state = EpisodeState(base)
    copy = state.get("tickets", "T-1")
    copy["status"] = "resolved"  # a read gives a copy: changing it changes nothing
    assert state.get("tickets", "T-1") == {"status": "open", "tags": ["a"]} and state.changes() == {}
    state.edit("tickets", "T-1")["status"] = "open"  # written back unchanged: no change
    assert state.changes() == {}
    state.edit("tickets", "T-1")["tags"].append("b")
    assert state.changes() == {"tickets": {"T-1": {"status": "open", "tags": ["a", "b"]}}}
    assert base["tickets"]["T-1"]["tags"] == ("a",)


def test_outputs_are_deterministic(domain):
    outs = [domain.reset("t02").call_tool("list_plans", {}).content for _ in range(3)]
    assert len(set(outs)) == 1
    assert [p["plan_id"] for p in json.loads(outs[0])] == ["basic", "pro", "standard"]


def test_message_rules(domain):
    ep = domain.reset("t03")
    assert ep.assistant_message("", []).agent_error
    turn = ep.assistant_message("Let me check.", [("get_customer", {"customer_id": "C-1003"})], malformed=1,
                                first_call_malformed=False)
    assert turn.agent_error and turn.results == [] and ep.results == []  # no call of the message ran
    turn = ep.assistant_message("What is your email?", [])
    assert turn.to_user and not turn.agent_error and turn.results == []
    turn = ep.assistant_message("", [("get_customer", {"customer_id": "C-1003"}),
                                     ("transfer_to_human", {"summary": "Suspended account wants a downgrade."}),
                                     ("change_plan", {"customer_id": "C-1003", "plan_id": "basic"})])
    assert turn.agent_stop and turn.ran == [0, 1] and len(turn.results) == 2  # nothing runs after the transfer
    failed = domain.reset("t03").assistant_message("", [("transfer_to_human", {"summary": ""})])
    assert failed.results[0].error and not failed.agent_stop  # a refused transfer ends nothing


def test_outcome(domain):
    task = domain.task("t02")
    ep = domain.reset(task)
    for a in task.actions:
        ep.assistant_message("", [(a.name, a.arguments)])
    assert ep.evaluate(MAX_STEPS).reward == 0.0
    out = ep.evaluate(USER_STOP)
    assert (out.reward, out.db_match, out.communicated) == (0.0, True, {"79": False})  # the price was not said
    ep.assistant_message("The Pro plan costs $79 per month.", [])
    out = ep.evaluate(USER_STOP)
    assert out.success and out.changed == ["customers/C-1002"] and out.to_dict()["success"] is True
    wrong = domain.reset(task)
    for a in task.actions[:-1]:
        wrong.assistant_message("", [(a.name, a.arguments)])
    wrong.assistant_message("", [("change_plan", {"customer_id": "C-1002", "plan_id": "standard"})])
    wrong.assistant_message("It costs 79 a month.", [])
    assert (wrong.evaluate(USER_STOP).reward, wrong.evaluate(USER_STOP).db_match) == (0.0, False)
    transfer = domain.reset("t03")
    for a in transfer.task.actions:
        turn = transfer.assistant_message("", [(a.name, a.arguments)])
    assert turn.agent_stop and transfer.evaluate(AGENT_STOP).success


def test_schemas_and_kinds_name_the_same_tools():
    names = [s["function"]["name"] for s in tools.SCHEMAS]
    assert names == list(tools.TOOLS) == list(tools.TOOL_KINDS.kinds)
    assert tools.TOOL_KINDS.writes == {"update_ticket", "change_plan"}
