"""The one-file domain of docs/domains.md ("A minimal domain to start from"): examples/minimal_domain.py and its
calibration examples/minimal_domain.yaml.  It passes the checklist, `mtgrpo demo --domain
minimal_domain:make_domain` runs on it, and the demo and IRC say in words which of its components never fired
(issue items 9, 10 and 13)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import pythonpath

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
FILE, CALIBRATION = os.path.join(EXAMPLES, "minimal_domain.py"), os.path.join(EXAMPLES, "minimal_domain.yaml")
DOMAIN = "minimal_domain:make_domain"
NAMES = ["gold_action", "lookup", "other_write", "tool_error", "message"]


@pytest.fixture(scope="module")
def minimal():
    """The module, imported as a user's `module:factory` is (its folder on sys.path)."""
    if EXAMPLES not in sys.path:
        sys.path.append(EXAMPLES)
    import minimal_domain

    return minimal_domain


def test_the_minimal_domain_passes_the_checklist(minimal):
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.testing import assert_domain

    domain = load_domain(DOMAIN)  # as every command loads it: domain_problems first
    report = assert_domain(domain)
    assert report.warnings == []
    assert report.checked["gold replays"] == report.checked["determinism replays"] == 8
    assert report.checked["isolation checks"] == 3 and report.checked["tool schemas"] == 3
    assert domain.splits == {"train": ["t1", "t2", "t3", "t4", "t5", "t6"], "test": ["t7", "t8"],
                             "base": [f"t{i}" for i in range(1, 9)]}


def test_its_component_set_scores_every_name_of_a_turn(minimal):
    """features() returns a dict with every component's value in [0, 1] (check_features accepts it)."""
    from openrlhf_mtgrpo.rewards.sets import build_component_set, check_features, component_names, default_pins
    from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput

    domain = minimal.make_domain()
    assert list(component_names("minimal")) == NAMES and default_pins("minimal") == ("gold_action",)
    scorer = build_component_set("minimal", domain.tool_kinds).new_episode(domain.task("t2"))
    turns = [TurnInput([CallRecord("get_order", {"order_id": "B22"}, False)]),       # gold
             TurnInput([CallRecord("cancel_order", {"order_id": "B23"}, False),    # a write the gold lacks
                        CallRecord("get_order", {"order_id": "Z99"}, True)]),      # refused
             TurnInput([], malformed_calls=1),
             TurnInput([], last_user_message="yes")]
    got = [check_features(scorer.features(t), tuple(NAMES), "minimal") for t in turns]
    assert got == [{"gold_action": 1.0, "lookup": 0.0, "other_write": 0.0, "tool_error": 0.0, "message": 0.0},
                   {"gold_action": 0.0, "lookup": 0.0, "other_write": 0.5, "tool_error": 0.5, "message": 0.0},
                   {"gold_action": 0.0, "lookup": 0.0, "other_write": 0.0, "tool_error": 1.0, "message": 0.0},
                   {"gold_action": 0.0, "lookup": 0.0, "other_write": 0.0, "tool_error": 0.0, "message": 1.0}]


def test_its_scripted_mistake_cancels_an_order_the_customer_never_named(minimal):
    import random

    domain = minimal.make_domain()
    task = domain.task("t2")  # Ben Okafor cancels B22; his other open order is B23
    text = domain.scripted_mistake("wrong_write", task, 1, None, random.Random(0))
    call = json.loads(re.search(r"<tool_call>(.*?)</tool_call>", text, re.S).group(1))
    assert call == {"name": "cancel_order", "arguments": {"order_id": "B23"}}
    ep = domain.reset(task)
    assert not ep.assistant_message("", [(call["name"], call["arguments"])]).results[0].error  # a real write
    assert domain.scripted_mistake("malformed", task, 0, None, random.Random(0)) is None  # the generic one


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`mtgrpo demo --domain minimal_domain:make_domain` in a fresh process, as a user runs it."""
    out = tmp_path_factory.mktemp("minimal-demo")
    env = dict(os.environ, PYTHONPATH=pythonpath(EXAMPLES, REPO))
    proc = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "demo", "--domain", DOMAIN, "--group-size",
                           "4", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600,
                          cwd=str(out))
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout, out


def test_demo_runs_on_the_minimal_domain_with_its_own_set(demo_run, minimal):
    stdout, out = demo_run
    with open(out / "rollouts-demo.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert len(records) == 4 * 6  # 4 per train task
    domain = minimal.make_domain()
    for r in records:
        assert (r["domain"], r["component_set"], r["calibration"]) == ("minimal", "minimal", "minimal-dense")
        assert r["components"] == NAMES and r["benchmark"] == domain.identity
        assert all(set(t["features"]) == set(NAMES) for t in r["turns"])
    table = stdout.split("IRC table", 1)[1].split("misalignment of each estimator")[0]
    assert {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")} >= set(NAMES)


def test_demo_names_the_calibration_it_started_from(demo_run):
    """It said "from the paper's initial dense weights" whatever it started from."""
    stdout, _ = demo_run
    assert (f"*** STARTING CALIBRATION: minimal-dense (component set minimal; the demo_calibration of domain "
            f"{DOMAIN}: {CALIBRATION}) ***") in stdout
    assert f"IRC table (starting from minimal-dense, the demo_calibration of domain {DOMAIN}; " in stdout
    assert "initial dense" not in stdout


def test_demo_prints_the_whole_closing_note(demo_run):
    from openrlhf_mtgrpo.workflows.demo import BANNER

    stdout, _ = demo_run
    assert len(BANNER.splitlines()) == 2
    assert stdout.rstrip().endswith(BANNER)  # both lines, not only the first


def test_reports_print_the_identity_the_domain_has(demo_run, minimal):
    """Every IRC summary of a user's domain said `tasks sha256 None, db sha256 None`."""
    stdout, out = demo_run
    digest = minimal.make_domain().identity["data_sha256"]
    assert f"benchmark v1 (data sha256 {digest[:12]}); domain minimal, component set minimal" in stdout
    assert "None" not in stdout.split("summary:", 1)[1].split("\n", 2)[1]
    report = (out / "irc_report.md").read_text()
    assert f"data sha256 {digest[:12]}" in report and "tasks sha256" not in report


