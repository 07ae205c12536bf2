"""OpenRLHF's experience maker (unmodified, hooked at import) dispatches registered names to our functions."""

import pytest
import torch

from openrlhf_fixtures import make_maker, response, to_experiences, zero_kl
from openrlhf_mtgrpo import EstimatorOutput, register_advantage_estimator
from openrlhf_mtgrpo.integration.openrlhf_hooks import TURN_KEYS

CALLS = []


@register_advantage_estimator("toy_turn_index", override=True)
def toy(inp):
    """Turn k of every rollout gets advantage (k + 1) * 10 + rollout reward; recorded for the test."""
    from openrlhf_mtgrpo.advantages.core import turn_values_to_tokens

    k = torch.arange(inp.turns.rewards.shape[1]).float().unsqueeze(0)
    vals = (k + 1) * 10 + inp.rewards.unsqueeze(1)
    adv = turn_values_to_tokens(vals, inp.turns.spans, inp.turns.num_turns, inp.action_mask.shape[1])
    adv = adv * inp.action_mask
    CALLS.append(adv.clone())
    return EstimatorOutput(advantages=adv, returns=adv.clone(), metrics={"toy": 1.5})


def batch():
    rs = [response(4, [2, 3], reward=1.0), response(4, [2], reward=0.0),
          response(3, [1, 1, 2], reward=1.0), response(5, [4, 1], reward=0.0)]
    return zero_kl(to_experiences(rs, micro_batch=2))


def test_registered_estimator_output_is_what_lands_in_experiences():
    CALLS.clear()
    maker = make_maker("toy_turn_index", n=4)
    exps = maker.compute_advantages_and_returns(batch())
    assert len(CALLS) == 1
    ours = CALLS[0]
    got = torch.cat([torch.nn.functional.pad(e.advantages, (0, ours.shape[1] - e.advantages.shape[1])) for e in exps])
    torch.testing.assert_close(got, ours)
    # rollout 0: prompt 4 tokens, turn0 at seq [4,6) -> action [3,5), feedback 3, turn1 seq [9,12) -> action [8,11)
    row0 = exps[0].advantages[0]
    assert row0[3:5].tolist() == [11.0, 11.0] and row0[8:11].tolist() == [21.0, 21.0, 21.0]
    assert row0[:3].abs().sum() == 0 and row0[5:8].abs().sum() == 0
    for e in exps:
        assert not any(k in e.info for k in TURN_KEYS)  # per-turn tensors removed before the actors
        assert torch.all(e.info["mtgrpo/toy"] == 1.5)
        assert e.kl is None


def test_builtin_group_norm_keeps_its_values_and_drops_turn_keys():
    maker = make_maker("group_norm", n=4)
    exps = maker.compute_advantages_and_returns(batch())
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    expected = (rewards - rewards.mean()) / (rewards.std() + 1e-9)
    flat = [e.advantages[i][e.action_mask[i].bool()] for e in exps for i in range(len(e.advantages))]
    for adv, exp in zip(flat, expected):
        # reinforce-style cumulative return with gamma 1: every action token carries the group-normalised reward
        torch.testing.assert_close(adv, torch.full_like(adv, float(exp)))
    for e in exps:
        assert not any(k in e.info for k in TURN_KEYS)


def test_unknown_name_in_maker_lists_registered():
    import pytest

    from openrlhf_mtgrpo.registry import UnknownNameError, get_advantage_estimator

    with pytest.raises(UnknownNameError, match="gtpo_hybrid"):
        get_advantage_estimator("nope")


def test_plugin_estimator_without_turn_data_fails_loudly():
    import pytest

    from openrlhf_fixtures import make_maker

    exps = batch()
    for e in exps:
        for k in TURN_KEYS:
            e.info.pop(k)
    with pytest.raises(ValueError, match="needs per-turn data"):
        make_maker("gtpo_hybrid", n=4).compute_advantages_and_returns(exps)


def test_info_survives_replay_buffer_and_actor_metric_conversion():
    """After our maker, what the replay buffer and PolicyModelActor do to info must not fail (research §1.7)."""
    from openrlhf.trainer.ppo_utils.experience import split_experience_batch

    exps = make_maker("gtpo_hybrid", n=4).compute_advantages_and_returns(batch())
    items = [item for e in exps for item in split_experience_batch(e)]
    assert len(items) == 4
    for item in items:
        for k, v in item.info.items():
            torch.tensor([v.item()] if isinstance(v, torch.Tensor) else v, dtype=torch.float)


