"""Three things ``mtgrpo eval`` got wrong, each against local scripted endpoints (the demo's scripted policy with
seeded mistakes, its rule-based customer):

* a solo domain (telecom-solo: no customer, ``env.customer_prompt is None``) crashed in ``run_eval`` building
  the run's identity from the customer prompt, and the command demanded ``--user-base-url``;
* eval's ``rollouts-eval.jsonl`` lines carried no ``log_schema``, domain axis or calibration, so ``mtgrpo irc
  analyze`` read them as version-1 lines (the airline's, component set ``tau``) and asked for the calibration.

(Where eval's summary says its tau2 Results went: tests/test_tau2_results.py.)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tau2")

from openrlhf_mtgrpo.cli import main as cli  # noqa: E402
from openrlhf_mtgrpo.envs import load_domain  # noqa: E402
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_chat_policy  # noqa: E402
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer  # noqa: E402


def run(args):
    """``mtgrpo eval ARGS`` in this process: (exit status, what it printed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(["eval", *args, "--no-progress", "--bootstrap", "200"])
    return rc, buf.getvalue()


def eval_words(version, out, pol, usr=None, split="test", trials=1, *extra):
    words = ["--domain", "telecom", "--version", version, "--split", split, "--trials", str(trials),
             "--policy-base-url", pol.base_url, "--policy-model", "scripted", "--no-enable-thinking",
             "--out", str(out), "--concurrency", "4", *extra]
    if usr is not None:
        words += ["--user-base-url", usr.base_url, "--user-model", "rule-based"]
    return words


def latest_results(out):
    latest = {}
    with open(os.path.join(out, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            latest[(str(r["task_id"]), int(r["trial"]))] = r
    return latest


# -- (a) a solo domain -------------------------------------------------------------------------------------------


def test_a_solo_domain_evaluates_without_a_user_simulator(tmp_path):
    solo = load_domain("telecom", "telecom-solo")
    assert solo.customer_prompt is None
    out = tmp_path / "eval"
    with LocalChatServer(make_scripted_chat_policy(solo, mistake_rate=0.3, seed=3)) as pol:  # the user tag names the task
        rc, stdout = run(eval_words("telecom-solo", out, pol))  # no --user-base-url, no --user-model
    assert rc == 0, stdout
    assert "telecom telecom-solo test: 40 tasks x 1 trial" in stdout and "; no customer (solo)" in stdout
    with open(out / "run.json") as f:
        assert json.load(f)["identity"]["user"] is None
    with open(out / "results.json") as f:
        assert json.load(f)["prompts"]["customer"] is None
    latest = latest_results(out)
    assert len(latest) == 40 and all(r["status"] == "scored" for r in latest.values())
    rewards = [r["reward"] for r in latest.values()]
    assert 1.0 in rewards and 0.0 in rewards  # the gold passes, the seeded mistakes fail some
    assert "agent_stop" in {r["termination"] for r in latest.values()}  # the solo agent's done


def test_a_domain_with_a_customer_still_needs_the_user_simulator(tmp_path, capsys):
    telecom = load_domain("telecom", "telecom")
    with LocalChatServer(make_scripted_chat_policy(telecom)) as pol:
        rc, _ = run(eval_words("telecom", tmp_path / "e", pol))
        assert rc == 2 and "has a customer: give the user simulator's endpoint (--user-base-url and --user-model)" \
            in capsys.readouterr().err
        rc, _ = run(eval_words("telecom", tmp_path / "e", pol, None, "test", 1, "--user-base-url", "http://x/v1"))
        assert rc == 2 and "--user-base-url and --user-model go together" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "e" / "results.jsonl")


# -- (b) IRC reads an eval log of any domain -------------------------------------------------------------------


@pytest.mark.slow
def test_eval_log_lines_carry_what_irc_reads(tmp_path):
    """IRC read eval's lines as version-1 lines (the airline's, component set tau) and asked for the calibration;
    they now record them, as the training rollout log does."""
    from openrlhf_mtgrpo.irc.logs import LOG_SCHEMA
    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    telecom = load_domain("telecom", "telecom")
    out = tmp_path / "eval"
    with LocalChatServer(make_scripted_chat_policy(telecom, mistake_rate=0.3, seed=7)) as pol, \
            LocalChatServer(make_rule_based_user(telecom)) as usr:
        rc, stdout = run(eval_words("telecom", out, pol, usr, "test", 2))
    assert rc == 0, stdout
    cal = load_calibration()
    log = str(out / "rollouts-eval.jsonl")
    with open(log) as f:
        records = [json.loads(x) for x in f]
    assert len(records) == 80
    for rec in records:
        assert rec["log_schema"] == LOG_SCHEMA and rec["domain"] == "telecom"
        assert (rec["component_set"], rec["components"]) == (cal.component_set, list(cal.components))
        assert (rec["calibration"], rec["calibration_sha256"]) == (cal.name, cal.sha256)
        assert (rec["user_model"], rec["user_temperature"], rec["infra_failed"]) == ("rule-based", 0.0, False)
    irc = tmp_path / "irc"
    proc = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "irc", "analyze", log, "--group-size", "2",
                           "--pool", "turn", "--bootstrap", "200", "--out", str(irc)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]  # no --calibration: the log says which
    with open(irc / "irc_result.json") as f:
        result = json.load(f)
    assert (result["domain"], result["component_set"]) == ("telecom", "tau")
    assert result["calibration_in"] == {"name": cal.name, "sha256": cal.sha256} and result["n_rollouts"] == 80
    assert "domain telecom, component set tau" in proc.stdout
