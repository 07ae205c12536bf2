"""The tool-call and reasoning parsers read a message exactly as vLLM 0.29.0's chat server does.

OpenRLHF 0.11.2 pins ``vllm==0.29.0`` for its ``[vllm]`` extra, and eval serves the policy with
``--tool-call-parser hermes|qwen3_coder --reasoning-parser qwen3``: what that server returns as
tool calls, content and reasoning is what the benchmark acts on, so training must read the model's
output the same way.  Every expectation below is what vLLM 0.29.0 (wheel ``vllm-0.29.0``,
``__commit_id__ = g98dff2a81``) returned for the same text through its non-streaming chat path
(``DelegatingParser.parse``: the ``qwen3`` reasoning parser, then ``Hermes2ProToolParser`` or the
``qwen3_coder`` parser engine), recorded once by running vLLM's own parser code; vLLM is not
installed here (it needs a GPU build), so the recorded values are the reference.

Our content is vLLM's content stripped ('' for None); a vLLM call whose arguments are not a JSON
object is a malformed call for us (eval's client refuses it with an error observation, so training
answers it the same way).
"""

import pytest

from openrlhf_mtgrpo.rollout.tool_parsers import convert_xml_value, parser_for, split_reasoning

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
    "s": {"type": "string"}, "n": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"},
    "o": {"type": "object"}, "a": {"type": "array"}}}}},
    {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}}]

BAD = "MALFORMED"  # a call vLLM returns whose arguments are not a JSON object


def calls_of(out):
    """[(name, arguments)] in the message's order, BAD for a malformed call."""
    return [(s.call.name, s.call.arguments) if s.call is not None else BAD for s in out.ordered_calls]


# (text, content, calls) -- content is vLLM's content (None -> ''), stripped
HERMES_CASES = [
    # one valid and one broken call: vLLM's json.loads fails, the whole text is content, nothing runs
    ('<tool_call>\n{"name": "f", "arguments": {"s": "x"}}\n</tool_call>\n<tool_call>\n{"name": "f", "arguments": '
     '{"s": }\n</tool_call>', None, []),
    # "parameters" is not "arguments": vLLM raises KeyError, the whole text is content
    ('Checking.\n<tool_call>\n{"name": "f", "arguments": {"s": "x"}}\n</tool_call>\n<tool_call>\n{"name": "f", '
     '"parameters": {"s": "y"}}\n</tool_call>', None, []),
    ('<tool_call>\n{"name": "f", "parameters": {"s": "y"}}\n</tool_call>', None, []),
    ('<tool_call>\n{"name": "f"}\n</tool_call>', None, []),  # no arguments
    ('<tool_call>\n["f", {}]\n</tool_call>', None, []),  # not an object
    ('<tool_call>\n{"name": 7, "arguments": {}}\n</tool_call>', None, []),  # a name that is not a string
    ('<tool_call></tool_call>', None, []),
    ('no call here', None, []),
    # an unclosed call swallows the next <tool_call> into its JSON: invalid, all content
    ('<tool_call>{"name": "f", "arguments": {"s": "a"}}<tool_call>{"name": "g", "arguments": {}}</tool_call>',
     None, []),
    # stringified / null / list arguments: vLLM returns a call whose arguments are not an object
    ('<tool_call>\n{"name": "f", "arguments": "{\\"s\\": \\"y\\"}"}\n</tool_call>', "", [BAD]),
    ('<tool_call>\n{"name": "f", "arguments": null}\n</tool_call>', "", [BAD]),
    ('<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>\n<tool_call>\n{"name": "g", "arguments": {}}\n'
     '</tool_call>', "", [BAD, ("g", {})]),
    ('<tool_call>\n{"name": "teleport", "arguments": {}}\n</tool_call>', "", [("teleport", {})]),  # unknown: a call
    # text between and after calls is dropped; an unclosed last call is read to the end
    ('A <tool_call>{"name": "f", "arguments": {}}</tool_call> B <tool_call>{"name": "g", "arguments": {}}', "A",
     [("f", {}), ("g", {})]),
]


@pytest.mark.parametrize("text,content,calls", HERMES_CASES)
def test_hermes_reads_what_vllm_reads(text, content, calls):
    out = parser_for("hermes", tools=TOOLS).parse(text)
    assert calls_of(out) == calls
    assert out.content == (text.strip() if content is None else content)
    assert [c.name for c in out.tool_calls] == [c[0] for c in calls if c != BAD]
    assert len(out.errors) == calls.count(BAD)
    if content is None and "<tool_call>" in text:
        assert out.rejected  # why the markup went to the customer as text


