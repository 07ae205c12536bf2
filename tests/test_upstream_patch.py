"""patches/: the upstream change applies to the installed OpenRLHF and runs our estimator without the hook."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from helpers import parsed, pythonpath, run_upstream_parser

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCHES = sorted(glob.glob(os.path.join(REPO, "patches", "*.patch")))


@pytest.fixture(scope="module")
def patched_tree(tmp_path_factory):
    import importlib.util

    src = os.path.dirname(importlib.util.find_spec("openrlhf").origin)
    root = tmp_path_factory.mktemp("upstream")
    shutil.copytree(src, root / "openrlhf", ignore=shutil.ignore_patterns("__pycache__"))
    for patch in PATCHES:
        check = subprocess.run(["git", "apply", "--check", "-v", patch], cwd=root, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        subprocess.run(["git", "apply", patch], cwd=root, check=True)
    return str(root)


def test_patch_is_a_format_patch_with_pr_message():
    assert PATCHES, "no patch in patches/"
    text = open(PATCHES[0]).read()
    assert text.startswith("From ") and "Subject: [PATCH] " in text
    assert "entry-point" in text and "openrlhf/trainer/ppo_utils/advantage_registry.py" in text


def test_patched_upstream_runs_our_estimator_with_hook_disabled(patched_tree):
    code = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {os.path.join(REPO, 'tests')!r})
        import stubs; stubs.install_into()
        import openrlhf
        assert openrlhf.__file__.startswith({patched_tree!r}), openrlhf.__file__
        from openrlhf_mtgrpo import _bootstrap
        assert not _bootstrap.is_installed()
        from openrlhf.trainer.ppo_utils import experience_maker as em
        assert not hasattr(em.RemoteExperienceMaker.compute_advantages_and_returns, "__mtgrpo_patched__")
        from openrlhf_fixtures import make_maker, response, to_experiences
        from openrlhf_mtgrpo.advantages import core
        rs = [response(3, [2, 2], reward=1.0, turn_rewards=[1.0, 0.3]),
              response(3, [2], reward=0.0, turn_rewards=[0.3]),
              response(3, [1, 1, 1], reward=1.0, turn_rewards=[0.3, 1.0, 0.0]),
              response(3, [2, 2], reward=0.0, turn_rewards=[-0.1, 0.3])]
        exps = to_experiences(rs, micro_batch=2)
        assert "mtgrpo_turn_rewards" in exps[0].info      # carried by the patched samples generator
        out = make_maker("gtpo_hybrid", n=4).compute_advantages_and_returns(exps)
        r = torch.tensor([[1.0, 0.3, 0], [0.3, 0, 0], [0.3, 1.0, 0.0], [-0.1, 0.3, 0]])
        K = torch.tensor([2, 1, 3, 2]); o = torch.tensor([1.0, 0, 1, 0])
        want, _, _ = core.gtpo_hybrid_turn_advantages(r, K, o, torch.zeros(4, dtype=torch.long),
            torch.ones(4, dtype=torch.bool), gamma=0.9, lam=0.3, eps=1e-6, std_norm=True, ddof=1,
            pool="turn", turn_indexing="zero")
        # first token of each rollout's first turn sits at action index 2 (prompt of 3 tokens)
        got = torch.tensor([out[0].advantages[0, 2], out[0].advantages[1, 2], out[1].advantages[0, 2], out[1].advantages[1, 2]])
        torch.testing.assert_close(got, want[:, 0].float())
        assert all("mtgrpo_turn_rewards" not in e.info for e in out)
        print("PATCH-OK")
    """)
    env = dict(os.environ, OPENRLHF_MTGRPO_DISABLE="1", PYTHONPATH=pythonpath(patched_tree))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "PATCH-OK" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]


def test_patched_cli_lists_entry_point_estimators_without_hook(patched_tree):
    env = {"OPENRLHF_MTGRPO_DISABLE": "1", "PYTHONPATH": pythonpath(patched_tree)}
    p = run_upstream_parser(["--algo.advantage.estimator", "gtpo_hybrid", "--rollout.n_samples_per_prompt", "4"],
                            env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert parsed(p)["estimator"] == "gtpo_hybrid"
    bad = run_upstream_parser(["--algo.advantage.estimator", "nope"], env=env)
    assert bad.returncode == 2 and "'gtpo_hybrid'" in bad.stderr and "'group_norm'" in bad.stderr
