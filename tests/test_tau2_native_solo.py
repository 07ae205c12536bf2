"""Differential test: tau2's telecom solo mode (telecom-solo) vs tau2's own solo run.

The base split: the gold actions all called by the agent (it holds the customer's tools too), then tau2's
``done``; and seeded mutations: dropped and wrong calls, random calls, ``done`` beside other calls (none
of them runs), a text-only message (the solo agent fails), the stop token in a message that calls tools,
malformed calls, a smaller budget.  The reference is tau2's orchestrator with its ``LLMSoloAgent`` (its LLM
replaced by the script) and ``DummyUser``, scored by ``evaluate_simulation(solo_mode=True)``.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from differential.tau2_native_setup import need_tau2_run_loop, telecom_report  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def report():
    need_tau2_run_loop()
    return telecom_report(solo=True)


def test_zero_differences_from_tau2s_own_solo_run(report):
    domain, rep = report
    assert rep.by_kind == {"solo_gold": 114, "solo_mutated": 342}
    assert rep.total_mismatches == 0, rep.line() + "\n" + "\n".join(rep.examples)
    assert rep.ones_by_kind["solo_gold"] == 114
    assert {"agent_stop", "agent_error", "max_steps"} <= set(rep.terminations)
