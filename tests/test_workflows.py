"""Recipes through upstream's parser, data prepare, resumable eval against local HTTP stubs, the demo."""

import json
import os
import signal
import subprocess
import sys
import time

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


def test_data_prepare(tmp_path, data_dir):
    out = tmp_path / "train.jsonl"
    assert cli(["data", "prepare", "--version", "tau2", "--split", "train", "--out", str(out),
                "--data-dir", data_dir]) == 0
    rows = [json.loads(l) for l in open(out)]
    assert len(rows) == 30 and set(rows[0]) == {"prompt", "label"}
    from openrlhf_mtgrpo.envs.airline import AirlineEnv

    train_ids = {t.id for t in AirlineEnv("tau2", data_dir).tasks("train")}
    assert {json.loads(r["label"])["task_id"] for r in rows} == train_ids
    assert cli(["data", "prepare", "--split", "nope", "--out", str(out), "--data-dir", data_dir]) == 2


EVAL_TASKS = ["8", "16", "19"]  # test-split tasks that all need write actions


@pytest.mark.slow
def test_eval_killed_halfway_resumes_to_complete_results(tmp_path, data_dir):
    from openrlhf_mtgrpo.envs.airline import AirlineEnv
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    env = AirlineEnv("tau2", data_dir)
    assert all(env.task(t).has_write_action for t in EVAL_TASKS)
    # task 8 always passes, task 16 always fails, task 19 passes in trial 0 only
    fails = lambda task, trial: task == "16" or (task == "19" and trial == 1)
    policy = make_scripted_policy_responder(env, fails)

    def slow_policy(req):
        time.sleep(0.15)
        return policy(req)

    out = tmp_path / "eval"
    with LocalChatServer(slow_policy) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        cmd = [sys.executable, "-m", "openrlhf_mtgrpo.cli", "eval", "--policy-base-url", pol.base_url,
               "--policy-model", "stub", "--user-base-url", usr.base_url, "--user-model", "rule", "--trials", "2",
               "--concurrency", "1", "--tasks", *EVAL_TASKS, "--out", str(out), "--data-dir", data_dir,
               "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        results = out / "results.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline:
            if results.exists() and len(results.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = len(results.read_text().splitlines())
        assert 2 <= first < 6, first  # killed halfway
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(l) for l in results.read_text().splitlines()]
    pairs = [(r["task_id"], r["trial"]) for r in lines]
    assert sorted(pairs) == sorted((t, k) for t in EVAL_TASKS for k in (0, 1))  # complete, no duplicates
    summary = json.loads((out / "results.json").read_text())
    assert summary["resumed_from"] == first
    assert summary["successes_per_task"] == {"8": 2, "16": 0, "19": 1}
    assert summary["pass_k"]["1"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert summary["pass_k"]["2"] == pytest.approx(1 / 3)
    assert "pass^k" in done.stdout
    rollouts = [json.loads(l) for l in open(out / "rollouts-eval.jsonl")]
    assert {(r["task_id"], r["trial"]) for r in rollouts} == set(pairs)


@pytest.mark.slow
def test_demo_runs_and_calibration_helps(tmp_path, data_dir):
    p = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "demo", "--data-dir", data_dir, "--out",
                        str(tmp_path / "demo")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "SCRIPTED" in out and "not a language model" in out
    assert "*** BENCHMARK VERSION: tau2 (the first of tau2, tau2-2025 found on this machine) ***" in out
    assert "| state_change |" in out and "per-component misalignment" in out and "what to conclude:" in out
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["episodes"] == 120 and summary["version"] == "tau2"
    assert f"{summary['successes']}/120 succeeded" in out
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
    assert "Changed: state_change: +0.1 -> -0.1 (anti evidence)" in out
    assert any("Kept for lack of evidence" in line for line in summary["conclusions"])
    for f in ("irc_report.md", "irc_chart.png", "irc_calibration.yaml", "rollouts-demo.jsonl"):
        assert (tmp_path / "demo" / f).stat().st_size > 0
