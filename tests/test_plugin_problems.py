"""A broken domain plugin is named where it shows: load_domain, `mtgrpo data prepare`, `mtgrpo doctor --full`.

The broken domains are the example support desk with one thing wrong (tests/fake_domains.py).
"""

from __future__ import annotations

import json
import os

import pytest

import fake_domains
from fake_domains import BAD_TASK, GOLD_SPEC, MISSING_SPEC, RAISE_LINE, RAISE_MESSAGE, RAISES_SPEC, UNKNOWN_TOOL

from openrlhf_mtgrpo.cli import main as cli

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_a_gold_action_calling_a_tool_nobody_has_breaks_the_domain_interface():
    from openrlhf_mtgrpo.envs import DomainError, domain_problems, load_domain

    problems = domain_problems(fake_domains.gold_calls_unknown_tool())
    assert problems == [f"task {BAD_TASK}: a gold action calls {UNKNOWN_TOOL!r}, which is none of the agent's tools "
                        "(its episodes would score 0 for a correct agent)"]
    with pytest.raises(DomainError) as e:
        load_domain(GOLD_SPEC)
    assert f"domain {GOLD_SPEC!r} ({GOLD_SPEC}) does not meet the domain interface: task {BAD_TASK}: a gold action " \
           f"calls {UNKNOWN_TOOL!r}" in str(e.value)
    assert domain_problems(fake_domains.CrmDomain()) == []  # the example itself is fine


def test_the_customers_own_tools_count_for_a_gold_action_of_dual_control():
    """telecom's gold has the customer's own actions (toggle_airplane_mode, ...): they are the customer's tools,
    not the agent's, and the domain is fine."""
    from openrlhf_mtgrpo.envs import domain_problems, load_domain
    from openrlhf_mtgrpo.envs.base import DataNotFound

    try:
        env = load_domain("telecom")
    except DataNotFound as e:
        pytest.skip(str(e))
    user_tools = {s["function"]["name"] for s in env.customer_tool_schemas()}
    agent_tools = {s["function"]["name"] for s in env.tool_schemas()}
    gold = {a.name for t in env.tasks("base") for a in t.actions}
    assert gold & user_tools and gold - agent_tools  # some gold actions are the customer's
    assert domain_problems(env) == []


def test_a_factory_that_raises_is_named_with_the_file_and_line_that_raised():
    from openrlhf_mtgrpo.envs import DomainError, load_domain

    with pytest.raises(DomainError) as e:
        load_domain(RAISES_SPEC, "v1")
    msg = str(e.value)
    assert msg.startswith(f"domain {RAISES_SPEC!r} ({RAISES_SPEC}) failed to load version v1: RuntimeError: "
                          f"{RAISE_MESSAGE} (raised at {fake_domains.HERE}:{RAISE_LINE})"), msg


def test_data_prepare_refuses_a_domain_whose_gold_calls_a_tool_nobody_has(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert cli(["data", "prepare", "--domain", GOLD_SPEC, "--split", "base", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"task {BAD_TASK}: a gold action calls {UNKNOWN_TOOL!r}" in err and not out.exists()
    spec = "mtgrpo_example_crm.domain:make_domain"  # the example as it is: prepared, each task labelled with it
    assert cli(["data", "prepare", "--domain", spec, "--split", "base", "--out", str(out)]) == 0
    labels = [json.loads(json.loads(line)["label"]) for line in open(out)]
    assert len(labels) == 12 and labels[0] == {"task_id": "t01", "version": "v1", "domain": spec}


@pytest.mark.slow
def test_doctor_full_loads_every_domain_and_names_a_broken_one(tmp_path):
    """--full loads each domain at its default version and checks its interface: a factory that raises and a gold
    action nobody can call are problems naming the plugin (and where it raised); missing data is not a plugin
    problem but missing data, with the command that gets it."""
    from fake_plugins import plugin_site, run_python

    site = plugin_site(tmp_path, "mtgrpo-toy-domains", {}, {"openrlhf_mtgrpo.domains": {
        "toy_raises": RAISES_SPEC, "toy_gold": GOLD_SPEC, "toy_missing": MISSING_SPEC}})
    p = run_python("import sys; from openrlhf_mtgrpo.cli import main; sys.exit(main(['doctor', '--full']))",
                   site, TESTS, timeout=300)
    lines = {line.split()[1]: line for line in p.stdout.splitlines() if line.startswith("domain ")}
    origin = "entry point openrlhf_mtgrpo.domains of mtgrpo-toy-domains 0.1"
    raises = lines["toy_raises"]
    assert f"{origin} ({RAISES_SPEC}); versions v1; PROBLEM: domain 'toy_raises' ({origin} ({RAISES_SPEC})) failed " \
           f"to load version (default): RuntimeError: {RAISE_MESSAGE} (raised at {fake_domains.HERE}:{RAISE_LINE})" \
           in raises, raises
    gold = lines["toy_gold"]
    assert "PROBLEM: domain 'toy_gold'" in gold and f"task {BAD_TASK}: a gold action calls {UNKNOWN_TOOL!r}" in gold
    missing = lines["toy_missing"]
    assert "PROBLEM" not in missing and "data missing for its default version: the toy benchmark's files are not " \
                                        "on this machine; get them with `toy-bench fetch`" in missing, missing
    assert "interface ok" in lines["retail"] and "PROBLEM" not in lines["retail"]
    assert "status            PROBLEMS FOUND" in p.stdout and p.returncode == 1, p.stdout + p.stderr[-2000:]
