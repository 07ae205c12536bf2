"""The current retail against tau2-bench v1.0.1's own code (tests/differential/retail_v1.py, run under its
Python >= 3.12 interpreter), on the same inputs:

* ``get_item_details`` on every item id of the database and on ids that are no item: the same content and
  error flag, call for call;
* the agent's tool list: the same schemas in the same order (with the benchmark's retail ``tools.py`` in the data
  folder, as `mtgrpo data fetch retail` puts it there);
* the judge: for the gold conversation of each of the 40 tasks with NL assertions, the request our judge sends
  equals, field for field, the one v1.0.1's judge sends (through litellm, to the same capturing endpoint), and
  its verdicts are read alike; its judge defaults are the version's;
* the grade: v1.0.1's ``evaluate_simulation`` of our gold trajectory of every task (and of one with its last write
  left out per judged task), its judge answering "all true" through the same endpoint, gives our reward, breakdown
  and DB verdict.

Where the interpreter is not installed (CI) every test skips, naming the install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tau2")

from conftest import data_dir_for  # noqa: E402
from test_tau2_retail_current import JUDGE_MODEL, answering, gold_episode, judge_on  # noqa: E402

from openrlhf_mtgrpo.envs import load_domain  # noqa: E402
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
V1_ENV = "MTGRPO_TAU2_V1_PYTHON"
V1_DEFAULT = "/work/venv312/bin/python"
INSTALL = (f"install tau2-bench v1.0.1 from source under Python >= 3.12 (`pip install -e <tau2-bench checkout at "
           f"v1.0.1>`) and set {V1_ENV}=/path/to/python (default {V1_DEFAULT})")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def v1():
    python = os.environ.get(V1_ENV) or os.environ.get("MTGRPO_TAU2_V101_PYTHON") or V1_DEFAULT
    if not os.path.exists(python):
        pytest.skip(f"tau2-bench v1.0.1's interpreter is not here: {INSTALL}")
    probe = subprocess.run([python, "-c", "import sys, importlib.metadata as m; "
                                          "print(sys.version_info >= (3, 12), m.version('tau2'))"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0 or not probe.stdout.startswith("True 1.0.1"):
        pytest.skip(f"{python} is not Python >= 3.12 with tau2-bench v1.0.1 ({probe.stdout.strip()} "
                    f"{probe.stderr.strip()[-200:]}): {INSTALL}")

    def call(request, **env):
        proc = subprocess.run([python, "-m", "differential.retail_v1"], input=json.dumps(request), text=True,
                              capture_output=True, timeout=900, cwd=HERE,
                              env=dict(os.environ, PYTHONPATH=HERE, OPENAI_API_KEY="sk-test", **env))
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    call.python = python
    return call


@pytest.fixture(scope="module")
def current(v1, tmp_path_factory):
    """The current retail with the benchmark's tools.py beside its tasks (read from v1.0.1's own checkout, linked:
    the file `mtgrpo data fetch retail` pins)."""
    src = subprocess.run([v1.python, "-c", "import tau2, os; print(os.path.dirname(tau2.__file__))"],
                         capture_output=True, text=True, timeout=120).stdout.strip()
    tools = os.path.join(src, "domains", "retail", "tools.py")
    root = tmp_path_factory.mktemp("retail-with-tools")
    data = data_dir_for("retail")
    os.makedirs(root / "retail" / "tools")
    for name in os.listdir(os.path.join(data, "retail")):
        os.symlink(os.path.realpath(os.path.join(data, "retail", name)), root / "retail" / name)
    os.symlink(tools, root / "retail" / "tools" / "tools.py")
    env = load_domain("retail", "retail", str(root))
    assert env.schema_source["source"] == "benchmark", env.schema_source
    return env


def test_get_item_details_answers_as_v101_on_every_item_id_and_on_bad_ids(v1, current):
    ids = sorted({i for p in current.pristine.products.values() for i in p.variants})
    bad = [next(iter(current.pristine.products)), "0000000000", "", "1008292230 ", 1008292230, 10.5, None, True,
           ["1008292230"], {"id": "1008292230"}]
    theirs = v1({"mode": "items", "ids": ids + bad})
    ep = current.reset(current.tasks("base")[0])
    ours = []
    for item_id in ids + bad:
        res = ep.call_tool("get_item_details", {"item_id": item_id})
        ours.append([res.content, res.error])
    assert len(ids) == 591 and len(theirs) == len(ours) == 601
    mismatches = [(x, a, b) for x, a, b in zip(ids + bad, ours, theirs) if a != b]
    assert mismatches == []
    assert sum(e for _, e in ours) == len(bad) and ours[len(ids)] == ["Error: Item not found", True]


def test_the_tool_list_is_v101s(v1, current):
    assert current.tool_schemas() == v1({"mode": "schemas"})


def test_the_judges_defaults_are_the_versions(v1, current):
    from tau2 import config

    got = v1({"mode": "config"})
    assert got == {"model": JUDGE_MODEL, "args": config.DEFAULT_LLM_NL_ASSERTIONS_ARGS}
    assert current.judge_default_model == got["model"]


def _conversation(env, task):
    """The gold conversation of ``task`` as the episode loop keeps it: our episode and its chat messages."""
    ep = gold_episode(env, task)
    messages = [{"role": "system", "content": env.agent_prompt.text},
                {"role": "assistant", "content": env.greeting()},
                {"role": "user", "content": f"Hi, I need help. {task.user_instructions[:200]}"}]
    for _ in task.actions:
        messages.append({"role": "assistant", "content": "", "tool_calls": ["..."]})
    ep.assistant_message("Done. Is there anything else I can help you with?", [])
    messages += [{"role": "assistant", "content": "Done. Is there anything else I can help you with?"},
                 {"role": "user", "content": "No, thanks. ###STOP###"}]
    return ep, messages


def test_the_judges_request_equals_v101s_for_every_judged_gold_conversation(v1, current):
    tasks = [t for t in current.tasks("base") if current.judge_needed(t)]
    ours, theirs, convs = [], [], []
    with LocalChatServer(answering(True, ours)) as srv:
        for task in tasks:
            ep, messages = _conversation(current, task)
            res = ep.evaluate("user_stop", judge_on(srv, JUDGE_MODEL), messages)
            assert res.reward == 1.0 and res.nl_results == [True] * len(task.nl_assertions)
            convs.append({"messages": [m.model_dump(mode="json") for m in ep.tau2_trajectory(messages)],
                          "nl_assertions": task.nl_assertions})
    with LocalChatServer(answering(True, theirs)) as srv:
        verdicts = v1({"mode": "judge", "conversations": convs}, OPENAI_BASE_URL=srv.base_url)
    assert len(tasks) == len(ours) == len(theirs) == 40
    assert verdicts == [[True] * len(t.nl_assertions) for t in tasks]
    unequal = [t.id for t, a, b in zip(tasks, ours, theirs) if a != b]
    assert unequal == [], json.dumps([ours[0], theirs[0]])[:3000]
    assert all(json.dumps(a) == json.dumps(b) for a, b in zip(ours, theirs))  # key order too
    assert set(ours[0]) == {"model", "messages", "temperature"} and ours[0]["model"] == JUDGE_MODEL


def test_v101_grades_our_gold_and_broken_trajectories_as_we_do(v1, current):
    """v1.0.1's evaluate_simulation (strict replay, NL judged through the endpoint) on our trajectories."""
    sims, expected, kinds = [], [], []
    with LocalChatServer(answering(True)) as srv:
        for task in current.tasks("base"):
            ep, messages = _conversation(current, task)
            res = ep.evaluate("user_stop", judge_on(srv, JUDGE_MODEL), messages)
            sims.append({"task_id": task.id, "messages": [m.model_dump(mode="json")
                                                          for m in ep.tau2_trajectory(messages)]})
            expected.append((res.reward, res.breakdown, res.db_match))
            kinds.append("gold")
            writes = [i for i, a in enumerate(task.actions) if current.tool_kinds.kind(a.name) == "write"]
            if writes and current.judge_needed(task):  # the last write left out: DB fails, NL still judged
                broken = current.reset(task)
                for i, a in enumerate(task.actions):
                    if i != writes[-1]:
                        broken.assistant_message(None, [(a.name, a.arguments)])
                chat = [m for m in messages if m.get("role") != "assistant" or m.get("tool_calls") is None][:3]
                chat += [{"role": "assistant", "content": "", "tool_calls": ["..."]}] * (len(task.actions) - 1)
                chat += [{"role": "user", "content": "No, thanks. ###STOP###"}]
                r = broken.evaluate("user_stop", judge_on(srv, JUDGE_MODEL), chat)
                sims.append({"task_id": task.id, "messages": [m.model_dump(mode="json")
                                                              for m in broken.tau2_trajectory(chat)]})
                expected.append((r.reward, r.breakdown, r.db_match))
                kinds.append("broken")
    with LocalChatServer(answering(True)) as srv:
        got = v1({"mode": "grade", "simulations": sims}, OPENAI_BASE_URL=srv.base_url)
    assert len(got) == len(sims) > 114
    assert [(g["reward"], g["breakdown"], g["db_match"]) for g in got] == expected
    assert all(e[0] == 1.0 for e, k in zip(expected, kinds) if k == "gold") and kinds.count("gold") == 114
    broken = [e for e, k in zip(expected, kinds) if k == "broken"]
    # a left-out write whose gold call fails changes nothing: that one still scores 1, on both sides
    assert len(broken) > 30 and sum(e[0] == 0.0 and e[2] is False for e in broken) >= len(broken) - 2
