"""One JSON line per training step (``steps.jsonl`` beside the rollout logs).

Each line says what the step covers and under which settings: the step number of this
trainer process, the rollouts in the batch (and how many were excluded as infrastructure
failures), the estimator and its options, the calibration's sha256, the benchmark version
with the sha256 of its task file and database, and the estimator's diagnostics.  Every
value is valid JSON: a diagnostic that is not a finite number is written as null and
named under ``nonfinite``.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any, Dict, Optional

from openrlhf_mtgrpo.rollout.jsonl import append_jsonl

_steps = itertools.count(1)
_identities: Dict[tuple, Dict[str, str]] = {}


def step_log_path(args=None) -> Optional[str]:
    d = None
    if args is not None and getattr(args, "mtgrpo", None) is not None:
        d = getattr(args.mtgrpo, "rollout_log_dir", None)
    d = d or os.environ.get("MTGRPO_ROLLOUT_LOG_DIR")
    return os.path.join(d, "steps.jsonl") if d else None


def benchmark_identity(version: Optional[str], data_dir: Optional[str] = None) -> Optional[Dict[str, str]]:
    """{version, tasks_sha256, db_sha256} of the files the rollout workers read, hashed once per process;
    None when the version is not on this machine (the trainer may run where the data is not)."""
    if not version:
        return None
    key = (version, data_dir)
    if key not in _identities:
        from openrlhf_mtgrpo.benchdata.locate import DataNotFound, locate
        from openrlhf_mtgrpo.envs.airline.data import sha256_of
        from openrlhf_mtgrpo.envs.airline.versions import get_version

        try:
            folder = locate(version, data_dir).folder
        except DataNotFound:
            return None
        spec = get_version(version)
        _identities[key] = {"version": version,
                            "tasks_sha256": sha256_of([os.path.join(folder, spec.task_file)]),
                            "db_sha256": sha256_of([os.path.join(folder, f) for f in spec.db_files])}
    return dict(_identities[key])


def log_training_step(metrics: Dict[str, float], estimator: str, args=None, *, rollouts: Optional[int] = None,
                      excluded: Optional[int] = None) -> Optional[Dict[str, Any]]:
    path = step_log_path(args)
    if path is None:
        return None
    from openrlhf_mtgrpo.rewards.calibration import calibration_hash_for

    m = getattr(args, "mtgrpo", None) if args is not None else None
    gtpo = getattr(args, "gtpo", None) if args is not None else None
    values, nonfinite = {}, []
    for k, v in metrics.items():
        v = float(v)
        if math.isfinite(v):
            values[k] = v
        else:
            values[k] = None
            nonfinite.append(k)
    record = {"time": time.time(), "step": next(_steps), "rollouts": rollouts, "excluded_infra": excluded,
              "estimator": estimator, "estimator_options": dict(vars(gtpo)) if gtpo is not None else None,
              "calibration_sha256": calibration_hash_for(getattr(m, "calibration", None)),
              "benchmark": benchmark_identity(getattr(m, "tau_version", None), getattr(m, "data_dir", None)),
              **values}
    if nonfinite:
        record["nonfinite"] = nonfinite
    append_jsonl(path, record)
    return record
