"""Turn-level estimators: hand-computed examples, properties, the paper's failure mode, length bias."""

import itertools
import math

import pytest
import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.estimators import grpo_outcome, gtpo_hybrid, mt_grpo
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOptions, TurnInfo

# one group of 4 rollouts, 3 turns each, known per-turn rewards and outcomes
R = [[1.0, 0.3, 0.0], [0.3, 0.3, 0.1], [0.5, 1.0, 0.0], [0.3, -0.1, -0.2]]
O = [1.0, 0.0, 1.0, 0.0]


# ---------------------------------------------------------------- plain-Python references


def mean(xs):
    return sum(xs) / len(xs)


def std(xs, ddof):
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - ddof))


def gn(xs, eps, std_norm, ddof):
    m = mean(xs)
    if len(xs) <= ddof:
        return [0.0] * len(xs)
    return [(x - m) / (std(xs, ddof) + eps) if std_norm else x - m for x in xs]


def ref_outcome(eps, std_norm, ddof):
    return gn(O, eps, std_norm, ddof)


def ref_returns(gamma, indexing):
    out = []
    for r, o in zip(R, O):
        K = len(r)
        row = []
        for k in range(K):
            if indexing == "zero":
                row.append(sum(gamma ** (l - k) * r[l] for l in range(k, K)) + gamma ** (K - k) * o)
            else:  # turns 1..K in the paper's sum: l runs to K-1 (1-based), the last turn's reward is unused
                row.append(sum(gamma ** (l - k) * r[l] for l in range(k, K - 1)) + gamma ** (K - 1 - k) * o)
        out.append(row)
    return out


def ref_gtpo(gamma, lam, eps, std_norm, ddof, pool, indexing):
    ret = ref_returns(gamma, indexing)
    ao = ref_outcome(eps, std_norm, ddof)
    if pool == "group":
        flat = gn([x for row in ret for x in row], eps, std_norm, ddof)
        g = [flat[i * 3:(i + 1) * 3] for i in range(4)]
    else:
        cols = [gn([ret[i][k] for i in range(4)], eps, std_norm, ddof) for k in range(3)]
        g = [[cols[k][i] for k in range(3)] for i in range(4)]
    return [[g[i][k] + lam * ao[i] for k in range(3)] for i in range(4)]


def ref_mt(eps, std_norm, ddof):
    cols = [gn([R[i][k] for i in range(4)], eps, std_norm, ddof) for k in range(3)]
    ao = ref_outcome(eps, std_norm, ddof)
    return [[sum(cols[l][i] for l in range(k, 3)) + ao[i] for k in range(3)] for i in range(4)]


# ---------------------------------------------------------------- estimator input builder


def make_input(rewards, outcomes, groups, turn_lengths, options, prompt=2, gap=2, excluded=None):
    """Rollouts with turns of given token lengths separated by ``gap`` env tokens, in action space."""
    n = len(outcomes)
    kmax = max(len(t) for t in turn_lengths)
    spans = torch.zeros(n, kmax, 2, dtype=torch.long)
    rows = []
    for i, lens in enumerate(turn_lengths):
        pos, mask = prompt, [0] * prompt
        for k, L in enumerate(lens):
            spans[i, k] = torch.tensor([pos, pos + L])
            mask += [1] * L + [0] * gap
            pos += L + gap
        rows.append(mask)
    A = max(len(m) for m in rows)
    mask = torch.tensor([m + [0] * (A - len(m)) for m in rows], dtype=torch.bool)
    r = torch.zeros(n, kmax)
    for i, rr in enumerate(rewards):
        r[i, :len(rr)] = torch.tensor(rr)
    return EstimatorInput(
        rewards=torch.tensor(outcomes), group_index=torch.tensor(groups), action_mask=mask,
        turns=TurnInfo(spans=spans, num_turns=torch.tensor([len(t) for t in turn_lengths]), rewards=r),
        excluded=None if excluded is None else torch.tensor(excluded), options=options)


def first_token_values(inp, out):
    """Advantage on the first token of every turn: (N, K)."""
    n, kmax = inp.turns.rewards.shape
    vals = torch.zeros(n, kmax, dtype=torch.float64)
    for i, k in itertools.product(range(n), range(kmax)):
        if k < inp.turns.num_turns[i]:
            vals[i, k] = out.advantages[i, inp.turns.spans[i, k, 0]]
    return vals


OPTION_GRID = [dict(std_norm=s, std_ddof=d, pool=p, turn_indexing=t)
               for s in (True, False) for d in (0, 1) for p in ("group", "turn") for t in ("zero", "one")]


