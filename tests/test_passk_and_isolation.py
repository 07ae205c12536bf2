import asyncio
import threading

import numpy as np
import pytest

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.evaluation.passk import bootstrap_ci, compute_pass_k, pass_hat_k
from openrlhf_mtgrpo.evaluation.report import incomplete_line, pass_k_table


def test_pass_hat_k_definition():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(4, 2, 1) == 0.5
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)


def _rec(task, trial, ok=None, status="scored", cause=None, termination="user_stop"):
    r = {"task_id": task, "trial": trial, "status": status, "success": bool(ok), "termination": termination}
    if cause:
        r["infra"] = {"cause": cause}
    return r


def test_pass_k_over_complete_tasks_only_and_incomplete_tasks_listed():
    rs = [_rec("a", k, ok) for k, ok in enumerate((1, 1, 1, 0))]
    rs += [_rec("b", k, ok) for k, ok in enumerate((1, 0, 0, 0))]
    # task c: one trial failed by infrastructure -> incomplete, never averaged in with 3 trials
    rs += [_rec("c", k, 1) for k in range(3)] + [_rec("c", 3, status="infra", cause="user simulator unreachable")]
    # task d: two trials never ran
    rs += [_rec("d", 0, 0, termination="context_overflow"), _rec("d", 1, 1)]
    rep = compute_pass_k(rs, ["a", "b", "c", "d"], trials=4)
    assert not rep.complete and rep.incomplete_tasks == ["c", "d"]
    assert rep.pass_k[1] == pytest.approx((3 / 4 + 1 / 4) / 2)  # over a and b only
    assert rep.pass_k[2] == pytest.approx((3 / 6 + 0) / 2)
    assert rep.pass_k[4] == 0.0 and sorted(rep.pass_k) == [1, 2, 3, 4]  # every k up to the trials requested
    assert all(r.tasks == 2 and r.tasks_requested == 4 and r.trials == 4 for r in rep.rows)
    assert rep.episodes == {"requested": 16, "scored": 13, "infra": 1, "unscored": 0, "not_run": 2}
    assert rep.infra_causes == {"user simulator unreachable": 1}
    assert rep.policy_failures == {"context_overflow": 1}
    assert ("d", 2, "not run") in rep.missing and ("c", 3, "user simulator unreachable") in rep.missing
    line = incomplete_line(rep)
    assert line.startswith("INCOMPLETE: 2 of 4 tasks (c, d) lack scored trials: 1 infrastructure failure "
                           "(user simulator unreachable 1); 2 not run.")
    assert "covers the 2 complete tasks only" in line
    table = pass_k_table(rep)
    assert "2/4" in table and "0.5000" in table


def test_pass_k_for_every_k_with_two_trials_and_latest_attempt_wins():
    # a retried episode: the later record (scored) replaces the infra failure
    rs = [_rec("x", 0, 1), _rec("x", 1, status="infra", cause="policy endpoint unreachable"), _rec("x", 1, 1),
          _rec("y", 0, 1), _rec("y", 1, 0), _rec("z", 5, 1)]  # trial 5 is outside the run: ignored
    rep = compute_pass_k(rs, ["x", "y"], trials=2)
    assert rep.complete and sorted(rep.pass_k) == [1, 2]
    assert rep.pass_k[1] == pytest.approx((1 + 0.5) / 2) and rep.pass_k[2] == pytest.approx(0.5)


def test_nothing_complete_gives_no_numbers():
    rep = compute_pass_k([_rec("a", 0, status="infra", cause="policy endpoint unreachable")], ["a", "b"], trials=1)
    assert rep.pass_k == {1: None} and not rep.complete
    assert "n/a" in pass_k_table(rep)
    assert "2 of 2 tasks" in incomplete_line(rep) and "1 not run" in incomplete_line(rep)


def test_counts_of_one_are_singular():
    from openrlhf_mtgrpo.evaluation.report import episode_line

    rep = compute_pass_k([_rec("a", 0, status="infra", cause="policy endpoint unreachable")], ["a"], trials=1)
    assert episode_line(rep) == "1 episode requested, 0 scored (0 succeeded), 1 infrastructure failure"
    assert incomplete_line(rep).startswith("INCOMPLETE: 1 of 1 task (a) lacks scored trials: 1 infrastructure "
                                           "failure (policy endpoint unreachable 1). pass^k above covers the 0 "
                                           "complete tasks only")
    rep = compute_pass_k([_rec("a", 0, 1), _rec("b", 0, status="infra", cause="x")], ["a", "b"], trials=1)
    assert "covers the 1 complete task only" in incomplete_line(rep)
    assert episode_line(rep).startswith("2 episodes requested, 1 scored (1 succeeded), 1 infrastructure failure")


