"""The advantage path runs on the device of its inputs: nothing in advantages/ (nor the hook's advantage
computation) allocates on the CPU behind the caller's back.

On CPU the check is a guard: the input tensors are *tagged* as living on a device of their own (they report
``meta``, their data stays on the CPU), and every torch operation that meets an untagged tensor, or allocates
without ``device=`` that device, is recorded with the line that did it.  A CPU allocation mixed with the inputs
would raise on CUDA ("Expected all tensors to be on the same device"); here it is a recorded violation, and the
values must still equal a plain CPU run.  With a GPU the same computations run on CUDA (``-m gpu``)."""

from __future__ import annotations

import contextlib
import traceback

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.turn_level import turn_advantages
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOptions, TurnInfo
from openrlhf_mtgrpo.registry import get_advantage_estimator

TAG = torch.device("meta")  # the device tagged tensors report
DATA_FACTORIES = {torch.tensor, torch.as_tensor, torch.asarray, torch.Tensor.new_tensor}


class Tagged(torch.Tensor):
    """A CPU tensor that reports device ``meta``: what "the caller's device" looks like to the code under test."""

    @staticmethod
    def __new__(cls, elem):
        r = torch.Tensor._make_wrapper_subclass(cls, elem.shape, strides=elem.stride(), dtype=elem.dtype,
                                                device=TAG, requires_grad=False,
                                                storage_offset=elem.storage_offset())
        r.elem = elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return f"Tagged({self.elem!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"a tagged tensor was used outside device_guard(): {func}")


def _where() -> str:
    """The innermost line of the package (else of this test) in the current stack."""
    frames = traceback.extract_stack()[:-2]
    ours = [f for f in frames if "/openrlhf_mtgrpo/" in f.filename] or frames
    f = ours[-1]
    return f"{f.filename.split('/openrlhf_mtgrpo/')[-1]}:{f.lineno} ({f.line})"