def test_docs_show_the_minimal_domain_and_name_every_file_it_needs(minimal):
    """docs/domains.md names both files, shows the calibration as it is, and names every module of
    openrlhf_mtgrpo the file imports (nothing it needs is undocumented)."""
    with open(os.path.join(REPO, "docs", "domains.md"), encoding="utf-8") as f:
        docs = f.read()
    assert "examples/minimal_domain.py" in docs and "examples/minimal_domain.yaml" in docs
    with open(CALIBRATION, encoding="utf-8") as f:
        yaml_text = "".join(line for line in f if not line.startswith("#"))
    assert yaml_text in docs
    with open(FILE, encoding="utf-8") as f:
        source = f.read()
    imported = set(re.findall(r"^from (openrlhf_mtgrpo[.\w]*) import", source, re.M))
    assert imported == {"openrlhf_mtgrpo.envs.base", "openrlhf_mtgrpo.offline.scripted", "openrlhf_mtgrpo.registry"}
    for name in ("envs.base", "tool_call_text", "register_reward_components", "PromptInfo", "CustomerPrompt",
                 "RunRules", "class Outcome", "def features"):
        assert name in docs, name
    for block in ("self.identity = {\"version\": VERSION, \"data_sha256\": _sha([DB, TASKS, POLICY])}",
                  "class MinimalComponents:", "register_reward_components(\"minimal\", minimal_components)"):
        assert block in source and block in docs, block
    assert os.path.basename(minimal.CALIBRATION) == "minimal_domain.yaml" and os.path.exists(minimal.CALIBRATION)


NO_MISTAKES = '''
import minimal_domain


class NoMistakes(minimal_domain.OrderDesk):
    scripted_mistake = None  # the scripted policy makes only its generic mistakes


def make(version=None, data_dir=None):
    return NoMistakes()
'''


def test_the_demo_says_which_component_no_scripted_mistake_triggers(minimal, tmp_path, monkeypatch):
    """Without the domain's scripted_mistake, nothing cancels another real order: `other_write` never fires, and
    the demo and the IRC report say so in words instead of a bare "no variation"."""
    import io

    from openrlhf_mtgrpo.workflows.demo import run_demo

    (tmp_path / "minimal_no_mistakes.py").write_text(NO_MISTAKES)
    monkeypatch.syspath_prepend(str(tmp_path))
    buf = io.StringIO()
    summary = run_demo(None, str(tmp_path / "out"), domain="minimal_no_mistakes:make", group_size=2, out=buf,
                       seed=1)
    text = buf.getvalue()
    with open(tmp_path / "out" / "rollouts-demo.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    n = len(records)
    assert n == 12 and not any(t["features"]["other_write"] for r in records for t in r["turns"])
    assert summary["evidence"]["other_write"] == "no_variation"
    assert "`other_write` never fired: no scripted mistake triggers it" in text  # the demo's conclusion
    assert f"`other_write` never fired in these {n} rollouts: no evidence either way" in text  # IRC's summary
    row = next(line for line in text.splitlines() if line.startswith("| other_write |"))
    assert "| never fired |" in row and "no variation" not in text
    report = (tmp_path / "out" / "irc_report.md").read_text()
    assert f"**other_write** (unchanged): never fired in these {n} rollouts: no evidence either way" in report
