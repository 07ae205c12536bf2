"""Online gating with a real local Ray actor shared by several worker processes."""

import os

import numpy as np
import pytest

from helpers import kill_actor_and_wait, pythonpath

from openrlhf_mtgrpo.irc.edg import ACTOR_NAME, NAMESPACE, EDGClient, EDGState, fired_vector
from openrlhf_mtgrpo.rewards.sets import component_names

COMPONENTS = component_names("tau")  # the built-in set's axis

pytestmark = pytest.mark.slow
I_READ, I_GOLD = COMPONENTS.index("read_only"), COMPONENTS.index("gold_exact")


def episodes(n, seed, read_discriminative):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = rng.random() < 0.5
        f = [0.0] * len(COMPONENTS)
        f[I_GOLD] = float(rng.random() < (0.9 if s else 0.1))
        f[I_READ] = float(rng.random() < ((0.9 if s else 0.1) if read_discriminative else 0.5))
        out.append((f, float(s)))
    return out


def test_state_gates_noise_and_logs_changes(tmp_path):
    st = EDGState({"gold_exact": 1.0, "read_only": 0.3}, window=200, threshold=0.1,
                  log_path=str(tmp_path / "edg.jsonl"))
    for f, s in episodes(200, 0, read_discriminative=True):
        st.record(f, s)
    assert st.gates()["read_only"] and st.gates()["gold_exact"]
    for f, s in episodes(200, 1, read_discriminative=False):  # read_only turns into noise: window slides
        st.record(f, s)
    assert not st.gates()["read_only"] and st.gates()["gold_exact"]
    ev = st.get_events()
    assert [(e["component"], e["open"]) for e in ev] == [("read_only", False)]
    assert abs(ev[0]["rho"]) < 0.1
    assert len(open(tmp_path / "edg.jsonl").read().splitlines()) == 1


def test_shared_actor_across_ray_workers(tmp_path):
    import ray

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath(os.path.dirname(os.path.abspath(__file__)))}})
    try:
        client = EDGClient.connect({"gold_exact": 1.0, "read_only": 0.3}, window=300, threshold=0.1,
                                   log_path=str(tmp_path / "edg.jsonl"), refresh_every=1)

        @ray.remote(num_cpus=1, max_calls=1)  # a fresh worker process per call
        def worker(seed, discriminative):
            import asyncio

            c = EDGClient.connect({"gold_exact": 1.0, "read_only": 0.3}, window=300, threshold=0.1)
            for f, s in episodes(150, seed, discriminative):
                turns = [{"features": {comp: v for comp, v in zip(COMPONENTS, f)}}]
                c.record(turns, bool(s))
            return asyncio.run(c.gates()), os.getpid()

        (g1, p1), (g2, p2) = ray.get([worker.remote(1, False), worker.remote(2, False)])
        actor = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
        import time

        for _ in range(50):  # records are fire-and-forget: wait until the actor has all 300
            if ray.get(actor.correlations.remote())["gold_exact"] is not None and \
                    len(ray.get(actor.get_events.remote())) >= 1:
                break
            time.sleep(0.1)
        events = ray.get(actor.get_events.remote())
        assert p1 != p2
        assert any(e["component"] == "read_only" and e["open"] is False for e in events)
        import asyncio

        gates = asyncio.run(client.gates())
        assert gates["read_only"] is False and gates["gold_exact"] is True
    finally:
        ray.shutdown()


def test_fired_vector():
    v = fired_vector([{"features": {"gold_exact": 1.0}}, {"features": {"read_only": 0.5}}])
    assert v[I_GOLD] == 1.0 and v[I_READ] == 1.0 and sum(v) == 2.0


# ---------------------------------------------------------------- issue #13 point 6

NOISE = {"gold_exact": 1.0, "read_only": 0.3, "state_change": -0.1, "tool_error": -0.1, "duplicate": -0.2,
         "soft_match": 1.0}


def _noise_changes(hysteresis, episodes=10000, seed=0):
    rng = np.random.default_rng(seed)
    st = EDGState(NOISE, window=512, threshold=0.05, hysteresis=hysteresis)
    for _ in range(episodes):
        st.record([float(rng.random() < 0.3) for _ in COMPONENTS], float(rng.random() < 0.5))
    return st.get_events()


