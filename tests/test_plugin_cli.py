"""The unmodified OpenRLHF launcher's own parser, with the plugin active through the start-up hook."""

import pytest

from helpers import parsed, run_upstream_parser

# every test here that runs the launcher's parser in a fresh interpreter is slow; the install checks are not


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--algo.advantage.estimator", "--advantage_estimator"])
def test_both_spellings_accept_gtpo_hybrid(flag):
    p = run_upstream_parser([flag, "gtpo_hybrid", "--rollout.n_samples_per_prompt", "4"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert parsed(p)["estimator"] == "gtpo_hybrid"


@pytest.mark.slow
def test_unknown_estimator_rejected_with_choices():
    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybird"])
    assert p.returncode == 2
    err = p.stderr
    assert "invalid choice: 'gtpo_hybird'" in err
    for name in ("gae", "group_norm", "gtpo_hybrid", "mt_grpo", "grpo_outcome"):
        assert f"'{name}'" in err


@pytest.mark.slow
def test_plugin_options_in_both_spellings_and_flat_aliases(tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text("")
    p = run_upstream_parser([
        "--advantage_estimator", "mt_grpo", "--gtpo.gamma", "0.8", "--gtpo_lam", "0.5", "--gtpo_pool", "turn",
        "--n_samples_per_prompt", "8", "--pretrain", "Qwen/Qwen3-4B", "--agent_func_path", str(agent),
        "--max_steps", "12", "--mtgrpo.tau_version", "tau1",
    ])
    assert p.returncode == 0, p.stderr[-2000:]
    got = parsed(p)
    assert got["estimator"] == "mt_grpo"
    assert got["gtpo"]["gamma"] == 0.8 and got["gtpo"]["lam"] == 0.5 and got["gtpo"]["pool"] == "turn"
    assert got["n"] == 8 and got["pretrain"] == "Qwen/Qwen3-4B" and got["agent"] == str(agent)
    assert got["mtgrpo"]["max_steps"] == 12 and got["mtgrpo"]["version"] == "tau1"


@pytest.mark.slow
def test_group_estimator_needs_groups():
    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "1"])
    assert p.returncode == 2
    assert "n_samples_per_prompt >= 2" in p.stderr


@pytest.mark.slow
def test_builtin_estimator_untouched():
    p = run_upstream_parser(["--advantage_estimator", "group_norm", "--n_samples_per_prompt", "4"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert parsed(p)["estimator"] == "group_norm"


@pytest.mark.slow
def test_disable_env_turns_plugin_off():
    p = run_upstream_parser(["--algo.advantage.estimator", "gtpo_hybrid"], env={"OPENRLHF_MTGRPO_DISABLE": "1"})
    assert p.returncode == 2
    assert "invalid choice: 'gtpo_hybrid'" in p.stderr
    p = run_upstream_parser(["--advantage_estimator", "group_norm"], env={"OPENRLHF_MTGRPO_DISABLE": "1"})
    assert p.returncode == 2 and "unrecognized arguments: --advantage_estimator" in p.stderr


@pytest.mark.slow
def test_every_flat_alias_names_a_real_upstream_flag():
    """A renamed upstream flag must not leave a dead alias behind silently."""
    import argparse
    import runpy
    import sys

    from openrlhf_mtgrpo.integration import cli_flags

    seen = {}

    class Capture(Exception):
        pass

    orig = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        seen.update(self._option_string_actions)
        raise Capture

    argparse.ArgumentParser.parse_args = grab
    old_argv = sys.argv
    try:
        sys.argv = ["train_ppo_ray"]
        with pytest.raises(Capture):
            runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
    finally:
        argparse.ArgumentParser.parse_args = orig
        sys.argv = old_argv
    missing = [k for k in cli_flags.UPSTREAM_FLAT_ALIASES if k not in seen]
    assert missing == []
    for dotted in cli_flags.UPSTREAM_FLAT_ALIASES:
        for flat in cli_flags.flat_spellings(dotted):
            assert seen[flat] is seen[dotted], flat


@pytest.mark.slow
def test_our_agent_without_user_simulator_fails_at_parse_time():
    from openrlhf_mtgrpo.rollout import agent_func

    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4",
                             "--agent_func_path", agent_func.__file__])
    assert p.returncode == 2 and "--mtgrpo.user_base_url" in p.stderr
    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4",
                             "--agent_func_path", agent_func.__file__, "--user_base_url", "http://u/v1",
                             "--user_model", "m"], env={"MTGRPO_DATA_DIR": ""})
    assert p.returncode == 2 and "--mtgrpo.data_dir" in p.stderr


