"""Tiny plugin distributions written into a temporary folder, found through their entry points.

:func:`plugin_site` writes a ``<dist>-0.1.dist-info`` (METADATA and entry_points.txt) and the plugin's modules into
one folder; put on ``PYTHONPATH`` (or ``sys.path``), ``importlib.metadata`` finds its entry points exactly as it
finds those of a pip-installed package.  :func:`run_python` runs a script in a fresh interpreter with that folder
first on the path (a fresh registry: entry points are read once per process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Dict

from helpers import pythonpath

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plugin_site(root, dist: str, modules: Dict[str, str], entry_points: Dict[str, Dict[str, str]]) -> str:
    """Write the distribution ``dist`` into ``root``: ``modules`` (module name -> source) and its
    ``entry_points`` (group -> {name: "module:attr"}).  Returns ``root`` as a string."""
    root = str(root)
    info = os.path.join(root, f"{dist.replace('-', '_')}-0.1.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        for group, eps in entry_points.items():
            f.write(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n")
    for name, source in modules.items():
        with open(os.path.join(root, name + ".py"), "w") as f:
            f.write(textwrap.dedent(source))
    return root


def run_python(script: str, *paths: str, args=(), timeout: int = 120, env=None) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter with ``paths`` first on PYTHONPATH, then the checkout; no bytecode
    files (a test may rewrite a module it imported)."""
    full = dict(os.environ)
    full.update(env or {})
    full["PYTHONPATH"] = pythonpath(*paths, REPO)
    full["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          env=full, timeout=timeout, cwd=REPO)
