"""What the demo and the IRC report tell a user (issue #13): the benchmark version, counts beside
percentages, p-values and intervals, a legend on the chart, a plain-language summary."""

import pytest

from irc_logs import structured, write
from openrlhf_mtgrpo.envs.airline.data import DataNotFound
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.irc.report import chart_figure, summary_lines, table
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.workflows import demo


@pytest.mark.parametrize("have,want", [(["tau2", "tau2-2025", "tau1"], "tau2"), (["tau2-2025"], "tau2-2025"),
                                       (["tau1", "tau2-2025"], "tau2-2025")])
def test_demo_version_is_the_first_available_of_tau2_and_tau2_2025(monkeypatch, have, want):
    import openrlhf_mtgrpo.envs.airline.data as data

    seen = []
    monkeypatch.setattr(data, "available_versions", lambda d=None: seen.append(d) or list(have))
    assert demo.pick_version("/some/dir") == want and seen == ["/some/dir"]
    assert demo.pick_version("/some/dir", "tau1") == "tau1"  # --version wins


def test_demo_without_tau2_data_says_how_to_get_it(monkeypatch):
    import openrlhf_mtgrpo.envs.airline.data as data

    monkeypatch.setattr(data, "available_versions", lambda d=None: ["tau1"])
    with pytest.raises(DataNotFound, match="has tau1: get it with `mtgrpo data fetch`"):
        demo.pick_version(None)


def test_demo_cli_offers_every_benchmark_version():
    import argparse

    from openrlhf_mtgrpo.envs.airline.versions import VERSION_NAMES

    parser = argparse.ArgumentParser()
    demo.add_command(parser.add_subparsers())
    for v in VERSION_NAMES:
        assert parser.parse_args(["demo", "--version", v]).version == v
    assert parser.parse_args(["demo"]).version is None  # then: the first available (printed)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--version", "tau3"])


def test_demo_plays_the_train_split_where_there_is_one():
    from types import SimpleNamespace

    env = lambda *names: SimpleNamespace(data=SimpleNamespace(splits={n: [] for n in names}))  # noqa: E731
    assert demo.demo_split(env("base", "train", "test")) == "train"
    assert demo.demo_split(env("base", "test")) == "test"  # tau1


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    p = write(tmp_path_factory.mktemp("rep") / "rollouts.jsonl",
              structured(600, seed=3, probs={"gold_exact": (0.8, 0.2), "state_change": (0.1, 0.5),
                                             "read_only": (0.5, 0.5)}))
    return analyze(read_logs([p]), load_calibration("paper-dense"), IRCOptions(bootstrap=500))


def test_table_and_summary_give_counts_p_values_and_intervals(result):
    c = result.components["state_change"]
    t = table(result)
    assert f"| state_change | +0.1 | {c.fired_rollouts}/600 ({c.fired_rollouts / 600:.0%}) |" in t
    assert f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] at {c.ci_level:.1%}" in t
    assert "<1e-4 (<1e-4)" in t  # p-value and its Bonferroni adjustment
    text = "\n".join(summary_lines(result))
    assert f"Analysed 600 rollouts: {result.n_success} succeeded, {600 - result.n_success} failed" in text
    assert "Changed: state_change: +0.1 -> -0.1 (anti evidence)" in text
    b, a = result.before, result.after
    assert f"{b.component_opposing}/{b.component_turns} ({b.component_opposing_rate:.1%}) -> " \
           f"{a.component_opposing}/{a.component_turns}" in text
    assert "Stopping rule (paper)" in text


def test_chart_has_legends(result):
    fig = chart_figure(result)
    left, right = fig.axes
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels[:3] == ["positive evidence", "anti evidence", "evidence of no effect"]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["weight before", "weight after"]
    assert any("state_change (" in t.get_text() for t in left.get_yticklabels())  # counts on the labels
