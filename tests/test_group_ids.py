"""Group ids and EDG gates in the rollout log, through OpenRLHF's own RolloutRayActor.generate_responses
(issue #13 points 3 and 6): IRC reads back exactly the groups training normalised over."""

import asyncio
import json
import os

import pytest

from helpers import kill_actor_and_wait, pythonpath
from rollout_helpers import (AirlineEnv, LocalChatServer, Params, ScriptedEngine, build_toy_tokenizer,
                             make_executor, make_rule_based_user, read_log)

from openrlhf_mtgrpo.irc.logs import read_logs

pytestmark = pytest.mark.slow
TASKS = ("7", "10")


@pytest.fixture(scope="module")
def env(data_dir):
    return AirlineEnv("tau2", data_dir)


@pytest.fixture(scope="module")
def tok(data_dir):
    return build_toy_tokenizer(data_dir=data_dir)


@pytest.fixture
def user_server(env):
    with LocalChatServer(make_rule_based_user(env)) as srv:
        yield srv


def _generate(ex, engine, tok, prompts, n):
    """One rollout step: generate_responses for every prompt, concurrently, as the rollout actor runs them."""
    from types import SimpleNamespace

    from openrlhf.trainer.ray import vllm_engine

    actor = SimpleNamespace(executor=ex, generate=engine.generate)
    cls = vllm_engine.RolloutRayActor.__ray_metadata__.modified_class

    async def main():
        return await asyncio.gather(*[cls.generate_responses(
            actor, prompt=p, label=json.dumps({"task_id": t}), sampling_params=Params(), max_length=60000,
            hf_tokenizer=tok, num_samples=n) for p, t in prompts])

    return asyncio.run(main())


@pytest.mark.parametrize("n_config", [4, None])
def test_groups_in_the_log_are_the_prompts_samples(env, tok, user_server, tmp_path, data_dir, n_config):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, n_samples_per_prompt=n_config,
                       estimator_options={"gamma": 0.9, "lam": 0.3, "pool": "group", "no_std_norm": False,
                                          "std_ddof": 1, "turn_indexing": "zero", "eps": 1e-6})
    engine = ScriptedEngine(tok, env, mistake_rate=0.3, seed=1)
    # two prompts and a repeat of the first one in the same step
    _generate(ex, engine, tok, [("p0", TASKS[0]), ("p1", TASKS[1]), ("p0", TASKS[0])], n=4)
    _generate(ex, engine, tok, [("p0", TASKS[0])], n=4)  # the next step: a new group for the same prompt
    log = read_log(tmp_path)
    assert len(log) == 16
    ids = {}
    for line in log:
        ids.setdefault(line["group"]["id"], []).append(line)
    sizes = sorted(len(v) for v in ids.values())
    if n_config:  # the executor knows n_samples_per_prompt: every group is one prompt's 4 samples
        assert sizes == [4, 4, 4, 4]
    else:  # a prompt repeated within one step merges with its twin: IRC flags the odd size
        assert sizes == [4, 4, 8]
    for members in ids.values():
        assert len({m["task_id"] for m in members}) == 1
        assert sorted(m["group"]["index"] for m in members) == list(range(len(members)))
        assert {m["group"]["size"] for m in members} == {len(members)}
    batch = read_logs([str(tmp_path)])
    assert batch.meta.grouping == "group ids recorded in the logs"
    assert batch.meta.group_sizes == ({4: 4} if n_config else {4: 2, 8: 1})
    assert batch.meta.estimator_options["pool"] == "group" and batch.meta.benchmark["version"] == "tau2"
    assert batch.meta.calibration_sha256 == ex.calibration.sha256
    if not n_config:
        assert any("groups of different sizes" in w for w in batch.meta.warnings)


def test_edg_gates_are_logged_per_episode_and_survive_actor_loss(env, tok, user_server, tmp_path, data_dir):
    import ray

    from openrlhf_mtgrpo.irc.edg import ACTOR_NAME, NAMESPACE

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace=NAMESPACE,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath(os.path.dirname(os.path.abspath(__file__)))}})
    try:
        ex = make_executor(data_dir, user_server.base_url, tmp_path, edg_enable=True, edg_window=64,
                           n_samples_per_prompt=4)
        engine = ScriptedEngine(tok, env, mistake_rate=0.3, seed=2)
        _generate(ex, engine, tok, [("p0", TASKS[0]), ("p1", TASKS[1])], n=4)
        kill_actor_and_wait(ray, ACTOR_NAME, NAMESPACE)
        outs = _generate(ex, engine, tok, [("p0", TASKS[0])], n=4)  # the rollout goes on without the actor
        assert len(outs[0]) == 4
    finally:
        ray.shutdown()
    log = [line for line in read_log(tmp_path) if "task_id" in line]
    assert len(log) == 12 and all(isinstance(line["edg"], dict) for line in log)
    groups = {}
    for line in log:
        groups.setdefault(line["group"]["id"], set()).add(json.dumps(line["edg"]["closed"]))
    assert all(len(v) == 1 for v in groups.values())  # one set of gates per group
    stale = [line["edg"]["stale"] for line in log]
    assert stale == [False] * 8 + [True] * 4
    assert log[-1]["edg"]["failures"]["gates"] >= 1
    # gold_exact is pinned: never among the closed gates
    assert all("gold_exact" not in line["edg"]["closed"] for line in log)
