"""IRC changes a weight only on evidence (issue #13 point 2): noise changes nothing, rare components are
not flipped, tiers agree with weights, the stopping rule is the paper's, a worse calibration says so."""


import numpy as np
import pytest

from irc_logs import null_logs, structured, write
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze, turn_rewards
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.rewards.calibration import load_calibration, parse_calibration, tier_problem

PROBS = {"gold_exact": (0.8, 0.2), "read_only": (0.5, 0.5), "tool_error": (0.2, 0.7)}


@pytest.mark.slow
def test_null_logs_change_no_weight_in_95_of_100_runs(tmp_path):
    """128 rollouts (32 groups of 4), no component related to success, starting from paper-irc."""
    cal = load_calibration("paper-irc")
    changed = []
    for seed in range(100):
        p = write(tmp_path / f"rollouts-null-{seed}.jsonl", null_logs(128, seed))
        res = analyze(read_logs([p]), cal, IRCOptions(seed=seed))
        assert res.n_rollouts == 128
        if res.changes:
            changed.append((seed, res.changes))
    assert len(changed) <= 5, changed


def test_three_tiers_at_default_options(tmp_path):
    p = write(tmp_path / "rollouts-known.jsonl", structured(6000, seed=11, probs=PROBS))
    res = analyze(read_logs([p]), load_calibration("paper-dense"), IRCOptions())
    c = res.components
    assert [c[k].evidence for k in ("gold_exact", "read_only", "tool_error")] == ["positive", "null", "anti"]
    assert [c[k].tier for k in ("gold_exact", "read_only", "tool_error")] == \
        ["discriminative_positive", "non_discriminative", "anti_discriminative"]
    assert res.calibration.weights["read_only"] == 0.0 and res.calibration.weights["tool_error"] == -0.1
    assert res.tested == 3 and c["read_only"].ci_level == pytest.approx(1 - 0.05 / 3)


def test_a_component_seen_in_few_rollouts_is_not_flipped(tmp_path):
    """The demo's soft_match: +1 flipped to -1 on 4 rollouts."""
    recs = structured(120, seed=12, probs=PROBS)
    failures = [r for r in recs if not r["success"]][:4]
    for r in failures:
        r["turns"][0]["features"] = {"soft_match": 0.75}
    res = analyze(read_logs([write(tmp_path / "rollouts-rare.jsonl", recs)]), load_calibration("paper-dense"),
                  IRCOptions())
    s = res.components["soft_match"]
    assert s.fired_rollouts == 4 and s.rho_any < -0.15 and s.evidence == "too_few"
    assert s.weight_after == s.weight_before == 1.0
    assert "fired in 4 of 120 rollouts; needs >= 10" in s.reasons[0]


def test_pinned_component_keeps_a_consistent_tier_and_warns(tmp_path):
    """gold_exact pinned at +1 while the logs show it goes with failure: weight kept, tier kept, warning."""
    recs = structured(3000, seed=13, probs={"gold_exact": (0.2, 0.8), "read_only": (0.5, 0.5)},
                      calibration="paper-irc")
    res = analyze(read_logs([write(tmp_path / "rollouts-pin.jsonl", recs)]), load_calibration("paper-irc"),
                  IRCOptions())
    g = res.components["gold_exact"]
    assert g.evidence == "anti" and g.weight_after == 1.0 and g.tier == "discriminative_positive"
    assert any("pinned component gold_exact" in w for w in res.warnings)
    for c, w in res.calibration.weights.items():
        assert tier_problem(res.calibration.tiers[c], w) is None
    path = res.calibration.save(str(tmp_path / "out.yaml"))
    assert load_calibration(path).weights == res.calibration.weights


def test_written_tiers_always_agree_with_weights(tmp_path):
    for seed in range(6):
        rng = np.random.default_rng(seed)
        probs = {c: tuple(rng.uniform(0.05, 0.9, 2)) for c in ("read_only", "state_change", "tool_error",
                                                                 "duplicate", "soft_match", "gold_exact")}
        for start in ("paper-irc", "paper-dense"):
            recs = structured(600, seed=seed, probs=probs, calibration=start, turns=4)
            res = analyze(read_logs([write(tmp_path / "r.jsonl", recs)]), load_calibration(start),
                          IRCOptions(bootstrap=300))
            for c, w in res.calibration.weights.items():
                assert tier_problem(res.calibration.tiers[c], w) is None, (seed, start, c)


def test_stopping_rule_is_the_papers(tmp_path):
    p = write(tmp_path / "rollouts-known.jsonl", structured(800, seed=14, probs=PROBS))
    batch = read_logs([p])
    res = analyze(batch, load_calibration("paper-dense"), IRCOptions(bootstrap=300))
    w = res.calibration.weights
    mean_reward = turn_rewards(batch, w, res.calibration.clip).sum(1) / batch.num_turns
    want = np.corrcoef(mean_reward, batch.outcome)[0, 1]
    assert res.after.reward_outcome_corr == pytest.approx(want)
    assert res.converged == (want > 0.2 and not res.after.tier_mismatches)
    assert res.converged
    assert not analyze(batch, load_calibration("paper-dense"), IRCOptions(bootstrap=300, eta=0.99)).converged
    null = analyze(read_logs([write(tmp_path / "n.jsonl", null_logs(128, 0))]), load_calibration("paper-irc"))
    assert abs(null.after.reward_outcome_corr) < 0.2 and not null.converged


def test_a_calibration_worse_on_a_check_says_so(tmp_path):
    """read_only goes with success, so IRC gives it a positive weight: the paper's per-component misalignment
    falls, but failed rollouts' read_only turns now earn a reward and the turn misalignment rises."""
    zero = parse_calibration("schema_version: 1\nname: zero\ncomponents: {gold_exact: 0.0}\n")
    recs = structured(800, seed=1, probs={"read_only": (0.7, 0.4)}, turns=6)
    res = analyze(read_logs([write(tmp_path / "r.jsonl", recs)]), zero, IRCOptions(bootstrap=300))
    assert res.changes and res.components["read_only"].weight_after > 0
    assert res.after.component_opposing_rate < res.before.component_opposing_rate
    assert res.after.turn_misalignment > res.before.turn_misalignment
    assert any("WORSE than its input on: turn misalignment" in w for w in res.warnings)
    assert res.calibration.provenance["warnings"] == res.warnings


def test_bootstrap_interval_is_exact_for_binary_components():
    """The 2x2-table bootstrap equals resampling rollouts (same distribution)."""
    from openrlhf_mtgrpo.irc.analyze import bootstrap_ci

    rng = np.random.default_rng(0)
    o = (rng.random(300) < 0.5).astype(float)
    x = ((rng.random(300) < np.where(o > 0, 0.6, 0.3))).astype(float)
    fast = bootstrap_ci(x, o, 20000, 0.95, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, 300, size=(20000, 300))
    r = np.array([np.corrcoef(x[i], o[i])[0, 1] for i in idx])
    slow = np.percentile(r, [2.5, 97.5])
    assert fast == pytest.approx(tuple(slow), abs=0.01)
