"""One JSON line per training step with the estimator diagnostics and the calibration hash."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

from openrlhf_mtgrpo.rollout.jsonl import append_jsonl


def step_log_path(args=None) -> Optional[str]:
    d = None
    if args is not None and getattr(args, "mtgrpo", None) is not None:
        d = getattr(args.mtgrpo, "rollout_log_dir", None)
    d = d or os.environ.get("MTGRPO_ROLLOUT_LOG_DIR")
    return os.path.join(d, "steps.jsonl") if d else None


def log_training_step(metrics: Dict[str, float], estimator: str, args=None) -> Optional[Dict[str, Any]]:
    path = step_log_path(args)
    if path is None:
        return None
    from openrlhf_mtgrpo.rewards.calibration import calibration_hash_for

    cal = getattr(getattr(args, "mtgrpo", None), "calibration", None) if args is not None else None
    record = {"time": time.time(), "estimator": estimator, "calibration_sha256": calibration_hash_for(cal),
              **{k: float(v) for k, v in metrics.items()}}
    append_jsonl(path, record)
    return record