class _DataFactories(TorchFunctionMode):
    """``torch.tensor(data, device=<tagged device>)`` builds its data outside torch's dispatcher: make it on the
    CPU and tag it."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in DATA_FACTORIES and kwargs.get("device") is not None and torch.device(kwargs["device"]) == TAG:
            kwargs["device"] = "cpu"
            return Tagged(func(*args, **kwargs))
        return func(*args, **kwargs)


class _Operations(TorchDispatchMode):
    def __init__(self, violations):
        super().__init__()
        self.violations = violations

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.ops.aten.lift_fresh.default:  # torch.tensor(data): tagged by _DataFactories if asked
            return func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        plain = [t for t in tensors if not isinstance(t, Tagged)]
        device = kwargs.get("device")
        if plain:
            self.violations.append(f"{func} got a tensor on {plain[0].device} of shape {tuple(plain[0].shape)} "
                                   f"at {_where()}")
        tagged_device = device is not None and torch.device(device) == TAG
        if tagged_device:
            kwargs["device"] = torch.device("cpu")

        def unwrap(t):
            return t.elem if isinstance(t, Tagged) else t

        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
        made = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if made and not tensors and not tagged_device:  # a factory (zeros, full, arange, ...) on another device
            self.violations.append(f"{func} allocated on {device or 'the default device'} at {_where()}")
        if isinstance(out, torch.Tensor) and args and isinstance(args[0], Tagged) and out is args[0].elem:
            return args[0]  # in place: the argument itself
        return tree_map(lambda t: Tagged(t) if isinstance(t, torch.Tensor) else t, out)


@contextlib.contextmanager
def device_guard():
    """Run code on tagged tensors; yields the list of violations (CPU tensors met, CPU allocations)."""
    violations = []
    with _DataFactories(), _Operations(violations):
        yield violations


def tag(t):
    return Tagged(t) if isinstance(t, torch.Tensor) else t


def plain(t):
    return t.elem if isinstance(t, Tagged) else t


# ---------------------------------------------------------------- the guard itself


def test_the_guard_catches_a_cpu_allocation_and_keeps_the_values():
    x = tag(torch.arange(6.0).reshape(2, 3))
    with device_guard() as v:
        ok = torch.where(x > 2, x, torch.zeros_like(x)) + torch.zeros(3, device=x.device)
        ok[:, 1] = 7
        ids = torch.as_tensor([3, 1, 3], device=x.device)
        _, inv = torch.unique(ids, return_inverse=True)
        assert v == []
        bad = x + torch.zeros(3)  # no device: the CPU
    assert torch.equal(plain(ok), torch.tensor([[0.0, 7.0, 0.0], [3.0, 7.0, 5.0]]))
    assert plain(inv).tolist() == [1, 0, 1] and isinstance(bad, Tagged)
    assert len(v) == 1 and "aten.zeros" in v[0] and "allocated on" in v[0]
    with device_guard() as v:
        torch.where(x > 2, x, torch.zeros(()).double())  # a CPU scalar tensor beside the caller's
    assert len(v) == 1 and "aten.zeros" in v[0]


# ---------------------------------------------------------------- advantages/ on the caller's device


def _batch(seed=0, n=24, kmax=6, group=4):
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(1, kmax + 1, (n,), generator=g)
    valid = torch.arange(kmax)[None] < k[:, None]
    r = (torch.rand(n, kmax, generator=g, dtype=torch.float64) - 0.3) * valid
    o = (torch.rand(n, generator=g) < 0.5).double()
    grp = torch.arange(n) // group
    live = torch.rand(n, generator=g) > 0.1
    k[:group], live[:group], o[:group] = 3, True, 1.0  # a group of identical rollouts: no signal
    r[:group] = 0.2 * (torch.arange(kmax)[None] < 3)
    return r, k, o, grp, live


def _estimator_input(r, k, o, grp, live, options):
    """Turns of 1..3 tokens with 2 environment tokens between them, in action space."""
    n, kmax = r.shape
    lengths = (torch.arange(n)[:, None] + torch.arange(kmax)[None]) % 3 + 1
    starts = 2 + torch.cumsum(lengths + 2, 1) - (lengths + 2)
    spans = torch.stack([starts, starts + lengths], -1)
    length = int(spans[..., 1].max()) + 3
    mask = torch.zeros(n, length, dtype=torch.bool)
    for i in range(n):
        for j in range(int(k[i])):
            mask[i, spans[i, j, 0]:spans[i, j, 1]] = True
    return EstimatorInput(rewards=o, group_index=grp, action_mask=mask, turns=TurnInfo(spans, k, r), excluded=~live,
                          options=options)


OPTIONS = [EstimatorOptions(), EstimatorOptions(pool="group", turn_indexing="one", std_ddof=0),
           EstimatorOptions(std_norm=False, lam=0.7, gamma=0.5)]


def _inputs(seed=0):
    """Every input tensor of the functions under test, on the CPU (built before any guard is on)."""
    r, k, o, grp, live = _batch(seed)
    inp = _estimator_input(r, k, o, grp, live, None)
    return dict(r=r, k=k, o=o, grp=grp, live=live, nonzero=r != 0, valid=torch.arange(r.shape[1])[None] < k[:, None],
                fires=torch.stack([r > 0.2, r < 0], -1), direction=torch.tensor([1.0, -1.0]),
                spans=inp.turns.spans, mask=inp.action_mask, excluded=inp.excluded,
                values=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), two=torch.tensor([[[0, 2], [4, 6]], [[1, 3], [0, 0]]]),
                two_turns=torch.tensor([2, 1]), offsets=torch.tensor([0, 7]))


def _every_advantage_function(inputs, opts, move):
    """Every function of advantages/ once, on the inputs ``move`` puts on the device under test."""
    from openrlhf_mtgrpo.advantages.helpers import estimator_output, valid_turns

    x = {key: move(t) for key, t in inputs.items()}
    T = [x[key] for key in ("r", "k", "o", "grp", "live")]
    kw = dict(eps=opts.eps, std_norm=opts.std_norm, ddof=opts.std_ddof)
    out = {}
    out["informative"] = core.informative_groups(*T)
    out["outcome"] = core.outcome_advantage(T[2], T[3], T[4], **kw)
    out["returns"] = core.discounted_turn_returns(T[0], T[1], T[2], opts.gamma, opts.turn_indexing)
    out["mt_grpo"] = core.mt_grpo_turn_advantages(*T, **kw)[0]
    out["gtpo"] = core.gtpo_hybrid_turn_advantages(*T, gamma=opts.gamma, lam=opts.lam, pool=opts.pool,
                                                   turn_indexing=opts.turn_indexing, **kw)[0]
    out["naive"] = core.naive_turn_advantages(T[0], T[1], T[3], T[4], **kw)
    out["group_norm"] = core.group_normalize(T[0], T[3], x["nonzero"], per_column=False, **kw)
    out["diag"] = core.alignment_diagnostics(out["gtpo"], out["outcome"], T[2], x["valid"], T[3])
    comp = core.component_alignment(out["gtpo"], x["fires"], x["valid"], x["direction"])
    out["component_turns"], out["opposing_rate"] = comp["turns"], comp["opposing_rate"]
    inp = EstimatorInput(rewards=T[2], group_index=T[3], action_mask=x["mask"], turns=TurnInfo(x["spans"], T[1], T[0]),
                         excluded=x["excluded"], options=opts)
    for name in ("gtpo_hybrid", "mt_grpo", "grpo_outcome"):
        res = get_advantage_estimator(name)(inp)  # the registered estimators, through EstimatorInput
        out[name], out[name + "_metrics"] = res.advantages, res.metrics
    out["helper"] = estimator_output(inp, out["gtpo"], out["outcome"]).advantages
    out["valid_turns"] = valid_turns(inp)
    out["spans"] = core.spans_from_action_ranges([[3, 5], [8, 11]], 10, device=T[0].device)
    out["packed"] = core.turn_values_to_packed_tokens(x["values"], x["two"], x["two_turns"], x["offsets"], 12)
    for name in ("gtpo_hybrid", "mt_grpo", "grpo_outcome"):  # what IRC and the demo call
        ta = turn_advantages(name, T[0], T[1], T[2], T[3], T[4], opts)
        out[name + "_turns"], out[name + "_turn_outcome"] = ta.turn, ta.outcome
    return out


def _assert_same(got, want, where=""):
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            _assert_same(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, torch.Tensor):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12, msg=where)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), where


def test_informative_groups_builds_its_group_tables_on_the_inputs_device():
    """Before: torch.full((groups, columns), ...) and torch.zeros(groups) on the CPU, then the caller's indices
    scattered into them (core.py:77-79): a device error for every CUDA caller."""
    x = _inputs()
    args = [x[key] for key in ("r", "k", "o", "grp", "live")]
    want = core.informative_groups(*args)
    with device_guard() as violations:
        got = core.informative_groups(*map(tag, args))
    assert violations == []
    assert got.device == TAG and torch.equal(plain(got), want)
    assert want.tolist() == [False] * 4 + [bool(v) for v in want[4:]] and bool(want[4:].any())


@pytest.mark.parametrize("opts", OPTIONS, ids=["default", "group-one-ddof0", "no-std"])
def test_advantages_allocate_on_the_inputs_device(opts):
    """Before: informative_groups built its group tables with torch.full(...) on the CPU and scattered the
    caller's indices into them (with CUDA tensors: a device error); grpo_outcome, turn_level and others mixed
    CPU scalars and CPU tables in."""
    inputs = _inputs()
    want = _every_advantage_function(inputs, opts, lambda t: t)
    with device_guard() as violations:
        got = _every_advantage_function(inputs, opts, tag)
    assert violations == []
    assert float(want["gtpo_hybrid"].abs().sum()) > 1 and float(want["gtpo_hybrid_turns"].abs().sum()) > 1
    assert not bool(want["informative"][:4].any()) and bool(want["informative"][4:].any())
    _assert_same(tree_map(plain, got), want)
    for key in ("informative", "gtpo", "gtpo_hybrid", "helper", "spans", "packed", "gtpo_hybrid_turns"):
        assert got[key].device == TAG, key  # results stay on the caller's device


def _experiences():
    from openrlhf_fixtures import response, to_experiences, zero_kl

    rs = [response(4, [2, 3], reward=1.0, turn_rewards=[0.3, -0.1]), response(4, [2], reward=0.0, turn_rewards=[0.2]),
          response(3, [1, 1, 2], reward=1.0, turn_rewards=[0.1, 0.0, 0.4]),
          response(5, [4, 1], reward=0.0, turn_rewards=[-0.2, 0.1], excluded=False)]
    return zero_kl(to_experiences(rs, micro_batch=2))


def _move_experiences(exps, move):
    from openrlhf_mtgrpo.integration.openrlhf_hooks import TURN_KEYS

    for e in exps:
        e.rewards, e.action_mask = move(e.rewards), move(e.action_mask)
        e.kl = move(e.kl)
        for key in TURN_KEYS:
            e.info[key] = move(e.info[key])
    return exps


@pytest.mark.parametrize("estimator", ["gtpo_hybrid", "mt_grpo", "grpo_outcome"])
def test_the_hooks_advantage_computation_stays_on_the_experiences_device(estimator):
    """plugin_compute_advantages (the hook's replacement of compute_advantages_and_returns) on experiences whose
    tensors live on another device than the CPU: no CPU tensor meets them; the advantages equal a CPU run."""
    from openrlhf_fixtures import make_maker

    from openrlhf_mtgrpo.integration.openrlhf_hooks import plugin_compute_advantages

    want = plugin_compute_advantages(make_maker(estimator, n=4), _experiences())
    exps = _move_experiences(_experiences(), tag)
    with device_guard() as violations:
        got = plugin_compute_advantages(make_maker(estimator, n=4), exps)
    assert violations == []
    assert float(sum(e.advantages.abs().sum() for e in want)) > 0.5
    for g, w in zip(got, want):
        assert g.advantages.device == TAG and g.info["return"].device == TAG
        torch.testing.assert_close(plain(g.advantages), w.advantages, rtol=0, atol=0)
        torch.testing.assert_close(plain(g.returns), w.returns, rtol=0, atol=0)
        for key in w.info:
            if key.startswith("mtgrpo/") or key in ("return", "group_reward_std"):
                torch.testing.assert_close(plain(g.info[key]), w.info[key], rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------- on a GPU

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("opts", OPTIONS, ids=["default", "group-one-ddof0", "no-std"])
def test_advantages_run_on_cuda(opts):
    inputs = _inputs(seed=1)
    want = _every_advantage_function(inputs, opts, lambda t: t)
    got = _every_advantage_function(inputs, opts, lambda t: t.cuda())
    assert got["gtpo_hybrid"].is_cuda and got["informative"].is_cuda and got["gtpo_hybrid_turns"].is_cuda
    for key in want:  # float64 throughout; the float32 token advantages to float32 rounding
        if isinstance(want[key], torch.Tensor):
            torch.testing.assert_close(got[key].cpu(), want[key], rtol=1e-6, atol=1e-6, msg=key)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("estimator", ["gtpo_hybrid", "mt_grpo", "grpo_outcome"])
def test_the_hooked_experience_maker_runs_on_cuda(estimator):
    """OpenRLHF's compute_advantages_and_returns, hooked, on experiences moved to the GPU."""
    from openrlhf_fixtures import make_maker

    want = make_maker(estimator, n=4).compute_advantages_and_returns(_experiences())
    exps = _move_experiences(_experiences(), lambda t: t.cuda())
    got = make_maker(estimator, n=4).compute_advantages_and_returns(exps)
    for g, w in zip(got, want):
        assert g.advantages.is_cuda
        torch.testing.assert_close(g.advantages.cpu(), w.advantages, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(g.info["return"].cpu(), w.info["return"], rtol=1e-6, atol=1e-6)
