"""Domains: the tool environments the rollout and eval run against (see :mod:`.base` for the interface).

:func:`load_domain` is how everything above a domain gets one: by its registered name (or a
``"package.module:factory"`` string), a version and a data folder; the loaded domain is cached per process
and checked against the interface before anything uses it (:func:`domain_problems`).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs import base

_loaded: Dict[Tuple[Optional[str], ...], Any] = {}
_lock = threading.Lock()


class DomainError(ValueError):
    """A domain that cannot be used (unknown name, a factory that raises, invalid tasks or schemas); the message
    names the plugin."""


def versions_of(name: str) -> Tuple[Sequence[str], Optional[str]]:
    """(the versions a domain's factory declares, its default version); ``((), None)`` where it declares none."""
    from openrlhf_mtgrpo.registry import domain_factory

    factory = domain_factory(name)
    return tuple(getattr(factory, "versions", ()) or ()), getattr(factory, "default_version", None)


def load_domain(name: Optional[str] = None, version: Optional[str] = None, data_dir: Optional[str] = None):
    """The loaded domain ``name`` (None: the default domain) at ``version`` (None: its default), cached per process.

    Raises :class:`DomainError` naming the plugin for an unknown name or version, a factory that raises
    (other than for missing data, whose ``DataNotFound`` names the command that gets it) or a domain that
    breaks the interface."""
    from openrlhf_mtgrpo.envs.base import DataNotFound
    from openrlhf_mtgrpo.registry import PluginError, UnknownNameError, describe_error, domain_factory, origin
    from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

    name = name or DEFAULT_DOMAIN
    # where a factory looks for data without data_dir is read from the environment: part of the key
    key = (name, version, data_dir, os.environ.get("MTGRPO_DATA_DIR"), os.environ.get("MTGRPO_CACHE_DIR"))
    with _lock:
        if key in _loaded:
            return _loaded[key]
    try:
        factory = domain_factory(name)
    except (UnknownNameError, PluginError) as e:
        raise DomainError(str(e)) from None
    where = origin("domain", name) if ":" not in name else name
    declared = tuple(getattr(factory, "versions", ()) or ())
    if version is not None and declared and version not in declared:
        raise DomainError(f"domain {name!r} ({where}) has no version {version!r}; its versions: "
                          f"{', '.join(declared)}")
    try:
        domain = factory(version=version, data_dir=data_dir)
    except (DataNotFound, DomainError):
        raise
    except Exception as e:  # the CLI prints the message only: it says where the factory raised
        raise DomainError(f"domain {name!r} ({where}) failed to load version {version or '(default)'}: "
                          f"{describe_error(e)}") from e
    problems = domain_problems(domain)
    if problems:
        raise DomainError(f"domain {name!r} ({where}) does not meet the domain interface: " + "; ".join(problems))
    with _lock:
        return _loaded.setdefault(key, domain)


def available_version(name: Optional[str] = None, data_dir: Optional[str] = None,
                      requested: Optional[str] = None) -> str:
    """The requested version, else the first of the domain's ``preferred_versions`` this machine has (versions
    not in that list are not looked at, so a broken one never stops a command that needs any), else the
    domain's default version; a factory's own ``available_version(data_dir)`` decides where it has one.
    ``DataNotFound`` (naming the command that gets it) when none is here."""
    from openrlhf_mtgrpo.envs.base import VersionMissing
    from openrlhf_mtgrpo.registry import PluginError, UnknownNameError, domain_factory, origin
    from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

    name = name or DEFAULT_DOMAIN
    try:
        factory = domain_factory(name)
    except (UnknownNameError, PluginError) as e:
        raise DomainError(str(e)) from None
    if requested:
        declared = tuple(getattr(factory, "versions", ()) or ())
        if declared and requested not in declared:
            where = origin("domain", name) if ":" not in name else name
            raise DomainError(f"domain {name!r} ({where}) has no version {requested!r}; its versions: "
                              f"{', '.join(declared)}")
        return requested
    if callable(getattr(factory, "available_version", None)):  # the domain's own look-up, without loading
        return factory.available_version(data_dir)
    preferred = tuple(getattr(factory, "preferred_versions", ()) or ())
    for v in preferred:
        try:
            return load_domain(name, v, data_dir).version
        except VersionMissing:
            continue
    if preferred:
        load_domain(name, preferred[0], data_dir)  # raises, naming the command that gets it
    return load_domain(name, None, data_dir).version


def domain_problems(domain: Any, sample_split: str = "base") -> List[str]:
    """What breaks the interface of :class:`~openrlhf_mtgrpo.envs.base.Domain` (empty when nothing): missing
    attributes, tool schemas that are not OpenAI function schemas or repeat a name, tool kinds for tools the
    schemas lack, tasks without ids, gold actions that are not (name, arguments) or that name a tool neither the
    agent nor the customer (dual control) has (every episode of such a task would score 0 for a correct agent)."""
    out: List[str] = []
    for attr in ("name", "version", "identity", "schema_source", "run_rules", "tool_kinds", "agent_prompt",
                 "customer_prompt", "policy", "tool_schemas", "task", "tasks", "reset", "customer_tool_schemas"):
        if not hasattr(domain, attr):
            out.append(f"it has no {attr!r}")
    if out:
        return out
    if not isinstance(domain.run_rules, base.RunRules):
        out.append("run_rules is not an envs.base.RunRules")
    if not isinstance(domain.tool_kinds, base.ToolKinds):
        out.append("tool_kinds is not an envs.base.ToolKinds")
    if not isinstance(domain.agent_prompt, base.AgentPrompt):
        out.append("agent_prompt is not an envs.base.AgentPrompt")
    if not isinstance(domain.customer_prompt, base.CustomerPrompt) and not (
            domain.customer_prompt is None and domain.run_rules.agent_greeting is None
            and not domain.run_rules.stop_signals):
        out.append("customer_prompt is not an envs.base.CustomerPrompt (None only for a domain without a customer: "
                   "no greeting, no stop signals, as tau2's solo mode)")
    names: List[str] = []
    try:
        schemas = domain.tool_schemas()
    except Exception as e:
        return out + [f"tool_schemas() raised {type(e).__name__}: {e}"]
    for i, s in enumerate(schemas if isinstance(schemas, list) else []):
        fn = s.get("function") if isinstance(s, dict) else None
        if s.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
                or not isinstance(fn.get("parameters"), dict):
            out.append(f"tool schema {i} is not an OpenAI function schema "
                       "({'type': 'function', 'function': {'name', 'description', 'parameters'}})")
            continue
        names.append(fn["name"])
    if not isinstance(schemas, list) or not schemas:
        out.append("tool_schemas() must return a non-empty list")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(f"tool schemas repeat the names {dup}")
    try:
        user_tools = {s["function"]["name"] for s in (domain.customer_tool_schemas() or [])}
    except Exception as e:
        return out + [f"customer_tool_schemas() raised {type(e).__name__}: {e}"]
    if isinstance(domain.tool_kinds, base.ToolKinds):
        stray = sorted(set(domain.tool_kinds.kinds) - set(names) - user_tools)
        if stray:
            out.append(f"tool_kinds names tools the schemas lack: {stray}")
    try:
        tasks = domain.tasks(sample_split)
    except Exception as e:
        return out + [f"tasks({sample_split!r}) raised {type(e).__name__}: {e}"]
    if not tasks:
        out.append(f"tasks({sample_split!r}) is empty")
    tools, unknown = set(names) | user_tools, {}  # unknown: tool -> the tasks whose gold calls it
    for t in tasks:
        if getattr(t, "id", None) in (None, ""):
            out.append("a task has no id")
            break
        bad = [a for a in getattr(t, "actions", []) if not (isinstance(getattr(a, "name", None), str)
                                                            and isinstance(getattr(a, "arguments", None), dict))]
        if bad:
            out.append(f"task {t.id}: gold actions must have a name and a dict of arguments")
            break
        if not isinstance(getattr(t, "user_instructions", None), str):
            out.append(f"task {t.id}: user_instructions (the customer's scenario) must be text")
            break
        for a in getattr(t, "actions", []):
            if a.name not in tools:
                unknown.setdefault(a.name, []).append(str(t.id))
    for tool, ids in sorted(unknown.items()):
        whose = "the agent's or the customer's" if user_tools else "the agent's"
        out.append(f"task {ids[0]}" + (f" (and {len(ids) - 1} more: {', '.join(ids[1:4])}"
                                       f"{', ...' if len(ids) > 4 else ''})" if len(ids) > 1 else "")
                   + f": a gold action calls {tool!r}, which is none of {whose} tools (its episodes would score 0 "
                   "for a correct agent)")
    return out