@pytest.mark.slow
def test_every_recipe_flag_has_a_flat_spelling():
    """The README promises flat and hierarchical flags: every key a recipe uses has a flat alias."""
    import glob
    import os

    from openrlhf_mtgrpo.integration import cli_flags
    from openrlhf_mtgrpo.integration.launcher_parser import load_recipe, upstream_parser

    parser = upstream_parser()
    options = parser._option_string_actions
    recipes = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                            "recipes", "*.yaml")))
    assert recipes
    for path in recipes:
        for key in load_recipe(path):
            action = options[f"--{key}"]
            flat = [o for o in action.option_strings if o.startswith("--") and "." not in o]
            assert flat, f"{os.path.basename(path)}: --{key} has no flat spelling"
    for key in ("actor.eps_clip", "vllm.enable_sleep", "ds.param_dtype", "actor.gradient_checkpointing_enable",
                "ds.attn_implementation", "ckpt.save_steps", "logger.tensorboard_dir"):
        assert f"--{key}" in cli_flags.UPSTREAM_FLAT_ALIASES


@pytest.mark.slow
def test_flat_spellings_parse_to_the_same_values():
    p = run_upstream_parser([
        "--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4", "--eps_clip", "0.1",
        "--vllm_enable_sleep", "--param_dtype", "fp16", "--gradient_checkpointing", "--attn_implementation", "sdpa",
        "--save_steps", "7", "--use_tensorboard", "/tmp/tb", "--max_new_tokens", "99",
    ])
    assert p.returncode == 0, p.stderr[-2000:]
    raw = parsed(p)["raw"]
    assert raw["actor.eps_clip"] == 0.1 and raw["vllm.enable_sleep"] is True and raw["ds.param_dtype"] == "fp16"
    assert raw["actor.gradient_checkpointing_enable"] is True and raw["ds.attn_implementation"] == "sdpa"
    assert raw["ckpt.save_steps"] == 7 and raw["logger.tensorboard_dir"] == "/tmp/tb"
    assert raw["rollout.max_new_tokens"] == 99
    p2 = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4",
                              "--generate_max_len", "98"])
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert parsed(p2)["raw"]["rollout.max_new_tokens"] == 98