XML_CASES = [
    ('A <tool_call>\n<function=f>\n<parameter=n>\n3\n</parameter>\n</function>\n</tool_call> B', "A",
     [("f", {"n": 3})]),
    # the function name is stripped, parameter names are not (left whitespace only): "s " is not in the schema
    ('<tool_call>\n<function= f >\n<parameter= s >\nv\n</parameter>\n<parameter=n >\n4\n</parameter>\n</function>\n'
     '</tool_call>', "", [("f", {"s ": "v", "n ": "4"})]),
    ('<tool_call>\n<function=f>\n< parameter = s >\nv\n< / parameter >\n</function>\n</tool_call>', "",
     [("f", {"s ": "v"})]),
    # the first </function> ends the call, also inside a value; the cut parameter is lost
    ('<tool_call>\n<function=f>\n<parameter=s>\nx </function> y\n</parameter>\n</function>\n</tool_call>', "",
     [("f", {})]),
    # a parameter ends at </parameter> or the next <parameter=; one left open at the end is dropped
    ('<tool_call>\n<function=f>\n<parameter=s>\na\n<parameter=n>\n7', "", [("f", {"s": "a"})]),
    ('<tool_call>\n<function=f>\n<parameter=s>\na\n</parameter>\n<parameter=n>\n7\n</function>\n</tool_call>', "",
     [("f", {"s": "a"})]),
    # without </function> the call runs on through </tool_call>: the next call's parameters become its own
    ('<tool_call>\n<function=f>\n<parameter=n>\n1\n</parameter>\n</tool_call>\ntext\n<tool_call>\n<function=g>\n'
     '<parameter=x>\n2\n</parameter>\n</function>\n</tool_call>', "", [("f", {"n": 1, "x": 2})]),
    ('Sure.\n<function=f>\n<parameter=s>\nu\n</parameter>\n</function>', "Sure.", [("f", {"s": "u"})]),
    ('<tool_call>\n<function=f>\n</function>\n<function=g>\n</function>\n</tool_call>', "", [("f", {}), ("g", {})]),
    # no function, or an empty name: no call; with no call at all the whole text is content
    ('Text. <tool_call>\n<parameter=s>\n1\n</parameter>\n</tool_call>', None, []),
    ('Text. <tool_call>\n<function=>\n</function>\n</tool_call>', None, []),
    ('Text. <tool_call>\n<function=f>\n<parameter=s>\nv\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n'
     '<function=>\n</function>\n</tool_call>', "Text.", [("f", {"s": "v"})]),
    ('<tool_call>\n{"name": "f", "arguments": {"s": "j"}}\n</tool_call>', None, []),  # JSON is not this format
    # an unclosed function tag: the name runs to the next ">" (here the one of <parameter=s>) or the end
    ('Text. <tool_call>\n<function=f', "Text.", [("f", {})]),
    ('<tool_call>\n<function=f\n<parameter=s>\nv\n</parameter>\n</function>\n</tool_call>', "",
     [("f\n<parameter=s", {})]),
    ('Text. <tool_call>\n<function=f>\n<parameter=s\n</function>\n</tool_call>', "Text.", [("f", {})]),
    # one newline is trimmed on each side; a repeated parameter keeps the last value
    ('<tool_call>\n<function=f>\n<parameter=s>\n\nv\n\n</parameter>\n</function>\n</tool_call>', "",
     [("f", {"s": "\nv\n"})]),
    ('<tool_call>\n<function=f>\n<parameter=s>\n1\n</parameter>\n<parameter=s>\n2\n</parameter>\n</function>\n'
     '</tool_call>', "", [("f", {"s": "2"})]),
    # a tool without a schema (or unknown) keeps text values
    ('<tool_call>\n<function=h>\n<parameter=n>\n5\n</parameter>\n</function>\n</tool_call>', "", [("h", {"n": "5"})]),
    ('<tool_call>\n<function=g>\n<parameter=n>\n5\n</parameter>\n</function>\n</tool_call>', "", [("g", {"n": "5"})]),
    # </think> is dropped from the text around calls, kept inside a value
    ('x </think> y <tool_call>\n<function=f>\n<parameter=s>\na</think>b\n</parameter>\n</function>\n</tool_call>',
     "x  y", [("f", {"s": "a</think>b"})]),
    ('Only text <think> here', None, []),
]


