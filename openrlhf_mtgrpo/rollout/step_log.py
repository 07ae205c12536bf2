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

from openrlhf_mtgrpo.jsonl import append_jsonl
from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

_steps = itertools.count(1)
_identities: Dict[tuple, Dict[str, str]] = {}


def step_log_path(args=None) -> Optional[str]:
    d = None
    if args is not None and getattr(args, "mtgrpo", None) is not None:
        d = getattr(args.mtgrpo, "rollout_log_dir", None)
    d = d or os.environ.get("MTGRPO_ROLLOUT_LOG_DIR")
    return os.path.join(d, "steps.jsonl") if d else None


def benchmark_identity(version: Optional[str], data_dir: Optional[str] = None,
                       domain: str = DEFAULT_DOMAIN) -> Optional[Dict[str, str]]:
    """The identity (version and file hashes) of the domain the rollout workers load, once per process;
    None when it cannot be loaded on this machine (the trainer may run where the data is not)."""
    key = (domain, version, data_dir)
    if key not in _identities:
        from openrlhf_mtgrpo.envs.base import DataNotFound
        from openrlhf_mtgrpo.envs import DomainError, load_domain

        try:
            _identities[key] = dict(load_domain(domain, version, data_dir).identity)
        except (DataNotFound, DomainError):
            return None
    return dict(_identities[key])


def log_training_step(metrics: Dict[str, float], estimator: str, args=None, *, rollouts: Optional[int] = None,
                      excluded: Optional[int] = None) -> Optional[Dict[str, Any]]:
    path = step_log_path(args)
    if path is None:
        return None
    from openrlhf_mtgrpo.rewards.calibration import calibration_hash_for

    m = getattr(args, "mtgrpo", None) if args is not None else None
    options = None
    if args is not None and getattr(args, "gtpo", None) is not None:
        from openrlhf_mtgrpo.integration.cli_flags import estimator_option_values

        options = estimator_option_values(args, estimator)  # every option by field name, as the rollout log has them
    values, nonfinite = {}, []
    for k, v in metrics.items():
        v = float(v)
        if math.isfinite(v):
            values[k] = v
        else:
            values[k] = None
            nonfinite.append(k)
    record = {"time": time.time(), "step": next(_steps), "rollouts": rollouts, "excluded_infra": excluded,
              "estimator": estimator, "estimator_options": options,
              "calibration_sha256": calibration_hash_for(getattr(m, "calibration", None)),
              "benchmark": benchmark_identity(getattr(m, "version", None), getattr(m, "data_dir", None),
                                              getattr(m, "domain", None) or DEFAULT_DOMAIN),
              **values}
    if nonfinite:
        record["nonfinite"] = nonfinite
    append_jsonl(path, record)
    return record
