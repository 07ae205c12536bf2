"""Tool-call parsing against the formats Qwen models emit (vLLM 0.29.0's hermes / qwen3_coder / qwen3 reasoning
rules; tests/test_parser_vllm029.py pins each rule to what vLLM 0.29.0 itself returns)."""

import pytest

from openrlhf_mtgrpo.rollout.tool_parsers import (convert_xml_value, format_of_template, parser_for,
                                                  split_reasoning)

SCHEMAS = [
    {"type": "function", "function": {"name": "update_reservation_baggages", "parameters": {"type": "object",
     "properties": {"reservation_id": {"type": "string"}, "total_baggages": {"type": "integer"},
                    "nonfree_baggages": {"type": "integer"}, "payment_id": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "send_certificate", "parameters": {"type": "object",
     "properties": {"user_id": {"type": "string"}, "amount": {"type": "number"}}}}},
    {"type": "function", "function": {"name": "book", "parameters": {"type": "object", "properties": {
        "flights": {"type": "array", "items": {"type": "object"}}, "payment": {"type": "object"},
        "insurance": {"type": "string", "enum": ["yes", "no"]}, "refundable": {"type": "boolean"},
        "note": {"type": "string"}}}}},
]


def xml_call(name, **params):
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


@pytest.fixture
def xml():
    return parser_for("qwen3_coder", tools=SCHEMAS)


@pytest.fixture
def hermes():
    return parser_for("hermes", tools=SCHEMAS)


def test_xml_parameters_are_converted_by_the_schema_types(xml):
    out = xml.parse(xml_call("update_reservation_baggages", reservation_id="0123", total_baggages="2",
                             nonfree_baggages="0", payment_id="gift_card_1"))
    assert out.errors == []
    # "0123" stays a string: the schema says string
    assert out.tool_calls[0].arguments == {"reservation_id": "0123", "total_baggages": 2, "nonfree_baggages": 0,
                                           "payment_id": "gift_card_1"}
    amounts = [xml.parse(xml_call("send_certificate", user_id="u", amount=a)).tool_calls[0].arguments["amount"]
               for a in ("100", "100.0", "12.5", "1e2")]
    assert amounts == [100, 100, 12.5, 100] and [type(a) for a in amounts] == [int, int, float, int]
    out = xml.parse(xml_call("book", flights='[{"flight_number": "HAT001", "date": "2024-05-01"}]',
                             payment='{"payment_id": "c_1", "amount": 5}', insurance="no", refundable="True",
                             note="line one\nline two <b>"))
    assert out.tool_calls[0].arguments == {"flights": [{"flight_number": "HAT001", "date": "2024-05-01"}],
                                           "payment": {"payment_id": "c_1", "amount": 5},
                                           "insurance": "no", "refundable": True, "note": "line one\nline two <b>"}
    # a Python literal is not JSON: vLLM 0.29.0 leaves it text (the tool rejects it)
    literal = xml.parse(xml_call("book", payment="{'payment_id': 'c_1'}")).tool_calls[0].arguments
    assert literal == {"payment": "{'payment_id': 'c_1'}"}


@pytest.mark.parametrize("value,schema,expected", [
    ("null", {"type": "integer"}, None),
    ("NULL", {"type": "string"}, "NULL"),  # a string parameter keeps the text
    ("two", {"type": "integer"}, "two"),  # not convertible: stays text, the tool rejects it
    ("false", {"type": "boolean"}, False),
    ("yes", {"type": "boolean"}, "yes"),  # vLLM 0.29.0: neither true/1 nor false/0 stays text
    ("[1, 2", {"type": "array"}, "[1, 2"),
    ("7", None, "7"),  # a parameter the schema does not list
    ("7", {"description": "no type"}, "7"),  # no type: string
    ("  padded  ", {"type": "string"}, "  padded  "),
])
def test_xml_value_conversion_rules(value, schema, expected):
    assert convert_xml_value(value, schema) == expected


def test_xml_several_calls_text_and_malformed_variants(xml):
    text = ("Let me check both.\n\n" + xml_call("send_certificate", user_id="a", amount="5") + "\n"
            + xml_call("send_certificate", user_id="b", amount="6") + "\nsome text after the calls")
    out = xml.parse(text)
    assert [c.arguments for c in out.tool_calls] == [{"user_id": "a", "amount": 5}, {"user_id": "b", "amount": 6}]
    assert out.content == "Let me check both."  # text after a call is dropped, as vLLM does
    assert len({c.id for c in out.tool_calls}) == 2
    # an unclosed parameter ends at the next <parameter=; the last one, still open at the end, is dropped
    cut = xml.parse("<tool_call>\n<function=send_certificate>\n<parameter=user_id>\nu1\n<parameter=amount>\n7")
    assert cut.errors == [] and cut.tool_calls[0].arguments == {"user_id": "u1"}
    # a <function=...> without <tool_call> around it: vLLM still runs it
    bare = xml.parse("Sure.\n<function=send_certificate>\n<parameter=user_id>\nu\n</parameter>\n</function>")
    assert bare.content == "Sure." and bare.tool_calls[0].name == "send_certificate"
    # two functions in one block are two calls
    two = xml.parse("<tool_call>\n<function=a>\n</function>\n<function=b>\n</function>\n</tool_call>")
    assert [c.name for c in two.tool_calls] == ["a", "b"]
    # vLLM 0.29.0 never reports a malformed XML call: a block without a function name is no call (with no call
    # at all, the whole text, markup included, is the message's content) ...
    for bad, why in [("<tool_call>\n<parameter=x>\n1\n</parameter>\n</tool_call>", "without a <function=NAME>"),
                     ("<tool_call>\n<function=>\n</function>\n</tool_call>", "empty function name")]:
        out = xml.parse("Text. " + bad)
        assert out.tool_calls == [] and out.errors == [] and out.content == "Text. " + bad, (bad, out)
        assert why in out.rejected[0]
    # ... and a cut tag still makes a call, with what could be read
    for cut_tag, name in [("<tool_call>\n<function=send_certificate", "send_certificate"),
                          ("<tool_call>\n<function=f>\n<parameter=x\n</function>\n</tool_call>", "f")]:
        out = xml.parse("Text. " + cut_tag)
        assert [(c.name, c.arguments) for c in out.tool_calls] == [(name, {})] and out.content == "Text."
    assert xml.parse("Just an answer, no call.").content == "Just an answer, no call."


def test_hermes_several_calls_text_and_malformed_variants(hermes):
    text = ('I will look both up.\n<tool_call>\n{"name": "send_certificate", "arguments": {"user_id": "a", '
            '"amount": 5}}\n</tool_call>\n<tool_call>\n{"name": "send_certificate", "arguments": {"user_id": "b", '
            '"amount": 6.5}}\n</tool_call>')
    out = hermes.parse(text)
    assert out.content == "I will look both up." and out.errors == []
    assert [c.arguments for c in out.tool_calls] == [{"user_id": "a", "amount": 5}, {"user_id": "b", "amount": 6.5}]
    # a valid call next to a broken one: vLLM 0.29.0 runs neither and returns the whole text as content, so the
    # turn is a message to the customer (markup included), as at eval
    text = ('<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", '
            '"arguments": {"x": }\n</tool_call>')
    mixed = hermes.parse(text)
    assert mixed.tool_calls == [] and mixed.errors == [] and mixed.content == text
    assert "call 1: tool call is not valid JSON" in mixed.rejected[0]
    # an unclosed last call is still read; null arguments are a call whose arguments are not an object: an error
    assert hermes.parse('<tool_call>\n{"name": "a", "arguments": {"k": 1}}').tool_calls[0].arguments == {"k": 1}
    null = hermes.parse('<tool_call>\n{"name": "a", "arguments": null}')
    assert null.tool_calls == [] and null.errors == ["Error: tool call arguments are not a JSON object"]
    nameless = hermes.parse('<tool_call>{"arguments": {}}</tool_call>')
    assert nameless.errors == [] and nameless.content == '<tool_call>{"arguments": {}}</tool_call>'


@pytest.mark.parametrize("text,thinking,expected", [
    ("<think>\nplan\n</think>\n\nanswer", True, ("\nplan\n", "\n\nanswer")),  # Qwen3: the model opens <think>
    ("<think>\nplan\n</think>\n\nanswer", False, ("", "<think>\nplan\n</think>\n\nanswer")),  # off: no split
    ("plan\n</think>\n\nanswer", True, ("plan\n", "\n\nanswer")),  # Qwen3.5: <think> was in the prompt
    ("<think>\n\n</think>\n\nanswer", False, ("", "answer")),  # thinking off: the prefilled empty block is dropped
    ("still thinking when cut", True, ("still thinking when cut", "")),
    ("no reasoning at all", False, ("", "no reasoning at all")),
    ("plan <tool_call>\n<function=f>\n</function>\n</tool_call>", True,
     ("plan ", "<tool_call>\n<function=f>\n</function>\n</tool_call>")),  # a call ends unclosed reasoning
    ("I could write <tool_call> here", True, ("I could write ", "<tool_call> here")),  # vLLM 0.29.0: so does a mention
])
def test_reasoning_split_follows_vllms_qwen3_rules(text, thinking, expected):
    assert split_reasoning(text, thinking) == expected


def test_calls_in_reasoning_end_it(hermes, xml):
    # vLLM 0.29.0 ends the reasoning at the first <tool_call>, also before </think>: the call runs (as at eval)
    reasoning, rest = split_reasoning('<think>\nMaybe <tool_call>\n{"name": "x", "arguments": {}}\n</tool_call>?\n'
                                      '</think>\n\nDone.', True)
    assert reasoning == "\nMaybe " and [c.name for c in hermes.parse(rest).tool_calls] == ["x"]
    # a mention of the tag without a call: no call, and the text from the tag on is the customer's message
    _, rest = split_reasoning("<think>\nI must not write <tool_call> here.\n</think>\n\nDone.", True)
    assert hermes.parse(rest).tool_calls == [] and hermes.parse(rest).content == "<tool_call> here.\n\n\nDone."
    reasoning, rest = split_reasoning("Check a.\n</think>\n\n" + xml_call("send_certificate", user_id="u", amount="1"),
                                      True)
    assert reasoning == "Check a.\n" and xml.parse(rest).tool_calls[0].arguments == {"user_id": "u", "amount": 1}


def test_auto_picks_the_format_from_the_template():
    from qwen_fixtures import qwen_tokenizer

    from openrlhf_mtgrpo.offline.toy_tokenizer import CHAT_TEMPLATE

    expected = {"qwen3": "hermes", "qwen3_training": "hermes", "qwen3_instruct_2507": "hermes",
                "qwen3_5_think": "qwen3_coder", "qwen3_5_nothink": "qwen3_coder",
                "qwen3_5_think_training": "qwen3_coder", "qwen3_instruct_2507_training": "hermes",
                "qwen3_5_nothink_training": "qwen3_coder"}
    for name, fmt in expected.items():
        template = qwen_tokenizer(name).chat_template
        assert format_of_template(template) == fmt
        assert parser_for("auto", tools=SCHEMAS, chat_template=template).name == fmt
    assert parser_for("auto", chat_template=CHAT_TEMPLATE).name == "hermes"
    # the template decides, not the message: a hermes template reads XML text as no call
    p = parser_for("auto", tools=SCHEMAS, chat_template=qwen_tokenizer("qwen3").chat_template)
    assert p.parse(xml_call("send_certificate", user_id="u", amount="1")).tool_calls == []
    with pytest.raises(ValueError, match="--mtgrpo.tool_parser hermes or qwen3_coder"):
        parser_for("auto", chat_template="{{ messages[0]['content'] }}")
    assert parser_for("qwen3_coder", chat_template=CHAT_TEMPLATE).name == "qwen3_coder"  # explicit choice wins


@pytest.mark.parametrize("template", ["qwen3", "qwen3_instruct_2507", "qwen3_5_think"])
def test_what_the_real_template_renders_parses_back(template, data_dir):
    """Every gold call of every tau2 task, rendered by the real template as an assistant message (the format the
    model is trained to emit), parses back to the same name and typed arguments."""
    from qwen_fixtures import qwen_tokenizer

    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    tok = qwen_tokenizer(template)
    env = AirlineEnv("tau2", data_dir)
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=tok.chat_template)
    checked = 0
    for task in env.tasks("base"):
        if not task.actions:
            continue
        calls = [{"type": "function", "function": {"name": a.name, "arguments": a.arguments}} for a in task.actions]
        msg = {"role": "assistant", "content": "Working on it.", "tool_calls": calls}
        text = tok.apply_chat_template([{"role": "user", "content": "-"}, msg], tools=env.tool_schemas(),
                                       tokenize=False, enable_thinking=False)
        body = text[text.rindex("<|im_start|>assistant\n") + len("<|im_start|>assistant\n"):text.rindex("<|im_end|>")]
        _, rest = split_reasoning(body, False)
        out = parser.parse(rest)
        assert out.errors == [] and out.content == "Working on it."
        assert [(c.name, c.arguments) for c in out.tool_calls] == [(a.name, a.arguments) for a in task.actions]
        checked += len(calls)
    assert checked > 100
