"""IRC changes a weight only on evidence (issue #13 point 2): noise changes nothing, rare components are
not flipped, tiers agree with weights, the stopping rule is the paper's, a worse calibration says so."""


import numpy as np
import pytest

from scipy import stats

from irc_logs import busy_null_logs, line, null_logs, structured, write
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze, turn_rewards
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.rewards.calibration import load_calibration, parse_calibration, tier_problem

PROBS = {"gold_exact": (0.8, 0.2), "read_only": (0.5, 0.5), "tool_error": (0.2, 0.7)}


@pytest.mark.slow
@pytest.mark.parametrize("calibration", ["paper-irc", "paper-dense"])
@pytest.mark.parametrize("generator", [null_logs, busy_null_logs], ids=["null", "busy_null"])
def test_null_logs_change_no_weight_in_98_of_100_runs(tmp_path, generator, calibration):
    """128 rollouts (32 groups of 4), no component related to success, from both shipped calibrations.
    busy_null: every component fires in half the rollouts, so about 9 are tested at once (the family-wise
    rule's hardest case).  The issue asks for >= 95 of 100 unchanged; the rule keeps >= 98."""
    cal = load_calibration(calibration)
    changed, tested = [], []
    for seed in range(100):
        p = write(tmp_path / f"rollouts-null-{seed}.jsonl", generator(128, seed, calibration=calibration))
        res = analyze(read_logs([p]), cal, IRCOptions(seed=seed))
        assert res.n_rollouts == 128
        tested.append(res.tested)
        if res.changes:
            changed.append((seed, res.changes))
    assert np.mean(tested) >= (8.5 if generator is busy_null_logs else 5)  # the family is large
    assert len(changed) <= 2, changed


#: sizes at which the default options get each tier right in 20 of 20 seeds (bench/irc_bench.py --tier-study;
#: docs/irc.md): gold phi = +0.6 and tool error phi = -0.5 need about 100 rollouts, the null tier (read-only
#: noise inside +-delta = 0.05) 14,000 (6,000 gave it in 14 of 20 seeds)
DIRECTED_TIER_ROLLOUTS, NULL_TIER_ROLLOUTS = 100, 14000


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_three_tiers_at_default_options(tmp_path, seed):
    cal = load_calibration("paper-dense")
    small = analyze(read_logs([write(tmp_path / "rollouts-small.jsonl",
                                     structured(DIRECTED_TIER_ROLLOUTS, seed=seed, probs=PROBS))]), cal, IRCOptions())
    c = small.components
    assert (c["gold_exact"].evidence, c["tool_error"].evidence) == ("positive", "anti")
    assert c["read_only"].evidence == "inconclusive" and small.calibration.weights["read_only"] == 0.3
    p = write(tmp_path / "rollouts-known.jsonl", structured(NULL_TIER_ROLLOUTS, seed=seed, probs=PROBS))
    res = analyze(read_logs([p]), cal, IRCOptions(seed=seed))
    c = res.components
    assert [c[k].evidence for k in ("gold_exact", "read_only", "tool_error")] == ["positive", "null", "anti"]
    assert [c[k].tier for k in ("gold_exact", "read_only", "tool_error")] == \
        ["discriminative_positive", "non_discriminative", "anti_discriminative"]
    assert res.calibration.weights["read_only"] == 0.0 and res.calibration.weights["tool_error"] == -0.1
    assert res.tested == 3 and c["read_only"].ci_level == pytest.approx(1 - 0.01 / 3)


def test_significance_is_the_exact_p_value_with_bonferroni():
    """The 0/1 "any" aggregate is judged by Fisher's exact test, the mean aggregate by the t-test of the
    point-biserial r; each p-value is multiplied by the number of tested components."""
    from openrlhf_mtgrpo.irc.analyze import association_p_value

    rng = np.random.default_rng(3)
    o = (rng.random(128) < 0.5).astype(float)
    x = (rng.random(128) < np.where(o > 0, 0.35, 0.15)).astype(float)
    p, method = association_p_value(x, o)
    table = [[np.sum((x == 1) & (o == 1)), np.sum((x == 1) & (o == 0))],
             [np.sum((x == 0) & (o == 1)), np.sum((x == 0) & (o == 0))]]
    assert method == "fisher_exact" and p == pytest.approx(stats.fisher_exact(table)[1], rel=1e-12)
    assert p != pytest.approx(stats.pointbiserialr(o.astype(bool), x)[1], rel=1e-3)
    xm = x * rng.integers(1, 4, 128) / 3
    assert association_p_value(xm, o) == (pytest.approx(stats.pointbiserialr(o.astype(bool), xm)[1]),
                                          "pointbiserial_t")