def test_step_log_has_diagnostics_and_calibration_hash(tmp_path):
    import json

    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    maker = make_maker("gtpo_hybrid", n=4, rollout_log_dir=str(tmp_path))
    maker.compute_advantages_and_returns(batch())
    maker.compute_advantages_and_returns(batch())
    lines = [json.loads(l) for l in open(tmp_path / "steps.jsonl")]  # json rejects nothing: no NaN written
    assert len(lines) == 2
    assert lines[0]["estimator"] == "gtpo_hybrid"
    assert lines[0]["calibration_sha256"] == load_calibration().sha256
    assert lines[1]["step"] == lines[0]["step"] + 1 and lines[0]["rollouts"] == 4 and lines[0]["excluded_infra"] == 0
    assert lines[0]["estimator_options"]["pool"] == "turn" and lines[0]["estimator_options"]["gamma"] == 0.9
    for key in ("misalignment_rate", "dead_turn_rate", "adv_mean_success", "adv_mean_failure",
                "zero_variance_group_rate"):
        assert key in lines[0]


def test_reward_clip_and_return_as_upstream_group_norm():
    """grpo_outcome on single-turn rollouts is OpenRLHF's group_norm: with --reward.clip_range and the
    KL-in-reward term on, upstream clips the *normalised* reward and logs reward.sum(-1) as info["return"]
    (experience_maker.py:compute_advantages_and_returns, models/utils.py:compute_reward); ours must too."""
    import copy

    from openrlhf_mtgrpo.advantages.types import EstimatorOptions

    rs = [response(4, [3], reward=r) for r in (1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0)]
    exps = to_experiences(rs, micro_batch=4)
    gen = torch.Generator().manual_seed(0)
    for e in exps:
        e.kl = torch.rand(e.action_mask.shape, generator=gen) * e.action_mask
    clip = (-0.5, 0.5)
    upstream = make_maker("group_norm", n=4, clip_range=clip)
    ours = make_maker("grpo_outcome", n=4, clip_range=clip, gtpo=EstimatorOptions(eps=1e-9))
    for m in (upstream, ours):
        m.kl_ctl.value = 0.1
    original = type(upstream).compute_advantages_and_returns.__mtgrpo_original__
    want = original(upstream, copy.deepcopy(exps))
    got = ours.compute_advantages_and_returns(copy.deepcopy(exps))
    normalised = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 1]).reshape(2, 4)
    normalised = ((normalised - normalised.mean(1, keepdim=True)) / normalised.std(1, keepdim=True)).reshape(-1)
    assert normalised.abs().max() > 1.4  # the clip range really cuts
    for w, g in zip(want, got):
        mask = w.action_mask.bool()
        torch.testing.assert_close(g.advantages[mask], w.advantages[mask])
        torch.testing.assert_close(g.returns[mask], w.returns[mask])
        torch.testing.assert_close(g.info["return"], w.info["return"])
        torch.testing.assert_close(g.info["group_reward_std"], w.info["group_reward_std"])
    # and the clip did bite: a lone success in its group (normalised 1.5) is capped at 0.5 before the KL term
    first = got[0].advantages[0][got[0].action_mask[0].bool()]
    assert float(first[-1]) == pytest.approx(0.5 - 0.1 * float(exps[0].kl[0][exps[0].action_mask[0].bool()][-1]),
                                             abs=1e-6)


def test_step_log_is_valid_json_and_names_the_benchmark(tmp_path, data_dir):
    import json
    from types import SimpleNamespace

    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
    from openrlhf_mtgrpo.rollout.step_log import log_training_step

    args = SimpleNamespace(mtgrpo=SimpleNamespace(rollout_log_dir=str(tmp_path), calibration=None, tau_version="tau2",
                                                  data_dir=data_dir), gtpo=None)
    rec = log_training_step({"misalignment_rate": 0.25, "adv_mean_success": float("nan")}, "gtpo_hybrid", args,
                            rollouts=8, excluded=1)
    line = json.loads(open(tmp_path / "steps.jsonl").read(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert line == rec and line["adv_mean_success"] is None and line["nonfinite"] == ["adv_mean_success"]
    assert line["misalignment_rate"] == 0.25 and line["rollouts"] == 8 and line["excluded_infra"] == 1
    env = AirlineEnv("tau2", data_dir)
    assert line["benchmark"] == dict(env.data.identity, **env.engine.identity())
