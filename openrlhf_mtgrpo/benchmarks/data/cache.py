"""The benchmark data cache: ``<root>/<version>/`` with the version's files, ``tools/`` and a manifest.

``root`` is ``$MTGRPO_CACHE_DIR`` or ``~/.cache/openrlhf-mtgrpo``.  A version folder is valid only
when its ``MANIFEST.json`` exists, names that version and every file it lists is there with the
listed size.  The manifest is the last thing written, inside a hidden staging folder that is then
renamed into place, so an interrupted fetch never leaves a valid-looking version behind.

The layout ``mtgrpo data fetch`` writes (also what a data folder, ``--data-dir`` /
``$MTGRPO_DATA_DIR``, holds; a copy of the cache is a valid data folder)::

    <root>/
      tau2/        db.json tasks.json split_tasks.json policy.md MANIFEST.json
                   tools/tools.py tools/data_model.py
                   prompts/llm_agent.py prompts/user_simulator.py prompts/orchestrator.py
                   prompts/simulation_guidelines.md prompts/simulation_guidelines_tools.md
      tau2-2025/   (the same names; tasks.json and the guidelines are the 2025 release's)
      tau1/        flights.json users.json reservations.json tasks_test.json wiki.md MANIFEST.json
                   tools/__init__.py tools/<one module per tool>.py   (15 files)
                   prompts/user.py prompts/tool_calling_agent.py

``MANIFEST.json`` records the repository, commit, and each file's sha256, size and origin, and under
``missing`` the prompt sources the fetch could not get (the version is complete without them; the
prompts that need them fall back, flagged).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, Optional

CACHE_ENV = "MTGRPO_CACHE_DIR"
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1
_PARTIAL = ".partial-"
_OLD = ".old-"


def cache_root(root: Optional[str] = None) -> str:
    """``root`` if given, else ``$MTGRPO_CACHE_DIR``, else ``~/.cache/openrlhf-mtgrpo`` (absolute)."""
    r = root or os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "openrlhf-mtgrpo")
    return os.path.abspath(os.path.expanduser(r))


def version_dir(version: str, root: Optional[str] = None) -> str:
    return os.path.join(cache_root(root), version)


def sha256_file(path: str) -> str:
    return sha256_files([path])


def sha256_files(paths: Iterable[str]) -> str:
    """SHA-256 of one file, or of several files' bytes in the given order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_manifest(version: str, root: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The manifest of a complete cached ``version``, or None when it is absent or incomplete."""
    folder = version_dir(version, root)
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("version") != version or not isinstance(m.get("files"), dict):
        return None
    for name, info in m["files"].items():
        p = os.path.join(folder, name)
        try:
            if os.path.getsize(p) != info.get("size"):
                return None
        except OSError:
            return None
    return m


def new_staging(version: str, root: Optional[str] = None) -> str:
    """A fresh hidden folder beside the version folder (same file system: the final rename is atomic)."""
    r = cache_root(root)
    os.makedirs(r, exist_ok=True)
    d = tempfile.mkdtemp(prefix=f"{_PARTIAL}{version}-{os.getpid()}-", dir=r)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(d, 0o777 & ~umask)  # mkdtemp makes it private; the cache is as readable as any folder
    return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(version: str, root: Optional[str] = None) -> None:
    """Remove staging folders of ``version`` left by fetches that died (their process is gone)."""
    r = cache_root(root)
    if not os.path.isdir(r):
        return
    for name in os.listdir(r):
        for prefix in (_PARTIAL, _OLD):
            head = f"{prefix}{version}-"
            if not name.startswith(head):
                continue
            pid = name[len(head):].split("-", 1)[0]
            if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
                shutil.rmtree(os.path.join(r, name), ignore_errors=True)


def install(staging: str, version: str, manifest: Dict[str, Any], root: Optional[str] = None) -> str:
    """Write ``manifest`` into ``staging`` (last), then move ``staging`` to the version folder."""
    manifest = dict(manifest, format=MANIFEST_FORMAT, version=version)
    tmp = os.path.join(staging, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(staging, MANIFEST))
    final = version_dir(version, root)
    old = None
    if os.path.lexists(final):
        old = tempfile.mkdtemp(prefix=f"{_OLD}{version}-{os.getpid()}-", dir=cache_root(root))
        os.rename(final, os.path.join(old, "v"))
    os.rename(staging, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return final
