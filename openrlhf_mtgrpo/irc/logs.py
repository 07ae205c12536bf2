"""Reading rollout logs into arrays for IRC, with the settings they were produced under.

A rollout-log line (``EpisodeResult.log_record`` plus the executor's fields) carries
what IRC needs to judge the rollouts exactly as training saw them:

* ``group`` = ``{"id", "size", "index"}``: the rollouts sampled together for one
  prompt (OpenRLHF normalises advantages within them).  An infrastructure-failed
  episode keeps its line and its group, so later groups never shift.  Logs written
  before group ids existed are grouped as consecutive episodes of a task in a file,
  and only when the group size is given explicitly.
* ``calibration`` / ``calibration_sha256`` / ``calibration_path``: the weights that
  scored the rollouts (IRC starts from them, never from a default).
* ``estimator`` / ``estimator_options`` (pool, gamma, lam, ...): what IRC's advantage
  check must recompute.
* ``benchmark`` = ``{version, tasks_sha256, db_sha256}``.
* ``edg``: the EDG gates the episode was scored with, when EDG was on.
* ``log_schema`` (2; a line without it is version 1), ``domain``, ``component_set`` and
  ``components`` (the set's ordered names): the axis of the turns' ``features``.  A
  version-1 line is the airline's, scored with the ``tau`` set's ten components
  (:data:`V1_COMPONENTS`); a version newer than :data:`LOG_SCHEMA` is refused.

Logs that mix benchmark identities, domains, component sets, calibrations, estimator
settings, run rules, agent or customer prompts, customer models, or NL-assertion grading (judged by an LLM, by
which model, or off: the ``nl_grading`` of lines whose task needs a judge) are refused (:class:`LogError`):
results from different settings never mix.
"""

from __future__ import annotations

import collections
import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from openrlhf_mtgrpo.advantages.options import shared_option_names
from openrlhf_mtgrpo import trainer_groups
from openrlhf_mtgrpo.jsonl import BadLine, JsonlReadReport, iter_jsonl

#: the shared estimator settings IRC's advantage check depends on: every field of EstimatorOptions
#: (advantages/options.py; eps included), besides the options an estimator declares itself
ESTIMATOR_KEYS = shared_option_names()
#: the newest rollout-log line this reader knows
LOG_SCHEMA = 2
#: what a line without ``log_schema`` (version 1) was: the airline, scored with the tau set's ten components
V1_DOMAIN, V1_COMPONENT_SET = "airline", "tau"
V1_COMPONENTS = ("gold_exact", "soft_match", "read_only", "state_change", "message", "tool_error", "duplicate",
                 "unconfirmed_write", "unneeded_transfer", "schema_invalid")


class LogError(ValueError):
    """Logs IRC cannot analyse as one batch (mixed settings, missing group information)."""


@dataclass
class LogMeta:
    """The settings the logged rollouts were produced under, as read from the lines."""

    benchmark: Optional[Dict[str, str]] = None  # version, tasks_sha256, db_sha256 (None: not recorded)
    domain: str = V1_DOMAIN
    component_set: str = V1_COMPONENT_SET
    components: Tuple[str, ...] = V1_COMPONENTS  # the axis of LogBatch.features
    log_schemas: Tuple[int, ...] = ()  # the line versions read
    calibration: Optional[str] = None  # name
    calibration_sha256: Optional[str] = None
    calibration_path: Optional[str] = None
    estimator: Optional[str] = None
    estimator_options: Dict[str, Any] = field(default_factory=dict)  # normalised, only keys the logs record
    grouping: str = ""  # how groups were formed
    group_sizes: Dict[int, int] = field(default_factory=dict)  # declared group size -> number of groups
    incomplete_groups: int = 0  # groups with fewer lines than their declared size
    missing_lines: int = 0
    edg_gated_episodes: int = 0  # episodes scored with at least one EDG gate closed
    warnings: List[str] = field(default_factory=list)

    def group_size(self) -> Optional[int]:
        return next(iter(self.group_sizes)) if len(self.group_sizes) == 1 else None


