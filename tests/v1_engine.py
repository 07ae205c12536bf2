"""The interpreter that has tau2-bench >= 1.0 installed from source, for the tests that need that engine.

No registry package ships tau2-bench >= 1.0 (it needs Python >= 3.12 and is installed from its source), so CI
cannot have it: these tests skip there, naming the install.  Where an interpreter is named
(``$MTGRPO_TAU2_V1_PYTHON``, or ``$MTGRPO_TAU2_V101_PYTHON`` as tests/test_tau2_results.py names it), the tests
run it in a subprocess with this checkout first on its path; an interpreter named but without the engine is a
failure, not a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Optional, Sequence

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENVS = ("MTGRPO_TAU2_V1_PYTHON", "MTGRPO_TAU2_V101_PYTHON")
INSTALL = ("install tau2-bench >= 1.0 from source under Python >= 3.12 (pip install -e '<checkout>[knowledge]', "
           "and this package's own light dependencies: pip install --no-deps -e <this checkout>; pip install pyyaml "
           "numpy scipy httpx pydantic transformers) and set MTGRPO_TAU2_V1_PYTHON=/path/to/that/python")

_checked: Dict[str, Any] = {}


def v1_python() -> str:
    """The named interpreter (checked once: it runs tau2-bench >= 1.0 as this package's engine); skips where none
    is named (CI: no registry package ships tau2-bench >= 1.0)."""
    python = next((os.environ[e] for e in ENVS if os.environ.get(e)), None)
    if python is None:
        pytest.skip(f"tau2-bench >= 1.0 (the engine of banking_knowledge) is not named here: {INSTALL}")
    if python not in _checked:
        proc = run(python, "import json; from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine; "
                           "e = engine(); print(json.dumps([e.kind, e.version, e.is_v1]))", timeout=300)
        assert proc.returncode == 0, f"{python} cannot run this package's engine detection: {proc.stderr[-2000:]}"
        _checked[python] = json.loads(proc.stdout.strip().splitlines()[-1])
    kind, version, is_v1 = _checked[python]
    assert is_v1, f"{python} runs {kind} {version}, not tau2-bench >= 1.0 ({INSTALL})"
    return python


def run(python: str, code: str, *args: str, timeout: float = 900, env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """``python -c code args`` with this checkout (and tests/) first on the path."""
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, HERE]), LITELLM_LOCAL_MODEL_COST_MAP="True")
    full.update(env or {})
    return subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=full,
                          cwd=cwd or REPO)


def run_json(code: str, *args: str, timeout: float = 900, env: Optional[Dict[str, str]] = None) -> Any:
    """Run ``code`` under the v1 interpreter; the JSON of its last printed line."""
    proc = run(v1_python(), code, *args, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(argv: Sequence[str], timeout: float = 1800, env: Optional[Dict[str, str]] = None,
            cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """``mtgrpo ARGV`` under the v1 interpreter."""
    return run(v1_python(), "import sys; from openrlhf_mtgrpo.cli import main; sys.exit(main(sys.argv[1:]))",
               *argv, timeout=timeout, env=env, cwd=cwd)
