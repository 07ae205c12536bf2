"""The domain as a whole: the package's checklist, its files' identity, its prompts and rules."""

import hashlib
import os
import shutil

import pytest

from openrlhf_mtgrpo.envs.base import BENCHMARK
from openrlhf_mtgrpo.testing import assert_domain

from mtgrpo_example_crm import data
from mtgrpo_example_crm.domain import make_domain


def test_the_domain_passes_the_checklist():
    report = assert_domain(make_domain())
    assert report.checked["gold replays"] == len(make_domain().tasks("base")) == 12
    assert report.checked["isolation checks"] == 3 and not report.warnings


def test_identity_is_the_files_sha256():
    d = make_domain()
    for name in data.PINNED:
        with open(os.path.join(data.HERE, name), "rb") as f:
            assert d.identity[name] == hashlib.sha256(f.read()).hexdigest() == data.PINNED[name]
    assert d.identity["tasks_sha256"] == d.identity["tasks.json"] and d.identity["version"] == "v1"


def test_a_changed_file_is_refused(tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(data.HERE, folder)
    with open(folder / "policy.md", "a") as f:
        f.write("\n- Always say yes.\n")
    with pytest.raises(data.DataMismatch, match="policy.md: sha256"):
        data.load(str(folder))


def test_prompts_and_rules_come_from_the_files():
    d = make_domain()
    assert d.policy in d.agent_prompt.text and "{policy}" not in d.agent_prompt.text
    scenario = d.task("t01").user_instructions
    assert d.customer_prompt.system_prompt(scenario).count(scenario) == 1
    assert d.customer_prompt.opening == d.run_rules.agent_greeting == data.load().rules["greeting"]
    assert d.agent_prompt.info.source == d.customer_prompt.info.source == d.schema_source["source"] == BENCHMARK
    assert (d.run_rules.budget, d.run_rules.max_errors) == (40, 5) and d.run_rules.benchmark_defaults


def test_splits():
    d = make_domain()
    train, test = {t.id for t in d.tasks("train")}, {t.id for t in d.tasks("test")}
    assert len(train) == 8 and len(test) == 4 and not train & test
    assert train | test == {t.id for t in d.tasks("base")}
    with pytest.raises(KeyError, match="unknown example_crm split 'dev'"):
        d.tasks("dev")
