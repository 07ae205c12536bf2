"""The real training loop, end to end on CPU: the unmodified ``python -m openrlhf.cli.train_ppo_ray``
with ``--advantage_estimator gtpo_hybrid|mt_grpo`` and our agent file, 2 steps, sync and async.

Stand-ins only at the GPU boundary (docs/testing.md).  Everything else is the real thing: the
driver, Ray placement, the rollout actor loading our agent file, the airline environment, the
rule-based customer over local HTTP, ``_process_response_into_experience``,
``make_experience_batch``, our advantages, the replay buffer, DeepSpeed ``training_step`` with an
optimiser step, the weight broadcast to the engine and the checkpoint save.
"""

import math
import os

import pytest
import torch

from e2e_run import RunSpec, probe_module, run_training
from reference import ESTIMATORS, token_advantages

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TURN_KEYS = ("mtgrpo_num_turns", "mtgrpo_turn_spans", "mtgrpo_turn_rewards", "mtgrpo_excluded", "mtgrpo_episode")

RUNS = {
    # sync trainer, GTPO hybrid, a reference model and the KL loss
    "sync_gtpo_kl": RunSpec(estimator="gtpo_hybrid", async_train=False, kl_loss=True),
    # async trainer (GenerateSamplesActor + TrainingActor), MT-GRPO
    "async_mtgrpo": RunSpec(estimator="mt_grpo", async_train=True, kl_loss=False),
}


@pytest.fixture(scope="module")
def customer(tau2_family):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    # The customer ends the conversation after the agent's second message (###STOP###), as an impatient
    # customer would. The random policy then succeeds wherever doing nothing is right (train tasks 0, 1
    # and 4 need no write and no information said) and fails elsewhere or when it runs out of turns or
    # tokens: the log holds both outcomes, so IRC has evidence to write a calibration from.
    with LocalChatServer(make_rule_based_user(AirlineEnv(*tau2_family), max_user_turns=2)) as srv:
        yield srv.base_url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("e2e"))


_results = {}


@pytest.fixture(scope="module", params=list(RUNS))
def run(request, workdir, tau2_family, customer):
    name = request.param
    if name not in _results:
        version, data_dir = tau2_family
        _results[name] = run_training(workdir, name, RUNS[name], data_dir, customer, timeout=900, version=version)
    r = _results[name]
    if r.returncode != 0:
        pytest.fail(f"{name}: train_ppo_ray exited with {r.returncode} after {r.seconds:.0f} s; log tail:\n"
                    + r.log_text()[-6000:])
    return r


# ------------------------------------------------------------------ helpers


def _steps(run):
    """Per training step: the experience batches the policy's replay buffer got, and the PPO update."""
    steps, pending = [], []
    for e in run.events("policy"):
        if e["event"] == "append":
            pending.append(torch.load(os.path.join(run.paths["probe"], e["file"]), weights_only=False))
        elif e["event"] == "ppo_train":
            steps.append({"batches": pending, "update": e})
            pending = []
    return steps


def _samples(batches):
    for b in batches:
        for i in range(b["action_mask"].shape[0]):
            yield {"label": b["labels"][i], "mask": b["action_mask"][i], "adv": b["advantages"][i],
                   "reward": float(b["rewards"][i]), "info": {k: v for k, v in b["info"].items()}}


def _mask_of(record, length):
    m = torch.zeros(length, dtype=torch.long)
    for s, e in record["action_ranges"]:
        m[max(s - 1, 0):min(e - 1, length)] = 1
    return m


def _match_records(samples, records):
    """Each sample's rollout-log line: same label and the same action mask."""
    used, out = set(), []
    for s in samples:
        length = s["mask"].shape[0]
        hit = next((i for i, r in enumerate(records) if i not in used and r.get("label") == s["label"]
                    and torch.equal(_mask_of(r, length), s["mask"].long())), None)
        assert hit is not None, f"no rollout-log line for a trained sample of {s['label']}"
        used.add(hit)
        out.append(records[hit])
    return out


# ------------------------------------------------------------------ the tests


def test_launcher_exits_cleanly_after_two_steps(run):
    steps = _steps(run)
    assert len(steps) == run.spec.steps
    text = run.log_text()
    assert "Global step 2" in text and "Global step 3" not in text
    if run.spec.async_train:  # the async trainer's actors did the work
        assert "GenerateSamplesActor" in text and "TrainingActor" in text
    else:
        assert "GenerateSamplesActor" not in text


def test_per_step_metrics_logged(run):
    scalars = run.tensorboard_scalars()
    for tag in ("train/policy_loss", "train/actor_grad_norm", "train/reward", "train/mtgrpo_turns",
                "train/mtgrpo/dead_turn_rate"):
        assert tag in scalars, sorted(scalars)
        assert sorted(s for s, _ in scalars[tag]) == [1, 2], (tag, scalars[tag])
        assert all(math.isfinite(v) for _, v in scalars[tag]), (tag, scalars[tag])
    assert any(v > 0 for _, v in scalars["train/actor_grad_norm"])
    steps = run.step_records()
    assert [s["estimator"] for s in steps] == [run.spec.estimator] * run.spec.steps
    if run.spec.kl_loss:
        kl = dict(scalars["train/kl"])
        assert kl[1] == 0.0 and kl[2] > 0.0  # the reference equals the actor only before the first update