@pytest.mark.parametrize("text,content,calls", XML_CASES)
def test_qwen3_coder_reads_what_vllm_reads(text, content, calls):
    out = parser_for("qwen3_coder", tools=TOOLS).parse(text)
    assert calls_of(out) == calls
    assert out.content == (text.strip() if content is None else content)
    assert out.errors == []  # vLLM's qwen3_coder never returns arguments that are not an object


CONVERSION_CASES = [
    ("null", {"type": "string"}, "null"), ("NULL", {"type": "string"}, "NULL"),  # a string stays a string
    ("null", {"type": "integer"}, None), ("null", {"type": "boolean"}, None), ("null", {"type": "object"}, None),
    ("None", {"type": "integer"}, "None"),
    ("inf", {"type": "number"}, "inf"), ("nan", {"type": "number"}, "nan"), ("-Infinity", {"type": "number"},
                                                                             "-Infinity"),
    ("1e999", {"type": "number"}, "1e999"), ("[1e999]", {"type": "array"}, "[1e999]"),  # not finite: text
    ("12", {"type": "integer"}, 12), (" 12 ", {"type": "integer"}, 12), ("1_000", {"type": "integer"}, 1000),
    ("1.5", {"type": "integer"}, 1.5),  # not an integer: the JSON reading of the text
    ("two", {"type": "integer"}, "two"),
    ("3.0", {"type": "number"}, 3), ("12.5", {"type": "number"}, 12.5), ("1e2", {"type": "number"}, 100),
    ("true", {"type": "boolean"}, True), ("True", {"type": "boolean"}, True), ("1", {"type": "boolean"}, True),
    ("0", {"type": "boolean"}, False), (" false ", {"type": "boolean"}, False),
    ("yes", {"type": "boolean"}, "yes"),  # neither true nor false: text, the tool rejects it
    ('{"a": 1}', {"type": "object"}, {"a": 1}), ("[1, 2]", {"type": "array"}, [1, 2]),
    ("{'a': 1}", {"type": "object"}, "{'a': 1}"), ("(1, 2)", {"type": "array"}, "(1, 2)"),  # JSON only
    ("[1, 2", {"type": "array"}, "[1, 2"), ("[1, 2]", {"type": "object"}, [1, 2]),
    # unions: null, integer, number, boolean, object, array, string, in that order
    ("42", {"anyOf": [{"type": "string"}, {"type": "integer"}]}, 42),
    ("42", {"anyOf": [{"type": "null"}, {"type": "string"}]}, "42"),
    ("null", {"anyOf": [{"type": "null"}, {"type": "string"}]}, None),
    ("42", {"type": ["string", "integer"]}, 42), ("4.5", {"type": ["null", "integer", "number"]}, 4.5),
    ("7", {"oneOf": [{"type": "boolean"}, {"type": "number"}]}, 7),
    ("7", {"enum": [1, 7]}, 7), ("yes", {"enum": ["yes", "no"]}, "yes"),  # enum values give the type
    ("7", {"description": "no type"}, "7"),
    ("7", {"type": "int64"}, 7), ("7.5", {"type": "double"}, 7.5), ("[1]", {"type": "list"}, [1]),  # aliases
    ("7", {"type": " Integer "}, 7),
    ("7", {"type": "weird"}, 7), ("abc", {"type": "weird"}, "abc"),  # unknown type: JSON if it parses
    ("  padded  ", {"type": "string"}, "  padded  "), ("true", {"type": "string"}, "true"),
    ('{"a": 1}', {"type": "string"}, '{"a": 1}'),
    ("7", None, "7"),  # a parameter the schema does not list
]


@pytest.mark.parametrize("value,schema,expected", CONVERSION_CASES)
def test_xml_values_are_converted_as_vllm_converts_them(value, schema, expected):
    got = convert_xml_value(value, schema)
    assert got == expected and type(got) is type(expected)


def test_xml_conversion_uses_the_schema_of_the_called_tool():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "n": {"type": "integer"}}}}},
             {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
                 "n": {"type": "string"}}}}},  # a second schema of the same name: vLLM uses the first
             {"type": "function", "function": {"name": "p", "parameters": {"n": {"type": "integer"}}}}]
    p = parser_for("qwen3_coder", tools=tools)
    call = "<tool_call>\n<function={}>\n<parameter=n>\n5\n</parameter>\n</function>\n</tool_call>"
    assert p.parse(call.format("f")).tool_calls[0].arguments == {"n": 5}
    # parameters without "properties" describe no parameter (vLLM reads parameters["properties"] only)
    assert p.parse(call.format("p")).tool_calls[0].arguments == {"n": "5"}


