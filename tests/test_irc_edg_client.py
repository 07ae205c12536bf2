"""EDG's client without Ray (issue #13 point 6): staleness is fixed when an episode's gates are fetched,
EDG pins what IRC pinned in the calibration that scores the run, and its options are checked."""

import asyncio
import concurrent.futures

import pytest

from openrlhf_mtgrpo.rewards import gating
from openrlhf_mtgrpo.irc.edg import EDGClient, EDGState, effective_pins
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.sets import component_names

COMPONENTS = component_names("tau")  # the built-in set's axis


class _Method:
    def __init__(self, fn):
        self.remote = fn


class FakeActor:
    """Answers like the Ray actor's handle (``gates.remote()`` awaitable, ``record.remote()`` with a future);
    ``alive = False`` makes every call fail as a dead actor's do."""

    def __init__(self, closed=()):
        self.alive, self.closed = True, set(closed)

        async def gates():
            if not self.alive:
                raise RuntimeError("actor died")
            return {c: c not in self.closed for c in COMPONENTS}

        def record(*args):
            if not self.alive:
                raise RuntimeError("actor died")
            fut = concurrent.futures.Future()
            fut.set_result(None)
            return type("Ref", (), {"future": lambda self_: fut})()

        self.gates, self.record = _Method(gates), _Method(record)


def test_staleness_is_fixed_when_the_gates_are_fetched():
    actor = FakeActor(closed=["read_only"])
    client = EDGClient(actor, timeout=1.0)

    async def main():
        fresh = await client.gates("A")  # fetched while the actor answers
        actor.alive = False
        stale = await client.gates("B")  # the actor is gone: last gates kept
        late_a = await client.gates("A")  # a later member of A gets A's (fresh) gates
        rec_a, rec_late = client.episode_record(fresh), client.episode_record(late_a)  # logged while it is down
        actor.alive = True
        again = await client.gates("C")
        return fresh, stale, rec_a, rec_late, client.episode_record(stale), client.episode_record(again)

    fresh, stale, rec_a, rec_late, rec_b, rec_c = asyncio.run(main())
    assert fresh == stale and fresh["read_only"] is False
    assert (rec_a["stale"], rec_late["stale"]) == (False, False)  # used to be True: the actor was down at log time
    assert rec_b["stale"] is True  # used to be False: the actor was back at log time
    assert rec_c["stale"] is False and rec_c["closed"] == ["read_only"]
    assert rec_b["failures"] == {"gates": 1, "record": 0}


def test_cached_gates_keep_the_staleness_of_their_fetch():
    actor = FakeActor()
    client = EDGClient(actor, refresh_every=3, timeout=1.0)

    async def main():
        first = await client.gates()
        actor.alive = False
        cached = await client.gates()  # not refetched (every 3rd): fresh as fetched
        third = await client.gates()
        refetched = await client.gates()  # fetch fails
        return first, cached, third, refetched

    first, cached, third, refetched = asyncio.run(main())
    assert [client.episode_record(g)["stale"] for g in (first, cached, third, refetched)] == \
        [False, False, False, True]


def _irc_written(tmp_path, pins):
    cal = load_calibration("paper-irc")
    cal.provenance = {"source": "mtgrpo irc analyze", "options": {"pin": list(pins)}}
    return load_calibration(cal.save(str(tmp_path / "irc_calibration.yaml")))


def test_edg_pins_what_irc_pinned(tmp_path):
    from openrlhf_mtgrpo.irc.edg import effective_pins, irc_pins

    cal = _irc_written(tmp_path, ["gold_exact", "tool_error"])
    assert irc_pins(cal) == ("gold_exact", "tool_error") and irc_pins(load_calibration("paper-irc")) == ()
    assert effective_pins("gold_exact", cal) == ("gold_exact", "tool_error")
    assert effective_pins("", cal) == ("gold_exact", "tool_error")
    assert effective_pins("duplicate", load_calibration("paper-irc")) == ("duplicate",)
    with pytest.raises(ValueError, match="unknown component"):
        irc_pins(type("C", (), {"provenance": {"options": {"pin": ["gold"]}}})())