@pytest.mark.parametrize("opt", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_gtpo_hybrid_matches_hand_computation(opt):
    o = EstimatorOptions(gamma=0.9, lam=0.3, eps=1e-6, **opt)
    inp = make_input(R, O, [0] * 4, [[2, 3, 1]] * 4, o)
    got = first_token_values(inp, gtpo_hybrid(inp))
    want = ref_gtpo(0.9, 0.3, 1e-6, o.std_norm, o.std_ddof, o.pool, o.turn_indexing)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("std_norm,ddof", [(True, 1), (True, 0), (False, 1)])
def test_mt_grpo_and_outcome_match_hand_computation(std_norm, ddof):
    o = EstimatorOptions(std_norm=std_norm, std_ddof=ddof)
    inp = make_input(R, O, [0] * 4, [[1, 1, 1]] * 4, o)
    torch.testing.assert_close(first_token_values(inp, mt_grpo(inp)),
                               torch.tensor(ref_mt(1e-6, std_norm, ddof), dtype=torch.float64), atol=1e-6, rtol=0)
    ao = ref_outcome(1e-6, std_norm, ddof)
    torch.testing.assert_close(first_token_values(inp, grpo_outcome(inp)),
                               torch.tensor([[a] * 3 for a in ao], dtype=torch.float64), atol=1e-6, rtol=0)


def test_literal_values():
    # o = [1, 0, 1, 0]: mean 0.5, unbiased std sqrt(1/3) -> A^O = +-0.8660254
    ao = core.outcome_advantage(torch.tensor(O), torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.bool))
    torch.testing.assert_close(ao, torch.tensor([0.8660239, -0.8660239, 0.8660239, -0.8660239], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    # discounted return of rollout 0, turn 0: 1.0 + 0.9*0.3 + 0.81*0.0 + 0.729*1 = 1.999
    ret = core.discounted_turn_returns(torch.tensor(R), torch.tensor([3] * 4), torch.tensor(O), 0.9)
    assert ret[0, 0].item() == pytest.approx(1.999, abs=1e-6)
    assert ret[3, 2].item() == pytest.approx(-0.2, abs=1e-6)


def test_masks_groups_and_zero_mean():
    o = EstimatorOptions(lam=0.0)
    inp = make_input(R + R, O + [1.0, 1.0, 0.0, 0.0], [0] * 4 + [1] * 4, [[2, 3, 1], [1], [2, 2], [3, 1, 1]] * 2, o)
    out = gtpo_hybrid(inp)
    assert torch.all(out.advantages[~inp.action_mask] == 0)  # non-action tokens (prompt, env, padding)
    tv = first_token_values(inp, out)
    valid = inp.turns.valid
    for g in (0, 1):  # pooled GN without the outcome term: zero mean over the group's turns
        rows = slice(4 * g, 4 * g + 4)
        assert tv[rows][valid[rows]].sum().item() == pytest.approx(0.0, abs=1e-5)
    inp = make_input(R, O, [0] * 4, [[1, 1, 1]] * 4, EstimatorOptions())
    assert first_token_values(inp, grpo_outcome(inp))[:, 0].sum().item() == pytest.approx(0.0, abs=1e-6)
    mt = first_token_values(inp, mt_grpo(inp))  # per turn index, A^I and A^O are zero-mean: so is A
    assert mt[:, 2].sum().item() == pytest.approx(0.0, abs=1e-5)


def test_single_rollout_group_and_all_equal_group_get_zero():
    inp = make_input([[1.0, 0.3]], [1.0], [0], [[2, 2]], EstimatorOptions())
    for fn in (gtpo_hybrid, mt_grpo, grpo_outcome):
        assert torch.all(fn(inp).advantages == 0)
    same = make_input([[0.3, 1.0]] * 4, [1.0] * 4, [5] * 4, [[1, 1]] * 4, EstimatorOptions())
    for fn in (gtpo_hybrid, mt_grpo, grpo_outcome):
        out = fn(same)
        assert torch.all(out.advantages == 0)
        assert out.metrics["zero_variance_group_rate"] == 1.0 and out.metrics["dead_turn_rate"] == 1.0


def test_excluded_rollouts_get_zero_and_do_not_shift_the_group():
    base = make_input(R, O, [0] * 4, [[1, 1, 1]] * 4, EstimatorOptions())
    with_infra = make_input(R + [[9.0, 9.0, 9.0]], O + [1.0], [0] * 5, [[1, 1, 1]] * 5, EstimatorOptions(),
                            excluded=[False] * 4 + [True])
    a, b = gtpo_hybrid(base), gtpo_hybrid(with_infra)
    torch.testing.assert_close(b.advantages[:4, :a.advantages.shape[1]], a.advantages)
    assert torch.all(b.advantages[4] == 0)


def test_packed_layout_equals_padded():
    inp = make_input(R, O, [0] * 4, [[2, 3, 1], [1], [2, 2], [3, 1, 1]], EstimatorOptions())
    vals = torch.arange(1, 13, dtype=torch.float32).reshape(4, 3)
    padded = core.turn_values_to_tokens(vals, inp.turns.spans, inp.turns.num_turns, inp.action_mask.shape[1])
    lengths = inp.action_mask.sum(1) + 2  # any per-sample lengths that contain the spans
    lengths = torch.full((4,), inp.action_mask.shape[1])
    offsets = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), lengths[:-1]]), 0)
    packed = core.turn_values_to_packed_tokens(vals, inp.turns.spans, inp.turns.num_turns, offsets, int(lengths.sum()))
    torch.testing.assert_close(packed, padded.reshape(-1))


