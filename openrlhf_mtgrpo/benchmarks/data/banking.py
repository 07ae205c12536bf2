"""banking_knowledge's files (tau2-bench v1.0.1): their pins, where this machine has them, and their fetch.

banking_knowledge exists only in tau2-bench's source (>= 1.0; v1.0.1 = commit a2c0247, the leaderboard's release):
no registry package ships its code or its data.  Its data folder (``data/tau2/domains/banking_knowledge/`` of the
repository) holds what tau2's code reads:

* ``db.json``: the transactional database (users, accounts, cards, ... and the tables the tools write);
* ``tasks/task_*.json``: the 97 tasks, one file each (tau2's ``get_tasks`` reads these, not ``tasks.json``,
  which differs from them in 13 tasks' ``required_documents`` and is not read by the harness);
* ``documents/*.json``: the knowledge base, 698 documents (tau2's ``KnowledgeBase.load``);
* ``prompts/``: the agent's policy templates of the retrieval configurations and their ``components/``
  (tau2's ``build_policy``).

Pins: the sha256 of ``db.json``, and for each of the three folders the number of files and the sha256 of its
*manifest*: the lines ``"<path> <sha256>\\n"`` of every file under it (path relative to the domain folder, e.g.
``tasks/task_001.json``), sorted (:func:`manifest`).  A folder with one file more, less or changed is refused.

Where the files are (:func:`locate`), in this order: a data folder (``--data-dir`` / ``$MTGRPO_DATA_DIR``) with a
``banking_knowledge/`` sub-folder; the cache that ``mtgrpo data fetch banking_knowledge`` fills; the data folder
of an installed tau2-bench >= 1.0 (its ``DATA_DIR``: ``$TAU2_DATA_DIR``, else the checkout's ``data/``).  Every
place is verified against the pins.  :func:`fetch` gets the files from tau2-bench at the pinned commit: from
GitHub (the folder listing from GitHub's API, each file from raw.githubusercontent.com), a local clone
(``--git``) or a source checkout (``--checkout``), verified before the version is installed into the cache.

Stdlib only at import (the CLI imports the data layer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.benchmarks.data import cache
from openrlhf_mtgrpo.benchmarks.data.cache import sha256_file as file_sha256
from openrlhf_mtgrpo.benchmarks.data.sources import GITHUB_RAW, TAU2_CURRENT_COMMIT, TAU2_REPO
from openrlhf_mtgrpo.envs.base import DataNotFound, VersionMissing

VERSION = "banking_knowledge"
REPO = TAU2_REPO
COMMIT = TAU2_CURRENT_COMMIT
#: the domain's data folder in the repository
REPO_FOLDER = "data/tau2/domains/banking_knowledge"
NOTE = "tau2-bench banking_knowledge (v1.0.1, commit a2c0247; no registry package ships it)"
LICENCE = "MIT"

DB_FILE = "db.json"
DB_SHA256 = "e692feb797c659f0e21ff7380aa87beb4e95a0694d7bb7945f073102f0293d28"


@dataclass(frozen=True)
class FolderPin:
    """One folder of the domain: how many files it holds and the sha256 of its manifest."""

    name: str
    files: int
    manifest_sha256: str


FOLDERS: Tuple[FolderPin, ...] = (
    FolderPin("tasks", 97, "e64c4190ed0af46626b651a8ce1b839cf61fc9ecd58a4eb85b6a59922c76f0b4"),
    FolderPin("documents", 698, "9d9164ef2cf61107b418430a796f8f88a01fd5bef9faa110c8155312e8759de8"),
    FolderPin("prompts", 17, "2137c5084833053f2784158adaea1b9f0c8e1bdab7d97a632cb7e7b4d89f1ca9"),
)


def fetch_command() -> str:
    return f"mtgrpo data fetch {VERSION}"


class DataCorrupt(DataNotFound):
    """banking_knowledge files that are not the pinned ones."""


# ------------------------------------------------------------------ pins


def manifest_lines(folder: str, sub: str) -> List[Tuple[str, str]]:
    """(path relative to ``folder``, sha256) of every file under ``folder/sub``, sorted by path."""
    out = []
    for root, dirs, files in os.walk(os.path.join(folder, sub)):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.startswith("."):
                continue
            p = os.path.join(root, name)
            out.append((os.path.relpath(p, folder).replace(os.sep, "/"), file_sha256(p)))
    return sorted(out)


def manifest(lines: List[Tuple[str, str]]) -> str:
    """The sha256 of a folder's manifest: the sorted lines ``"<path> <sha256>\\n"``."""
    return hashlib.sha256("".join(f"{p} {h}\n" for p, h in sorted(lines)).encode()).hexdigest()


