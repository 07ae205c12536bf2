"""IRC: tiers on synthetic logs, scipy equality, bootstrap coverage, bad input, real scripted episodes."""

import json

import numpy as np
import pytest
from scipy import stats

from irc_logs import line, write
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration, parse_calibration


def synthetic_logs(path, n=2000, seed=0, calibration="paper-dense", group_size=4):
    """gold_exact fires with p .8 in successes / .2 in failures (true phi = 0.6), read_only is noise (p .5),
    tool_error is anti (p .2 / .7; true phi = -0.5).  Lines as the rollout writes them (groups of 4)."""
    rng = np.random.default_rng(seed)
    o = rng.random(n) < 0.5
    records = []
    for i in range(n):
        gold = rng.random() < (0.8 if o[i] else 0.2)
        read = rng.random() < 0.5
        err = rng.random() < (0.2 if o[i] else 0.7)
        turns = [{"message": 1.0} for _ in range(3)]
        turns[0] = {"gold_exact": 1.0} if gold else turns[0]
        turns[1] = {"read_only": 1.0} if read else turns[1]
        turns[2] = {"tool_error": 1.0} if err else turns[2]
        g = i // group_size
        records.append(line(str(g % 50), o[i], turns, group=(f"{seed}-{g}", group_size, i % group_size),
                            calibration=calibration))
    write(path, records)
    return o


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    path = tmp_path_factory.mktemp("irc") / "rollouts-synth.jsonl"
    o = synthetic_logs(path)
    return str(path), o


def test_tiers_on_known_structure(synth):
    path, o = synth
    res = analyze(read_logs([path]), load_calibration("paper-dense"), IRCOptions(delta=0.1))
    c = res.components
    assert (c["gold_exact"].evidence, c["gold_exact"].tier) == ("positive", "discriminative_positive")  # pinned
    assert (c["read_only"].evidence, c["read_only"].tier) == ("null", "non_discriminative")
    assert (c["tool_error"].evidence, c["tool_error"].tier) == ("anti", "anti_discriminative")
    assert res.calibration.weights["read_only"] == 0.0  # 0.3 -> 0, as in the paper
    assert res.calibration.weights["gold_exact"] == 1.0 and res.calibration.weights["tool_error"] == -0.1
    assert res.changes == ["read_only: +0.3 -> +0 (null evidence)"]
    assert c["read_only"].ci[0] > -0.1 and c["read_only"].ci[1] < 0.1
    assert c["tool_error"].fired_rollouts == int(sum("tool_error" in json.dumps(json.loads(l)["turns"])
                                                     for l in open(path)))


def test_correlations_equal_scipy_and_bootstrap_covers_truth(synth):
    path, o = synth
    batch = read_logs([path])
    res = analyze(batch, load_calibration("paper-dense"), IRCOptions(seed=1))
    for comp, turn in (("gold_exact", 0), ("read_only", 1), ("tool_error", 2)):
        ci = ["gold_exact", "soft_match", "read_only", "state_change", "message", "tool_error"].index(comp)
        x = (batch.features[:, turn, ci] > 0).astype(float)
        r, _ = stats.pointbiserialr(batch.outcome.astype(bool), x)
        assert res.components[comp].rho_any == pytest.approx(r, abs=1e-9)
        o1 = batch.outcome == 1
        table = [[np.sum((x == 1) & o1), np.sum((x == 1) & ~o1)], [np.sum((x == 0) & o1), np.sum((x == 0) & ~o1)]]
        assert res.components[comp].p_value == pytest.approx(stats.fisher_exact(table)[1], rel=1e-9)
        assert res.components[comp].p_method == "fisher_exact"
        xm = batch.features[:, :, ci].sum(1) / 3
        assert res.components[comp].rho_mean == pytest.approx(stats.pointbiserialr(batch.outcome.astype(bool), xm)[0],
                                                              abs=1e-9)
    lo, hi = res.components["gold_exact"].ci
    assert lo < 0.6 < hi
    lo, hi = res.components["tool_error"].ci
    assert lo < -0.5 < hi
    lo, hi = res.components["read_only"].ci
    assert lo < 0.0 < hi


