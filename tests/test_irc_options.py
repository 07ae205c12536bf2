"""IRC's options: a bad value is a clear error, never a traceback or a weight its tier contradicts."""

import pytest

from irc_logs import structured, write
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.rewards.calibration import load_calibration, tier_problem

PROBS = {"gold_exact": (0.8, 0.2), "tool_error": (0.2, 0.7), "state_change": (0.1, 0.5)}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return write(tmp_path_factory.mktemp("opt") / "rollouts.jsonl", structured(400, seed=2, probs=PROBS))


@pytest.mark.parametrize("alpha", ["0", "-1", "-0.5", "nan", "inf"])
def test_alpha_must_be_positive_and_finite(logs, tmp_path, capsys, alpha):
    assert cli(["irc", "analyze", logs, "--out", str(tmp_path / "o"), "--alpha", alpha]) == 2
    assert "--alpha must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "o" / "irc_calibration.yaml").exists()
    with pytest.raises(ValueError, match="alpha must be"):
        IRCOptions(alpha=float(alpha))


@pytest.mark.parametrize("flag,value,message", [("--delta", "-0.1", "--delta must be"),
                                                ("--delta", "1.5", "--delta must be"), ("--eta", "2", "--eta must be"),
                                                ("--confidence", "1", "confidence")])
def test_other_thresholds_are_checked(logs, tmp_path, capsys, flag, value, message):
    assert cli(["irc", "analyze", logs, "--out", str(tmp_path / "o"), flag, value]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("alpha", [1e-5, 1e-9, 3.0])
@pytest.mark.parametrize("rule", ["proportional", "keep_flip_zero"])
def test_tiny_alpha_gives_weights_that_agree_with_their_tier(logs, tmp_path, alpha, rule):
    """round(alpha * rho, 4) gave -0.0 for a small alpha: a weight 0 with tier anti_discriminative."""
    res = analyze(read_logs([logs]), load_calibration("paper-irc"), IRCOptions(alpha=alpha, rule=rule,
                                                                                bootstrap=300))
    s = res.components["state_change"]
    assert s.evidence == "anti" and s.tier == "anti_discriminative"
    if rule == "proportional":
        assert s.weight_after < 0 and s.weight_after == pytest.approx(alpha * s.rho_any, rel=1e-3)
    for c, w in res.calibration.weights.items():
        assert tier_problem(res.calibration.tiers[c], w) is None, (c, w)
    path = res.calibration.save(str(tmp_path / "cal.yaml"))
    assert load_calibration(path).weights == res.calibration.weights


def test_scaled_weight_keeps_sign_and_four_digits():
    from openrlhf_mtgrpo.irc.analyze import scaled_weight

    assert scaled_weight(1.0, -0.404371) == -0.4044 and scaled_weight(1e-5, -0.404371) == -4.044e-06
    assert scaled_weight(2.0, 0.0123456) == 0.02469
    with pytest.raises(ValueError, match="underflows to 0"):
        scaled_weight(5e-324, 0.3)  # the smallest float times rho


def test_a_log_too_small_to_test_any_component_says_so(tmp_path, capsys):
    """16 rollouts, min-rollouts 10: nothing can be tested, and the report says that in words (not 'times 0')."""
    small = write(tmp_path / "small.jsonl", structured(16, seed=3, probs=PROBS))
    assert cli(["irc", "analyze", small, "--out", str(tmp_path / "o"), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "No component could be tested: none fired in at least 10 rollouts and was absent from at least 10" in out
    assert "no weight can change on these 16 rollouts" in out and "times 0" not in out


# ---------------------------------------------------------------- the run's eps (it was not read from the logs)


def _eps_logs(tmp_path, name, **changes):
    from irc_logs import OPTIONS

    options = {**OPTIONS, "pool": "turn", **changes}
    return write(tmp_path / name, structured(400, seed=2, probs=PROBS, options={k: v for k, v in options.items()
                                                                                if v is not None}))


def test_irc_recomputes_the_advantages_with_the_logged_eps(tmp_path, capsys):
    """A run trained with --gtpo.eps 0.5: IRC read pool, gamma, lam, ... from the logs but not eps, and
    re-checked the advantages with eps 1e-6.  Now eps is read, a different --eps is refused, and the API warns."""
    import json

    p = _eps_logs(tmp_path, "rollouts-eps.jsonl", eps=0.5)
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    result = json.loads((out / "irc_result.json").read_text())
    assert result["options"]["eps"] == 0.5
    batch, cal = read_logs([p]), load_calibration("paper-dense")
    run = analyze(batch, cal, IRCOptions(pool="turn", eps=0.5, bootstrap=200))
    default = analyze(batch, cal, IRCOptions(pool="turn", bootstrap=200))
    for c in PROBS:
        assert result["components"][c]["mean_advantage_before"] == pytest.approx(run.components[c].mean_advantage_before)
        assert run.components[c].mean_advantage_before != pytest.approx(default.components[c].mean_advantage_before,
                                                                        rel=1e-3)
    assert any("does not use the settings the logs record (eps: logs 0.5, check 1e-06)" in w for w in default.warnings)
    assert not any("settings the logs record" in w for w in run.warnings)
    assert cli(["irc", "analyze", p, "--out", str(out), "--eps", "1e-6"]) == 2
    assert "the logged run used eps=0.5; you asked for eps=1e-06" in capsys.readouterr().err


def test_a_log_without_eps_is_checked_with_the_default_it_ran_with_and_says_so(tmp_path, capsys):
    """Logs that do not record eps ran with its default, 1e-06 in every version: assumed, and said."""
    import json

    p = _eps_logs(tmp_path, "rollouts-noeps.jsonl", eps=None)
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    assert "note: eps not recorded in the logs: the default 1e-06 is assumed" in capsys.readouterr().out
    assert json.loads((out / "irc_result.json").read_text())["options"]["eps"] == 1e-6
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200", "--eps", "0.5"]) == 0
    assert "note: eps=0.5 as given (not recorded in the logs)" in capsys.readouterr().out
    assert cli(["irc", "analyze", p, "--out", str(out), "--eps", "-1"]) == 2
    assert "eps must be > 0 (got -1.0)" in capsys.readouterr().err