def verify(folder: str, where: str, repair: str) -> Dict[str, str]:
    """Check ``folder`` (a banking_knowledge data folder) against the pins; the digests, by name
    (``db.json``, ``tasks/``, ``documents/``, ``prompts/``).  :class:`DataCorrupt` names what differs."""
    out = {}
    db = os.path.join(folder, DB_FILE)
    if not os.path.isfile(db):
        raise DataCorrupt(f"{VERSION}: {folder} ({where}) has no {DB_FILE}; {repair}")
    got = file_sha256(db)
    if got != DB_SHA256:
        raise DataCorrupt(f"{VERSION}: {db} ({where}) is not the pinned file: sha256 {got}, expected {DB_SHA256}; "
                          f"{repair}")
    out[DB_FILE] = got
    for pin in FOLDERS:
        lines = manifest_lines(folder, pin.name)
        digest = manifest(lines)
        if len(lines) != pin.files or digest != pin.manifest_sha256:
            raise DataCorrupt(f"{VERSION}: {os.path.join(folder, pin.name)}/ ({where}) is not the pinned folder: "
                              f"{len(lines)} files, manifest sha256 {digest}; expected {pin.files} files, "
                              f"{pin.manifest_sha256}; {repair}")
        out[pin.name + "/"] = digest
    return out


# ------------------------------------------------------------------ where the files are


@dataclass(frozen=True)
class Located:
    folder: str
    source: str  # for people: "data folder /x", "cache /y", "tau2-bench 1.0.1 data folder /z"
    kind: str  # "data_dir", "env", "cache", "tau2-bench"
    digests: Dict[str, str]


_verified: Dict[Tuple[str, tuple], Dict[str, str]] = {}


def _stamp(folder: str) -> tuple:
    """What changes when a folder's files change (the folders' and db.json's times and sizes)."""
    parts = []
    for name in (DB_FILE,) + tuple(p.name for p in FOLDERS):
        p = os.path.join(folder, name)
        try:
            st = os.stat(p)
        except OSError:
            parts.append((name, None))
            continue
        parts.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(parts)


def _verified_digests(folder: str, where: str, repair: str) -> Dict[str, str]:
    key = (os.path.realpath(folder), _stamp(folder))
    hit = _verified.get(key)
    if hit is None:
        hit = _verified[key] = verify(folder, where, repair)
    return dict(hit)