def test_truncated_and_corrupt_lines_are_reported_and_skipped(synth, tmp_path):
    path, _ = synth
    bad = tmp_path / "rollouts-bad.jsonl"
    lines = open(path).read().splitlines()[:100]
    lines.insert(10, "{not json")
    bad.write_text("\n".join(lines) + '\n{"task_id": "1", "success": tr')  # truncated last line
    batch = read_logs([str(bad)])
    assert batch.n == 100 and len(batch.report.bad) == 2
    res = analyze(batch, load_calibration("paper-dense"), IRCOptions(bootstrap=100))
    assert any(s.startswith(f"{bad}:11:") for s in res.skipped_lines)
    assert any(s.startswith(f"{bad}:102:") and "truncated" in s for s in res.skipped_lines)


def test_single_outcome_class_gives_no_signal_not_nan(tmp_path):
    p = write(tmp_path / "rollouts-all-pass.jsonl",
              [line("1", True, [{"gold_exact": 1.0}], group=(f"g{i // 4}", 4, i % 4)) for i in range(20)])
    cal = load_calibration("paper-dense")
    res = analyze(read_logs([str(p)]), cal, IRCOptions(bootstrap=100))
    assert "no signal" in res.no_signal and "all 20 rollouts succeeded" in res.no_signal
    assert res.calibration.weights == {k: cal.weights.get(k, 0.0) for k in res.calibration.weights}
    assert all(not (isinstance(v, float) and np.isnan(v)) for v in res.calibration.weights.values())
    assert not res.writable
    out = tmp_path / "out"
    assert cli(["irc", "analyze", p, "--out", str(out)]) == 0
    assert not (out / "irc_calibration.yaml").exists() and (out / "irc_report.md").exists()


def test_calibration_validation():
    with pytest.raises(CalibrationError, match=r"unknown component\(s\) \['gold'\]; known components: gold_exact"):
        parse_calibration("schema_version: 1\ncomponents: {gold: 1.0}\n")
    with pytest.raises(CalibrationError, match="not valid YAML"):
        parse_calibration("schema_version: 1\ncomponents: [\n")
    with pytest.raises(CalibrationError, match="schema_version"):
        parse_calibration("components: {gold_exact: 1.0}\n")
    with pytest.raises(CalibrationError, match="numeric 'weight'"):
        parse_calibration("schema_version: 1\ncomponents: {gold_exact: {weight: high}}\n")
    with pytest.raises(CalibrationError, match="clip"):
        parse_calibration("schema_version: 1\nclip: [1, -1]\ncomponents: {gold_exact: 1.0}\n")
    cal = parse_calibration("schema_version: 1\ncomponents: {gold_exact: 1.0, read_only: 0.5}\nclip: [-0.2, 0.8]\n")
    assert cal.turn_reward({"gold_exact": 1.0, "read_only": 1.0}) == 0.8  # clipped
    assert cal.turn_reward({"read_only": 1.0}, gates={"read_only": False}) == 0.0
    assert len(cal.sha256) == 64


def test_cli_analyze_writes_outputs_and_rejects_bad_calibration(synth, tmp_path, capsys):
    path, _ = synth
    out = tmp_path / "out"
    assert cli(["irc", "analyze", path, "--out", str(out), "--bootstrap", "500", "--delta", "0.1"]) == 0
    for f in ("irc_calibration.yaml", "irc_report.md", "irc_chart.png", "irc_result.json"):
        assert (out / f).stat().st_size > 0
    new = load_calibration(str(out / "irc_calibration.yaml"))
    assert new.provenance["parent"] == "paper-dense" and new.weights["read_only"] == 0.0
    assert new.provenance["benchmark"]["version"] == "tau2" and new.provenance["rollouts"] == 2000
    report = (out / "irc_report.md").read_text()
    assert "| read_only | +0.3 |" in report and "no discrimination: weight 0" in report
    assert "Changed: read_only: +0.3 -> +0 (null evidence)." in report
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\ncomponents: {nope: 1}\n")
    assert cli(["irc", "analyze", path, "--out", str(out), "--calibration", str(bad)]) == 2
    assert "known components" in capsys.readouterr().err


