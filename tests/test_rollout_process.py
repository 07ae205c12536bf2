"""What one rollout process shares across its episodes (issue #28 items 5 and 8, and #29's domain_timeout):

* one HTTP client for every episode's customer, closed on request (before: one per episode, never closed);
* a domain call past ``--mtgrpo.domain_timeout`` ends the episode as infrastructure (``domain_timeout``), logged
  and excluded, never a hang;
* the groups the trainer normalised over are recorded (``trainer_groups.jsonl``) and IRC groups by them, even
  where the rollout log's own group ids would say otherwise.

The real executor with the scripted engine, the toy tokenizer and a real local HTTP customer, as tests/test_rollout.py."""

import asyncio
import json
import time

import pytest

from irc_logs import line, write
from rollout_helpers import (AirlineEnv, LocalChatServer, Params, ScriptedEngine, build_toy_tokenizer,
                             make_executor, make_rule_based_user, read_log)

from openrlhf_mtgrpo import trainer_groups
from openrlhf_mtgrpo.irc.logs import read_logs
from openrlhf_mtgrpo.rollout import user_sim

TASK = "7"


@pytest.fixture(scope="module")
def data_dir(tau2_family):
    return tau2_family[1]


@pytest.fixture(scope="module")
def env(tau2_family):
    return AirlineEnv(*tau2_family)


@pytest.fixture(scope="module")
def tok(data_dir, env):
    return build_toy_tokenizer(data_dir=data_dir, version=env.version)


@pytest.fixture
def user_server(env):
    with LocalChatServer(make_rule_based_user(env)) as srv:
        yield srv


def _episodes(ex, engine, tok, n):
    async def main():
        outs = await asyncio.gather(*(ex.execute(prompt="", label=TASK, sampling_params=Params(), max_length=60000,
                                                 hf_tokenizer=tok, llm_engine=engine) for _ in range(n)))
        client = ex.http.get()
        await ex.aclose()
        return outs, client

    return asyncio.run(main())


def test_one_http_client_serves_every_episode_of_the_process_and_is_closed(env, tok, user_server, tmp_path, data_dir,
                                                                           monkeypatch):
    made = []
    real = user_sim.new_http_client
    monkeypatch.setattr(user_sim, "new_http_client", lambda: made.append(real()) or made[-1])
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    outs, client = _episodes(ex, ScriptedEngine(tok, env), tok, 8)
    assert [o["reward"] for o in outs] == [1.0] * 8
    assert user_server.requests >= 16  # every episode talked to the customer ...
    assert len(made) == 1 and made[0] is client  # ... through the one client
    assert client.is_closed


def test_a_hanging_tool_ends_the_episode_as_domain_timeout(env, tok, user_server, tmp_path, data_dir, monkeypatch):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version, domain_timeout=0.3)
    domain = asyncio.run(ex.env(env.version))
    real_reset = domain.reset

    def reset(task):
        ep = real_reset(task)
        real = ep.assistant_message

        def slow(text, calls, **kw):
            if calls:
                time.sleep(5)  # a tool whose backend does not answer
            return real(text, calls, **kw)

        ep.assistant_message = slow
        return ep

    monkeypatch.setattr(domain, "reset", reset)
    t0 = time.perf_counter()
    outs, _ = _episodes(ex, ScriptedEngine(tok, env), tok, 2)
    assert time.perf_counter() - t0 < 5  # the two episodes ran at once and neither waited for its tool
    log = read_log(tmp_path)
    assert len(log) == 2
    for rec, out in zip(log, outs):
        assert rec["termination"] == "infrastructure_error" and rec["infra_failed"]
        assert rec["infra_cause"] == "domain_timeout" and "0.3 s" in rec["infra_error"]
        assert out["extra_logs"]["mtgrpo_infra_failed"] == 1.0 and out["sample_info"]["mtgrpo_excluded"]


def test_every_episode_carries_its_key_to_the_trainer(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    outs, _ = _episodes(ex, ScriptedEngine(tok, env), tok, 3)
    log = read_log(tmp_path)
    keys = sorted(o["sample_info"]["mtgrpo_episode"] for o in outs)
    assert keys == sorted(trainer_groups.episode_key(r["episode"]) for r in log) and len(set(keys)) == 3


def _split_logs(tmp_path, trainer=True):
    """Two tasks x 4 samples; the rollout log's ids split the first task's 4 samples into two groups of 2 (as a
    rollout worker would that saw the prompt's samples arrive in two calls); the trainer had them as one group."""
    recs, keys = [], []
    for i in range(8):
        task = "a" if i < 4 else "b"
        gid = ("a1" if i < 2 else "a2") if task == "a" else "b"
        rec = line(task, i % 2 == 0, [{"message": 1.0}, {"gold_exact": float(i % 2 == 0)}],
                   group=(gid, 2 if task == "a" else 4, i % 2 if task == "a" else i - 4))
        rec["episode"] = trainer_groups.new_episode_id()
        keys.append(trainer_groups.episode_key(rec["episode"]))
        recs.append(rec)
    write(tmp_path / "rollouts-x.jsonl", recs)
    if trainer:
        trainer_groups.append_step(str(tmp_path), [keys[:4], keys[4:]], 4)
    return recs


def test_irc_groups_by_the_trainers_groups_and_says_where_the_log_disagrees(tmp_path):
    _split_logs(tmp_path)
    batch = read_logs([str(tmp_path)])
    assert batch.meta.grouping == "the trainer's groups (trainer_groups.jsonl)"
    assert list(batch.group[:4]) == [batch.group[0]] * 4 and len(set(batch.group)) == 2
    assert batch.meta.group_sizes == {4: 2}
    assert any("disagree with the trainer's groups in 1 group(s)" in w for w in batch.meta.warnings)


def test_without_the_trainers_record_irc_uses_the_logs_group_ids(tmp_path):
    _split_logs(tmp_path, trainer=False)
    batch = read_logs([str(tmp_path)])
    assert batch.meta.grouping == "group ids recorded in the logs" and len(set(batch.group)) == 3


def test_the_hook_records_the_groups_it_normalised_over(tmp_path):
    """``record_trainer_groups`` as the advantage hook calls it: OpenRLHF's sample index // n."""
    import torch
    from types import SimpleNamespace

    from openrlhf_mtgrpo.integration.openrlhf_hooks import record_trainer_groups

    args = SimpleNamespace(mtgrpo=SimpleNamespace(rollout_log_dir=str(tmp_path)))
    popped = [{"mtgrpo_episode": torch.tensor([10 + i])} for i in range(6)]
    index = torch.tensor([3, 0, 4, 1, 5, 2])
    record_trainer_groups(popped, torch.div(index, 3, rounding_mode="floor"), 3, args)
    rec = json.loads((tmp_path / trainer_groups.FILE).read_text())
    assert rec == {"format": 1, "n": 3, "groups": [[10, 12, 14], [11, 13, 15]]}
