"""The core names no benchmark: the tau-bench domains live in ``openrlhf_mtgrpo.benchmarks`` and register through
the same entry points a third-party package uses; nothing outside that sub-package imports it, and the core's
commands run a domain of another package with it hidden.

The import walk reads every module's source (``ast``), lazy imports inside functions included."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import Dict, List

import pytest

from test_example_domain import DOMAIN, ESTIMATOR, _check, example, example_env  # noqa: F401 (fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "openrlhf_mtgrpo")
BENCHMARKS = "openrlhf_mtgrpo.benchmarks"
OFFLINE = "openrlhf_mtgrpo.offline"


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[:-len(".py")].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _imports(path: str) -> List[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved), wherever the import stands."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    me = _module_name(path)
    package = me if path.endswith("__init__.py") else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append(module)
            out.extend(f"{module}.{a.name}" for a in node.names)  # "from pkg import module"
    return out


def _package_imports() -> Dict[str, List[str]]:
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                out[_module_name(path)] = _imports(path)
    return out


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "openrlhf_mtgrpo" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text("def f():\n    from ..benchmarks import data\n    import openrlhf_mtgrpo.offline.x\n")
    global REPO
    old, REPO = REPO, str(tmp_path)
    try:
        found = _imports(str(pkg / "m.py"))
    finally:
        REPO = old
    assert "openrlhf_mtgrpo.benchmarks.data" in found and "openrlhf_mtgrpo.offline.x" in found


def test_nothing_outside_the_benchmark_sub_package_imports_it():
    imports = _package_imports()
    assert any(_under(m, BENCHMARKS) for m in imports), "the walk found no benchmark module: wrong folder?"
    offenders = {m: sorted({i for i in imp if _under(i, BENCHMARKS)}) for m, imp in imports.items()
                 if not _under(m, BENCHMARKS)}
    assert {m: i for m, i in offenders.items() if i} == {}


#: the demo command and serve-scripted (the demo's policy and customer as endpoints) play the scripted stand-ins of
#: offline/ (its toy tokenizer, scripted engine and customer); nothing else outside offline/ and the benchmark
#: domains' demo hooks may import them
OFFLINE_USERS = ("openrlhf_mtgrpo.workflows.demo", "openrlhf_mtgrpo.workflows.serve_scripted")


def test_production_code_does_not_import_the_demo_stand_ins():
    imports = _package_imports()
    offenders = {m: sorted({i for i in imp if _under(i, OFFLINE)}) for m, imp in imports.items()
                 if not (_under(m, OFFLINE) or _under(m, BENCHMARKS) or m in OFFLINE_USERS)}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_registry_names_no_built_in_plugin():
    """The package's own domains, component sets, estimators and tool-call parsers come from its entry points
    (setup.cfg), as a plugin's do; the registry holds no configuration (DEFAULT_DOMAIN is rollout.config's)."""
    from openrlhf_mtgrpo import registry

    with open(registry.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    # its code and text less its imports (type hints import the types a parser or an estimator is)
    source = "\n".join(ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.stmt)
                       and not isinstance(n, (ast.Import, ast.ImportFrom, ast.If, ast.FunctionDef, ast.ClassDef))
                       ) + "\n".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                                     and isinstance(n.value, str))
    for spec in ("benchmarks.", "rewards.tau", "rewards.dual_control", "make_airline", "tau_components",
                 "advantages.estimators", "rollout.tool_parsers", "gtpo_hybrid", "HermesParser", "DEFAULT_DOMAIN"):
        assert spec not in source, spec
    for kind, name in (("domain", "airline"), ("domain", "retail"), ("domain", "telecom"),
                       ("reward components", "tau"), ("reward components", "tau_dual"),
                       ("advantage estimator", "gtpo_hybrid"), ("advantage estimator", "mt_grpo"),
                       ("advantage estimator", "grpo_outcome"), ("tool-call parser", "hermes"),
                       ("tool-call parser", "qwen3_coder"), ("tool-call parser", "auto")):
        assert registry.origin(kind, name).startswith("entry point openrlhf_mtgrpo."), (kind, name)
    assert registry.get_advantage_estimator("gtpo_hybrid").__module__ == "openrlhf_mtgrpo.advantages.estimators"
    assert type(registry.get_tool_call_parser("qwen3_coder")).__name__ == "XmlFunctionParser"
    assert not hasattr(registry, "DEFAULT_DOMAIN")


HIDE = """
import importlib.abc, sys
HIDDEN = ("openrlhf_mtgrpo.benchmarks", "tau2", "tau_bench")


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == h or name.startswith(h + ".") for h in HIDDEN):
            raise ModuleNotFoundError(f"{name} is hidden for this test", name=name)
        return None


sys.meta_path.insert(0, Hide())
from openrlhf_mtgrpo.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HIDDEN))
assert not loaded, loaded
sys.exit(code)
"""


def _hidden(example, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE, *args], capture_output=True, text=True, timeout=600,
                          env=example_env(example["target"]), cwd=example["source"])


@pytest.mark.slow
def test_the_core_runs_a_third_party_domain_with_the_benchmarks_hidden(example, tmp_path):
    """demo (rollouts, per-turn rewards, IRC, the estimators), ``irc analyze`` and ``data prepare`` on the example
    domain with ``openrlhf_mtgrpo.benchmarks``, tau2 and tau_bench unimportable."""
    out = tmp_path / "demo"
    stdout = _check(_hidden(example, "demo", "--domain", DOMAIN, "--estimator", ESTIMATOR, "--group-size", "4",
                            "--out", str(out)))
    assert f"DOMAIN: {DOMAIN}" in stdout and "IRC table" in stdout
    log = out / "rollouts-demo.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert records and {r["domain"] for r in records} == {DOMAIN}
    stdout = _check(_hidden(example, "irc", "analyze", str(log), "--out", str(tmp_path / "irc")))
    assert json.loads((tmp_path / "irc" / "irc_result.json").read_text())["domain"] == DOMAIN
    prompts = tmp_path / "train.jsonl"
    _check(_hidden(example, "data", "prepare", "--domain", DOMAIN, "--split", "train", "--out", str(prompts)))
    labels = [json.loads(json.loads(line)["label"]) for line in prompts.read_text().splitlines()]
    assert labels and {lab["domain"] for lab in labels} == {DOMAIN}
