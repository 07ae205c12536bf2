"""The OpenRLHF agent executor (``--train.agent_func_path``): one episode of the configured domain per call.

OpenRLHF 0.11 loads the agent file in every vLLM rollout actor and calls
``AgentExecutor().execute(prompt, label, sampling_params, max_length, hf_tokenizer,
llm_engine, images)`` n_samples_per_prompt times concurrently on one event loop.
We run one episode (see :mod:`.episode`), write its rollout-log line, and return
what OpenRLHF's samples generator reads, plus ``sample_info`` with the per-turn
rewards and spans for our estimators (docs/rollout.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import uuid
from typing import Any, Dict, List, Optional

from openrlhf.utils.agent import AgentExecutorBase

from openrlhf_mtgrpo.envs import load_domain
from openrlhf_mtgrpo.evaluation.judge import grading_record
from openrlhf_mtgrpo.jsonl import append_jsonl
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rollout.chat import ChatRenderer, resolve_chat_template
from openrlhf_mtgrpo.rollout.prompt_choice import customer_prompt_of, customer_tools_of
from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN, AgentConfig
from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
from openrlhf_mtgrpo.rollout.episode import run_episode
# the log format and the engine-as-policy live without OpenRLHF (the demo imports them); re-exported here
from openrlhf_mtgrpo.rollout.vllm_policy import LOG_SCHEMA, VllmPolicy  # noqa: F401
from openrlhf_mtgrpo.rollout.sample_info import turn_sample_info
from openrlhf_mtgrpo.rollout.tool_parsers import parser_for
from openrlhf_mtgrpo.rollout.user_sim import SharedHttpClient, UserSimConfig, UserSimulator
from openrlhf_mtgrpo.trainer_groups import episode_key, new_episode_id



def parse_label(label: Any, default_version: Optional[str], default_domain: str = DEFAULT_DOMAIN) -> Dict[str, Any]:
    """The prompt dataset's label: a task id, or a dict / JSON object with ``task_id`` (and ``version``,
    ``domain``; a label without a domain is the configured one, by default DEFAULT_DOMAIN, so older datasets work)."""
    if isinstance(label, str):
        text = label.strip()
        if text.startswith("{"):
            try:
                label = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"label is not valid JSON: {e}: {text[:100]}") from None
        else:
            return {"task_id": text, "version": default_version, "domain": default_domain}
    if isinstance(label, (int,)):
        return {"task_id": str(label), "version": default_version, "domain": default_domain}
    if isinstance(label, dict) and "task_id" in label:
        version = label.get("version", default_version)
        return {"task_id": str(label["task_id"]), "version": None if version is None else str(version),
                "domain": str(label.get("domain") or default_domain)}
    raise ValueError(f"cannot read a task id from label {label!r}; use a task id or {{\"task_id\": ...}}")


class GroupKeys:
    """A group id for each ``execute`` call: the calls OpenRLHF starts together for one prompt.

    ``RolloutRayActor.generate_responses`` starts a prompt's n_samples_per_prompt calls in one
    ``asyncio.gather``: they begin in the same event-loop pass, before any of them awaits.  Calls
    with the same prompt and label that begin in one pass form a group (closed at the next pass,
    or when it reaches ``size``).  The rollout log records the id and the final size, so IRC
    groups episodes exactly as training did."""

    def __init__(self, size: Optional[int] = None):
        self.size = size
        self._open: Dict[tuple, Dict[str, Any]] = {}
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._count = 0

    def join(self, prompt, label) -> Dict[str, Any]:
        key = (str(prompt), label if isinstance(label, str) else json.dumps(label, sort_keys=True, default=str))
        group = self._open.get(key)
        if group is None:
            self._count += 1
            group = self._open[key] = {"id": f"{self._prefix}-{self._count}", "size": 0}
            try:
                asyncio.get_running_loop().call_soon(self._close, key, group)
            except RuntimeError:  # no running loop: every call is its own group
                self._close(key, group)
        member = {"group": group, "index": group["size"]}
        group["size"] += 1
        if self.size and group["size"] >= self.size:
            self._close(key, group)
        return member

    def _close(self, key, group) -> None:
        if self._open.get(key) is group:
            del self._open[key]

    @staticmethod
    def record(member: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": member["group"]["id"], "size": member["group"]["size"], "index": member["index"]}


class MtGrpoAgentExecutor(AgentExecutorBase):
    def __init__(self, config: Optional[AgentConfig] = None):
        self.config = config or AgentConfig.from_env()
        self._lock = threading.Lock()
        if self.config.max_turns is not None:
            raise ValueError("--mtgrpo.max_turns was removed: episodes end where the benchmark's run ends them; "
                             "set the budget in the benchmark's unit with --mtgrpo.max_steps")
        if self.config.domain_timeout < 0:
            raise ValueError(f"--mtgrpo.domain_timeout must be >= 0 seconds (0: no limit), got "
                             f"{self.config.domain_timeout}")
        self._envs: Dict[tuple, Any] = {}
        self._judges: Dict[tuple, Any] = {}
        self._loading: Dict[tuple, asyncio.Future] = {}
        self._renderers: Dict[tuple, ChatRenderer] = {}
        self.calibration = load_calibration(self.config.calibration)
        self._edg = None
        self._groups = GroupKeys(self.config.n_samples_per_prompt)
        self.calls = DomainCalls(self.config.domain_timeout or None)
        #: one HTTP client for every episode's customer (connections reused), closed by aclose() or at exit
        self.http = SharedHttpClient()

    # -- shared, per process
    async def env(self, version: Optional[str], domain: Optional[str] = None):
        """The loaded domain (with the configured prompts and run rules), once per process; the first load runs
        off the event loop, and concurrent first calls wait for the same load."""
        domain = domain or self.config.domain
        key = (domain, version)
        if key in self._envs:
            return self._envs[key]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(asyncio.to_thread(
                lambda: configured_domain(load_domain(domain, version, self.config.data_dir), self.config)))
        try:
            env = await asyncio.shield(pending)
        finally:
            if pending.done():
                self._loading.pop(key, None)
        self._envs[key] = env
        return env

    def renderer(self, tokenizer, env):
        key = (id(tokenizer), env.name, env.version)
        with self._lock:
            if key not in self._renderers:
                template = resolve_chat_template(self.config.chat_template, tokenizer)
                self._renderers[key] = ChatRenderer(tokenizer, env.tool_schemas(), self.config.enable_thinking,
                                                    chat_template=template)
            return self._renderers[key]

    def user_config(self) -> UserSimConfig:
        c = self.config
        if not c.user_base_url or not c.user_model:
            raise ValueError("no user simulator: set --mtgrpo.user_base_url and --mtgrpo.user_model "
                             "(an OpenAI-compatible endpoint, e.g. a vLLM server)")
        return UserSimConfig(base_url=c.user_base_url, model=c.user_model, api_key_env=c.user_api_key_env,
                             temperature=c.user_temperature, timeout=c.user_timeout,
                             max_retries=c.user_max_retries)

    def judge_settings(self):
        from openrlhf_mtgrpo.evaluation.judge import JudgeSettings

        c = self.config
        return JudgeSettings(base_url=c.judge_base_url, model=c.judge_model, api_key_env=c.judge_api_key_env,
                             timeout=c.judge_timeout, max_retries=c.judge_max_retries)

    def judge(self, env, task):
        """The run's judge for ``env`` (one per loaded domain: its default model is the domain's benchmark's); a
        ValueError, naming what to set, where ``task`` needs a judge and none is configured."""
        from openrlhf_mtgrpo.evaluation.judge import judge_needed, make_judge

        key = (env.name, env.version)
        with self._lock:
            if key not in self._judges:
                self._judges[key] = make_judge(self.config.nl_assertions, self.judge_settings(),
                                               getattr(env, "judge_default_model", None))
            judge = self._judges[key]
        if judge is None and judge_needed(env, task):
            raise ValueError(f"task {task.id} of domain {env.name} {env.version} needs an NL-assertion judge: "
                             f"{self.judge_settings().missing()}; set --mtgrpo.judge_base_url (and "
                             "--mtgrpo.judge_model) or the key, or --mtgrpo.nl_assertions off to train on the rest "
                             "of its reward (the database) alone")
        return judge

    def customer(self, env, task):
        """The task's simulated customer (None where the domain has none: solo mode)."""
        if env.customer_prompt is None:
            return None
        return UserSimulator(self.user_config(), task.user_instructions, customer_prompt_of(env, task),
                             tools=customer_tools_of(env, task), tag=str(task.id), http_client=self.http.get())

    def rules(self, env):
        """The domain's run rules with the configured budget and error limit (default: the benchmark's)."""
        c = self.config
        return env.run_rules.override(budget=c.max_steps, max_errors="keep" if c.max_errors is None else c.max_errors)

    def log_path(self) -> Optional[str]:
        if not self.config.rollout_log_dir:
            return None
        return os.path.join(self.config.rollout_log_dir, f"rollouts-{socket.gethostname()}-{os.getpid()}.jsonl")

    async def gates(self, group_id: Optional[str] = None):
        """EDG gates (None when EDG is off); every rollout of one group gets the same gates."""
        if not self.config.edg_enable:
            return None
        if self._edg is None:
            from openrlhf_mtgrpo.rewards.gating import EDGClient

            log = os.path.join(self.config.rollout_log_dir, "edg_events.jsonl") if self.config.rollout_log_dir else None
            cfg = self.config
            self._edg = EDGClient.connect(
                self.calibration.weights, window=cfg.edg_window, confidence=cfg.edg_confidence, log_path=log,
                threshold=cfg.edg_threshold,
                hysteresis=cfg.edg_hysteresis, pinned=cfg.edg_pin,
                calibration_sha256=self.calibration.sha256, calibration=self.calibration)
        return await self._edg.gates(group_id)

    def wants_sample_info(self) -> bool:
        est = self.config.estimator
        if est is None:
            return True
        from openrlhf_mtgrpo.registry import is_plugin_estimator

        return is_plugin_estimator(est)

    async def execute(self, prompt, label, sampling_params, max_length: int, hf_tokenizer, llm_engine, images=None):
        member = self._groups.join(prompt, label)  # before the first await: see GroupKeys
        episode_id = new_episode_id()
        ids = parse_label(label, self.config.version, self.config.domain)
        env = await self.env(ids["version"], ids["domain"])
        task = env.task(ids["task_id"])
        user = self.customer(env, task)
        judge = self.judge(env, task)
        gates = await self.gates(member["group"]["id"])
        renderer = self.renderer(hf_tokenizer, env)
        parser = parser_for(self.config.tool_parser, tools=env.tool_schemas(), chat_template=renderer.template)
        result = await run_episode(
            env, task, VllmPolicy(llm_engine, sampling_params), renderer,
            parser, user, self.calibration, max_length=max_length, gates=gates, rules=self.rules(env),
            want_logprobs=getattr(sampling_params, "logprobs", None) is not None, calls=self.calls, judge=judge)
        result.timings["user_calls"] = user.calls if user is not None else 0
        if self._edg is not None and not result.infra_failed:
            self._edg.record(result.turns, result.outcome.get("success", False))
        path = self.log_path()
        if path:
            append_jsonl(path, result.log_record(
                log_schema=LOG_SCHEMA, component_set=self.calibration.component_set,
                components=list(self.calibration.components), label=label, user_model=self.config.user_model,
                user_temperature=user.config.effective_temperature(env.customer_prompt) if user else None,
                calibration=self.calibration.name, calibration_sha256=self.calibration.sha256,
                calibration_path=self.calibration.path, estimator=self.config.estimator,
                estimator_options=self.config.estimator_options,
                group=GroupKeys.record(member), episode=episode_id, nl_grading=grading_record(env, task, judge),
                edg=self._edg.episode_record(gates) if self._edg is not None else None))
        return self.to_openrlhf(result, prompt, label, images, episode=episode_key(episode_id))

    async def aclose(self) -> None:
        """Close the customer's HTTP client of the running loop (a later episode opens a new one)."""
        await self.http.aclose()

    def to_openrlhf(self, result, prompt, label, images=None, episode: int = 0) -> Dict[str, Any]:
        out = {
            "prompt": prompt, "label": label, "images": images,
            "observation_tokens": result.tokens,
            "action_ranges": [tuple(r) for r in result.action_ranges],
            "reward": float(result.reward), "scores": float(result.reward),
            "rollout_log_probs": result.logprobs,
            "truncated": bool(result.truncated),
            "extra_logs": {
                "mtgrpo_success": float(result.outcome.get("success", False)),
                "mtgrpo_turns": float(len(result.turns)),
                "mtgrpo_tool_errors": float(sum(t.tool_errors for t in result.turns)),
                "mtgrpo_infra_failed": float(result.infra_failed),
                "mtgrpo_max_steps_hit": float(result.termination == "max_steps"),
                "mtgrpo_too_many_errors": float(result.termination == "too_many_errors"),
                "mtgrpo_length_budget_hit": float(result.termination == "length_budget"),
                "mtgrpo_turn_too_long": float(result.termination == "turn_too_long"),
                "mtgrpo_template_drift": float(result.template_drift_turns > 0),
                "mtgrpo_template_drift_turns": float(result.template_drift_turns),
                "mtgrpo_turn_reward_mean": (sum(result.turn_rewards()) / len(result.turns)) if result.turns else 0.0,
                "mtgrpo_user_seconds": float(result.timings.get("user", 0.0)),
                "mtgrpo_judge_calls": float(result.timings.get("judge_calls", 0.0)),
                "mtgrpo_judge_seconds": float(result.timings.get("judge", 0.0)),
            },
        }
        if self.wants_sample_info():
            out["sample_info"] = turn_sample_info(result.action_ranges, result.turn_rewards(), result.infra_failed,
                                                  episode)
        return out


def configured_domain(env, config: AgentConfig):
    """``env`` with the prompts the configuration chooses (default: the benchmark's own)."""
    from openrlhf_mtgrpo.rollout.prompt_choice import with_prompts

    return with_prompts(env, agent=config.agent_prompt, customer=config.user_prompt)
