"""EDG changes a gate only on the evidence IRC changes a weight on (rewards/evidence.py): the shared rule's
pieces, and a rollout log replayed through EDG ends with the gates `mtgrpo irc analyze` decides on its last
window."""

import json

import numpy as np
import pytest
from scipy import stats

from irc_logs import structured, write
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.irc import analyze as irc_analyze
from openrlhf_mtgrpo.rewards import evidence
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.gating import EDGState, effective_pins, fired_names

# ---------------------------------------------------------------- the shared rule


def test_irc_decides_with_the_shared_rule_and_its_defaults():
    opts = irc_analyze.IRCOptions()
    assert irc_analyze.decide is evidence.decide and irc_analyze.bootstrap_ci is evidence.bootstrap_ci
    assert (opts.delta, opts.min_rollouts, opts.bootstrap) == \
        (evidence.DEFAULT_DELTA, evidence.DEFAULT_MIN_ROLLOUTS, evidence.DEFAULT_BOOTSTRAP)


def test_the_table_gives_irc_s_numbers():
    """EDG keeps 2x2 tables; IRC has the rollouts: same correlation, p-value and (same generator state)
    bootstrap interval."""
    rng = np.random.default_rng(7)
    o = (rng.random(300) < 0.4).astype(float)
    x = (rng.random(300) < np.where(o > 0, 0.3, 0.15)).astype(float)
    t = evidence.table(x, o)
    assert sum(t) == 300 and t[0] == int(((x == 1) & (o == 1)).sum())
    assert evidence.phi(t) == pytest.approx(stats.pointbiserialr(o.astype(bool), x)[0], rel=1e-12)
    assert evidence.association_p_value(x, o) == (evidence.fisher_p(t), "fisher_exact")
    a = evidence.bootstrap_ci(x, o, 5000, 0.99, np.random.default_rng(3))
    b = evidence.table_bootstrap_ci(t, 5000, 0.99, np.random.default_rng(3))
    assert a == b and a[0] < evidence.phi(t) < a[1]
    assert evidence.phi((0, 0, 40, 60)) is None and evidence.table_bootstrap_ci((0, 0, 40, 60), 100, 0.9, rng) is None


@pytest.mark.parametrize("ev, weight, verdict", [
    ("positive", 0.3, True), ("positive", -0.1, False), ("anti", 0.3, False), ("anti", -0.1, True),
    ("null", 0.3, False), ("null", -0.1, False), ("inconclusive", 0.3, None), ("too_few", -0.1, None),
    ("positive", 0.0, None),
])
def test_a_gate_follows_what_irc_does_to_the_weight(ev, weight, verdict):
    """True: IRC keeps the weight (evidence for it); False: IRC flips or zeroes it; None: IRC keeps it for
    lack of evidence, EDG leaves the gate as it is."""
    assert evidence.gate_verdict(ev, weight) is verdict
    if ev in irc_analyze.EVIDENCE_TIER and weight != 0:
        new, _ = irc_analyze._new_weight(weight, ev, 0.3 if ev == "positive" else -0.3, irc_analyze.IRCOptions())
        assert (new == weight) is verdict


def test_the_screen_for_evidence_of_no_effect_never_skips_a_null_interval():
    """EDG resamples for evidence of no effect only where null_possible says it could be found; wherever the
    interval does lie inside +-delta the screen said so (and at 512 rollouts it never can)."""
    rng = np.random.default_rng(0)
    level = 1 - 0.001 / 5
    draws = evidence.bootstrap_draws(2000, level)
    seen_null = 0
    for n in (512, 2000, 6000, 12000, 20000, 40000):
        for rate in (0.1, 0.5):
            for rho in (0.0, 0.015, -0.03):
                fired, ns = int(n * rate), n // 2
                a = int(round(fired * ns / n + rho * np.sqrt(fired * (n - fired) * ns * (n - ns)) / n))
                t = (a, fired - a, ns - a, n - fired - ns + a)
                ci = evidence.table_bootstrap_ci(t, draws, level, rng)
                inside = -0.05 < ci[0] and ci[1] < 0.05
                seen_null += inside
                assert not inside or evidence.null_possible(evidence.phi(t), n, level, 0.05), (n, rate, rho, ci)
                if n == 512:
                    assert not evidence.null_possible(evidence.phi(t), n, level, 0.05)
    assert seen_null >= 6


# ---------------------------------------------------------------- online and offline agree

#: weights: gated (non-zero, not pinned) with evidence for, against, none, too few; zero weights are not gated
CALIBRATION = """schema_version: 2
component_set: tau
name: edg-replay
provenance: {source: tests/test_edg_evidence.py}
clip: [-1.0, 1.0]
components:
  gold_exact: {weight: 1.0, tier: untested}
  soft_match: {weight: 1.0, tier: untested}
  read_only: {weight: 0.3, tier: untested}
  state_change: {weight: 0.1, tier: untested}
  message: {weight: 0.0, tier: untested}
  tool_error: {weight: -0.1, tier: untested}
  duplicate: {weight: -0.2, tier: untested}
  unconfirmed_write: {weight: -0.3, tier: untested}
  unneeded_transfer: {weight: -0.2, tier: untested}
  schema_invalid: {weight: 0.0, tier: untested}
"""
#: P(fired | success), P(fired | failure): phi about +-0.3 at 22.5% firing, noise, and a rare component
PROBS = {"gold_exact": (0.8, 0.2),
         "soft_match": (0.35, 0.1),  # for its weight (+); against it in the last window
         "read_only": (0.1, 0.35),  # against its weight (+); for it in the last window
         "tool_error": (0.1, 0.35),  # for its weight (-)
         "duplicate": (0.35, 0.1),  # against its weight (-)
         "state_change": (0.3, 0.3), "unneeded_transfer": (0.2, 0.2),  # noise
         "unconfirmed_write": (0.0, 0.012),  # against its weight, but in ~3 episodes of a window of 512
         "schema_invalid": (0.05, 0.35)}  # weight 0: IRC gives it a weight, EDG has no gate for it
