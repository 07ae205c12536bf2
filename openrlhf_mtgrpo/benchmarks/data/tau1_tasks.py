"""tau-bench's airline task module (``tasks_test.py``) as data, without running it.

The module is a list literal of ``Task(...)`` calls holding ``Action(...)`` calls and plain
literals.  It is parsed with :mod:`ast`; every value must be a literal (or one of those two
calls), so nothing in the file is executed.  The result keeps the fields in the order the file
writes them (annotator, user_id, instruction, actions [{name, kwargs}], outputs) and is rendered as
``json.dumps(indent=2)``, the form our tau1 loader reads as ``tasks_test.json``.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Dict, List

TASK_LIST_NAME = "TASKS"
REQUIRED_FIELDS = ("user_id", "actions", "instruction", "outputs")  # tau_bench.types.Task
ACTION_FIELDS = ("name", "kwargs")  # tau_bench.types.Action


class TaskModuleError(ValueError):
    pass


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def _value(node: ast.AST, inside: str) -> Any:
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in ("Task", "Action") or node.args:
            raise TaskModuleError(f"{_where(node)}: only Task(...) and Action(...) with keyword arguments "
                                  f"may appear in {inside}, not a call to {ast.unparse(node.func)}")
        fields = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise TaskModuleError(f"{_where(node)}: **-arguments are not data")
            fields[kw.arg] = _value(kw.value, name)
        need = REQUIRED_FIELDS if name == "Task" else ACTION_FIELDS
        missing = [k for k in need if k not in fields]
        if missing:
            raise TaskModuleError(f"{_where(node)}: {name}(...) lacks {', '.join(missing)}")
        return fields
    if isinstance(node, ast.List):
        return [_value(e, inside) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise TaskModuleError(f"{_where(node)}: ** in a dict literal is not data")
        return {_literal(k): _value(v, inside) for k, v in zip(node.keys, node.values)}
    return _literal(node)


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TaskModuleError(f"{_where(node)}: not a literal: {ast.unparse(node)[:80]}") from None


def parse_tasks_module(source: str) -> List[Dict[str, Any]]:
    """The tasks of the module's ``TASKS = [...]`` list, as plain dicts."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise TaskModuleError(f"not Python: {e}") from None
    found = [s for s in tree.body if isinstance(s, ast.Assign) and len(s.targets) == 1
             and isinstance(s.targets[0], ast.Name) and s.targets[0].id == TASK_LIST_NAME]
    if len(found) != 1:
        raise TaskModuleError(f"expected exactly one top-level `{TASK_LIST_NAME} = [...]`, found {len(found)}")
    node = found[0].value
    if not isinstance(node, ast.List):
        raise TaskModuleError(f"{_where(node)}: {TASK_LIST_NAME} is not a list literal")
    tasks = []
    for elt in node.elts:
        if not (isinstance(elt, ast.Call) and isinstance(elt.func, ast.Name) and elt.func.id == "Task"):
            raise TaskModuleError(f"{_where(elt)}: every element of {TASK_LIST_NAME} must be Task(...)")
        tasks.append(_value(elt, TASK_LIST_NAME))
    return tasks


def render_tasks_json(tasks: List[Dict[str, Any]]) -> bytes:
    return json.dumps(tasks, indent=2).encode("utf-8")


def tasks_json_from_module(source: bytes) -> bytes:
    return render_tasks_json(parse_tasks_module(source.decode("utf-8")))
