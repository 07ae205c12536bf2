import asyncio
import threading

import pytest

from openrlhf_mtgrpo.envs.airline import AirlineEnv
from openrlhf_mtgrpo.envs.airline.store import full_state_hash
from openrlhf_mtgrpo.evaluation.passk import compute_pass_k, pass_hat_k


def test_pass_hat_k_definition():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(4, 2, 1) == 0.5
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)


def test_compute_pass_k_over_tasks_and_infra_exclusion():
    rs = [{"task_id": "a", "success": s} for s in (1, 1, 1, 0)] + \
         [{"task_id": "b", "reward": r} for r in (1.0, 0.0, 0.0, 0.0)] + \
         [{"task_id": "b", "reward": 1.0, "infra_failed": True}]
    rep = compute_pass_k(rs)
    assert rep.excluded_infra == 1 and rep.trials_per_task == {"a": 4, "b": 4}
    assert rep.pass_k[1] == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert rep.pass_k[2] == pytest.approx((3 / 6 + 0) / 2)
    assert rep.pass_k[4] == 0.0 and max(rep.pass_k) == 4
    assert "pass^k" in rep.table()


def _episode_work(env, task, tag):
    ep = env.reset(task)
    for a in task.actions:
        ep.call_tool(a.name, a.arguments)
    # a write only this episode makes
    ep.call_tool("send_certificate", {"user_id": "mei_hernandez_8984", "amount": tag})
    return ep


def test_concurrent_episodes_are_independent(data_dir):
    env = AirlineEnv("tau2", data_dir)
    base_hash = full_state_hash(env.data.db)
    tasks = env.tasks("base")
    results = {}

    def worker(i):
        results[i] = _episode_work(env, tasks[i % len(tasks)], 1000 + i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    [t.start() for t in threads]
    [t.join() for t in threads]

    async def main():
        async def one(i):
            await asyncio.sleep(0)
            return await asyncio.to_thread(_episode_work, env, tasks[i % len(tasks)], 2000 + i)

        return await asyncio.gather(*(one(i) for i in range(32)))

    eps = list(results.values()) + list(asyncio.run(main()))
    amounts = set()
    for ep in eps:
        cert = ep.db.read("users", "mei_hernandez_8984")["payment_methods"]["certificate_3221322"]
        amounts.add(cert["amount"])
        # every episode sees exactly its own gold writes plus its certificate
        solo = _episode_work(env, ep.task, int(cert["amount"]))
        assert solo.state_hash() == ep.state_hash()
    assert len(amounts) == 64
    assert full_state_hash(env.data.db) == base_hash  # the shared base was never written


def test_changes_hash_equals_full_database_comparison(data_dir):
    env = AirlineEnv("tau2", data_dir)
    task = env.task("7")
    a, b = env.reset(task), env.reset(task)
    for act in task.actions:
        a.call_tool(act.name, act.arguments)
        b.call_tool(act.name, act.arguments)
    b.call_tool("get_user_details", {"user_id": "mei_hernandez_8984"})
    b.db.write("users", "mei_hernandez_8984")  # touched but unchanged
    assert a.state_hash() == b.state_hash()
    assert full_state_hash(a.db.materialise()) == full_state_hash(b.db.materialise())
    b.db.write("users", "mei_hernandez_8984")["email"] = "x@y"
    assert a.state_hash() != b.state_hash()