LATE = {**PROBS, "soft_match": PROBS["read_only"], "read_only": PROBS["soft_match"]}
WINDOW = 512


def _replay(lines, weights, pins, window):
    """Feed a rollout log through EDG as the rollout does (infrastructure failures are not recorded)."""
    st = EDGState(weights, window=window, pinned=pins)
    kept = [r for r in lines if not r.get("infra_failed")]
    for r in kept:
        st.record(fired_names(r["turns"]), float(r["success"]))
    return st, kept


def _irc(tmp_path, lines, name, *flags):
    path = write(tmp_path / f"rollouts-{name}.jsonl", lines)
    out = tmp_path / name
    assert cli(["irc", "analyze", path, "--out", str(out), *flags]) == 0
    return json.loads((out / "irc_result.json").read_text())["components"]


@pytest.mark.parametrize("seed", range(3))
def test_replaying_a_log_through_edg_ends_with_the_gates_irc_decides_on_its_last_window(tmp_path, seed):
    cal_path = tmp_path / "edg-replay.yaml"
    cal_path.write_text(CALIBRATION)
    cal = load_calibration(str(cal_path))
    lines = structured(2 * WINDOW + 4, seed=seed, probs=PROBS, calibration=str(cal_path))
    for r in lines[700:704]:  # infrastructure failures: neither EDG nor IRC counts them
        r.update(infra_failed=True, success=False)
    late = structured(WINDOW, seed=seed + 100, probs=LATE, calibration=str(cal_path))
    for r in late:  # soft_match and read_only trade places in the last window
        r["group"]["id"] = "late-" + r["group"]["id"]
    lines += late
    pins = effective_pins("gold_exact", cal)
    st, kept = _replay(lines, cal.weights, pins, WINDOW)
    assert st.seen == 3 * WINDOW and st.decisions == 3
    last = lines[-WINDOW:]
    assert not any(r.get("infra_failed") for r in last) and last == kept[-WINDOW:]
    gated = st.gated
    assert set(gated) == set(PROBS) - {"gold_exact", "schema_invalid"}
    zero = [c for c in cal.components if cal.weights[c] == 0]
    # IRC at EDG's confidence, judging EDG's family (the zero weights, which EDG does not gate, pinned too)
    same = _irc(tmp_path, last, "same-family", "--confidence", str(st.confidence), "--pin", *pins, *zero)
    # and IRC at its own defaults (99%, every tested component in the family)
    default = _irc(tmp_path, last, "defaults")
    for irc in (same, default):
        changed = {c for c in gated if irc[c]["weight_after"] != irc[c]["weight_before"]}
        closed = {c for c in gated if not st.gates()[c]}
        assert closed == changed, (closed, changed)
    assert closed == {"soft_match", "duplicate"}  # against their weight (now): dropped; for it: kept or reopened
    assert {c: same[c]["evidence"] for c in ("read_only", "tool_error", "unconfirmed_write")} == \
        {"read_only": "positive", "tool_error": "anti", "unconfirmed_write": "too_few"}
    assert default["schema_invalid"]["weight_after"] != 0 and st.gates()["schema_invalid"]  # no gate for weight 0
    # the decisions on the last window are the same numbers
    m = sum(1 for c in gated if same[c]["evidence"] not in ("too_few", "no_variation"))
    history = [(e["component"], e["open"], e["episodes_seen"]) for e in st.get_events()]
    assert history == [("read_only", False, WINDOW), ("duplicate", False, WINDOW),
                       ("soft_match", False, 3 * WINDOW), ("read_only", True, 3 * WINDOW)]
    last_events = {e["component"]: e for e in st.get_events() if e["episodes_seen"] == st.seen}
    for c, e in last_events.items():
        assert (e["evidence"], e["tested"]) == (same[c]["evidence"], m)
        assert e["p_adjusted"] == pytest.approx(same[c]["p_adjusted"], rel=1e-9)
        assert e["rho"] == pytest.approx(same[c]["rho_any"], rel=1e-9)


@pytest.mark.slow
def test_a_window_large_enough_for_evidence_of_no_effect_closes_a_noise_gate_as_irc_zeroes_its_weight(tmp_path):
    """With a window of 12,000 the interval is narrow enough for IRC's equivalence margin: a noise component
    with a weight is dropped online ("null") exactly where IRC sets its weight to 0."""
    cal = load_calibration("paper-dense")
    window = 12000
    lines = structured(window, seed=1, probs={"gold_exact": (0.8, 0.2), "read_only": (0.3, 0.3),
                                              "tool_error": (0.1, 0.35)})
    st, _ = _replay(lines, cal.weights, ("gold_exact",), window)
    irc = _irc(tmp_path, lines, "null", "--confidence", str(st.confidence), "--pin", "gold_exact",
               *[c for c in cal.components if cal.weights[c] == 0])
    assert not st.gates()["read_only"] and st.gates()["tool_error"]
    ev = {e["component"]: e for e in st.get_events()}
    assert set(ev) == {"read_only"} and ev["read_only"]["evidence"] == "null" == irc["read_only"]["evidence"]
    assert -0.05 < ev["read_only"]["ci"][0] and ev["read_only"]["ci"][1] < 0.05
    assert irc["read_only"]["weight_after"] == 0 and irc["tool_error"]["weight_after"] == -0.1
