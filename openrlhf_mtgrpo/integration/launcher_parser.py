"""Upstream's own argument parser and post-parse checks of ``openrlhf.cli.train_ppo_ray``.

The parser is built inside the launcher's ``if __name__ == "__main__":`` block,
after imports that need vLLM and GPUs.  We execute exactly the statements of that
block that come before ``parser.parse_args()`` -- upstream's code, unmodified --
with only ``argparse`` in scope, so a recipe can be checked on any machine.  The
plugin's argparse hook is active, so the parser also has our flags and aliases.

:func:`post_parse_checks` runs the statements that follow ``parse_args()`` the same
way (``hierarchize`` with the plugin's checks, then upstream's own asserts), minus the
last two: the ModelScope hub patch and ``train(args)``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import difflib
import importlib.util
import os
import sys
from typing import Any, Dict, List, Tuple


class RecipeError(ValueError):
    pass


def _main_block(tree: ast.Module) -> List[ast.stmt]:
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                getattr(node.test.left, "id", None) == "__name__":
            return node.body
    raise RecipeError("openrlhf.cli.train_ppo_ray has no __main__ block: unsupported OpenRLHF layout")


def _stdlib(module: str) -> bool:
    import sys

    return module.split(".")[0] in sys.stdlib_module_names


def _launcher_source() -> Tuple[str, ast.Module]:
    import openrlhf  # noqa: F401  (fires the plugin's argparse hook)

    spec = importlib.util.find_spec("openrlhf.cli.train_ppo_ray")
    if spec is None or not spec.origin:
        raise RecipeError("OpenRLHF is not installed (openrlhf.cli.train_ppo_ray not found)")
    with open(spec.origin) as f:
        return spec.origin, ast.parse(f.read())


def upstream_parser() -> argparse.ArgumentParser:
    origin, tree = _launcher_source()
    # the launcher's module-level imports of the standard library (datetime, os, ...); not the heavy ones
    body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
            and all(_stdlib(a.name if isinstance(n, ast.Import) else (n.module or "")) for a in n.names)]
    for stmt in _main_block(tree):
        if "parse_args" in ast.unparse(stmt):
            break
        body.append(stmt)
    ns: Dict[str, Any] = {"argparse": argparse, "__name__": "openrlhf_mtgrpo_recipe_check"}
    exec(compile(ast.Module(body=body, type_ignores=[]), origin, "exec"), ns)
    parser = ns.get("parser")
    if not isinstance(parser, argparse.ArgumentParser):
        raise RecipeError("could not build OpenRLHF's parser from openrlhf.cli.train_ppo_ray")
    return parser


def _post_parse_statements(tree: ast.Module) -> List[ast.stmt]:
    block = _main_block(tree)
    at = next((i for i, stmt in enumerate(block) if "parse_args" in ast.unparse(stmt)), None)
    if at is None:
        raise RecipeError("openrlhf.cli.train_ppo_ray's __main__ block has no parse_args(): unsupported layout")
    out = []
    for stmt in block[at + 1:]:
        text = ast.unparse(stmt)
        if isinstance(stmt, ast.Expr) and text.startswith("train("):
            continue  # the run itself
        if isinstance(stmt, ast.If) and "use_ms" in ast.unparse(stmt.test):
            continue  # patches the model hub for downloads; no check
        out.append(stmt)
    return out


def post_parse_checks(ns: argparse.Namespace):
    """Run upstream's statements after ``parse_args()`` on (a copy of) ``ns``: the plugin's checks (in
    ``hierarchize``) and every assert of OpenRLHF's launcher, before anything starts.  Returns the args
    as ``train(args)`` would get them; a rejected setting raises :class:`RecipeError` naming the line."""
    from openrlhf_mtgrpo.integration.launch_checks import LaunchCheckError
    from openrlhf_mtgrpo.integration.openrlhf_hooks import checking_only

    origin, tree = _launcher_source()
    code = compile(ast.Module(body=_post_parse_statements(tree), type_ignores=[]), origin, "exec")
    env: Dict[str, Any] = {"args": copy.deepcopy(ns), "__name__": "openrlhf_mtgrpo_launch_check"}
    with checking_only(), contextlib.redirect_stdout(sys.stderr):  # upstream's warnings go to stderr
        try:
            exec(code, env)
        except LaunchCheckError as e:
            raise RecipeError(str(e)) from None
        except AssertionError as e:
            tb, line = e.__traceback__, "?"
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == origin:
                    line = tb.tb_lineno
                tb = tb.tb_next
            raise RecipeError(f"OpenRLHF rejects it: {e} (openrlhf/cli/train_ppo_ray.py:{line})") from None
    return env["args"]


def recipe_to_argv(recipe: Dict[str, Any], parser: argparse.ArgumentParser) -> List[str]:
    """Recipe keys (hierarchical flag names without dashes) -> argv, each key checked against the parser."""
    options = parser._option_string_actions
    names = sorted(o[2:] for o in options if o.startswith("--"))
    argv: List[str] = []
    for key, value in recipe.items():
        if key == "train.agent_func_path" and value == "auto":
            from openrlhf_mtgrpo.rollout import agent_func

            value = agent_func.__file__  # the installed agent file (same path on every node of the cluster)
        opt = f"--{key}"
        if opt not in options:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RecipeError(f"unknown OpenRLHF option {key!r} in recipe{hint}")
        action = options[opt]
        if action.nargs == 0:  # store_true / store_false
            if not isinstance(value, bool):
                raise RecipeError(f"{key} is a switch: use true or false, not {value!r}")
            if value != action.default:
                argv.append(opt)
            continue
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            argv += [opt] + [str(v) for v in value]
        else:
            argv += [opt, str(value)]
    return argv


class _ParseError(Exception):
    pass


def check_argv(argv: List[str], parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse with upstream's parser; type and choice errors become :class:`RecipeError`."""

    def error(message):
        raise _ParseError(message)

    parser.error = error  # type: ignore[assignment]
    try:
        ns, extra = parser.parse_known_args(argv)
    except _ParseError as e:
        raise RecipeError(f"OpenRLHF's parser rejects the recipe: {e}") from None
    if extra:
        raise RecipeError(f"OpenRLHF's parser does not know {extra}")
    return ns


