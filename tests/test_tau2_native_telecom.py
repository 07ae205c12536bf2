"""Differential test: tau2's telecom (dual control) on the package's tau2-native domain vs tau2's own run.

The base split (114 tasks): gold trajectories with the customer's own tool calls (asked for by the agent),
one customer action missing, one customer action wrong (another tool or wrong arguments), and seeded
mutations of the agent's calls (dropped, duplicated, wrong arguments, random calls, the customer's tools
called by the agent, malformed calls, a smaller budget).  The reference is tau2's orchestrator with its
agent and its customer simulator (their LLM replaced by the script), environment and
``evaluate_simulation``.  Zero differences in every call's observation, error flag and both databases
after it, in how each run ended, the env assertions, the action checks, the DB verdict and the reward.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from differential.tau2_native_setup import MUTATED_PER_TASK, need_tau2_run_loop, telecom_report  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def report():
    need_tau2_run_loop()
    return telecom_report(solo=False)


def test_zero_differences_from_tau2s_own_run(report):
    domain, rep = report
    with_user = sum(1 for t in domain.tasks("base") if t.user_actions)
    assert with_user == 94
    assert rep.by_kind == {"gold": 114, "missing_user": with_user, "wrong_user": with_user,
                           "mutated": 114 * MUTATED_PER_TASK}
    assert rep.calls > 2000 and rep.errors > 100
    assert rep.total_mismatches == 0, rep.line() + "\n" + "\n".join(rep.examples)


def test_gold_scores_one_and_missing_customer_actions_mostly_fail(report):
    domain, rep = report
    assert rep.ones_by_kind["gold"] == 114
    assert rep.ones_by_kind.get("missing_user", 0) < 10 and rep.ones_by_kind.get("wrong_user", 0) < 20
    assert {"user_stop", "max_steps"} <= set(rep.terminations)


def test_the_pristine_databases_are_never_written(report):
    domain, _ = report
    assert domain.pristine_intact()
