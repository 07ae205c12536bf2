"""`mtgrpo serve-scripted`: the demo's scripted policy and rule-based customer as local OpenAI-compatible
endpoints, so `mtgrpo eval` runs on a domain without a model (issue item 11).  Here in-process on the minimal
domain (examples/minimal_domain.py); tests/test_example_domain.py runs the command as a subprocess on the
installed example package."""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
DOMAIN = "minimal_domain:make_domain"


@pytest.fixture(scope="module")
def minimal():
    if EXAMPLES not in sys.path:
        sys.path.append(EXAMPLES)
    import minimal_domain

    return minimal_domain.make_domain()


def test_a_chat_is_rendered_as_the_scripted_policy_reads_it():
    from openrlhf_mtgrpo.offline.scripted import _calls, _turns, messages_text

    msgs = [{"role": "system", "content": "policy"}, {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Hello. (ref: task-t2) cancel B22"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "B22"}'}},
                {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "B23"}'}}]},
            {"role": "tool", "tool_call_id": "c0", "content": '{"status": "processing"}'},
            {"role": "tool", "tool_call_id": "c1", "content": "Error: order B23 not found"}]
    text = messages_text(msgs)
    turns = _turns(text)
    assert [t["role"] for t in turns] == ["system", "assistant", "user", "assistant", "user", "assistant"]
    assert _calls(turns[3]["content"]) == [{"name": "get_order", "arguments": {"order_id": "B22"}},
                                           {"name": "get_order", "arguments": {"order_id": "B23"}}]
    assert turns[4]["content"] == ('<tool_response>\n{"status": "processing"}\n</tool_response>\n'
                                   "<tool_response>\nError: order B23 not found\n</tool_response>")
    assert text.endswith("<|im_start|>assistant\n") and turns[-1]["content"] == ""


def test_a_reply_comes_back_as_an_openai_message():
    from openrlhf_mtgrpo.offline.scripted import reply_message, tool_call_text

    assert reply_message("Shall I proceed?") == {"content": "Shall I proceed?"}
    both = "Let me look.\n" + tool_call_text("get_order", {"order_id": "A12"})
    assert reply_message(both) == {"content": "Let me look.",
                                   "tool_calls": [{"name": "get_order", "arguments": {"order_id": "A12"}}]}
    broken = '<tool_call>\n{"name": "get_order", "arguments": {"id": \n</tool_call>'
    assert reply_message(broken) == {"content": broken}  # as a vLLM parser returns a call it cannot parse


def test_the_chat_policy_plays_the_gold_and_its_mistakes_are_seeded(minimal):
    from openrlhf_mtgrpo.offline.scripted import CONFIRM_ASK, make_scripted_chat_policy

    policy = make_scripted_chat_policy(minimal)
    start = [{"role": "system", "content": minimal.agent_prompt.text},
             {"role": "assistant", "content": minimal.run_rules.agent_greeting},
             {"role": "user", "content": "Hello. (ref: task-t2) I want to cancel B22."}]
    first = policy({"messages": start, "user": "t2:0"})
    assert first["tool_calls"] == [{"name": "get_order", "arguments": {"order_id": "B22"}}]
    done = start + [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c0", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "B22"}'}}]},
        {"role": "tool", "tool_call_id": "c0", "content": '{"status": "processing"}'}]
    ask = policy({"messages": done, "user": "t2:0"})
    assert CONFIRM_ASK in ask["content"] and "tool_calls" not in ask  # a write: it asks first
    yes = done + [{"role": "assistant", "content": ask["content"]}, {"role": "user", "content": "Yes, go ahead."}]
    assert policy({"messages": yes, "user": "t2:0"})["tool_calls"] == [
        {"name": "cancel_order", "arguments": {"order_id": "B22"}}]
    sloppy = make_scripted_chat_policy(minimal, mistake_rate=1.0, seed=3)
    replies = [sloppy({"messages": start, "user": f"t2:{k}"}) for k in range(12)]
    assert replies == [sloppy({"messages": start, "user": f"t2:{k}"}) for k in range(12)]  # seeded
    assert len({json.dumps(r, sort_keys=True) for r in replies}) > 2  # each trial draws its own mistakes


def _serve(argv, out):
    """`mtgrpo serve-scripted ARGV` in a thread; returns (thread, stop event, the printed eval command)."""
    from openrlhf_mtgrpo.workflows import serve_scripted

    stop = threading.Event()
    ns = {}

    def run():
        import argparse

        p = argparse.ArgumentParser()
        serve_scripted.add_command(p.add_subparsers())
        args = p.parse_args(["serve-scripted", *argv])
        ns["rc"] = serve_scripted.serve(args.domain, version=args.version, mistake_rate=args.mistake_rate,
                                        split=args.split, trials=args.trials, out_dir=args.out, out=out, stop=stop)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.time() + 120
    while "serving until Ctrl-C" not in out.getvalue():
        assert time.time() < deadline and t.is_alive(), out.getvalue()
        time.sleep(0.1)
    cmd = next(line.strip() for line in out.getvalue().splitlines() if line.strip().startswith("mtgrpo eval "))
    return t, stop, ns, cmd


def test_eval_runs_against_the_served_scripted_policy(minimal, tmp_path, capsys):
    """The printed command, run as printed: every episode of the gold-playing policy scores 1 (pass^k 1.0)."""
    from openrlhf_mtgrpo.cli import main as cli

    out = io.StringIO()
    t, stop, ns, cmd = _serve(["--domain", DOMAIN, "--trials", "2", "--out", str(tmp_path / "eval")], out)
    try:
        words = shlex.split(cmd)
        assert words[:2] == ["mtgrpo", "eval"]
        assert words[words.index("--domain") + 1] == DOMAIN and words[words.index("--split") + 1] == "test"
        assert "--no-enable-thinking" in words and words[words.index("--version") + 1] == "v1"
        rc = cli(words[1:] + ["--no-progress", "--bootstrap", "200"])
        printed = capsys.readouterr().out
    finally:
        stop.set()
        t.join(30)
    assert rc == 0 and ns["rc"] == 0, printed
    assert "pass^k" in printed and "2 tasks x 2 trials" in printed
    summary = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert summary["complete"] and summary["pass_k"]["1"]["value"] == summary["pass_k"]["2"]["value"] == 1.0
    assert summary["episodes"]["scored"] == summary["episodes"]["requested"] == 4
    text = out.getvalue()
    assert "SCRIPTED policy" in text and text.rstrip().splitlines()[-1].startswith("mtgrpo serve-scripted: stopped")
    for what in ("scripted policy:", "rule-based customer:"):
        url = next(line for line in text.splitlines() if line.startswith(what)).split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1") and url in cmd


def test_the_eval_title_prints_every_key_of_the_identity():
    """Eval's title printed only keys ending in _sha256; a domain's package or file names were left out."""
    from openrlhf_mtgrpo.workflows.eval_cmd import _title

    digest = "0123456789abcdef" * 4
    ident = {"benchmark": {"version": "v1", "package": "my-desk==0.2", "orders.json": digest,
                           "orders_sha256": digest, "policy_sha256": "f" * 64},
             "domain": "my_desk", "split": "test", "task_ids": ["a", "b"], "trials": 2, "max_tokens": 100,
             "policy_model": "m", "temperature": 0.0, "chat_template_kwargs": {}, "user": {"model": "u"}}
    title = _title(ident)
    assert title.startswith("my_desk v1 test: 2 tasks x 2 trials (package my-desk==0.2, orders.json = orders "
                            "sha256 0123456789ab, policy sha256 ffffffffffff); policy m")