def _engine_folder() -> Tuple[Optional[str], str]:
    """tau2-bench's own banking_knowledge data folder, where tau2-bench >= 1.0 is the engine here."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import Tau2Unavailable, engine

    try:
        eng = engine()
    except Tau2Unavailable as e:
        return None, f"tau2-bench (not installed: {e})"
    if not eng.is_v1:
        return None, f"{eng.title} (ships no banking_knowledge)"
    return eng.domain_data_dir(VERSION), eng.title


def locate(data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
           use_engine: bool = True) -> Located:
    """Where banking_knowledge's files are, by the lookup order (module notes), verified against the pins;
    :class:`VersionMissing` where no place has them, :class:`DataCorrupt` where the files found differ."""
    from openrlhf_mtgrpo.benchmarks.data.locate import DATA_ENV

    looked = []
    roots = [("data_dir", "data folder", data_dir)] if data_dir else (
        [("env", f"${DATA_ENV}", os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else [])
    for kind, label, root in roots:
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise DataNotFound(f"{label} {root} does not exist")
        folder = os.path.join(root, VERSION)
        if os.path.isdir(folder):
            where = f"{label} {root}"
            return Located(folder, where, kind, _verified_digests(
                folder, where, f"copy tau2-bench's data/tau2/domains/{VERSION} there again, or fill it with "
                               f"`mtgrpo data fetch --force --cache-dir {root} {VERSION}`"))
        looked.append(f"{label} {root} (no {VERSION}/)")
    if not roots:
        looked.append(f"${DATA_ENV} (not set)")
    m = cache.read_manifest(VERSION, cache_dir)
    folder = cache.version_dir(VERSION, cache_dir)
    if m is not None:
        where = f"cache {folder}"
        return Located(folder, where, "cache",
                       _verified_digests(folder, where, f"get a fresh copy with `mtgrpo data fetch --force {VERSION}`"))
    looked.append(f"cache {folder} (not fetched)")
    if use_engine:
        folder, title = _engine_folder()
        if folder is not None and os.path.isdir(folder):
            where = f"{title} data folder {folder}"
            return Located(folder, where, "tau2-bench",
                           _verified_digests(folder, where, "reinstall tau2-bench v1.0.1 from its source, or set "
                                                            "$TAU2_DATA_DIR to its data/ folder"))
        looked.append(title if folder is None else f"{title} ({folder} does not exist)")
    raise VersionMissing(f"benchmark version {VERSION} ({NOTE}) is not on this machine; looked in: "
                         f"{'; '.join(looked)}. Get it with `{fetch_command()}` (from GitHub, or "
                         f"`{fetch_command()} --checkout {REPO}=<tau2-bench checkout>`)")


# ------------------------------------------------------------------ fetch

GITHUB_TREE = "https://api.github.com/repos/{repo}/git/trees/{commit}?recursive=1"


class FetchError(RuntimeError):
    pass


def list_folder(reader, repo: str, commit: str, path: str) -> List[str]:
    """The files under ``path`` of ``repo`` at ``commit`` (repository paths), as ``reader`` can list them:
    a local clone (``git ls-tree``), a source checkout (its folder), or GitHub's API (the default URL
    template only: a mirror cannot be listed)."""
    from openrlhf_mtgrpo.benchmarks.data.fetch import CheckoutReader, GitReader, UrlReader

    if isinstance(reader, CheckoutReader):
        return reader.list(repo, path)
    if isinstance(reader, GitReader):
        return reader.list(repo, commit, path)
    if isinstance(reader, UrlReader) and reader.template == GITHUB_RAW:
        url = GITHUB_TREE.format(repo=repo, commit=commit)
        try:
            with urllib.request.urlopen(url, timeout=reader.timeout) as r:
                tree = json.load(r)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise FetchError(f"could not list {path} of {repo} at {commit[:12]} ({url}): {e}; without access to "
                             f"GitHub, fetch from a tau2-bench checkout (`{fetch_command()} --checkout "
                             f"{repo}=PATH`) or a clone (`--git {repo}=PATH`)") from None
        if tree.get("truncated"):
            raise FetchError(f"GitHub's listing of {repo} at {commit[:12]} is truncated; fetch from a clone "
                             f"(`--git {repo}=PATH`) or a checkout (`--checkout {repo}=PATH`)")
        head = path.rstrip("/") + "/"
        return sorted(e["path"] for e in tree.get("tree", []) if e.get("type") == "blob" and e["path"].startswith(head))
    raise FetchError(f"{VERSION} has {sum(p.files for p in FOLDERS)} files in three folders, which a URL mirror "
                     f"cannot list; fetch from GitHub, a clone (`--git {repo}=PATH`) or a checkout "
                     f"(`--checkout {repo}=PATH`)")


@dataclass
class FetchResult:
    version: str
    folder: str
    status: str  # "fetched" or "present"
    files: int


def fetch(*, root: Optional[str] = None, reader=None, force: bool = False,
          progress: Optional[Callable[[str], None]] = None) -> FetchResult:
    """Fetch banking_knowledge into the cache (``root``); verified against the pins before it is installed.
    Idempotent unless ``force``.  Raises :class:`FetchError` (nothing installed) or :class:`DataCorrupt`."""
    from openrlhf_mtgrpo.benchmarks.data.fetch import FetchError as BaseFetchError, UrlReader

    say = progress or (lambda _msg: None)
    present = cache.read_manifest(VERSION, root)
    if present and not force and present.get("commit") == COMMIT and present.get("pins") == _pins_record():
        return FetchResult(VERSION, cache.version_dir(VERSION, root), "present", len(present["files"]))
    reader = reader or UrlReader()
    names = [f"{REPO_FOLDER}/{DB_FILE}"]
    for pin in FOLDERS:
        listed = list_folder(reader, REPO, COMMIT, f"{REPO_FOLDER}/{pin.name}")
        if len(listed) != pin.files:
            raise FetchError(f"{VERSION}: {REPO} at {COMMIT[:12]} lists {len(listed)} files under "
                             f"{REPO_FOLDER}/{pin.name}, the pins {pin.files}; refusing it")
        names += listed
    cache.remove_leftovers(VERSION, root)
    staging = cache.new_staging(VERSION, root)
    files: Dict[str, Dict] = {}
    try:
        t0 = time.time()
        for i, path in enumerate(names):
            rel = path[len(REPO_FOLDER) + 1:]
            dest = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            try:
                origin = reader.download(REPO, COMMIT, path, dest)
            except BaseFetchError as e:
                raise FetchError(str(e)) from None
            files[rel] = {"sha256": file_sha256(dest), "size": os.path.getsize(dest), "from": origin}
            if i == 0 or (i + 1) % 100 == 0 or i + 1 == len(names):
                say(f"  {i + 1:>4}/{len(names)} files ({time.time() - t0:.0f} s)  last: {rel}")
        digests = verify(staging, "staging", "nothing was installed")
        say(f"  db.json and the manifests of tasks/, documents/, prompts/: sha256 ok")
        m = {"repo": REPO, "commit": COMMIT, "note": NOTE, "licence": LICENCE, "pins": _pins_record(),
             "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files, "digests": digests}
        folder = cache.install(staging, VERSION, m, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return FetchResult(VERSION, folder, "fetched", len(files))


def _pins_record() -> Dict[str, object]:
    return {DB_FILE: DB_SHA256, **{p.name + "/": [p.files, p.manifest_sha256] for p in FOLDERS}}
