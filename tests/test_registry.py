import os

import pytest

from openrlhf_mtgrpo import (
    get_advantage_estimator,
    get_tool_call_parser,
    list_advantage_estimators,
    list_tool_call_parsers,
    register_advantage_estimator,
)
from openrlhf_mtgrpo.integration.versions import UnsupportedOpenRLHFVersion, check_openrlhf_version
from openrlhf_mtgrpo.registry import UnknownNameError


def test_builtins_registered():
    assert {"gtpo_hybrid", "mt_grpo", "grpo_outcome"} <= set(list_advantage_estimators())
    assert {"hermes", "qwen3_coder", "auto"} <= set(list_tool_call_parsers())


@pytest.fixture
def throwaway():
    """Estimator names a test registers, removed after it: the registry is process-global, and these estimators
    (returning None) would reach every later test that walks the registered names (the demo checks each)."""
    from openrlhf_mtgrpo import registry

    names = []
    yield names.append
    with registry._lock:
        for name in names:
            registry._estimators.pop(name, None)
            registry._estimator_options.pop(name, None)
            registry._origins.pop(("advantage estimator", name), None)


def test_register_direct_and_decorator_and_duplicates(throwaway):
    throwaway("test_reg_a")
    throwaway("test_reg_b")

    def f(inp):
        return None

    register_advantage_estimator("test_reg_a", f)
    assert get_advantage_estimator("test_reg_a") is f
    register_advantage_estimator("test_reg_a", f)  # same function again: fine

    with pytest.raises(ValueError, match="already registered"):
        register_advantage_estimator("test_reg_a", lambda inp: None)

    @register_advantage_estimator("test_reg_b")
    def g(inp):
        return None

    assert get_advantage_estimator("test_reg_b") is g
    register_advantage_estimator("test_reg_a", g, override=True)
    assert get_advantage_estimator("test_reg_a") is g


def test_what_a_test_registers_is_gone_in_the_next_one():
    """The previous test's throwaway estimators (returning None) must not reach the tests that walk every
    registered estimator (the demo's checks)."""
    assert not {"test_reg_a", "test_reg_b"} & set(list_advantage_estimators())


def test_an_estimator_that_returns_no_output_is_named(throwaway):
    import torch

    from openrlhf_mtgrpo.advantages.turn_level import turn_advantages

    throwaway("test_returns_none")
    register_advantage_estimator("test_returns_none", lambda inp: None)
    with pytest.raises(TypeError, match="advantage estimator 'test_returns_none' returned NoneType, not an "
                                        "EstimatorOutput"):
        turn_advantages("test_returns_none", torch.ones(2, 1), torch.tensor([1, 1]), torch.tensor([0.0, 1.0]),
                        torch.tensor([0, 0]))


def _toy_domain_factory(version=None, data_dir=None):
    return None


@pytest.mark.parametrize("register,lookup,listing,kind", [
    ("register_domain", "domain_factory", "list_domains", "domain"),
    ("register_reward_components", "reward_components_factory", "list_reward_components", "reward components"),
])
def test_domains_and_component_sets_register_both_ways(register, lookup, listing, kind):
    from openrlhf_mtgrpo import registry

    reg, get, names = getattr(registry, register), getattr(registry, lookup), getattr(registry, listing)
    reg(f"test_{register}_str", "tests_registry_helpers_missing:factory")  # a string: imported on first use
    assert f"test_{register}_str" in names()
    with pytest.raises(registry.PluginError, match=f"{kind} 'test_{register}_str'.*could not be loaded"):
        get(f"test_{register}_str")

    @reg(f"test_{register}_deco")
    def made(*args, **kwargs):
        return None

    assert get(f"test_{register}_deco") is made
    assert registry.origin(kind, f"test_{register}_deco") == f"registered by {__name__}"
    reg(f"test_{register}_deco", made)  # the same object again (a Ray re-import): harmless
    with pytest.raises(ValueError, match=f"{kind} 'test_{register}_deco' is already registered.*registered "
                                         f"{kind}s: .*test_{register}_deco"):
        reg(f"test_{register}_deco", _toy_domain_factory)
    with pytest.raises(UnknownNameError, match="unknown"):
        get(f"test_{register}_none")