REENTRANT_FINDER = r"""
import importlib.abc, json, sys
import openrlhf_mtgrpo._bootstrap as boot

class OtherHookFinder(importlib.abc.MetaPathFinder):
    # the usual post-import-hook finder (as in wrapt / APM agents), here without a re-entrancy guard:
    # asked for the module, it asks every other finder on sys.meta_path -- including ours
    fired = []

    def find_spec(self, name, path=None, target=None):
        if name != "openrlhf":
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                inner = spec.loader

                class Loader(importlib.abc.Loader):
                    def create_module(self, s):
                        return inner.create_module(s)

                    def exec_module(self, module):
                        inner.exec_module(module)
                        OtherHookFinder.fired.append(name)

                spec.loader = Loader()
                return spec
        return None

sys.meta_path.insert({position}, OtherHookFinder())
import openrlhf
print("RESULT " + json.dumps({{"ours": boot.fired_hooks().count("openrlhf"), "other": len(OtherHookFinder.fired)}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("position", ["0", "1"])  # before ours, right after ours
def test_import_hook_coexists_with_another_post_import_hook_finder(position):
    """Without a re-entrancy guard the two finders ask each other forever: RecursionError on `import openrlhf`."""
    import json
    import os
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", REENTRANT_FINDER.format(position=position)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(next(l for l in p.stdout.splitlines() if l.startswith("RESULT "))[7:])
    assert got["ours"] == 1 and got["other"] >= 1


@pytest.mark.slow
def test_cli_defaults_of_the_estimator_options_are_the_library_defaults():
    """--gtpo.* defaults (what a CLI run gets) equal EstimatorOptions (what the docs, IRC and the demo use)."""
    from dataclasses import fields

    from openrlhf_mtgrpo.advantages.types import EstimatorOptions
    from openrlhf_mtgrpo.integration.cli_flags import PLUGIN_FLAGS

    cli = {dotted.split(".", 1)[1]: kw.get("default") for dotted, _, kw in PLUGIN_FLAGS if dotted.startswith("--gtpo.")}
    lib = {f.name: f.default for f in fields(EstimatorOptions)}
    assert cli.pop("no_std_norm") is (not lib.pop("std_norm"))
    assert cli == lib



# ------------------------------------------------------------------ the tested code is this checkout's


def _copy_package(dest):
    """A copy of this checkout's package, as a site-packages folder holds it after `pip install .`."""
    import os
    import shutil

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = dest / "site"
    shutil.copytree(os.path.join(repo, "openrlhf_mtgrpo"), site / "openrlhf_mtgrpo",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("openrlhf_mtgrpo.pth", "openrlhf_mtgrpo.start"):
        shutil.copyfile(os.path.join(repo, "openrlhf_mtgrpo", "_hook", name), site / name)
    return repo, site


def test_the_stale_install_check_covers_everything_the_package_ships(tmp_path):
    import os

    from helpers import shipped_files, stale_install

    repo, site = _copy_package(tmp_path)
    pkg, cfg = os.path.join(repo, "openrlhf_mtgrpo"), os.path.join(repo, "setup.cfg")
    shipped = shipped_files(pkg, cfg)
    # what a wheel of this package carries: the code and setup.cfg's package data (the calibrations)
    assert {"cli.py", "calibrations/paper_dense.yaml", "calibrations/paper_irc.yaml"} <= shipped
    assert not any("__pycache__" in f for f in shipped)
    assert stale_install(pkg, str(site / "openrlhf_mtgrpo"), cfg) == []
    # package data, code, a module only the installed copy has, and the start-up hook: each is found
    (site / "openrlhf_mtgrpo" / "calibrations" / "paper_dense.yaml").write_text("schema_version: 1\n")
    (site / "openrlhf_mtgrpo" / "old_module.py").write_text("")
    (site / "openrlhf_mtgrpo.pth").write_text("import something_else\n")
    assert stale_install(pkg, str(site / "openrlhf_mtgrpo"), cfg) == [
        "calibrations/paper_dense.yaml", "old_module.py (only in the installed copy)",
        f"openrlhf_mtgrpo.pth (start-up hook in {site})"]


@pytest.mark.slow
def test_pytest_refuses_an_installed_copy_whose_package_data_differs(tmp_path):
    """The real conftest, run against an installed copy that differs only in a calibration YAML."""
    import os
    import subprocess
    import sys

    repo, site = _copy_package(tmp_path)
    (site / "openrlhf_mtgrpo" / "calibrations" / "paper_irc.yaml").write_text("schema_version: 1\nname: other\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                        os.path.join(repo, "tests", "test_registry.py")], capture_output=True, text=True,
                       cwd=repo, timeout=300, env=dict(os.environ, PYTHONPATH=str(site)))
    assert p.returncode == 4, p.stdout[-2000:] + p.stderr[-2000:]  # pytest's usage error
    err = p.stderr
    assert f"the imported openrlhf_mtgrpo ({site / 'openrlhf_mtgrpo'}) differs from this checkout" in err
    assert "calibrations/paper_irc.yaml" in err and f"PYTHONPATH={repo}" in err


def test_every_folder_of_python_code_is_a_package_that_pip_install_ships():
    """setup.cfg's `packages = find:` ships only folders with an __init__.py: a folder without one is left out of
    `pip install .` (an editable install still finds it), so its modules fail to import only after a real install."""
    import os

    from setuptools import find_packages

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = set(find_packages(repo, include=["openrlhf_mtgrpo", "openrlhf_mtgrpo.*"]))
    with_code = set()
    for folder, dirs, files in os.walk(os.path.join(repo, "openrlhf_mtgrpo")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if any(f.endswith(".py") for f in files):
            with_code.add(os.path.relpath(folder, repo).replace(os.sep, "."))
    assert "openrlhf_mtgrpo.benchmarks.tau2_native" in with_code
    assert with_code - found == set()
