"""Online gating with a real local Ray actor shared by several worker processes."""

import os

import numpy as np
import pytest

from helpers import pythonpath

from openrlhf_mtgrpo.irc.edg import ACTOR_NAME, NAMESPACE, EDGClient, EDGState, fired_vector
from openrlhf_mtgrpo.rewards.components import COMPONENTS

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