def load_recipe(path: str, overrides: List[str] = ()) -> Dict[str, Any]:
    """A recipe YAML (a flat mapping of hierarchical flag -> value), with ``key=value`` overrides."""
    import yaml

    if os.path.isdir(path):
        yamls = sorted(n for n in os.listdir(path) if n.endswith((".yaml", ".yml"))
                       and os.path.isfile(os.path.join(path, n)))
        which = (f"it holds {', '.join(os.path.join(path, n) for n in yamls[:5])}{', ...' if len(yamls) > 5 else ''}"
                 if yamls else "it holds no .yaml file")
        raise RecipeError(f"recipe {path} is a directory; pass one YAML file ({which})")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} not found") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a mapping of OpenRLHF options to values")
    recipe = dict(data.get("openrlhf", data)) if isinstance(data.get("openrlhf"), dict) else dict(data)
    nested = [k for k, v in recipe.items() if isinstance(v, dict)]
    if nested:
        raise RecipeError(f"recipe {path}: recipes are flat mappings of OpenRLHF options to values; "
                          f"{nested[0]!r} holds a mapping (write '{nested[0]}.<key>: value' instead)")
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        recipe[k.strip().lstrip("-")] = yaml.safe_load(v) if v.strip() else None
    return recipe


def expand_recipe(path: str, overrides: List[str] = ()) -> Tuple[List[str], argparse.Namespace]:
    parser = upstream_parser()
    argv = recipe_to_argv(load_recipe(path, overrides), parser)
    return argv, check_argv(argv, upstream_parser())