def test_action_range_shift_and_truncation():
    spans = core.spans_from_action_ranges([(2, 5), (7, 10)], action_length=8)
    assert spans.tolist() == [[1, 4], [6, 8]]  # sequence (s, e) -> action [s-1, e-1), clipped by truncation
    idx = core.turn_index_map(spans.unsqueeze(0), torch.tensor([2]), 8)
    assert idx.tolist() == [[0, 1, 1, 1, 0, 0, 2, 2]]


# ---------------------------------------------------------------- the paper's failure mode


def _batch(groups, ks, kf, r_success, r_fail, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = 4 * groups
    o = torch.tensor([1.0, 1.0, 0.0, 0.0]).repeat(groups)
    gi = torch.arange(groups).repeat_interleave(4)
    K = torch.where(o > 0, torch.tensor(ks), torch.tensor(kf))
    r = torch.zeros(n, max(ks, kf))
    for i in range(n):
        if o[i] > 0:
            r[i, :ks] = torch.tensor(r_success)
        else:
            r[i, :kf] = r_fail(g, kf)
    return r, K, o, gi, torch.ones(n, dtype=torch.bool)


def _rates(r, K, o, gi, live):
    ao = core.outcome_advantage(o, gi, live)
    valid = torch.arange(r.shape[1])[None] < K[:, None]
    rate = lambda adv: core.alignment_diagnostics(adv, ao, o, valid, gi)["misalignment_rate"]
    kw = dict(eps=1e-6, std_norm=True, ddof=1)
    out = {"naive": rate(core.naive_turn_advantages(r, K, gi, live, **kw)),
           "mt_grpo": rate(core.mt_grpo_turn_advantages(r, K, o, gi, live, **kw)[0])}
    for pool in ("group", "turn"):
        adv = core.gtpo_hybrid_turn_advantages(r, K, o, gi, live, gamma=0.9, lam=0.3, pool=pool,
                                               turn_indexing="zero", **kw)[0]
        out[f"gtpo_{pool}"] = rate(adv)
    return out


def test_dense_reward_on_failed_turns_misaligns_naive_not_gtpo():
    """A component that fires on failed rollouts' turns (+0.1, like the paper's non-gold state change)."""
    rates = _rates(*_batch(32, 4, 4, [0.0] * 4, lambda g, k: torch.full((k,), 0.1)))
    assert rates["naive"] == 1.0  # every judged turn points the wrong way
    assert rates["mt_grpo"] == 0.75  # the outcome term rescues only the first turn
    assert rates["gtpo_group"] == 0.0 and rates["gtpo_turn"] == 0.0


def test_length_bias_of_per_turn_index_pooling():
    """Failures run longer (8 turns vs 3): late turn indices hold only failed rollouts (verl RFC #7244).
    Per-index GN compares them only with each other; pooling over the group does not."""
    rates = _rates(*_batch(32, 3, 8, [0.0, 1.0, 0.0],
                           lambda g, k: torch.where(torch.rand(k, generator=g) < 0.5, torch.tensor(0.1),
                                                    torch.tensor(-0.1))))
    assert rates["gtpo_turn"] == pytest.approx(0.18608, abs=1e-4)
    assert rates["gtpo_group"] == 0.0
    assert rates["naive"] > 0.2


def test_length_bias_of_group_pooling():
    """Successes run longer (12 turns vs 2), no turn reward: pooled over the group, a success's early turns
    (small discounted outcome) rank below its late ones and below the group mean; per turn index they do not."""
    rates = _rates(*_batch(32, 12, 2, [0.0] * 12, lambda g, k: torch.zeros(k)))
    assert rates["gtpo_group"] == pytest.approx(16 / 56)  # 8 of every 28 turns of a group: 28.6 %
    assert rates["gtpo_turn"] == 0.0


def test_default_pooling_is_per_turn_index():
    """Chosen by bench/pooling_study.py (docs/method.md): lower misalignment on the demo's airline rollouts."""
    assert EstimatorOptions().pool == "turn"
    from openrlhf_mtgrpo.irc.analyze import IRCOptions

    assert IRCOptions().pool == EstimatorOptions().pool


def test_diagnostics_values():
    adv = torch.tensor([[1.0, -1.0], [-1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])
    ao = torch.tensor([1.0, -1.0, 0.0, 0.0])
    d = core.alignment_diagnostics(adv, ao, torch.tensor([1.0, 0.0, 1.0, 1.0]),
                                   torch.tensor([[True, True], [True, True], [True, False], [True, True]]),
                                   torch.tensor([0, 0, 1, 1]))
    assert d["misalignment_rate"] == 0.25  # 1 of the 4 turns of group 0 (group 1 has no outcome spread)
    assert d["zero_variance_group_rate"] == 0.5
    assert d["dead_turn_rate"] == pytest.approx(3 / 7)
    assert d["adv_mean_failure"] == pytest.approx(-0.5)
