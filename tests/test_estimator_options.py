"""Estimator options come from one dataclass: the --gtpo.* flags, recipe keys, launch checks, the logs' record
and IRC's settings are generated from EstimatorOptions, and an estimator may declare options of its own
(``register_advantage_estimator(name, fn, options=MyOptions)``: flags ``--<name>.<field>``), which it receives
in training, in IRC (read back from the logs, a mismatch refused or warned about) and in the demo."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from types import SimpleNamespace

import pytest
import torch

from irc_logs import OPTIONS, structured, write
from openrlhf_mtgrpo import registry
from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.helpers import estimator_output, require_turns, valid_turns
from openrlhf_mtgrpo.advantages.options import (
    EstimatorOptions, check_options_class, flag_specs, option, options_record, shared_option_names,
)
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
from openrlhf_mtgrpo.irc.logs import ESTIMATOR_KEYS, read_logs
from openrlhf_mtgrpo.rewards.calibration import load_calibration

PROBS = {"gold_exact": (0.8, 0.2), "tool_error": (0.2, 0.7), "state_change": (0.1, 0.5)}
NAME = "test_scaled_outcome"


@dataclass
class ScaledOptions(EstimatorOptions):
    scale: float = option(1.0, "multiplies the outcome advantage", check=(lambda v: v > 0, "> 0"))
    label: str = option("plain", "a word, to test a str option", choices=("plain", "fancy"))


def scaled_outcome(inp):
    """scale * A^O on every turn: a third-party estimator written with the public helpers."""
    turns = require_turns(inp, NAME)
    o = inp.options
    a_o = core.outcome_advantage(inp.rewards, inp.group_index, inp.live(), eps=o.eps, std_norm=o.std_norm,
                                 ddof=o.std_ddof)
    valid = valid_turns(inp)
    t = (o.scale * a_o).unsqueeze(1).expand_as(turns.rewards).to(torch.float64)
    return estimator_output(inp, torch.where(valid, t, torch.zeros_like(t)), a_o, valid)


@pytest.fixture
def scaled():
    registry.register_advantage_estimator(NAME, scaled_outcome, options=ScaledOptions)
    yield NAME
    with registry._lock:
        registry._estimators.pop(NAME, None)
        registry._estimator_options.pop(NAME, None)


# ---------------------------------------------------------------- one source


def test_every_shared_option_is_a_flag_a_log_key_and_an_irc_setting():
    """eps was missing from IRC's settings and the logs' keys; now each place is generated from the fields."""
    from openrlhf_mtgrpo.integration.cli_flags import PLUGIN_FLAGS
    from openrlhf_mtgrpo.irc.cli import FROM_LOGS, add_options

    names = [f.name for f in fields(EstimatorOptions)]
    assert names == list(shared_option_names()) and "eps" in names
    gtpo = {dotted: (flats, kw) for dotted, flats, kw in PLUGIN_FLAGS if dotted.startswith("--gtpo.")}
    assert sorted(gtpo) == sorted(f"--gtpo.{'no_std_norm' if n == 'std_norm' else n}" for n in names)
    assert gtpo["--gtpo.eps"] == (("--gtpo_eps",), {"help": "epsilon of group normalisation", "type": float,
                                                    "default": 1e-6})
    assert gtpo["--gtpo.pool"][1]["choices"] == ["group", "turn"]
    assert list(ESTIMATOR_KEYS) == names and list(FROM_LOGS) == ["estimator"] + names
    assert list(options_record(EstimatorOptions())) == names
    assert all(hasattr(IRCOptions(), n) for n in names) and IRCOptions(eps=0.25).estimator_options().eps == 0.25
    import argparse

    p = argparse.ArgumentParser()
    add_options(p)
    ns = p.parse_args(["--eps", "0.5", "--no-std-norm", "--std-ddof", "0", "--turn-indexing", "one"])
    assert (ns.eps, ns.std_norm, ns.std_ddof, ns.turn_indexing, ns.gamma) == (0.5, False, 0, "one", None)


@pytest.mark.parametrize("bad,message", [
    (dict(gamma=0.0), "gamma must be in (0, 1] (got 0.0)"), (dict(lam=-1.0), "lam must be >= 0 (got -1.0)"),
    (dict(eps=0.0), "eps must be > 0 (got 0.0)"),
    (dict(pool="rollout"), "pool must be one of 'group', 'turn' (got 'rollout')"),
    (dict(std_ddof=2), "std_ddof must be one of 0, 1 (got 2)"), (dict(gamma="high"), "gamma must be a number (got 'high')"),
])
def test_the_dataclass_and_the_launch_checks_use_the_same_field_checks(bad, message):
    from openrlhf_mtgrpo.integration.launch_checks import estimator_problems

    with pytest.raises(ValueError, match=re.escape(message)):
        EstimatorOptions(**bad)
    gtpo = SimpleNamespace(**{("no_std_norm" if k == "std_norm" else k): (not v if k == "std_norm" else v)
                              for k, v in asdict(EstimatorOptions()).items()})
    for k, v in bad.items():
        setattr(gtpo, k, v)
    args = SimpleNamespace(algo=SimpleNamespace(advantage=SimpleNamespace(estimator="gtpo_hybrid")),
                           rollout=SimpleNamespace(n_samples_per_prompt=4), gtpo=gtpo)
    assert estimator_problems(args) == [f"--gtpo.{message}"]


# ---------------------------------------------------------------- an estimator's own options


def test_declared_options_become_flags_in_the_estimators_namespace(scaled):
    from openrlhf_mtgrpo.integration.cli_flags import estimator_flags

    specs = {dotted: (flats, kw) for dotted, flats, kw in estimator_flags()}
    assert specs[f"--{NAME}.scale"] == ((f"--{NAME}_scale",), {"help": "multiplies the outcome advantage",
                                                               "type": float, "default": 1.0})
    assert specs[f"--{NAME}.label"][1]["choices"] == ["plain", "fancy"]
    assert not any(d.startswith("--gtpo.") or d.startswith("--gtpo_hybrid.") for d in specs)  # shared: --gtpo.*
    assert registry.advantage_estimator_options(NAME) is ScaledOptions
    assert registry.advantage_estimator_options("gtpo_hybrid") is EstimatorOptions


@pytest.mark.parametrize("cls,name,message", [
    (SimpleNamespace, "x_est", "must be a dataclass that subclasses"),
    (ScaledOptions, "actor", "a namespace of OpenRLHF or of the plugin"),
    (ScaledOptions, "my.est", "not a plain name"),
])
def test_options_that_could_not_become_flags_are_refused(cls, name, message):
    with pytest.raises((TypeError, ValueError), match=message):
        registry.register_advantage_estimator(name, scaled_outcome, options=cls)
    assert name not in registry._estimators


def test_an_options_class_must_declare_new_fields_with_option():
    @dataclass
    class Redefault(EstimatorOptions):
        lam: float = 0.9

    @dataclass
    class Bare(EstimatorOptions):
        scale: float = 2.0

    @dataclass
    class OnByDefault(EstimatorOptions):
        clip: bool = option(True, "clip")

    with pytest.raises(ValueError, match="lam is a shared option .*cannot change its default"):
        check_options_class("x_est", Redefault)
    with pytest.raises(ValueError, match="field 'scale' must be declared with .*option"):
        check_options_class("x_est", Bare)
    with pytest.raises(ValueError, match="flag='no_clip'"):
        check_options_class("x_est", OnByDefault)


def test_the_hook_gives_the_estimator_its_declared_options(scaled):
    """plugin_compute_advantages builds ScaledOptions from --gtpo.* and --<estimator>.* and passes it in."""
    from openrlhf_fixtures import make_maker, response, to_experiences, zero_kl

    from openrlhf_mtgrpo.integration.cli_flags import estimator_option_problems, estimator_options_from_args

    def experiences():
        return zero_kl(to_experiences([response(4, [2, 3], reward=1.0), response(4, [2], reward=0.0),
                                       response(3, [1, 1, 2], reward=1.0), response(5, [4, 1], reward=0.0)]))

    base = make_maker("grpo_outcome", n=4).compute_advantages_and_returns(experiences())
    maker = make_maker(NAME, n=4)
    maker.strategy.args.test_scaled_outcome = SimpleNamespace(scale=2.5, label="fancy")
    opts = estimator_options_from_args(maker.strategy.args)
    assert type(opts) is ScaledOptions and (opts.scale, opts.label, opts.pool) == (2.5, "fancy", "turn")
    got = maker.compute_advantages_and_returns(experiences())
    for g, b in zip(got, base):
        torch.testing.assert_close(g.advantages, 2.5 * b.advantages)
        assert float(b.advantages.abs().sum()) > 0
    maker.strategy.args.test_scaled_outcome.scale = -1.0
    assert estimator_option_problems(maker.strategy.args) == [f"--{NAME}.scale must be > 0 (got -1.0)"]


def test_the_launchers_parser_has_the_declared_flags_and_checks_them(scaled):
    """OpenRLHF's own parser (built in this process, where the estimator is registered) takes
    --<estimator>.<field> and its flat alias; a value its check refuses stops the run before it starts."""
    from openrlhf_mtgrpo.integration.cli_flags import estimator_options_from_args
    from openrlhf_mtgrpo.integration.launcher_parser import RecipeError, post_parse_checks, upstream_parser

    parser = upstream_parser()
    ns = parser.parse_args(["--advantage_estimator", NAME, "--n_samples_per_prompt", "4", f"--{NAME}.scale", "3",
                            f"--{NAME}_label", "fancy", "--gtpo.eps", "0.01"])
    args = post_parse_checks(ns)
    opts = estimator_options_from_args(args)
    assert (type(opts), opts.scale, opts.label, opts.eps) == (ScaledOptions, 3.0, "fancy", 0.01)
    bad = parser.parse_args(["--advantage_estimator", NAME, "--n_samples_per_prompt", "4", f"--{NAME}.scale", "0"])
    with pytest.raises(RecipeError, match=rf"--{NAME}.scale must be > 0 \(got 0.0\)"):
        post_parse_checks(bad)


def _scaled_logs(tmp_path, name, scale, **extra):
    options = {**OPTIONS, "std_norm": True, "pool": "turn", **extra}
    options.pop("no_std_norm")
    if scale is not None:
        options["scale"] = scale
    return write(tmp_path / name, structured(300, seed=6, probs=PROBS, estimator=NAME, options=options))


def test_irc_recomputes_with_the_options_the_estimator_declared(scaled, tmp_path, capsys):
    p = _scaled_logs(tmp_path, "rollouts-scaled.jsonl", 3.0, label="fancy")
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    result = json.loads((out / "irc_result.json").read_text())
    assert result["options"]["declared_options"] == {"scale": 3.0, "label": "fancy"}
    batch, cal = read_logs([p]), load_calibration("paper-dense")
    plain = analyze(batch, cal, IRCOptions(estimator="grpo_outcome", pool="turn", bootstrap=200))
    for c in PROBS:
        assert result["components"][c]["mean_advantage_before"] == \
            pytest.approx(3.0 * plain.components[c].mean_advantage_before)
    # another value than the logs record: refused on the command line, a warning through the API
    assert cli(["irc", "analyze", p, "--out", str(out), "--estimator-option", "scale=1"]) == 2
    assert "the logged run used scale=3.0; you asked for scale=1.0" in capsys.readouterr().err
    res = analyze(batch, cal, IRCOptions(estimator=NAME, pool="turn", declared_options={"label": "fancy"},
                                         bootstrap=200))
    assert any("scale: logs 3.0, check 1.0" in w for w in res.warnings), res.warnings
    assert cli(["irc", "analyze", p, "--out", str(out), "--estimator-option", "speed=2"]) == 2
    assert "has no option 'speed'; its options:" in capsys.readouterr().err


def test_irc_assumes_a_declared_default_the_logs_lack_and_says_so(scaled, tmp_path, capsys):
    p = _scaled_logs(tmp_path, "rollouts-old.jsonl", None)
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    text = capsys.readouterr().out
    assert "note: scale not recorded in the logs: the default 1.0 is assumed" in text
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200", "--estimator-option", "scale=2",
                "--estimator-option", "label=fancy"]) == 0
    assert "note: scale=2.0 as given (not recorded in the logs)" in capsys.readouterr().out
    assert json.loads((out / "irc_result.json").read_text())["options"]["declared_options"] == \
        {"scale": 2.0, "label": "fancy"}


def test_turn_advantages_give_an_estimator_its_own_options_class(scaled):
    from openrlhf_mtgrpo.advantages.turn_level import turn_advantages

    r = torch.tensor([[0.1, 0.2], [0.0, 0.3], [0.5, 0.0], [0.1, 0.1]], dtype=torch.float64)
    k, o, g = torch.tensor([2, 2, 1, 2]), torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.zeros(4, dtype=torch.long)
    one = turn_advantages(NAME, r, k, o, g).turn  # the class's defaults
    three = turn_advantages(NAME, r, k, o, g, options=ScaledOptions(scale=3.0)).turn
    shared = turn_advantages(NAME, r, k, o, g, options=EstimatorOptions(eps=1e-6)).turn  # shared values, own defaults
    torch.testing.assert_close(three, 3.0 * one)
    torch.testing.assert_close(shared, one)
    assert float(one.abs().sum()) > 1