def test_older_records_with_infra_failed_flag_are_read():
    rs = [{"task_id": "a", "trial": 0, "reward": 1.0}, {"task_id": "a", "trial": 1, "reward": 0.0, "infra_failed": True}]
    rep = compute_pass_k(rs, ["a"], trials=2)
    assert rep.incomplete_tasks == ["a"] and rep.episodes["infra"] == 1


def test_bootstrap_ci_matches_a_plain_loop_and_is_seeded():
    rng = np.random.default_rng(7)
    values = rng.random((20, 3))
    low, high = bootstrap_ci(values, n_boot=500, seed=3, confidence=0.9)
    # the same resamples, one at a time
    draws = np.random.default_rng(3).integers(0, 20, size=(500, 20))
    means = np.array([[values[row, j].mean() for j in range(3)] for row in draws])
    assert np.allclose(low, np.quantile(means, 0.05, axis=0)) and np.allclose(high, np.quantile(means, 0.95, axis=0))
    assert np.all(low <= values.mean(axis=0)) and np.all(values.mean(axis=0) <= high)
    again = bootstrap_ci(values, n_boot=500, seed=3, confidence=0.9)
    assert np.array_equal(again[0], low) and np.array_equal(again[1], high)


def test_bootstrap_ci_of_two_opposite_tasks_spans_zero_to_one():
    low, high = bootstrap_ci(np.array([[0.0], [1.0]]), n_boot=4000, seed=0)
    assert low[0] == 0.0 and high[0] == 1.0  # P(both draws 0) = 1/4 > 2.5%
    low, high = bootstrap_ci(np.full((5, 1), 0.25), n_boot=100)
    assert low[0] == pytest.approx(0.25) and high[0] == pytest.approx(0.25)


def _episode_work(env, task, tag):
    ep = env.reset(task)
    for a in task.actions:
        ep.call_tool(a.name, a.arguments)
    # a write only this episode makes
    ep.call_tool("send_certificate", {"user_id": "mei_hernandez_8984", "amount": tag})
    return ep


def test_concurrent_episodes_are_independent(data_dir):
    env = AirlineEnv("tau2", data_dir)
    assert env.pristine_intact()
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
        cert = ep.env.tools.db.users["mei_hernandez_8984"].payment_methods["certificate_3221322"]
        amounts.add(cert.amount)
        # every episode sees exactly its own gold writes plus its certificate
        solo = _episode_work(env, ep.task, int(cert.amount))
        assert solo.state_hashes() == ep.state_hashes()
    assert len(amounts) == 64
    assert env.pristine_intact()  # the shared base was never written (tau2's own hash of it)


def test_concurrent_episodes_reusing_tables_are_independent(data_dir):
    """Episodes made and dropped by 8 threads at once, their tables put back and handed to the next episode of
    any thread: each ends in exactly its own state (tau2's own hash, against the same calls on a domain that
    never reuses a table) and with its own gold verdict; the shared base is never written."""
    env = AirlineEnv("tau2", data_dir)
    tasks = env.tasks("base")
    seen = []

    def worker(i):
        for j in range(25):
            ep = _episode_work(env, tasks[(7 * i + j) % len(tasks)], 100 * i + j)
            # the digest of every record the episode copied (tau2's hash of the whole database: 0.1 s each)
            seen.append((ep.task.id, 100 * i + j, env.state_hashes(ep.env), ep.matches_gold()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(seen) == 200 and env._table_pool.reused > 100
    reference = AirlineEnv("tau2", data_dir)
    reference._table_pool.size = 0  # every database new tables
    for task_id, tag, got, verdict in seen:
        ep = _episode_work(reference, reference.task(task_id), tag)
        assert (reference.state_hashes(ep.env), ep.matches_gold()) == (got, verdict), (task_id, tag)
    assert len({h for _, _, h, _ in seen}) == 200  # every episode's own certificate amount
    assert reference._table_pool.reused == 0
    assert env.pristine_intact()


def test_changes_hash_equals_full_database_comparison(data_dir):
    env = AirlineEnv("tau2", data_dir)
    task = env.task("7")
    a, b = env.reset(task), env.reset(task)
    for act in task.actions:
        a.call_tool(act.name, act.arguments)
        b.call_tool(act.name, act.arguments)
    b.call_tool("get_user_details", {"user_id": "mei_hernandez_8984"})  # touched (copied) but unchanged
    assert a.state_hashes() == b.state_hashes()
    assert a.env.get_db_hash() == b.env.get_db_hash()  # tau2's own hash of the whole database
    b.call_tool("send_certificate", {"user_id": "mei_hernandez_8984", "amount": 5})
    assert a.state_hashes() != b.state_hashes() and a.env.get_db_hash() != b.env.get_db_hash()