def test_hysteresis_keeps_noise_components_from_flapping():
    """Five noise components with non-zero weights, 10,000 episodes, window 512, threshold 0.05."""
    with_h = _noise_changes(None)  # default hysteresis 0.05
    without = _noise_changes(0.0)
    assert len(without) > 300  # ~100 changes per component without hysteresis
    assert len(with_h) <= 40, len(with_h)
    assert all(e["component"] != "gold_exact" for e in with_h + without)  # pinned


def test_pinned_component_is_never_gated():
    rng = np.random.default_rng(0)
    st = EDGState({"gold_exact": 1.0, "read_only": 0.3}, window=200, threshold=0.1)
    for _ in range(300):  # gold goes with failure here: IRC pins it, so EDG must not gate it
        s = rng.random() < 0.5
        f = [0.0] * len(COMPONENTS)
        f[I_GOLD] = float(rng.random() < (0.1 if s else 0.9))
        st.record(f, float(s))
    assert st.gates()["gold_exact"] is True and st.correlations()["gold_exact"] < -0.5
    unpinned = EDGState({"gold_exact": 1.0}, window=200, threshold=0.1, pinned=[])
    for f, s in episodes(300, 1, read_discriminative=False):
        f[I_GOLD] = 1.0 - f[I_GOLD]  # anti-correlated
        unpinned.record(f, s)
    assert unpinned.gates()["gold_exact"] is False


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath(os.path.dirname(os.path.abspath(__file__)))}})
    yield ray
    ray.shutdown()


def _fresh_client(ray, tmp_path, **kw):
    kill_actor_and_wait(ray, ACTOR_NAME, NAMESPACE)  # else get_if_exists may return the dying one
    return EDGClient.connect({"gold_exact": 1.0, "read_only": 0.3}, window=100, threshold=0.1,
                             log_path=str(tmp_path / "edg_events.jsonl"), **kw)


def _feed(ray, client, discriminative, n=100, seed=0):
    for f, s in episodes(n, seed, discriminative):
        client.record([{"features": dict(zip(COMPONENTS, f))}], bool(s))
    actor = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
    ray.get(actor.correlations.remote())  # the actor handles calls in order: all records are in


def test_every_rollout_of_a_group_gets_the_same_gates(ray_session, tmp_path):
    import asyncio

    client = _fresh_client(ray_session, tmp_path)
    _feed(ray_session, client, discriminative=True)

    async def main():
        first = await asyncio.gather(*[client.gates("g1") for _ in range(4)])
        _feed(ray_session, client, discriminative=False, seed=5)  # read_only turns into noise: gate closes
        late = await client.gates("g1")  # a late member of g1 still gets g1's gates
        return first, late, await client.gates("g2")

    first, late, g2 = asyncio.run(main())
    assert all(g == first[0] for g in first) and late == first[0]
    assert first[0]["read_only"] is True and g2["read_only"] is False


def test_client_survives_actor_loss(ray_session, tmp_path, caplog):
    import asyncio
    import json
    import logging
    import time

    client = _fresh_client(ray_session, tmp_path, timeout=5.0)
    _feed(ray_session, client, discriminative=False)
    before = asyncio.run(client.gates("a"))
    assert before["read_only"] is False and not client.stale
    kill_actor_and_wait(ray_session, ACTOR_NAME, NAMESPACE)
    with caplog.at_level(logging.WARNING, logger="openrlhf_mtgrpo.rewards.gating"):
        after = [asyncio.run(client.gates(g)) for g in ("b", "c")]
        client.record([{"features": {"read_only": 1.0}}], True)  # must not raise
    assert after == [before, before]  # the last gates are kept
    assert client.stale and client.failures["gates"] == 2
    for _ in range(50):  # the failed record is reported by its future's callback
        if client.failures["record"]:
            break
        time.sleep(0.1)
    assert client.failures["record"] == 1
    assert len([r for r in caplog.records if "EDG actor unreachable" in r.getMessage()]) == 1  # warned once
    rec = client.episode_record(after[0])
    assert rec == {"closed": ["read_only"], "stale": True, "failures": {"gates": 2, "record": 1}}
    events = [json.loads(l) for l in open(tmp_path / "edg_events.jsonl")]
    assert [e.get("event") for e in events].count("actor_unreachable") == 1
