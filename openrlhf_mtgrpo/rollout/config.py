"""Configuration of the agent in the rollout workers.

vLLM rollout actors receive no OpenRLHF ``args``; the plugin forwards the
``--mtgrpo.*`` flags as JSON in ``OPENRLHF_MTGRPO_AGENT_CONFIG`` (see docs/plugin.md).
Single values can also be set with ``MTGRPO_<FIELD>`` environment variables.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Optional

CONFIG_ENV = "OPENRLHF_MTGRPO_AGENT_CONFIG"


@dataclass
class AgentConfig:
    data_dir: Optional[str] = None
    tau_version: str = "tau2"
    calibration: Optional[str] = None
    max_turns: int = 40
    tool_parser: str = "auto"
    enable_thinking: bool = False
    # None / "model": the tokenizer's template; "training": its prefix-preserving variant (trl's); or a .jinja path
    chat_template: Optional[str] = None
    user_base_url: Optional[str] = None
    user_model: Optional[str] = None
    user_api_key_env: str = "OPENAI_API_KEY"
    user_temperature: float = 0.0
    user_timeout: float = 60.0
    user_max_retries: int = 3
    rollout_log_dir: Optional[str] = None
    edg_enable: bool = False
    edg_window: int = 512
    edg_threshold: float = 0.05
    edg_hysteresis: float = 0.05  # a closed gate reopens only above threshold + hysteresis
    edg_pin: str = "gold_exact"  # comma-separated components EDG never gates (IRC pins them too)
    estimator: Optional[str] = None
    estimator_options: Optional[dict] = None  # the --gtpo.* values (pool, gamma, lam, ...), logged per episode
    n_samples_per_prompt: Optional[int] = None  # the group size, logged per episode for IRC

    @classmethod
    def from_env(cls, environ=None) -> "AgentConfig":
        environ = os.environ if environ is None else environ
        values = {}
        raw = environ.get(CONFIG_ENV)
        if raw:
            try:
                values.update(json.loads(raw))
            except json.JSONDecodeError as e:
                raise ValueError(f"{CONFIG_ENV} is not valid JSON: {e}") from None
        names = {f.name: f for f in fields(cls)}
        for name, f in names.items():
            env_value = environ.get(f"MTGRPO_{name.upper()}")
            if env_value is not None:
                values[name] = env_value
        out = {}
        for k, v in values.items():
            if k not in names or v is None:
                continue
            t = names[k].type
            if "dict" in str(t) and isinstance(v, str):
                try:
                    v = json.loads(v)
                except json.JSONDecodeError as e:
                    raise ValueError(f"MTGRPO_{k.upper()} is not valid JSON: {e}") from None
            elif "bool" in str(t) and isinstance(v, str):
                v = v.strip().lower() in ("1", "true", "yes", "on")
            elif "int" in str(t) and isinstance(v, str):
                v = int(v)
            elif "float" in str(t) and isinstance(v, str):
                v = float(v)
            out[k] = v
        return cls(**out)

    def to_dict(self):
        return asdict(self)
