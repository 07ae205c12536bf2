"""The tool schemas tau-bench (tau1) shows its agent, read from its own tool modules.

Each of tau-bench's airline tool modules has a ``get_info()`` that returns a dict literal: it is read with
:func:`ast.literal_eval` (never executed), in the order of the package's ``ALL_TOOLS``.  The files are found
by the data layer in the data's lookup order (:func:`openrlhf_mtgrpo.benchmarks.data.locate.find_tool_sources`:
``<data folder>/tau1/tools/``, then the cache of ``mtgrpo data fetch tau1``), each checked against its pinned
sha256.  Without them the package falls back to its own-words schemas and says so (:func:`resolve_schemas`):
``schema_source`` is ``{"source": "own-words", "note": "schemas: own words, not comparable", "reason": ...}``
and the rollout log and eval results carry it.  (tau2's versions show tau2's own ``Tool.openai_schema``:
:mod:`openrlhf_mtgrpo.benchmarks.tau2_native`.)
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

NOT_COMPARABLE = "schemas: own words, not comparable"


class SchemaSourceError(ValueError):
    """The benchmark's source has something this reader does not understand (never guessed)."""


def tool_source_files(version: str, data_dir: Optional[str] = None) -> Optional[Tuple[Dict[str, str], str]]:
    """({file name: path}, where from) of tau-bench's own tool modules, or None (see the module's notes)."""
    from openrlhf_mtgrpo.benchmarks.data import locate

    found = locate.find_tool_sources(version, data_dir)
    return (dict(found.files), found.source) if found is not None else None


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def sources_sha256(files: Dict[str, str]) -> str:
    """SHA-256 over the files' names and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0")
        with open(files[name], "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


def schemas_from_tau1_source(tool_files: Dict[str, str]) -> List[Dict[str, Any]]:
    """The tool list tau-bench shows its agent: each tool class's ``get_info()`` dict literal, in
    the order of ``ALL_TOOLS`` (from ``__init__.py`` when given, else file-name order)."""
    by_class: Dict[str, Dict[str, Any]] = {}
    order: List[str] = []
    for name in sorted(tool_files):
        tree = ast.parse(_read(tool_files[name]))
        if name == "__init__.py":
            for n in tree.body:
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ALL_TOOLS" for t in n.targets):
                    order = [e.id for e in n.value.elts]
            continue
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "get_info":
                    ret = [s for s in fn.body if isinstance(s, ast.Return)]
                    if len(ret) != 1:
                        raise SchemaSourceError(f"{name}: get_info is not a single return of a literal")
                    try:
                        by_class[cls.name] = ast.literal_eval(ret[0].value)
                    except ValueError as e:
                        raise SchemaSourceError(f"{name}: get_info does not return a literal ({e})") from None
    if order:
        missing = [c for c in order if c not in by_class]
        if missing:
            raise SchemaSourceError(f"ALL_TOOLS names classes without a readable get_info: {missing}")
        return [by_class[c] for c in order]
    return list(by_class.values())


@functools.lru_cache(maxsize=None)
def _benchmark_schemas(files_key: Tuple[Tuple[str, str], ...], origin: str):
    files = dict(files_key)
    schemas = schemas_from_tau1_source(files)
    info = {"source": "benchmark", "origin": origin, "path": os.path.dirname(next(iter(files.values()))),
            "files": sorted(files), "sha256": sources_sha256(files)}
    return schemas, info


_warned: set = set()


def resolve_schemas(version: str, tool_names: Sequence[str],
                    data_dir: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """(schemas, schema_source) for tau1: the benchmark's own when its source is found and lists exactly
    ``tool_names``; otherwise our own-words schemas, flagged as not comparable."""
    from openrlhf_mtgrpo.benchmarks.airline.schemas import tool_schemas as own_words

    found = tool_source_files(version, data_dir)
    reason = "the benchmark's tool source was not found (`mtgrpo data fetch tau1`)"
    if found is not None:
        files, origin = found
        try:
            schemas, info = _benchmark_schemas(tuple(sorted(files.items())), origin)
            names = [s["function"]["name"] for s in schemas]
            if sorted(names) == sorted(tool_names):
                return copy.deepcopy(schemas), dict(info)
            reason = (f"the benchmark's source at {info['path']} lists tools {names}, "
                      f"not this package's {list(tool_names)}")
        except Exception as e:  # noqa: BLE001 -- whatever a foreign source does, fall back to own words, loudly
            reason = f"the benchmark's tool source could not be read: {type(e).__name__}: {e}"
    if version not in _warned:
        _warned.add(version)
        logger.warning("%s: %s; %s", version, NOT_COMPARABLE, reason)
    return own_words(version), {"source": "own-words", "note": NOT_COMPARABLE, "reason": reason, "path": None,
                                "sha256": None}