# (text, thinking, reasoning, rest) -- rest is the content handed to the tool parser
REASONING_CASES = [
    ("<think>\nplan\n</think>\n\nanswer", True, "\nplan\n", "\n\nanswer"),
    ("plan\n</think>\n\nanswer", True, "plan\n", "\n\nanswer"),
    ("still thinking when cut", True, "still thinking when cut", ""),
    # any <tool_call> ends the reasoning, also one not followed by <function= and one inside <think>...</think>
    ("plan <tool_call>\n<function=f>\n</function>\n</tool_call>", True, "plan ",
     "<tool_call>\n<function=f>\n</function>\n</tool_call>"),
    ("I could write <tool_call> here", True, "I could write ", "<tool_call> here"),
    ('<think>\nMaybe <tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>?\n</think>\n\nDone.', True, "\nMaybe ",
     '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>?\n\n\nDone.'),
    # text before <think> is reasoning; every <think> inside it and every later </think> is dropped
    ("before <think>plan</think>after</think> more", True, "before plan", "after more"),
    ("a </think> b </think> c", True, "a ", " b  c"),
    ("plan <function=f>\n</function>", True, "plan <function=f>\n</function>", ""),  # no <tool_call>: reasoning
    # thinking off: vLLM splits nothing off (the empty block the prompt prefilled is not generated)
    ("<think>\n\n</think>\n\nanswer", False, "", "answer"),
    ("<think>\nplan\n</think>\n\nanswer", False, "", "<think>\nplan\n</think>\n\nanswer"),
    ("<think>\n\n</think>\n\n<think>own block</think>answer", False, "", "<think>own block</think>answer"),
    ("answer with </think> inside", False, "", "answer with </think> inside"),
    ("no reasoning at all", False, "", "no reasoning at all"),
]


@pytest.mark.parametrize("text,thinking,reasoning,rest", REASONING_CASES)
def test_reasoning_split_is_vllms(text, thinking, reasoning, rest):
    assert split_reasoning(text, thinking) == (reasoning, rest)


def test_the_prefill_is_what_the_engine_did_not_generate():
    # with the renderer's prefill, exactly that prefix is removed (what vLLM never sees: it was in the prompt)
    assert split_reasoning("<think>\nplan\n</think>\n\nanswer", True, prefill="<think>\n") == ("plan\n", "\n\nanswer")
    assert split_reasoning("<think>\n\n</think>\n\nanswer", False, prefill="<think>\n\n</think>\n\n") == ("", "answer")


def test_a_call_written_inside_the_think_block_runs_as_at_eval():
    """vLLM 0.29.0's qwen3 reasoning parser ends the reasoning at the first <tool_call>, so a hermes call the model
    writes before </think> is a tool call at eval; training must run it too."""
    text = '<think>\nMaybe <tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>?\n</think>\n\nDone.'
    _, rest = split_reasoning(text, True)
    out = parser_for("hermes", tools=TOOLS).parse(rest)
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("g", {})] and out.content == ""
    # the qwen3_coder server reads the same text as no call (JSON is not its format): it is all content
    assert parser_for("qwen3_coder", tools=TOOLS).parse(rest).tool_calls == []


def test_order_of_calls_including_malformed_ones():
    """tau1 runs only tool_calls[0]: the lead needs to know whether the first call the model wrote was malformed."""
    h = parser_for("hermes", tools=TOOLS)
    bad_first = h.parse('<tool_call>\n{"name": "f", "arguments": "x"}\n</tool_call>\n'
                        '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>')
    assert bad_first.first_call_malformed
    assert [s.malformed for s in bad_first.ordered_calls] == [True, False]
    assert [s.index for s in bad_first.ordered_calls] == [0, 1]
    assert bad_first.ordered_calls[0].error == bad_first.errors[0]
    assert bad_first.ordered_calls[1].call is bad_first.tool_calls[0]
    good_first = h.parse('<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>\n'
                         '<tool_call>\n{"name": "f", "arguments": null}\n</tool_call>')
    assert not good_first.first_call_malformed and [s.malformed for s in good_first.ordered_calls] == [False, True]
    assert not h.parse("plain text").first_call_malformed
    x = parser_for("qwen3_coder", tools=TOOLS).parse(
        "<tool_call>\n<function=g>\n</function>\n</tool_call>\n<tool_call>\n<function=f>\n</function>\n</tool_call>")
    assert not x.first_call_malformed and [s.call.name for s in x.ordered_calls] == ["g", "f"]
    # ids follow the order the calls were written in, malformed ones included
    assert [s.call.id if s.call else None for s in bad_first.ordered_calls] == [None, "call_1"]