@pytest.mark.parametrize("bad", ["", "has space", None])
def test_bad_names_rejected(bad):
    with pytest.raises(ValueError):
        register_advantage_estimator(bad, lambda inp: None)


def test_upstream_names_are_protected():
    with pytest.raises(ValueError, match="OpenRLHF's own"):
        register_advantage_estimator("group_norm", lambda inp: None)


def test_unknown_lookups_list_valid_names():
    with pytest.raises(UnknownNameError) as e:
        get_advantage_estimator("gtpo")
    assert "gtpo_hybrid" in str(e.value) and "group_norm" in str(e.value)
    with pytest.raises(UnknownNameError, match="hermes"):
        get_tool_call_parser("json")


def test_non_callable_rejected():
    with pytest.raises(TypeError):
        register_advantage_estimator("test_reg_c", 3)


@pytest.mark.parametrize("version,ok", [("0.11.2", True), ("0.11.0", True), ("0.10.4", False), ("0.12.0", False),
                                        ("1.0.0", False)])
def test_version_range(version, ok):
    if ok:
        assert check_openrlhf_version(version) == version
    else:
        with pytest.raises(UnsupportedOpenRLHFVersion, match=r">=0\.11\.0,<0\.12"):
            check_openrlhf_version(version)


def test_unsupported_version_blocks_our_estimator_with_clear_message(monkeypatch):
    from types import SimpleNamespace

    from openrlhf_mtgrpo.integration import openrlhf_hooks

    monkeypatch.setitem(openrlhf_hooks.status, "version_error", "openrlhf-mtgrpo supports OpenRLHF >=0.11.0,<0.12")
    args = SimpleNamespace(algo=SimpleNamespace(advantage=SimpleNamespace(estimator="gtpo_hybrid")),
                           rollout=SimpleNamespace(n_samples_per_prompt=4), train=SimpleNamespace(agent_func_path="a"))
    with pytest.raises(SystemExit) as e:
        openrlhf_hooks.check_parsed_args(args)
    assert e.value.code == 2
    args.algo.advantage.estimator = "group_norm"
    openrlhf_hooks.check_parsed_args(args)  # upstream estimators are not our business


def test_attach_failure_names_function_and_version():
    import types

    from openrlhf_mtgrpo.integration import openrlhf_hooks

    before = list(openrlhf_hooks.status["attach_errors"])
    try:
        openrlhf_hooks.on_experience_maker_import(types.ModuleType("fake_experience_maker"))
        err = openrlhf_hooks.status["attach_errors"][-1]
        assert "RemoteExperienceMaker.compute_advantages_and_returns" in err and "OpenRLHF 0.11.2" in err
    finally:
        openrlhf_hooks.status["attach_errors"][:] = before


def test_doctor_reports(capsys):
    from openrlhf_mtgrpo.cli import main

    rc = main(["doctor"])
    out = capsys.readouterr().out
    assert "openrlhf          0.11.2" in out and "hook active       yes" in out
    assert "gtpo_hybrid" in out and "vllm importable" in out
    assert rc == 0


# -- broken plugins are isolated: each fails only its own lookup, naming itself, and works once fixed ---------------