@dataclass
class LogBatch:
    """Turn-level component values of N rollouts, padded to K turns."""

    features: np.ndarray  # (N, K, C)
    num_turns: np.ndarray  # (N,)
    outcome: np.ndarray  # (N,) 0/1
    group: np.ndarray  # (N,) int group ids
    task_ids: List[str]
    report: JsonlReadReport
    excluded_infra: int = 0
    files: List[str] = field(default_factory=list)
    gates: Optional[np.ndarray] = None  # (N, C) bool, True = open; None when no episode was gated
    meta: LogMeta = field(default_factory=LogMeta)

    @property
    def n(self) -> int:
        return len(self.outcome)

    @property
    def components(self) -> Tuple[str, ...]:
        """The component names of the last axis of :attr:`features` (the logs' component set's)."""
        return tuple(self.meta.components)

    def turn_valid(self) -> np.ndarray:
        return np.arange(self.features.shape[1])[None, :] < self.num_turns[:, None]


def expand_paths(paths: Sequence[str]) -> List[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(glob.glob(os.path.join(p, "rollouts-*.jsonl")) or glob.glob(os.path.join(p, "*.jsonl")))
        else:
            matched = sorted(glob.glob(p))
            if not matched:
                raise FileNotFoundError(f"no rollout log at {p}")
            out += matched
    out = [p for p in out if os.path.basename(p) not in ("steps.jsonl", "edg_events.jsonl", trainer_groups.FILE)]
    if not out:
        raise FileNotFoundError(f"no rollout logs found in {list(paths)}")
    return out


def normalise_estimator_options(raw: Any) -> Dict[str, Any]:
    """The recorded estimator settings by option name: the shared ones (:data:`ESTIMATOR_KEYS`) and any the
    estimator declares itself.  Lines record the options by field name; lines written before did so as the
    ``--gtpo.*`` namespace (``no_std_norm`` for ``std_norm``).  A setting a line does not record is left out
    (IRC then says which default it assumes)."""
    if not isinstance(raw, dict):
        return {}
    out = {k: v for k, v in raw.items() if isinstance(k, str) and k != "no_std_norm" and v is not None}
    if "std_norm" not in out and raw.get("no_std_norm") is not None:
        out["std_norm"] = not raw["no_std_norm"]
    return out


def _one(values: Dict[str, int], what: str, hint: str) -> Optional[str]:
    """The single value of a setting over all lines, None if no line records it; refuse a mix."""
    known = {k: v for k, v in values.items() if k is not None}
    if len(known) > 1:
        listing = "; ".join(f"{k} ({v} lines)" for k, v in sorted(known.items(), key=lambda kv: -kv[1]))
        raise LogError(f"the logs mix {what}: {listing}. Results from different settings never mix: {hint}")
    if known and None in values:
        raise LogError(f"{values[None]} log lines do not record their {what} while others do "
                       f"({next(iter(known))}): {hint}")
    return next(iter(known), None)


def line_axis(rec: Dict[str, Any]) -> Tuple[int, str, str, Tuple[str, ...]]:
    """(log_schema, domain, component set, components) of one line; ValueError for a malformed one,
    :class:`LogError` for a schema newer than this reader."""
    version = rec.get("log_schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"log_schema must be a positive integer, got {version!r}")
    if version > LOG_SCHEMA:
        raise LogError(f"a log line has log_schema {version}, newer than this version of openrlhf-mtgrpo reads "
                       f"(up to {LOG_SCHEMA}): analyse it with the version that wrote it, or upgrade")
    if version == 1:
        return 1, V1_DOMAIN, V1_COMPONENT_SET, V1_COMPONENTS
    domain, cset, comps = rec.get("domain"), rec.get("component_set"), rec.get("components")
    for key, value in (("domain", domain), ("component_set", cset)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"a log_schema {version} line needs '{key}' (a name), got {value!r}")
    if not isinstance(comps, list) or not comps or not all(isinstance(c, str) and c for c in comps) or \
            len(set(comps)) != len(comps):
        raise ValueError(f"a log_schema {version} line needs 'components', its component set's names in order, "
                         f"got {comps!r}")
    return version, domain, cset, tuple(comps)


def read_logs(paths: Sequence[str], group_size: Optional[int] = None) -> LogBatch:
    """Rollouts of every log, grouped as in training (see the module docstring).

    ``group_size`` is used only for logs without group ids (consecutive episodes of a task
    in a file form groups of that size); such logs without it raise :class:`LogError`.
    """
    files = expand_paths(paths)
    report = JsonlReadReport()
    rows, outcomes, groups, tasks, closed_sets, excluded = [], [], [], [], [], 0
    episodes: List[Optional[int]] = []  # each scored row's episode key (the trainer's groups are keyed by it)
    counters: Dict[tuple, int] = {}
    members = collections.Counter()  # group id -> lines seen (infrastructure failures included)
    declared: Dict[str, int] = {}
    settings = {k: collections.Counter() for k in ("benchmark", "calibration", "estimator", "options", "ids",
                                                   "domain", "component_set", "components", "run_rules",
                                                   "prompts", "customer")}
    # how each line's judged outcome was graded (only lines whose task needs a judge record it; see below)
    grading: collections.Counter = collections.Counter()
    versions = set()
    cal_paths = collections.Counter()
    edg_gated = 0
    for fi, path in enumerate(files):
        for rec in iter_jsonl([path], report):
            turns = rec.get("turns")
            if not isinstance(turns, list) or "task_id" not in rec:
                report.bad.append(BadLine(path, 0, "record without task_id/turns"))
                continue
            try:
                version, domain, cset, comps = line_axis(rec)
            except LogError:
                raise
            except ValueError as e:
                report.bad.append(BadLine(path, 0, f"task {rec.get('task_id')}: {e}"))
                continue
            versions.add(version)
            settings["domain"][domain] += 1
            settings["component_set"][cset] += 1
            settings["components"][json.dumps(list(comps))] += 1
            bench = rec.get("benchmark") or None
            settings["benchmark"][json.dumps(bench, sort_keys=True) if bench else None] += 1
            sha = rec.get("calibration_sha256")
            settings["calibration"][f"{rec.get('calibration')} (sha256 {sha})" if sha else None] += 1
            cal_paths[(rec.get("calibration"), sha, rec.get("calibration_path"))] += 1
            settings["estimator"][rec.get("estimator")] += 1
            # how the conversations were run: the ending rules, the agent's and the customer's prompts, the
            # customer model (lines written before these were logged record none: never a mix with each other)
            for key, value in (("run_rules", rec.get("run_rules")), ("prompts", rec.get("prompts"))):
                settings[key][json.dumps(value, sort_keys=True) if value else None] += 1
            nl = rec.get("nl_grading")
            if isinstance(nl, dict):
                grading[json.dumps({"mode": nl.get("mode"), "model": nl.get("model")}, sort_keys=True)] += 1
            user = (rec.get("user_model"), rec.get("user_temperature"))
            settings["customer"][json.dumps(user) if any(v is not None for v in user) else None] += 1
            opts = normalise_estimator_options(rec.get("estimator_options"))
            settings["options"][json.dumps(opts, sort_keys=True) if opts else None] += 1
            grp = rec.get("group") if isinstance(rec.get("group"), dict) and rec["group"].get("id") else None
            settings["ids"]["with group ids" if grp else None] += 1
            task = str(rec["task_id"])
            if grp:
                gkey = str(grp["id"])
                members[gkey] += 1
                if isinstance(grp.get("size"), int):
                    declared[gkey] = grp["size"]
            else:
                occ = counters.get((fi, task), 0)
                counters[(fi, task)] = occ + 1  # infra failures count too: later groups never shift
                gkey = f"{fi}:{task}:{occ // group_size}" if group_size else None
            if rec.get("infra_failed"):
                excluded += 1
                continue
            rows.append([dict(t.get("features") or {}) for t in turns])
            success = rec.get("success")
            if success is None:
                success = (rec.get("outcome") or {}).get("success", False)
            outcomes.append(1.0 if success else 0.0)
            groups.append(gkey)
            episodes.append(trainer_groups.key_of(rec))
            tasks.append(task)
            edg = rec.get("edg") if isinstance(rec.get("edg"), dict) else {}
            closed = set(edg.get("closed") or [])
            edg_gated += bool(closed)
            closed_sets.append(closed)

    meta = LogMeta()
    hint_set = "analyse the logs of each domain and component set separately"
    meta.domain = _one(settings["domain"], "domains", hint_set) or V1_DOMAIN
    meta.component_set = _one(settings["component_set"], "component sets", hint_set) or V1_COMPONENT_SET
    comps = _one(settings["components"], f"component lists of set {meta.component_set!r} (the set changed "
                                         "between the runs)", hint_set)
    meta.components = tuple(json.loads(comps)) if comps else V1_COMPONENTS
    meta.log_schemas = tuple(sorted(versions))
    hint_cal = "analyse the logs of each calibration separately"
    bench = _one(settings["benchmark"], "benchmark versions/data files", "analyse each benchmark version separately")
    meta.benchmark = json.loads(bench) if bench else None
    _one(settings["calibration"], "calibrations", hint_cal)
    named = [k for k in cal_paths if k[1]]
    if named:
        meta.calibration, meta.calibration_sha256 = named[0][0], named[0][1]
        meta.calibration_path = next((k[2] for k in named if k[2]), None)
    meta.estimator = _one(settings["estimator"], "advantage estimators", "analyse each training run separately")
    hint_run = "a success rate under other conversation settings is another experiment; analyse each run separately"
    _one(settings["run_rules"], "run rules (step budget, error limit)", hint_run)
    _one(settings["prompts"], "agent or customer prompts (source, hash)", hint_run)
    _one(settings["customer"], "customer models or temperatures", hint_run)
    # an outcome judged by an LLM and one scored without its NL assertions (--mtgrpo.nl_assertions off), or judged
    # by another model, are other experiments; lines of tasks that need no judge record nothing and mix freely
    _one(grading, "NL-assertion grading (judge mode and model)", hint_run)
    opts = _one(settings["options"], "estimator settings (pool, gamma, lam, ...)", "analyse each run separately")
    meta.estimator_options = json.loads(opts) if opts else {}
    with_ids = _one(settings["ids"], "group ids", "the lines come from different writers; analyse them separately")
    if rows or excluded:
        if with_ids:
            meta.grouping = "group ids recorded in the logs"
            sizes = collections.Counter()
            for gkey, seen_lines in members.items():
                size = declared.get(gkey, seen_lines)
                sizes[size] += 1
                if seen_lines < size:
                    meta.incomplete_groups += 1
                    meta.missing_lines += size - seen_lines
            meta.group_sizes = dict(sizes)
            if meta.incomplete_groups:
                meta.warnings.append(f"{meta.incomplete_groups} group(s) miss {meta.missing_lines} rollout line(s) "
                                     "(lost log lines?): their advantages differ from what training computed")
            if len(sizes) > 1:
                meta.warnings.append("groups of different sizes: " + ", ".join(
                    f"{n} group(s) of {s}" for s, n in sorted(sizes.items())))
        elif group_size:
            meta.grouping = (f"no group ids in the logs: consecutive episodes of a task in a file form groups of "
                             f"{group_size} (--group-size)")
            meta.group_sizes = {int(group_size): len({g for g in groups})}
            meta.warnings.append(meta.grouping)
        else:
            evals = [f for f in files if os.path.basename(f) == "rollouts-eval.jsonl"]
            raise LogError(
                (f"{evals[0]} is an eval log (mtgrpo eval's rollouts-eval.jsonl): its episodes are (task, trial) runs "
                 "of a served policy, not training groups, so its lines carry no group ids"
                 if evals else "these logs carry no group ids: an eval log (rollouts-eval.jsonl) has no training "
                               "groups, nor have logs written before group ids were logged")
                + ". Pass --group-size N to treat consecutive episodes of a task in a file as groups of N (an "
                  "eval's --trials; training's --rollout.n_samples_per_prompt), or analyse the training rollout "
                  "logs (--mtgrpo.rollout_log_dir), which record their groups"
                + ("; eval records its calibration but no estimator settings: add the estimator's (e.g. --pool "
                   "turn)" if evals else ""))
    groups = _trainer_grouping(files, episodes, groups, meta)
    if meta.benchmark is None and rows:
        meta.warnings.append("the logs do not record their benchmark version and data hashes")
    meta.edg_gated_episodes = edg_gated

    axis = meta.components
    cidx = {c: i for i, c in enumerate(axis)}
    n = len(rows)
    kmax = max([len(r) for r in rows] + [1])
    feats = np.zeros((n, kmax, len(axis)), dtype=np.float64)
    nt = np.zeros(n, dtype=np.int64)
    outside = collections.Counter()
    for i, r in enumerate(rows):
        for k, f in enumerate(r):
            for c, v in f.items():
                if c in cidx:
                    feats[i, k, cidx[c]] = float(v)
                else:
                    outside[c] += 1
        nt[i] = len(r)
    if outside:
        meta.warnings.append("turn features outside the logs' components (ignored): " + ", ".join(
            f"{c} ({k} turns)" for c, k in sorted(outside.items())))
    _, gid = np.unique(np.array(groups, dtype=object).astype(str), return_inverse=True) if n else \
        (None, np.zeros(0, int))
    gates = np.array([[c not in closed for c in axis] for closed in closed_sets], dtype=bool).reshape(n, len(axis)) \
        if edg_gated else None
    return LogBatch(feats, nt, np.array(outcomes), gid.astype(np.int64), tasks, report, excluded, files, gates, meta)


def _trainer_grouping(files: Sequence[str], episodes: Sequence[Optional[int]], groups: List[Any],
                      meta: LogMeta) -> List[Any]:
    """Each row's group: the trainer's (``trainer_groups.jsonl`` beside the logs) wherever it recorded the episode,
    else the rollout log's; ``meta`` says which, and where the two disagree."""
    recorded = trainer_groups.read_groups(os.path.dirname(os.path.abspath(f)) for f in files)
    if not recorded or not groups:
        return groups
    theirs = [recorded.get(e) if e is not None else None for e in episodes]
    covered = sum(t is not None for t in theirs)
    if not covered:
        return groups
    # the same partition? every trainer group maps to one log group and back
    pairs = {(t, g) for t, g in zip(theirs, groups) if t is not None}
    by_trainer = collections.Counter(t for t, _ in pairs)
    by_log = collections.Counter(g for _, g in pairs)
    split = sum(1 for c in by_trainer.values() if c > 1) + sum(1 for c in by_log.values() if c > 1)
    meta.grouping = ("the trainer's groups (trainer_groups.jsonl)" + (
        "" if covered == len(groups) else f" for {covered} of {len(groups)} rollouts, the log's group ids for the "
                                          "rest (steps the trainer never saw)"))
    if split:
        meta.warnings.append(f"the rollout log's group ids disagree with the trainer's groups in {split} group(s): "
                             "IRC uses the trainer's, the groups training normalised over")
    sizes = collections.Counter(collections.Counter(t for t in recorded.values()).values())
    meta.group_sizes = dict(sizes) if covered == len(groups) else meta.group_sizes
    return [f"t:{t}" if t is not None else f"log:{g}" for t, g in zip(theirs, groups)]
