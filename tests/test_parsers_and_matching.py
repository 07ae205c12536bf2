"""Tool-call parsers (both formats), deep argument equality, turn classification."""

from types import SimpleNamespace

import pytest

from openrlhf_mtgrpo.benchmarks.airline.data import Action
from openrlhf_mtgrpo.registry import get_tool_call_parser
from openrlhf_mtgrpo.benchmarks.airline.tools_tau1 import TABLE
from openrlhf_mtgrpo.rewards.tau import tau_components
from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput, schema_problems
from openrlhf_mtgrpo.rewards.matching import GoldMatcher, argument_overlap, deep_equal


def test_hermes_json_calls():
    p = get_tool_call_parser("hermes")
    out = p.parse('Let me check.\n<tool_call>\n{"name": "get_user_details", "arguments": {"user_id": "a_1"}}\n'
                  '</tool_call>\n<tool_call>{"name": "calculate", "arguments": {"expression": "1+1"}}'
                  '</tool_call>')
    assert out.content == "Let me check."
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("get_user_details", {"user_id": "a_1"}),
                                                               ("calculate", {"expression": "1+1"})]
    assert out.errors == []


@pytest.mark.parametrize("body", ['{"name": "x", "arguments": {', '["x"]', '{"name": "x", "parameters": {}}'])
def test_hermes_unreadable_calls_are_content_not_exceptions(body):
    """vLLM 0.29.0 returns a message with a block it cannot read as content, with no call."""
    out = get_tool_call_parser("hermes").parse(f"<tool_call>{body}</tool_call>")
    assert out.tool_calls == [] and out.errors == [] and out.content == f"<tool_call>{body}</tool_call>"


@pytest.mark.parametrize("body", ['{"name": "x", "arguments": [1]}', '{"name": "x", "arguments": "{}"}'])
def test_hermes_calls_without_object_arguments_are_errors(body):
    out = get_tool_call_parser("hermes").parse(f"<tool_call>{body}</tool_call>")
    assert out.tool_calls == [] and out.errors == ["Error: tool call arguments are not a JSON object"]


BOOK_SCHEMA = {"type": "function", "function": {"name": "book_reservation", "parameters": {"type": "object", "properties": {
    "user_id": {"type": "string"}, "passengers": {"type": "array", "items": {"type": "object"}},
    "total_baggages": {"type": "integer"}}}}}


def test_xml_function_calls():
    from openrlhf_mtgrpo.rollout.tool_parsers import parser_for

    p = parser_for("qwen3_coder", tools=[BOOK_SCHEMA])
    text = ("<tool_call>\n<function=book_reservation>\n<parameter=user_id>\nmia_li_3668\n</parameter>\n"
            "<parameter=passengers>\n[{\"first_name\": \"Mia\"}]\n</parameter>\n<parameter=total_baggages>\n3\n"
            "</parameter>\n</function>\n</tool_call>")
    out = p.parse(text)
    assert out.errors == [] and len(out.tool_calls) == 1
    c = out.tool_calls[0]
    assert c.name == "book_reservation"
    assert c.arguments == {"user_id": "mia_li_3668", "passengers": [{"first_name": "Mia"}], "total_baggages": 3}
    # without the schema the values stay text, as vLLM's qwen3_coder parser leaves them
    assert get_tool_call_parser("qwen3_coder").parse(text).tool_calls[0].arguments["total_baggages"] == "3"
    bad = p.parse("<tool_call>\n<parameter=x>1</parameter>\n</tool_call>")  # no function: content, as vLLM 0.29.0
    assert bad.tool_calls == [] and bad.errors == [] and bad.content == "<tool_call>\n<parameter=x>1</parameter>\n</tool_call>"
    assert get_tool_call_parser("auto").parse(text).tool_calls[0].name == "book_reservation"


def test_deep_equal_rules():
    assert deep_equal({"amount": "100", "x": None}, {"amount": 100.0})  # numeric strings, empty values
    assert deep_equal({"p": [{"a": 1}, {"a": 2}]}, {"p": [{"a": 2}, {"a": 1}]})  # lists of dicts sorted
    assert not deep_equal({"p": [1, 2]}, {"p": [2, 1]})  # other lists keep their order
    assert not deep_equal({"id": "ABC"}, {"id": "ABD"})
    assert argument_overlap({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == pytest.approx(1 / 3)


def test_gold_matching_is_one_to_one():
    m = GoldMatcher([("cancel_reservation", {"reservation_id": "A"})])
    assert m.match("cancel_reservation", {"reservation_id": "A"}) == ("exact", 1.0)
    assert m.match("cancel_reservation", {"reservation_id": "A"}) == ("none", 0.0)  # already used
    m2 = GoldMatcher([("update_reservation_baggages", {"reservation_id": "A", "total_baggages": 2})])
    kind, score = m2.match("update_reservation_baggages", {"reservation_id": "A", "total_baggages": 3})
    assert kind == "soft" and score == pytest.approx(0.75)


def test_turn_types_and_flags():
    gold = [Action("get_user_details", {"user_id": "u"}), Action("cancel_reservation", {"reservation_id": "R"})]
    cl = tau_components(TABLE.tool_kinds()).new_episode(SimpleNamespace(actions=gold))
    f = cl.features(TurnInput([CallRecord("get_user_details", {"user_id": "u"}, False)]))
    assert f["gold_exact"] == 1.0 and sum(f.values()) == 1.0
    f = cl.features(TurnInput([CallRecord("get_user_details", {"user_id": "u"}, False)]))
    assert f["duplicate"] == 1.0
    f = cl.features(TurnInput([CallRecord("cancel_reservation", {"reservation_id": "Q"}, False)],
                              last_user_message="please cancel it"))
    # another reservation than the gold one: a non-gold write, never a soft match
    assert f["state_change"] == 1.0 and f["soft_match"] == 0.0 and f["unconfirmed_write"] == 1.0
    f = cl.features(TurnInput([CallRecord("cancel_reservation", {"reservation_id": "R"}, False),
                               CallRecord("transfer_to_human_agents", {"summary": "s"}, False)],
                              last_user_message="Yes, go ahead"))
    assert f["gold_exact"] == 0.5 and f["read_only"] == 0.5 and f["unneeded_transfer"] == 0.5
    assert f["unconfirmed_write"] == 0.0
    f = cl.features(TurnInput([], malformed_calls=1))
    assert f["tool_error"] == 1.0 and f["schema_invalid"] == 1.0
    assert cl.features(TurnInput([]))["message"] == 1.0


def test_schema_problems():
    schema = {"function": {"parameters": {"properties": {"a": {"type": "integer"}, "b": {"type": "string",
                                                                                       "enum": ["x"]}},
                                          "required": ["a"]}}}
    assert schema_problems(schema, {"a": 1, "b": "x"}) == []
    probs = schema_problems(schema, {"a": "1", "b": "y", "c": 0})
    assert "'a' should be integer" in probs and any("not one of" in p for p in probs)
    assert "unknown argument 'c'" in probs
    assert schema_problems(None, {}) == ["unknown tool"]