def test_a_significant_interval_without_a_significant_p_value_changes_nothing(tmp_path):
    """64 successes and 64 failures; unneeded_transfer fires in 1 success and 10 failures.  The bootstrap
    interval at the corrected level lies below 0 (resampling never draws more than a few fired successes),
    but Fisher's exact p times the tested components is above 1 - confidence: no evidence, no change."""
    recs = []
    for i in range(128):
        success = i < 64
        j = i if success else i - 64
        turns = [{"read_only": 1.0} if j % 2 else {"message": 1.0}, {"message": 1.0}]
        if (success and j == 0) or (not success and j < 10):
            turns[1] = {"unneeded_transfer": 1.0}
        recs.append(line(f"t{i // 4}", success, turns, group=(f"g{i // 4}", 4, i % 4), calibration="paper-irc"))
    res = analyze(read_logs([write(tmp_path / "rollouts-edge.jsonl", recs)]), load_calibration("paper-irc"),
                  IRCOptions())
    u = res.components["unneeded_transfer"]
    assert (u.fired_rollouts, res.tested) == (11, 2) and u.p_method == "fisher_exact"
    assert u.p_value == pytest.approx(stats.fisher_exact([[1, 10], [63, 54]])[1])
    assert u.p_adjusted == pytest.approx(2 * u.p_value) and u.p_adjusted > 0.01
    assert u.ci[1] < 0 and u.rho_any < -0.2  # the interval alone would have set the weight to alpha * rho
    assert u.evidence == "inconclusive" and u.weight_after == 0.0 and not res.changes
    assert "needs adjusted p < 0.01" in u.reasons[0]


def test_bootstrap_resamples_enough_for_the_corrected_level():
    from openrlhf_mtgrpo.irc.analyze import MIN_TAIL_DRAWS, bootstrap_draws

    assert bootstrap_draws(2000, 0.95) == 2000
    level = 1 - 0.01 / 9  # 9 tested components at 99% family-wise
    b = bootstrap_draws(2000, level)
    assert b * (1 - level) / 2 >= MIN_TAIL_DRAWS - 1e-6 and b == 45000  # 25 beyond each end of 99.89%


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
    assert "fired in only 4 of 120 rollouts, fewer than --min-rollouts 10" in s.reasons[0]


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
    res = analyze(read_logs([write(tmp_path / "r.jsonl", recs)]), zero, IRCOptions(bootstrap=300, pool="group"))
    assert res.changes and res.components["read_only"].weight_after > 0
    assert res.after.component_opposing_rate < res.before.component_opposing_rate
    assert res.after.turn_misalignment > res.before.turn_misalignment
    assert any("WORSE than its input on: turn misalignment" in w for w in res.warnings)
    assert res.calibration.provenance["warnings"] == res.warnings


@pytest.mark.parametrize("kind", ["binary", "mean"])
def test_bootstrap_interval_equals_resampling_rollouts(kind):
    """The cell-count bootstrap (2x2 table for 0/1 x; distinct (x, o) pairs otherwise) equals resampling
    rollouts (same distribution)."""
    from openrlhf_mtgrpo.irc.analyze import bootstrap_ci

    rng = np.random.default_rng(0)
    o = (rng.random(300) < 0.5).astype(float)
    x = ((rng.random(300) < np.where(o > 0, 0.6, 0.3))).astype(float)
    if kind == "mean":
        x = x * rng.integers(1, 5, 300) / 4
    fast = bootstrap_ci(x, o, 20000, 0.95, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, 300, size=(20000, 300))
    r = np.array([np.corrcoef(x[i], o[i])[0, 1] for i in idx])
    slow = np.percentile(r, [2.5, 97.5])
    assert fast == pytest.approx(tuple(slow), abs=0.01)