def test_iterate_keeps_history(synth, tmp_path, capsys):
    path, _ = synth
    # iteration 1 writes its calibration; the second batch was scored with it (as in training)
    assert cli(["irc", "analyze", path, "--out", str(tmp_path / "first"), "--delta", "0.1"]) == 0
    first = str(tmp_path / "first" / "irc_calibration.yaml")
    p2 = tmp_path / "rollouts-second.jsonl"
    synthetic_logs(p2, n=2000, seed=5, calibration=first)
    it = tmp_path / "it"
    assert cli(["irc", "iterate", "--logs", path, str(p2), "--out", str(it), "--delta", "0.1", "--eta", "0.99"]) == 0
    hist = [json.loads(l) for l in open(it / "history.jsonl")]
    assert [h["iteration"] for h in hist] == [1, 2]
    assert hist[1]["calibration_in"] == load_calibration(first).sha256
    assert hist[0]["weights"] == load_calibration(first).weights
    assert (it / "iter2_calibration.yaml").exists() and "WARNING: these rollouts" not in capsys.readouterr().out
    # the paper's stopping rule: with eta 0.2 the first iteration has converged, the second batch is not analysed
    it2 = tmp_path / "it2"
    assert cli(["irc", "iterate", "--logs", path, str(p2), "--out", str(it2), "--delta", "0.1"]) == 0
    assert "converged at iteration 1" in capsys.readouterr().out
    assert len(open(it2 / "history.jsonl").read().splitlines()) == 1


@pytest.mark.slow
def test_irc_on_real_scripted_episodes_lowers_misalignment(tmp_path, data_dir):
    """Real airline episodes with a scripted policy making known mistakes."""
    from openrlhf_mtgrpo.workflows.demo import estimator_checks, generate_logs

    log = str(tmp_path / "rollouts-real.jsonl")
    start = load_calibration("paper-dense")
    # 8 per task: at 4 the non-gold writes fire in fewer than the 10 rollouts IRC needs to test a component
    stats_ = generate_logs(data_dir, log, group_size=8, mistake_rate=0.25, seed=0, calibration=start)
    assert stats_["episodes"] == 240
    batch = read_logs([log])
    assert batch.meta.group_sizes == {8: 30} and batch.meta.calibration_sha256 == start.sha256
    res = analyze(batch, start, IRCOptions(pool=batch.meta.estimator_options["pool"]))
    c = res.components
    # writes that are not gold and writes without confirmation go with failure, strongly: changed on evidence
    for name in ("state_change", "unconfirmed_write"):
        assert c[name].rho_any < -0.3 and c[name].evidence == "anti" and c[name].ci[1] < 0
    assert c["state_change"].weight_after == -0.1  # the paper's flip
    # strong evidence is never overridden by an advantage search (it used to reset this one to 0)
    uw = float(f"{c['unconfirmed_write'].rho_any:.4g}")  # alpha * rho to 4 significant digits
    assert c["unconfirmed_write"].weight_after == uw
    assert {"state_change: +0.1 -> -0.1 (anti evidence)", f"unconfirmed_write: +0 -> {uw:+g} (anti evidence)"} \
        <= set(res.changes)
    delta = res.options.delta
    for name, comp in c.items():  # every change is on evidence: an interval beyond 0, or within +-delta for 0
        if comp.weight_after != comp.weight_before:
            assert comp.evidence in ("anti", "positive", "null"), name
            if comp.evidence == "null":
                assert comp.weight_after == 0 and -delta <= comp.ci[0] and comp.ci[1] <= delta, name
            else:
                assert comp.ci[1] < 0 or comp.ci[0] > 0, name
    assert res.after.component_opposing_rate < res.before.component_opposing_rate
    direction = [float(x.direction) for x in c.values()]
    before = estimator_checks(batch, start.weights, start.clip, direction, pool=res.options.pool)
    after = estimator_checks(batch, res.calibration.weights, res.calibration.clip, direction, pool=res.options.pool)
    assert res.misalignment_after == pytest.approx(after["gtpo_hybrid"]["turn_rate"])
    assert res.after.component_opposing_rate == pytest.approx(after["gtpo_hybrid"]["component_rate"])
    assert after["gtpo_hybrid"]["component_rate"] < before["gtpo_hybrid"]["component_rate"]
