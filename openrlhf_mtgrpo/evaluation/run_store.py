"""An eval output folder: the run's identity, its results, resume.

Files of a folder:

* ``run.json``: the run's identity (:func:`run_identity`) -- everything that decides
  the numbers: policy model and endpoint, sampling settings, chat-template options,
  domain, benchmark version and file hashes (and the tool-schema source when the environment
  exposes one), split and task ids, trials, user simulator (model, temperature, prompt source
  and hash), the agent prompt's source and hash, judge, and the run rules (budget, error limit:
  whether they are the benchmark's own);
* ``results.jsonl``: one line per finished episode attempt (compact), appended the
  moment it ends; the latest line of a (task, trial) is its result;
* ``rollouts-eval.jsonl``: the full episode of every attempt (written before its
  result line, so a result always has its episode);
* ``results.json``: the summary of the last run (pass^k table, counts, identity);
* where the domain writes its benchmark's own results format (``BenchmarkResults``), its file(s), rewritten
  after every run from every scored episode so far (named in the summary's ``benchmark_results``).

Resume: a rerun with the same identity keeps every scored episode and runs the
(task, trial) pairs that are missing or whose latest attempt failed by
infrastructure.  A rerun with any other identity is refused (:class:`RunMismatch`);
``force_new`` moves the old files into ``superseded-<time>/`` (nothing is deleted)
and starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from openrlhf_mtgrpo.evaluation.passk import INFRA, record_status
from openrlhf_mtgrpo.jsonl import JsonlReadReport, iter_jsonl
from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
RESULTS_FILE = "results.jsonl"
ROLLOUTS_FILE = "rollouts-eval.jsonl"
SUMMARY_FILE = "results.json"
RUN_FILES = (RUN_FILE, RESULTS_FILE, ROLLOUTS_FILE, SUMMARY_FILE)
IDENTITY_FORMAT = 2  # 2: run rules and prompt sources (format 1 folders ran under other endings)

#: The fields of a result line (the rest of the episode is in rollouts-eval.jsonl).
RESULT_KEYS = ("task_id", "trial", "attempt", "status", "success", "reward", "termination", "policy_error", "infra",
               "unscored_reason", "seconds")


class RunMismatch(ValueError):
    """The output folder holds results of a run with other settings."""


def run_identity(*, policy: Mapping[str, Any], benchmark: Mapping[str, str], schema_source: Optional[Any],
                 split: str, task_ids: Iterable[str], trials: int, user: Optional[Mapping[str, Any]],
                 judge: Optional[Mapping[str, Any]], run_rules: Mapping[str, Any],
                 agent_prompt: Mapping[str, Any], domain: str = DEFAULT_DOMAIN) -> Dict[str, Any]:
    """Everything that decides an eval run's numbers (no secrets: API keys are never recorded)."""
    ident: Dict[str, Any] = {"format": IDENTITY_FORMAT, "domain": domain}
    ident.update(policy)
    ident["benchmark"] = dict(benchmark)
    if schema_source is not None:
        ident["schema_source"] = schema_source
    ident.update({"split": split, "task_ids": [str(t) for t in task_ids], "trials": int(trials)})
    ident["agent_prompt"] = dict(agent_prompt)
    ident["user"] = dict(user) if user is not None else None  # None: no customer (a solo domain)
    ident["judge"] = dict(judge) if judge else None
    ident["run_rules"] = dict(run_rules)
    return json.loads(json.dumps(ident))  # plain JSON values, as read back from run.json


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> List[str]:
    """Human-readable differences between two identities (``key: old -> new``)."""
    out = []
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            if key == "task_ids" and isinstance(a, list) and isinstance(b, list):
                out.append(f"{prefix}{key}: {len(a)} tasks -> {len(b)} tasks "
                           f"({len(set(a) ^ set(b))} differ)" if set(a) != set(b) else f"{prefix}{key}: order")
            else:
                out.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return out


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(out_dir: str):
    """Hold ``out_dir`` for one eval process (two at once would run the same episodes twice)."""
    import fcntl

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, LOCK_FILE), "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunMismatch(f"another mtgrpo eval is running on {out_dir}; wait for it, or use another --out") \
                from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def written_by_domain(out_dir: str) -> List[str]:
    """The files the last run's domain wrote into ``out_dir`` in its benchmark's own format (the summary's
    ``benchmark_results``; names relative to ``out_dir``)."""
    try:
        with open(os.path.join(out_dir, SUMMARY_FILE)) as f:
            paths = (json.load(f).get("benchmark_results") or {}).get("paths") or []
    except (OSError, ValueError, AttributeError):
        return []
    root = os.path.abspath(out_dir)
    out = []
    for p in paths:
        full = os.path.abspath(p if os.path.isabs(p) else os.path.join(out_dir, p))
        if os.path.dirname(full) == root and os.path.basename(full) not in RUN_FILES:
            out.append(os.path.basename(full))
    return out


