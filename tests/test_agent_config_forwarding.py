"""The --mtgrpo.* flags reach the rollout workers: hierarchize hook -> env var -> ray.init runtime_env."""

import argparse
import json

import pytest

pytestmark = pytest.mark.slow


def test_agent_config_reaches_a_ray_worker(monkeypatch, tmp_path):
    import ray

    import openrlhf.utils.config as config

    from openrlhf_mtgrpo.integration.launcher_parser import upstream_parser
    from openrlhf_mtgrpo.integration.openrlhf_hooks import AGENT_CONFIG_ENV, PluginCarrier
    from openrlhf_mtgrpo.rollout.config import AgentConfig

    monkeypatch.delenv(AGENT_CONFIG_ENV, raising=False)
    agent = tmp_path / "agent_func.py"  # someone's own agent file: not ours, so no user simulator is required
    agent.write_text("")
    ns = upstream_parser().parse_args([
        "--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4", "--agent_func_path", str(agent),
        "--user_model", "sim-model", "--max_steps", "7", "--user_base_url", "http://u:1/v1",
        "--rollout_log_dir", "runs/x", "--calibration", "paper-irc"])
    assert isinstance(ns, argparse.Namespace)
    args = config.hierarchize(ns)
    assert isinstance(args.mtgrpo_carrier, PluginCarrier)
    forwarded = json.loads(__import__("os").environ[AGENT_CONFIG_ENV])
    assert forwarded["max_steps"] == 7 and forwarded["calibration"] == "paper-irc"  # built-in names stay names
    assert forwarded["rollout_log_dir"] == __import__("os").path.abspath("runs/x")  # the driver's cwd, made absolute
    # what IRC reads back from every log line: the group size and the estimator's settings
    assert forwarded["n_samples_per_prompt"] == 4
    # every estimator option by field name (std_norm, not the flag no_std_norm), eps included
    from dataclasses import asdict

    from openrlhf_mtgrpo.advantages.options import EstimatorOptions

    assert forwarded["estimator_options"] == asdict(EstimatorOptions()) and forwarded["estimator_options"]["pool"] == "turn"
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # the wrapped init, as OpenRLHF calls it
    try:
        @ray.remote(num_cpus=1)
        def read():
            cfg = AgentConfig.from_env()
            return cfg.user_model, cfg.max_steps, cfg.estimator, cfg.user_base_url, cfg.n_samples_per_prompt

        assert ray.get(read.remote()) == ("sim-model", 7, "gtpo_hybrid", "http://u:1/v1", 4)
    finally:
        ray.shutdown()


def test_agent_config_from_env_overrides_and_errors(monkeypatch):
    from openrlhf_mtgrpo.rollout.config import CONFIG_ENV, AgentConfig

    cfg = AgentConfig.from_env({CONFIG_ENV: json.dumps({"max_steps": 9}), "MTGRPO_MAX_STEPS": "12",
                                "MTGRPO_EDG_ENABLE": "true", "MTGRPO_USER_TEMPERATURE": "0.5"})
    assert cfg.max_steps == 12 and cfg.edg_enable is True and cfg.user_temperature == 0.5
    # an older forwarded config names the version tau_version
    assert AgentConfig.from_env({CONFIG_ENV: json.dumps({"tau_version": "tau1"})}).version == "tau1"
    with pytest.raises(ValueError, match="MTGRPO_MAX_STEPS is not a valid int"):
        AgentConfig.from_env({"MTGRPO_MAX_STEPS": "many"})
    with pytest.raises(ValueError, match="not valid JSON"):
        AgentConfig.from_env({CONFIG_ENV: "{oops"})