def test_advantages_equal_the_estimator_recomputed_from_the_rollout_log(run):
    records = run.rollout_records()
    fn = ESTIMATORS[run.spec.estimator]
    nonzero_steps = 0
    for step in _steps(run):
        samples = list(_samples(step["batches"]))
        assert len(samples) == run.spec.n_samples * run.spec.prompts_per_step
        recs = _match_records(samples, records)
        groups = {}
        for s, r in zip(samples, recs):
            assert not r["infra_failed"] and s["reward"] == r["reward"]
            groups.setdefault(s["label"], []).append((s, r))
        assert sorted(len(g) for g in groups.values()) == [run.spec.n_samples] * run.spec.prompts_per_step
        for members in groups.values():
            options = {r["estimator_options"]["pool"] for _, r in members}
            assert options == {"turn"}, options  # the run's --gtpo.pool (the default), logged per episode
            kw = {"pool": "turn"} if run.spec.estimator == "gtpo_hybrid" else {}
            turn_adv = fn([{"outcome": r["reward"], "rewards": [t["reward"] for t in r["turns"]]} for _, r in members],
                          **kw)
            for (s, r), a in zip(members, turn_adv):
                want = torch.tensor(token_advantages(a, r["action_ranges"], s["mask"].shape[0]))
                torch.testing.assert_close(s["adv"].double(), want.double(), atol=2e-5, rtol=1e-5)
                nonzero_steps += bool(want.abs().sum() > 0)
    assert nonzero_steps > 0, "no step had a non-zero advantage: the run proves nothing about training"


def test_per_turn_keys_removed_before_the_actor_update(run):
    records = run.rollout_records()
    assert records and all(len(r["turns"]) >= 1 for r in records)  # the agent produced per-turn data
    for step in _steps(run):
        for b in step["batches"]:
            assert not set(TURN_KEYS) & set(b["info"]), sorted(b["info"])
            n = b["action_mask"].shape[0]
            for k, v in b["info"].items():  # what training_step turns into metrics: one value per sample
                assert v.shape == (n,), (k, tuple(v.shape))


def test_actor_weights_change_and_reach_the_engine(run):
    steps = _steps(run)
    engine = [e for e in run.events("engine") if e["event"] in ("loaded", "weights_synced")]
    assert engine[0]["event"] == "loaded"
    synced = [e["digest"] for e in engine[1:]]
    assert synced == [s["update"]["after"] for s in steps]  # the engine got exactly the actor's new weights
    assert steps[0]["update"]["before"] == engine[0]["digest"]  # both started from the same checkpoint
    for step in steps:
        moved = any(float(b["advantages"].abs().sum()) > 0 for b in step["batches"])
        if moved:
            assert step["update"]["after"] != step["update"]["before"]
            assert step["update"]["status"]["actor_grad_norm"] > 0
    # the model saved at the end is the last one the engine received
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(run.paths["final"], dtype=torch.bfloat16)
    assert probe_module().weights_digest(final) == synced[-1]


def test_checkpoints_written(run):
    actor = os.path.join(run.paths["ckpt"], "_actor")
    tags = sorted(d for d in os.listdir(actor) if d.startswith("global_step"))
    assert tags == ["global_step1", "global_step2"], os.listdir(actor)
    assert os.path.exists(os.path.join(run.paths["final"], "model.safetensors"))


def test_engine_honours_the_per_turn_token_cap(run):
    gens = [e for e in run.events("engine") if e["event"] == "generate"]
    assert gens
    cap = run.spec.max_new_tokens
    assert all(g["max_tokens"] is not None and g["max_tokens"] <= cap for g in gens)
    assert all(g["n_out"] <= g["max_tokens"] for g in gens)
    hit = [g for g in gens if g["finish_reason"] == "length"]
    assert hit and all(g["n_out"] == cap for g in hit)
    ended = [r for r in run.rollout_records() if r["termination"] == "turn_too_long"]
    assert ended and all(r["turns"][-1]["finish_reason"] == "length" for r in ended)


def test_irc_analyze_on_the_run_rollout_log(run, tmp_path, capsys, tau2_family):
    """IRC reads the run's own log -- its calibration, group ids and estimator settings come from the lines --
    and writes a calibration from it (the log holds successes and failures, see ``customer``)."""
    import json

    from openrlhf_mtgrpo.cli import main as cli
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    records = run.rollout_records()
    successes = sum(bool(r["success"]) for r in records)
    assert 0 < successes < len(records), f"{successes} of {len(records)} rollouts succeeded: IRC needs both outcomes"
    batch = read_logs([run.paths["rollout_logs"]])
    # IRC groups by the groups the trainer normalised over (recorded by the advantage hook), and under OpenRLHF
    # 0.11 they are the rollout workers' own group ids, sync and async
    assert batch.meta.grouping == "the trainer's groups (trainer_groups.jsonl)"
    assert not any("disagree" in w for w in batch.meta.warnings), batch.meta.warnings
    assert batch.meta.calibration_sha256 == load_calibration(run.paths["calibration"]).sha256
    assert batch.meta.group_sizes == {run.spec.n_samples: run.spec.steps * run.spec.prompts_per_step}
    assert batch.meta.estimator_options["pool"] == "turn"
    env = AirlineEnv(*tau2_family)
    assert batch.meta.benchmark == dict(env.data.identity, **env.engine.identity())  # the data, the engine
    out = tmp_path / "irc"
    assert cli(["irc", "analyze", run.paths["rollout_logs"], "--out", str(out), "--calibration",
                run.paths["calibration"], "--estimator", run.spec.estimator, "--bootstrap", "200"]) == 0
    capsys.readouterr()
    result = json.load(open(out / "irc_result.json"))
    assert result["n_rollouts"] == len(records) == run.spec.steps * run.spec.n_samples * run.spec.prompts_per_step
    cal = load_calibration(str(out / "irc_calibration.yaml"))
    assert set(cal.weights) >= {"message", "tool_error"}  # the components the run was scored with
    assert cal.provenance["parent_sha256"] == batch.meta.calibration_sha256
    assert (cal.provenance["rollouts"], cal.provenance["successes"]) == (len(records), successes)
