"""Reading rollout logs into arrays for IRC."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

from openrlhf_mtgrpo.rewards.components import COMPONENTS
from openrlhf_mtgrpo.rollout.jsonl import BadLine, JsonlReadReport, iter_jsonl


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

    @property
    def n(self) -> int:
        return len(self.outcome)

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
    out = [p for p in out if os.path.basename(p) != "steps.jsonl"]
    if not out:
        raise FileNotFoundError(f"no rollout logs found in {list(paths)}")
    return out


def read_logs(paths: Sequence[str], group_size: int = 4) -> LogBatch:
    """Rollouts of every log; consecutive episodes of one task in one file form groups of ``group_size``."""
    files = expand_paths(paths)
    report = JsonlReadReport()
    cidx = {c: i for i, c in enumerate(COMPONENTS)}
    rows, outcomes, groups, tasks, excluded = [], [], [], [], 0
    counters: Dict[tuple, int] = {}
    for fi, path in enumerate(files):
        for rec in iter_jsonl([path], report):
            if rec.get("infra_failed"):
                excluded += 1
                continue
            turns = rec.get("turns")
            if not isinstance(turns, list) or "task_id" not in rec:
                report.bad.append(BadLine(path, 0, "record without task_id/turns"))
                continue
            mat = []
            for t in turns:
                f = t.get("features") or {}
                row = [0.0] * len(COMPONENTS)
                for k, v in f.items():
                    if k in cidx:
                        row[cidx[k]] = float(v)
                mat.append(row)
            rows.append(mat)
            success = rec.get("success")
            if success is None:
                success = (rec.get("outcome") or {}).get("success", False)
            outcomes.append(1.0 if success else 0.0)
            key = (fi, str(rec["task_id"]))
            occ = counters.get(key, 0)
            counters[key] = occ + 1
            groups.append(hash((fi, str(rec["task_id"]), occ // max(1, group_size))))
            tasks.append(str(rec["task_id"]))
    n = len(rows)
    kmax = max([len(r) for r in rows] + [1])
    feats = np.zeros((n, kmax, len(COMPONENTS)), dtype=np.float64)
    nt = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(rows):
        if r:
            feats[i, :len(r)] = r
        nt[i] = len(r)
    _, gid = np.unique(np.array(groups, dtype=np.int64), return_inverse=True) if n else (None, np.zeros(0, int))
    return LogBatch(feats, nt, np.array(outcomes), gid.astype(np.int64), tasks, report, excluded, files)