BROKEN = '''
raise RuntimeError("the plugin's own bug")
'''
FIXED = '''
def broken_est(inp):
    return "fixed estimator"


class BrokenParser:
    name = "broken_parser"
'''
GOOD = '''
def good_est(inp):
    return "good"


class GoodParser:
    name = "good_parser"
'''
ISOLATION = r'''
import importlib, os, sys
from openrlhf_mtgrpo import registry

site = sys.argv[1]


def attempt(label, fn):
    try:
        print(label, "OK", fn())
    except registry.PluginError as e:
        print(label, "PLUGIN-ERROR", e)
    except Exception as e:
        print(label, "OTHER", type(e).__name__, e)


attempt("builtin-est", lambda: registry.get_advantage_estimator("gtpo_hybrid").__name__)
attempt("builtin-parser", lambda: registry.get_tool_call_parser("hermes").name)
attempt("broken-est", lambda: registry.get_advantage_estimator("broken_est"))
attempt("broken-est-again", lambda: registry.get_advantage_estimator("broken_est"))
attempt("broken-parser", lambda: registry.get_tool_call_parser("broken_parser"))
attempt("good-est", lambda: registry.get_advantage_estimator("good_est")(None))
attempt("good-parser", lambda: registry.get_tool_call_parser("good_parser").name)
attempt("listed", lambda: ",".join(n for n in registry.list_advantage_estimators() if n in ("broken_est", "good_est")))
with open(os.path.join(site, "mtgrpo_broken_plugin.py"), "w") as f:
    f.write(sys.argv[2])
importlib.invalidate_caches()
attempt("fixed-est", lambda: registry.get_advantage_estimator("broken_est")(None))
attempt("fixed-parser", lambda: registry.get_tool_call_parser("broken_parser").name)
'''


def test_a_broken_estimator_or_parser_plugin_fails_only_its_own_lookup_and_works_once_fixed(tmp_path):
    from fake_plugins import plugin_site, run_python

    site = plugin_site(tmp_path, "mtgrpo-broken-plugin", {"mtgrpo_broken_plugin": BROKEN, "mtgrpo_good_plugin": GOOD},
                       {"openrlhf_mtgrpo.advantage_estimators": {"broken_est": "mtgrpo_broken_plugin:broken_est",
                                                                 "good_est": "mtgrpo_good_plugin:good_est"},
                        "openrlhf_mtgrpo.tool_call_parsers": {"broken_parser": "mtgrpo_broken_plugin:BrokenParser",
                                                              "good_parser": "mtgrpo_good_plugin:GoodParser"}})
    p = run_python(ISOLATION, site, args=(site, FIXED))
    assert p.returncode == 0, p.stderr[-3000:]
    got = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert got["builtin-est"] == "OK gtpo_hybrid" and got["builtin-parser"] == "OK hermes"
    assert got["good-est"] == "OK good" and got["good-parser"] == "OK good_parser"
    assert got["listed"] == "OK broken_est,good_est"
    module = os.path.join(site, "mtgrpo_broken_plugin.py")
    for key, kind, name in (("broken-est", "advantage estimator", "broken_est"),
                            ("broken-est-again", "advantage estimator", "broken_est"),
                            ("broken-parser", "tool-call parser", "broken_parser")):
        msg = got[key]
        assert msg.startswith(f"PLUGIN-ERROR {kind} {name!r} (entry point "), msg
        assert "of mtgrpo-broken-plugin 0.1" in msg and "could not be loaded" in msg, msg
        assert "RuntimeError: the plugin's own bug" in msg and f"{module}:2" in msg, msg
    assert got["fixed-est"] == "OK fixed estimator" and got["fixed-parser"] == "OK broken_parser"


THREADED = '''
import threading

from openrlhf_mtgrpo.registry import register_tool_call_parser


class ThreadedParser:
    name = "threaded"


# a plugin whose import makes another thread register something (a pool, a lazily started service)
worker = threading.Thread(target=register_tool_call_parser, args=("threaded_extra", ThreadedParser))
worker.start()
worker.join(5)
if worker.is_alive():
    raise RuntimeError("another thread could not register while this module was imported")
'''


def test_the_registry_does_not_hold_its_lock_while_a_plugin_imports(tmp_path):
    from fake_plugins import plugin_site, run_python

    site = plugin_site(tmp_path, "mtgrpo-threaded-plugin", {"mtgrpo_threaded_plugin": THREADED},
                       {"openrlhf_mtgrpo.tool_call_parsers": {"threaded": "mtgrpo_threaded_plugin:ThreadedParser"}})
    p = run_python("from openrlhf_mtgrpo import registry\n"
                   "print(registry.get_tool_call_parser('threaded').name, registry.get_tool_call_parser('threaded_extra').name)",
                   site)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ["threaded", "threaded"]
