"""The example third-party domain (examples/mtgrpo_example_crm), installed as a user installs a plugin.

The example is pip-installed (``--no-deps --target``) into a temporary folder once per session and put on
PYTHONPATH; commands run as subprocesses (``python -m openrlhf_mtgrpo.cli ...``) so each finds the
example's domain, component set and estimator through their entry points in a fresh process, as a user's
``mtgrpo`` does.  In this process the example's modules are imported from the installed copy directly (to
build the local customer and policy servers, and for the checklist of :mod:`openrlhf_mtgrpo.testing`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from math import comb

import pytest

from helpers import pythonpath

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "mtgrpo_example_crm")
DOMAIN, COMPONENTS, ESTIMATOR, FLAG = "example_crm", "crm", "outcome_first", "unnamed_target_write"
DIST = "mtgrpo-example-crm 0.1.0"

_installed: dict = {}


def can_build_here() -> bool:
    """Whether this interpreter's setuptools builds a wheel by itself (no build isolation, no index needed):
    setuptools >= 70.1 has ``bdist_wheel`` built in, older ones need the ``wheel`` package; both need >= 61
    for a pyproject.toml-only project."""
    from importlib import metadata
    from importlib.util import find_spec

    try:
        version = tuple(int(x) for x in re.findall(r"\d+", metadata.version("setuptools"))[:2])
    except metadata.PackageNotFoundError:
        return False
    return version >= (61, 0) and (version >= (70, 1) or find_spec("wheel") is not None)


def install_example(base: str) -> dict:
    """pip-install the example into ``base``/target (once per process): ``{"target", "source"}``.

    The source is copied first (a local build writes build/ and *.egg-info into the folder it builds).  It is
    built without isolation where the installed setuptools can build a wheel (no download), else in pip's
    usual isolated build environment, as a user's ``pip install`` does (setuptools from the index)."""
    if "target" in _installed:
        return _installed
    source, target = os.path.join(base, "source"), os.path.join(base, "target")
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                                   ".pytest_cache"))
    isolation = [] if not can_build_here() else ["--no-build-isolation"]
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                           "--no-warn-script-location", "--target", target, source],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip install of the example failed ({' '.join(isolation) or 'isolated build'}):" \
                                 f"\n{proc.stdout}\n{proc.stderr}"
    _installed.update(source=source, target=target)
    return _installed


def example_env(target: str, **extra: str) -> dict:
    """The environment of a subprocess that must find the checkout and the installed example."""
    env = dict(os.environ)
    env["PYTHONPATH"] = pythonpath(REPO, target)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def example(tmp_path_factory):
    info = install_example(str(tmp_path_factory.mktemp("example_crm")))
    if info["target"] not in sys.path:
        sys.path.append(info["target"])  # last: nothing of the checkout is shadowed
    return info


