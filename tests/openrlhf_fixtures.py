"""Build OpenRLHF 0.11 trainer pieces on CPU without a cluster (the style of OpenRLHF's own tests)."""

from types import SimpleNamespace

import torch

from openrlhf_mtgrpo.rollout.sample_info import turn_sample_info


def make_args(estimator, n=4, gtpo=None, clip_range=None, rollout_log_dir=None):
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions

    o = gtpo or EstimatorOptions()
    return SimpleNamespace(
        rollout=SimpleNamespace(n_samples_per_prompt=n),
        reward=SimpleNamespace(clip_range=clip_range, overlong_buffer_len=None, stop_properly_penalty_coef=None,
                               overlong_penalty_factor=1.0),
        algo=SimpleNamespace(advantage=SimpleNamespace(estimator=estimator, gamma=1.0, lambd=1.0, no_std_norm=False)),
        gtpo=SimpleNamespace(gamma=o.gamma, lam=o.lam, eps=o.eps, no_std_norm=not o.std_norm, std_ddof=o.std_ddof,
                             pool=o.pool, turn_indexing=o.turn_indexing),
        mtgrpo=SimpleNamespace(rollout_log_dir=rollout_log_dir, calibration=None),
    )


def make_maker(estimator, **kw):
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker

    maker = RemoteExperienceMaker.__new__(RemoteExperienceMaker)
    args = make_args(estimator, **kw)
    maker.strategy = SimpleNamespace(args=args)
    maker.args = args
    maker.advantage_estimator = estimator
    maker.kl_ctl = SimpleNamespace(value=0.0)
    return maker


def response(prompt_len, turns, feedback_len=3, reward=1.0, turn_rewards=None, excluded=False):
    """An agent result dict as our executor returns it: prompt, then turns of given lengths with feedback between."""
    tokens = list(range(100, 100 + prompt_len))
    ranges = []
    for i, length in enumerate(turns):
        s = len(tokens)
        tokens += [7] * length
        ranges.append((s, s + length))
        if i < len(turns) - 1:
            tokens += [9] * feedback_len
    return {
        "prompt": "p", "label": "l", "observation_tokens": tokens, "action_ranges": ranges, "reward": reward,
        "scores": reward, "extra_logs": {}, "rollout_log_probs": None, "truncated": False,
        "sample_info": turn_sample_info(ranges, turn_rewards or [0.0] * len(turns), excluded),
    }


def to_experiences(responses, micro_batch=2, max_len=4096):
    from openrlhf.trainer.ppo_utils.experience import Experience
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    gen = SamplesGenerator.__new__(SamplesGenerator)
    singles = [gen._process_response_into_experience(r, max_len=max_len) for r in responses]
    for i, s in enumerate(singles):
        s.index = [i]
    return [Experience.concat_experiences(singles[i:i + micro_batch], 0) for i in range(0, len(singles), micro_batch)]


def zero_kl(experiences):
    for e in experiences:
        e.kl = torch.zeros_like(e.action_mask, dtype=torch.float32)
    return experiences