def test_connect_pins_the_calibrations_irc_pins(tmp_path, monkeypatch):
    """connect() is handed the calibration that scores the run and never gates what IRC pinned in it
    (tool_error here), whatever edg_pin says."""
    cal = _irc_written(tmp_path, ["gold_exact", "tool_error"])
    made = []

    class Options:
        def __init__(self, **kw):
            pass

        def remote(self, *args):
            made.append(EDGState(*args))
            return FakeActor()

    monkeypatch.setattr(gating, "edg_actor_class", lambda: type("A", (), {"options": lambda **kw: Options()}))
    EDGClient.connect(cal.weights, window=64, pinned="gold_exact", calibration_sha256=cal.sha256,
                      calibration=cal)
    assert made[-1].pinned == ("gold_exact", "tool_error")
    for _ in range(64):  # tool_error goes with success here, against its negative weight: EDG would gate it
        made[-1].record([1.0 if c == "tool_error" else 0.0 for c in COMPONENTS], 1.0)
        made[-1].record([0.0] * len(COMPONENTS), 0.0)
    assert made[-1].gates()["tool_error"] is True
    unpinned = EDGState(cal.weights, window=64, pinned="gold_exact")
    for _ in range(64):
        unpinned.record([1.0 if c == "tool_error" else 0.0 for c in COMPONENTS], 1.0)
        unpinned.record([0.0] * len(COMPONENTS), 0.0)
    assert unpinned.gates()["tool_error"] is False


def test_the_rollout_hands_edg_the_calibration_that_scores_it(tmp_path, monkeypatch, data_dir):
    """The executor passes its calibration object to EDG (whose provenance says what IRC pinned)."""
    from rollout_helpers import make_executor

    cal_path = _irc_written(tmp_path, ["gold_exact", "tool_error"]).path
    seen = {}

    def connect(weights, **kw):
        seen.update(kw, weights=weights)
        return type("C", (), {"gates": staticmethod(lambda group_id=None: asyncio.sleep(0, result=None))})()

    monkeypatch.setattr(EDGClient, "connect", staticmethod(connect))
    ex = make_executor(data_dir, "http://127.0.0.1:9/v1", tmp_path, edg_enable=True, calibration=cal_path)
    asyncio.run(ex.gates("g1"))
    assert seen["calibration"] is ex.calibration and seen["calibration"].sha256 == seen["calibration_sha256"]
    assert effective_pins(seen["pinned"], seen["calibration"]) == ("gold_exact", "tool_error")


def _connect_args(monkeypatch):
    made = []

    class Options:
        def remote(self, *args):
            made.append(EDGState(*args))
            return FakeActor()

    monkeypatch.setattr(gating, "edg_actor_class", lambda: type("A", (), {"options": lambda **kw: Options()}))
    return made


def test_the_rollouts_edg_options_reach_the_actor(monkeypatch):
    """What the rollout passes (executor: window=cfg.edg_window, confidence=cfg.edg_confidence, and the removed
    threshold=cfg.edg_threshold, hysteresis=cfg.edg_hysteresis): the defaults are valid."""
    from openrlhf_mtgrpo.rollout.config import AgentConfig

    made = _connect_args(monkeypatch)
    cfg = AgentConfig()
    assert gating.option_problems(cfg.edg_window, cfg.edg_confidence, cfg.edg_hysteresis, cfg.edg_threshold) == []
    EDGClient.connect({"read_only": 0.3}, window=cfg.edg_window, confidence=cfg.edg_confidence,
                      threshold=cfg.edg_threshold, hysteresis=cfg.edg_hysteresis, pinned=cfg.edg_pin)
    st = made[-1]
    assert (st.window, st.confidence, st.min_rollouts, st.delta) == (512, 0.999, 10, 0.05)
    EDGClient.connect({"read_only": 0.3}, window=100, confidence=0.99)
    assert (made[-1].window, made[-1].confidence) == (100, 0.99)
    EDGClient.connect({"read_only": 0.3}, confidence=0.95)
    assert made[-1].confidence == 0.95


@pytest.mark.parametrize("kw, message", [
    ({"threshold": 0.05}, "edg_threshold was removed .it was a correlation threshold"),
    ({"confidence": 1.0}, r"confidence per window, in \[0.5, 1\); got 1.0"),
    ({"confidence": 0.05}, r"in \[0.5, 1\); got 0.05"),
    ({"hysteresis": 0.05}, "edg_hysteresis was removed"),
    ({"window": 12}, "edg_window must be an integer >= 20"),
])
def test_old_or_bad_edg_options_are_refused_with_what_changed(monkeypatch, kw, message):
    made = _connect_args(monkeypatch)
    with pytest.raises(ValueError, match=message):
        EDGClient.connect({"read_only": 0.3}, **kw)
    assert not made  # refused before the actor is made
    if not {"hysteresis", "threshold"} & set(kw):  # the state (the actor) checks them too
        with pytest.raises(ValueError, match=message):
            EDGState({"read_only": 0.3}, window=kw.get("window", 512), confidence=kw.get("confidence", 0.999))