def supersede(out_dir: str) -> Optional[str]:
    """Move the run files of ``out_dir`` (and those its domain wrote in its benchmark's own format) into a new
    ``superseded-<time>/`` folder; its path (None if nothing)."""
    present = [f for f in RUN_FILES + tuple(written_by_domain(out_dir)) if os.path.exists(os.path.join(out_dir, f))]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dest = os.path.join(out_dir, f"superseded-{stamp}")
    n = 1
    while os.path.exists(dest):
        n += 1
        dest = os.path.join(out_dir, f"superseded-{stamp}-{n}")
    os.makedirs(dest)
    for f in present:
        os.replace(os.path.join(out_dir, f), os.path.join(dest, f))
    return dest


def open_run(out_dir: str, identity: Mapping[str, Any], force_new: bool = False) -> Dict[str, Any]:
    """Make ``out_dir`` hold the run ``identity``: record it, resume it, or refuse.

    Returns ``{"resumed": bool, "superseded": path or None}``; raises :class:`RunMismatch`."""
    os.makedirs(out_dir, exist_ok=True)
    run_path = os.path.join(out_dir, RUN_FILE)
    moved = None
    if force_new:
        moved = supersede(out_dir)
    elif os.path.exists(run_path):
        try:
            with open(run_path) as f:
                old = json.load(f)["identity"]
        except (ValueError, KeyError, TypeError) as e:
            raise RunMismatch(f"{run_path} is unreadable ({e}); use another --out, or --force-new to move the "
                              "old files aside") from None
        diff = differences(old, identity)
        if diff:
            raise RunMismatch(
                f"{out_dir} holds results of a run with other settings; refusing to mix them:\n  "
                + "\n  ".join(diff)
                + f"\nUse another --out, or --force-new to move the old files to {out_dir}/superseded-<time>/ "
                  "and start afresh.")
        return {"resumed": True, "superseded": None}
    elif any(os.path.exists(os.path.join(out_dir, f)) for f in (RESULTS_FILE, ROLLOUTS_FILE)):
        raise RunMismatch(
            f"{out_dir} holds eval results without a record of their settings ({RUN_FILE}; written by an older "
            "mtgrpo), so they cannot be resumed safely. Use another --out, or --force-new to move them to "
            f"{out_dir}/superseded-<time>/ and start afresh.")
    _write_json(run_path, {"identity": dict(identity), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return {"resumed": False, "superseded": moved}


def read_results(out_dir: str) -> Tuple[Dict[Tuple[str, int], Dict[str, Any]], JsonlReadReport]:
    """The latest result of every (task, trial) in ``out_dir`` and the read report (corrupt lines)."""
    path = os.path.join(out_dir, RESULTS_FILE)
    report = JsonlReadReport()
    latest: Dict[Tuple[str, int], Dict[str, Any]] = {}
    if os.path.exists(path):
        for r in iter_jsonl([path], report):
            latest[(str(r["task_id"]), int(r["trial"]))] = r
    return latest, report


def latest_episodes(out_dir: str, latest: Mapping[Tuple[str, int], Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The full episode (``rollouts-eval.jsonl`` line) of each result in ``latest`` (:func:`read_results`), in the
    order of ``latest``: the line of the same (task, trial) and attempt, the last one where a rerun wrote it
    twice.  A result whose episode line is missing or corrupt has none (the list is shorter)."""
    path = os.path.join(out_dir, ROLLOUTS_FILE)
    wanted = {key: r.get("attempt") for key, r in latest.items()}
    found: Dict[Tuple[str, int], Dict[str, Any]] = {}
    if os.path.exists(path):
        for rec in iter_jsonl([path], JsonlReadReport()):
            try:
                key = (str(rec["task_id"]), int(rec["trial"]))
            except (KeyError, TypeError, ValueError):
                continue
            if key in wanted and rec.get("attempt") == wanted[key]:
                found[key] = rec
    return [found[key] for key in latest if key in found]


def needs_run(result: Optional[Mapping[str, Any]]) -> bool:
    """A (task, trial) to run: never run, or its latest attempt failed by infrastructure."""
    return result is None or record_status(result) == INFRA


def result_line(record: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: record.get(k) for k in RESULT_KEYS}


def write_summary(out_dir: str, summary: Mapping[str, Any]) -> None:
    _write_json(os.path.join(out_dir, SUMMARY_FILE), dict(summary))