def mtgrpo(example, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m openrlhf_mtgrpo.cli ARGS`` in a fresh process that finds the installed example."""
    return subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", *args], capture_output=True, text=True,
                          env=example_env(example["target"]), timeout=timeout, cwd=example["source"])


def _check(proc: subprocess.CompletedProcess, rc: int = 0) -> str:
    assert proc.returncode == rc, \
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="session")
def domain(example):
    from mtgrpo_example_crm.domain import make_domain

    return make_domain()


# -- found by entry point --------------------------------------------------------------------------------------

ENTRY_POINT_PROBE = """
import json
from openrlhf_mtgrpo import registry
from openrlhf_mtgrpo.envs import load_domain
from openrlhf_mtgrpo.rewards.sets import build_component_set, component_names
d = load_domain("example_crm")  # load_domain runs domain_problems and refuses a domain that breaks the interface
s = build_component_set("crm", d.tool_kinds)
fn = registry.get_advantage_estimator("outcome_first")
print(json.dumps({"domains": registry.list_domains(), "components": registry.list_reward_components(),
                  "estimators": registry.list_advantage_estimators(),
                  "domain_origin": registry.origin("domain", "example_crm"),
                  "components_origin": registry.origin("reward components", "crm"),
                  "type": type(d).__module__ + "." + type(d).__name__, "version": d.version,
                  "names": list(s.names), "axis": list(component_names("crm")),
                  "estimator": fn.__module__ + "." + fn.__name__}))
"""


def test_domain_component_set_and_estimator_are_found_by_entry_point(example):
    proc = subprocess.run([sys.executable, "-c", ENTRY_POINT_PROBE], capture_output=True, text=True,
                          env=example_env(example["target"]), timeout=120)
    got = json.loads(_check(proc).strip().splitlines()[-1])
    from openrlhf_mtgrpo.rewards.tau import NAMES

    assert DOMAIN in got["domains"] and "airline" in got["domains"]
    assert COMPONENTS in got["components"] and "tau" in got["components"]
    assert ESTIMATOR in got["estimators"] and "gtpo_hybrid" in got["estimators"]
    for origin in (got["domain_origin"], got["components_origin"]):
        assert origin.startswith("entry point openrlhf_mtgrpo.") and f"of {DIST}" in origin, origin
    assert (got["type"], got["version"]) == ("mtgrpo_example_crm.domain.CrmDomain", "v1")
    assert got["names"] == got["axis"] == list(NAMES) + [FLAG]  # the tau components, then the example's own
    assert got["estimator"] == "mtgrpo_example_crm.estimator.outcome_first"


def test_the_installed_package_carries_its_readme_data_and_calibration(example):
    """What pyproject.toml declares reaches the install: the README as the long description, every data file
    and the calibration (package data), the same bytes as the source's."""
    target = example["target"]
    with open(os.path.join(target, "mtgrpo_example_crm-0.1.0.dist-info", "METADATA"), encoding="utf-8") as f:
        metadata = f.read()
    with open(os.path.join(EXAMPLE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "Description-Content-Type: text/markdown" in metadata and readme.strip() in metadata
    package = os.path.join(EXAMPLE, "mtgrpo_example_crm")
    shipped = sorted(os.path.join(d, n) for d in ("data", "calibrations") for n in os.listdir(os.path.join(package, d)))
    assert len(shipped) == 7
    for rel in shipped:
        installed = os.path.join(target, "mtgrpo_example_crm", rel)
        with open(os.path.join(package, rel), "rb") as a, open(installed, "rb") as b:
            assert a.read() == b.read(), rel


def test_doctor_lists_them(example):
    out = mtgrpo(example, "doctor").stdout  # its exit status also reflects this machine's hook and data
    lines = out.splitlines()
    assert any(line.startswith(f"domain {DOMAIN}") and f"entry point openrlhf_mtgrpo.domains of {DIST}" in line
               for line in lines), out
    assert any(line.startswith(f"component set {COMPONENTS}") and
               f"entry point openrlhf_mtgrpo.reward_components of {DIST}" in line for line in lines), out
    estimators = next(line for line in lines if line.startswith("estimators"))
    assert ESTIMATOR in estimators.split(None, 1)[1].split(" (")[0].split(", "), estimators


# -- the checklist of openrlhf_mtgrpo.testing ------------------------------------------------------------------


def test_the_checklist_passes_on_the_example_and_every_gold_replay_scores_one(domain):
    from openrlhf_mtgrpo.envs import domain_problems
    from openrlhf_mtgrpo.testing import assert_domain, check_domain

    assert domain_problems(domain) == []
    report = assert_domain(domain)
    tasks = domain.tasks("base")
    assert report.checked["gold replays"] == report.checked["determinism replays"] == len(tasks) == 12
    assert "gold replays unscored (NaN: a judge is needed)" not in report.checked
    assert report.checked["isolation checks"] == 3 and report.checked["premature endings"] == len(tasks) + 2
    writes = [t for t in tasks if any(a.name in domain.tool_kinds.writes for a in t.actions)]
    assert len(writes) >= 6  # several tasks change the database
    only = check_domain(domain, gold_tasks=["t02"])
    assert only == []


def test_the_checklist_passes_on_the_airline_tau2_2025(require_version):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
    from openrlhf_mtgrpo.testing import run_checks

    env = AirlineEnv("tau2-2025", require_version("tau2-2025"))
    report = run_checks(env)
    assert report.problems == [], report.describe()
    scored = report.checked["gold replays"] - report.checked.get("gold replays unscored (NaN: a judge is needed)", 0)
    assert report.checked["gold replays"] == len(env.tasks("base")) == 50 and scored > 0
    assert report.checked["isolation checks"] == 3


def _faulty_domains():
    """Variants of the example that each break one rule, and what the checklist must say about it."""
    from mtgrpo_example_crm import tools
    from mtgrpo_example_crm.domain import CrmDomain
    from mtgrpo_example_crm.episode import CrmEpisode
    from mtgrpo_example_crm.state import EpisodeState

    class SharedState(CrmDomain):
        def reset(self, task):
            self.__dict__.setdefault("_one", EpisodeState(self._db))
            return CrmEpisode(self, self.task(task), self._one)

    class WritesThrough(CrmEpisode):
        def call_tool(self, name, arguments):
            res = super().call_tool(name, arguments)
            if name == "update_ticket" and not res.error:  # the new record also into the domain's loaded data
                self.domain.data.db["tickets"][arguments["ticket_id"]].update(json.loads(res.content))
            return res

    class WritesShared(CrmDomain):
        def reset(self, task):
            return WritesThrough(self, self.task(task), EpisodeState(self._db))

    class Counting(CrmEpisode):
        calls = [0]

        def call_tool(self, name, arguments):
            res = super().call_tool(name, arguments)
            Counting.calls[0] += 1
            res.content += f" (request {Counting.calls[0]})"
            return res

    class Nondeterministic(CrmDomain):
        def reset(self, task):
            return Counting(self, self.task(task), EpisodeState(self._db))

    class Lenient(CrmEpisode):
        def assistant_message(self, text, calls, malformed=0, first_call_malformed=False):
            return super().assistant_message(text or "(empty)", calls)  # runs a malformed message's calls

    class LenientDomain(CrmDomain):
        def reset(self, task):
            return Lenient(self, self.task(task), EpisodeState(self._db))

    class ScoresEveryEnding(CrmEpisode):
        def evaluate(self, termination, judge=None, messages=None):
            return super().evaluate("user_stop")

    class NoPrematureZero(CrmDomain):
        def reset(self, task):
            return ScoresEveryEnding(self, self.task(task), EpisodeState(self._db))

    class BadSchemas(CrmDomain):
        def tool_schemas(self):
            schemas = super().tool_schemas()
            schemas[2]["function"]["parameters"]["properties"]["ticket_id"]["type"] = "str"
            schemas[0]["function"]["parameters"]["required"] = ["address"]
            return schemas

    class MissingKind(CrmDomain):
        def __init__(self):
            super().__init__()
            k = tools.TOOL_KINDS
            self.tool_kinds = type(k)({n: v for n, v in k.kinds.items() if n != "list_plans"}, k.write_targets,
                                      k.transfer_tool)

    class WrongGold(CrmDomain):
        def gold_hash(self, task):
            return "not the state of any replay"

    return {
        "one state for all episodes": (SharedState, "one episode's writes reach another"),
        "a write into the shared data": (WritesShared, "the domain's shared data changed when an episode wrote"),
        "outputs that differ between replays": (Nondeterministic, "second gold replay sees other observations"),
        "an empty message and a malformed call that go through": (LenientDomain, "malformed tool call"),
        "an empty message that goes to the customer": (LenientDomain, "an empty message"),
        "a premature ending that is scored": (NoPrematureZero, "ended by max_steps scores 1.0, not 0"),
        "a property type that is not JSON schema": (BadSchemas, "property 'ticket_id' has no valid JSON-schema type"),
        "required arguments the tool does not have": (BadSchemas, "required must list properties of the tool"),
        "a tool without a kind": (MissingKind, "tool_kinds gives no kind for the tools ['list_plans']"),
        "a gold replay that does not score 1": (WrongGold, "scores 0.0, not 1.0"),
    }


FAULTS = ("one state for all episodes", "a write into the shared data", "outputs that differ between replays",
          "an empty message and a malformed call that go through", "an empty message that goes to the customer",
          "a premature ending that is scored", "a property type that is not JSON schema",
          "required arguments the tool does not have", "a tool without a kind", "a gold replay that does not score 1")


@pytest.mark.parametrize("fault", FAULTS)
def test_the_checklist_finds_each_broken_rule(example, fault):
    from openrlhf_mtgrpo.testing import assert_domain, check_domain

    faults = _faulty_domains()
    assert set(faults) == set(FAULTS)
    cls, says = faults[fault]
    problems = check_domain(cls())
    assert any(says in p for p in problems), problems
    with pytest.raises(AssertionError, match=r"problem\(s\)"):
        assert_domain(cls())


# -- the commands ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_run(example, tmp_path_factory):
    """``mtgrpo demo --domain example_crm --estimator outcome_first``: 12 rollouts per train task, enough for IRC
    to test the example's own component (fired in >= 10 rollouts and absent from >= 10)."""
    out = tmp_path_factory.mktemp("demo")
    proc = mtgrpo(example, "demo", "--domain", DOMAIN, "--estimator", ESTIMATOR, "--group-size", "12", "--out",
                  str(out))
    return proc, out


def _log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_demo_runs_the_example_with_its_estimator(demo_run, domain):
    from mtgrpo_example_crm.components import NAMES

    proc, out = demo_run
    stdout = _check(proc)
    assert f"DOMAIN: {DOMAIN}, BENCHMARK VERSION: v1" in stdout
    records = _log(out / "rollouts-demo.jsonl")
    assert len(records) == 12 * len(domain.tasks("train"))
    assert {r["task_id"] for r in records} == {t.id for t in domain.tasks("train")}
    for r in records:
        assert (r["domain"], r["component_set"], r["estimator"], r["calibration"]) == \
            (DOMAIN, COMPONENTS, ESTIMATOR, "crm-dense")
        assert r["components"] == list(NAMES) and r["benchmark"] == domain.identity
        assert all(set(t["features"]) == set(NAMES) for t in r["turns"])
    table = stdout.split("IRC table", 1)[1].split("misalignment of each estimator")[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(NAMES) <= set(rows), sorted(rows)  # every component of the set, the example's own included
    fired = sum(any(t["features"][FLAG] > 0 for t in r["turns"]) for r in records)
    assert f"| {fired}/{len(records)} (" in rows[FLAG]
    checks = stdout.split("misalignment of each estimator", 1)[1]
    assert any(line.startswith(ESTIMATOR) for line in checks.splitlines()), checks  # the plugin's estimator compared
    assert sum(r["success"] for r in records) == json.loads((out / "demo_summary.json").read_text())["successes"]


def test_irc_analyze_calibrates_the_examples_component(demo_run, example, tmp_path):
    import numpy as np
    import yaml

    from mtgrpo_example_crm.components import NAMES

    proc, out = demo_run
    _check(proc)
    log = out / "rollouts-demo.jsonl"
    records = _log(log)
    irc = tmp_path / "irc"
    stdout = _check(mtgrpo(example, "irc", "analyze", str(log), "--out", str(irc)))
    assert f"component set {COMPONENTS}" in stdout and f"| {FLAG} |" in stdout
    result = json.loads((irc / "irc_result.json").read_text())
    assert (result["domain"], result["component_set"]) == (DOMAIN, COMPONENTS)
    assert result["options"]["estimator"] == ESTIMATOR  # the run's estimator, read from the log
    comp = result["components"][FLAG]
    fired = np.array([any(t["features"][FLAG] > 0 for t in r["turns"]) for r in records], float)
    success = np.array([r["success"] for r in records], float)
    assert comp["fired_rollouts"] == int(fired.sum()) and comp["n_rollouts"] == len(records)
    assert comp["fired_in_success"] == int((fired * success).sum())
    assert abs(comp["rho_any"] - np.corrcoef(fired, success)[0, 1]) < 1e-9
    assert 10 <= fired.sum() <= len(records) - 10 and comp["evidence"] != "too_few"  # it was tested
    if comp["evidence"] in ("anti", "positive"):
        assert np.sign(comp["weight_after"]) == np.sign(comp["rho_any"])
    # the calibration IRC wrote weights the whole set, the example's own component included
    data = yaml.safe_load((irc / "irc_calibration.yaml").read_text())
    assert data["component_set"] == COMPONENTS and list(data["components"]) == list(NAMES)
    assert data["components"][FLAG]["weight"] == pytest.approx(comp["weight_after"], abs=1e-4)


def test_the_examples_own_estimator_option_is_logged_and_rechecked_by_irc(demo_run, example, tmp_path):
    """outcome_first declares outcome_weight (OutcomeFirstOptions): the demo logs it beside the shared options, and
    irc analyze recomputes the advantages with the value the log records, refusing another."""
    from dataclasses import asdict

    from mtgrpo_example_crm.estimator import OutcomeFirstOptions

    proc, out = demo_run
    _check(proc)
    records = _log(out / "rollouts-demo.jsonl")
    assert all(r["estimator_options"] == asdict(OutcomeFirstOptions()) for r in records)
    assert records[0]["estimator_options"]["outcome_weight"] == 1.0
    results = {}
    for weight in (1.0, 3.0):
        log = tmp_path / f"w{weight}" / "rollouts-demo.jsonl"
        log.parent.mkdir()
        log.write_text("".join(json.dumps({**r, "estimator_options": {**r["estimator_options"],
                                                                      "outcome_weight": weight}}) + "\n"
                               for r in records))
        _check(mtgrpo(example, "irc", "analyze", str(log), "--out", str(log.parent / "irc"), "--bootstrap", "200"))
        results[weight] = json.loads((log.parent / "irc" / "irc_result.json").read_text())
        assert results[weight]["options"]["declared_options"] == {"outcome_weight": weight}
    mean = {w: {c: v["mean_advantage_before"] for c, v in r["components"].items()} for w, r in results.items()}
    changed = [c for c in mean[1.0] if mean[1.0][c] is not None and abs(mean[3.0][c] - mean[1.0][c]) > 1e-6]
    assert len(changed) >= 3, mean  # recomputed with the logged weight
    proc = mtgrpo(example, "irc", "analyze", str(tmp_path / "w3.0" / "rollouts-demo.jsonl"), "--out",
                  str(tmp_path / "again"), "--estimator-option", "outcome_weight=1")
    assert proc.returncode == 2 and "the logged run used outcome_weight=3.0; you asked for outcome_weight=1.0" \
        in proc.stderr, proc.stderr[-2000:]


LAUNCHER_PROBE = """
import json, sys
sys.path.insert(0, {tests!r})
import stubs; stubs.install_into()
from openrlhf_mtgrpo.integration.cli_flags import estimator_options_from_args
from openrlhf_mtgrpo.integration.launcher_parser import RecipeError, post_parse_checks, upstream_parser
parser = upstream_parser()
base = ["--advantage_estimator", "outcome_first", "--n_samples_per_prompt", "4"]
opts = estimator_options_from_args(post_parse_checks(parser.parse_args(base + ["--outcome_first.outcome_weight", "2.5",
                                                                              "--gtpo.lam", "0.1"])))
flat = estimator_options_from_args(post_parse_checks(parser.parse_args(base + ["--outcome_first_outcome_weight", "4"])))
try:
    post_parse_checks(parser.parse_args(base + ["--outcome_first.outcome_weight", "-1"]))
    refused = None
except RecipeError as e:
    refused = str(e)
print("RESULT " + json.dumps({{"type": type(opts).__name__, "weight": opts.outcome_weight, "lam": opts.lam,
                              "flat": flat.outcome_weight, "refused": refused}}))
"""


def test_the_launcher_takes_the_examples_option_as_a_flag(example):
    """In a fresh process that finds the example by its entry point, OpenRLHF's own parser has
    --outcome_first.outcome_weight (and its flat alias); the estimator receives it in OutcomeFirstOptions, and a
    value its check refuses stops the run before it starts, naming the flag."""
    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", LAUNCHER_PROBE.format(tests=tests)], capture_output=True, text=True,
                          env=example_env(example["target"]), timeout=300)
    got = json.loads(next(line for line in _check(proc).splitlines() if line.startswith("RESULT "))[7:])
    assert (got["type"], got["weight"], got["lam"], got["flat"]) == ("OutcomeFirstOptions", 2.5, 0.1, 4.0)
    assert "--outcome_first.outcome_weight must be >= 0 (got -1.0)" in got["refused"]


def test_data_prepare_writes_labels_with_the_domain(example, domain, tmp_path):
    path = tmp_path / "train.jsonl"
    stdout = _check(mtgrpo(example, "data", "prepare", "--domain", DOMAIN, "--split", "train", "--out", str(path)))
    assert f"wrote {len(domain.tasks('train'))} prompts" in stdout
    lines = _log(path)
    labels = [json.loads(line["label"]) for line in lines]  # what the training agent reads (executor.parse_label)
    assert labels == [{"task_id": t.id, "version": "v1", "domain": DOMAIN} for t in domain.tasks("train")]
    assert all(line["prompt"].startswith(f"[{DOMAIN} v1 task ") for line in lines)


def test_eval_runs_against_local_servers_with_a_correct_pass_k(example, domain, tmp_path):
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    tasks = domain.tasks("test")
    writes = [t.id for t in tasks if any(a.name in domain.tool_kinds.writes for a in t.actions)]
    assert len(writes) >= 2
    # the scripted policy gives up at once in these trials: a task that needs a write then fails
    failing = {(writes[0], 1), (writes[1], 0), (writes[1], 1)}
    trials = 2
    with LocalChatServer(make_scripted_policy_responder(domain, fails=lambda t, k: (t, k) in failing)) as pol, \
            LocalChatServer(make_rule_based_user(domain)) as usr:
        out = tmp_path / "eval"
        proc = mtgrpo(example, "eval", "--domain", DOMAIN, "--split", "test", "--trials", str(trials),
                      "--policy-base-url", pol.base_url, "--policy-model", "scripted", "--user-base-url",
                      usr.base_url, "--user-model", "rule-based", "--no-enable-thinking", "--concurrency", "2",
                      "--out", str(out), "--no-progress", "--timeout", "30", "--bootstrap", "200")
    stdout = _check(proc)
    results = _log(out / "results.jsonl")
    assert len(results) == len(tasks) * trials and all(r["status"] == "scored" for r in results)
    for r in results:
        assert r["success"] == ((r["task_id"], r["trial"]) not in failing), r
    successes = {t.id: sum((t.id, k) not in failing for k in range(trials)) for t in tasks}
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] and summary["identity"]["domain"] == DOMAIN
    assert summary["identity"]["benchmark"] == domain.identity
    for k in range(1, trials + 1):  # pass^k: the mean over tasks of C(c, k) / C(n, k)
        want = sum(comb(c, k) / comb(trials, k) for c in successes.values()) / len(tasks)
        assert summary["pass_k"][str(k)]["value"] == pytest.approx(want), (k, summary["pass_k"])
        assert summary["pass_k"][str(k)]["tasks"] == len(tasks)
    assert summary["pass_k"]["1"]["value"] > summary["pass_k"]["2"]["value"]  # a task with 1 of 2 trials
    assert f"{DOMAIN} v1 test: 4 tasks x 2 trials" in stdout
    assert "not comparable" not in stdout  # the example's prompts and schemas are its benchmark's own
    episodes = _log(out / "rollouts-eval.jsonl")
    assert {e["prompts"]["agent"]["source"] for e in episodes} == {"benchmark"}


def test_the_examples_own_tests_pass(example):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          capture_output=True, text=True, env=example_env(example["target"]), timeout=300,
                          cwd=example["source"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


# -- `mtgrpo serve-scripted`: eval without a model (issue item 11) -------------------------------------------------


def test_eval_runs_against_serve_scripted_started_as_a_command(example, domain, tmp_path):
    """The command a domain author runs: `mtgrpo serve-scripted --domain example_crm` in one process, the eval
    command it prints in another, then Ctrl-C.  Its policy plays the gold: every episode scores 1."""
    import shlex
    import signal
    import time

    server = subprocess.Popen([sys.executable, "-m", "openrlhf_mtgrpo.cli", "serve-scripted", "--domain", DOMAIN,
                               "--trials", "2", "--out", str(tmp_path / "eval")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=example_env(example["target"]),
                              cwd=example["source"])
    try:
        printed, deadline = [], time.time() + 120
        while not any(line.startswith("serving until Ctrl-C") for line in printed):
            line = server.stdout.readline()
            assert line or server.poll() is None, "".join(printed) + server.stderr.read()
            assert time.time() < deadline, "".join(printed)
            printed.append(line)
        urls = {line.split(":", 1)[0]: line.split()[2] for line in printed
                if line.startswith(("scripted policy:", "rule-based customer:"))}
        assert set(urls) == {"scripted policy", "rule-based customer"}
        cmd = shlex.split(next(line for line in printed if line.strip().startswith("mtgrpo eval ")))
        assert cmd[cmd.index("--policy-base-url") + 1] == urls["scripted policy"]
        assert cmd[cmd.index("--user-base-url") + 1] == urls["rule-based customer"]
        proc = mtgrpo(example, *cmd[1:], "--no-progress", "--bootstrap", "200")
        stdout = _check(proc)
        # the eval log has no training groups: IRC says what it is and what to do
        irc = mtgrpo(example, "irc", "analyze", str(tmp_path / "eval" / "rollouts-eval.jsonl"), "--out",
                     str(tmp_path / "irc"))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            rest, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            rest, err = server.communicate()
    assert server.returncode == 0, err[-3000:]
    assert rest.strip().splitlines()[-1].startswith("mtgrpo serve-scripted: stopped after ")
    tasks = domain.tasks("test")
    assert f"{DOMAIN} v1 test: {len(tasks)} tasks x 2 trials" in stdout
    assert re.search(r"^1\s+1\.0000\s", stdout, re.M) and re.search(r"^2\s+1\.0000\s", stdout, re.M), stdout
    assert "pass^k" in stdout and f"package {DIST.replace(' ', '==')}" in stdout  # the identity's every key
    summary = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert summary["complete"] and summary["episodes"]["scored"] == 2 * len(tasks)
    assert irc.returncode == 2 and "is an eval log (mtgrpo eval's rollouts-eval.jsonl)" in irc.stderr
    assert "older version" not in irc.stderr and "--group-size N" in irc.stderr


def test_demo_names_its_calibration_and_the_components_that_never_fired(demo_run):
    from mtgrpo_example_crm.domain import CALIBRATION

    proc, out = demo_run
    stdout = _check(proc)
    head = f"*** STARTING CALIBRATION: crm-dense (component set crm; the demo_calibration of domain {DOMAIN}: "
    line = next(x for x in stdout.splitlines() if x.startswith(head))
    path = line[len(head):-len(") ***")]  # the package's own file (the copy the demo's process imported)
    assert line.endswith(") ***") and path.endswith(os.path.join("calibrations", "crm_dense.yaml")), line
    with open(path, "rb") as a, open(CALIBRATION, "rb") as b:
        assert a.read() == b.read()
    assert "initial dense" not in stdout and "no variation" not in stdout
    records = _log(out / "rollouts-demo.jsonl")
    silent = [c for c in records[0]["components"] if not any(t["features"][c] > 0 for r in records for t in r["turns"])]
    assert silent  # the scripted policy never makes a soft match here
    for c in silent:
        assert f"`{c}` never fired: no scripted mistake triggers it" in stdout
        assert f"`{c}` never fired in these {len(records)} rollouts: no evidence either way" in stdout
