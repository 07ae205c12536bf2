"""TEST PROBES (docs/testing.md): what the end-to-end tests observe inside the training run.

Observation only: each probe calls the real upstream function and records what went in or
came out, into ``$MTGRPO_E2E_PROBE_DIR``:

* ``events-<role>-<pid>.jsonl``: one JSON object per event (the engine's generate calls and
  weight syncs, the policy actor's replay-buffer appends and PPO updates);
* ``append-<pid>-<n>.pt``: every experience batch the policy actor's replay buffer receives
  (advantages, returns, action mask, info, labels), saved with ``torch.save``.

Nothing here changes a value that the run computes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time

PROBE_DIR_ENV = "MTGRPO_E2E_PROBE_DIR"
_lock = threading.Lock()
_counter = itertools.count()


def probe_dir():
    return os.environ.get(PROBE_DIR_ENV) or None


def log_event(role: str, event: str, **fields) -> None:
    d = probe_dir()
    if not d:
        return
    rec = {"time": time.time(), "pid": os.getpid(), "role": role, "event": event, **fields}
    line = json.dumps(rec, default=str) + "\n"
    with _lock, open(os.path.join(d, f"events-{role}-{os.getpid()}.jsonl"), "a") as f:
        f.write(line)


def weights_digest(model) -> str:
    """sha256 over (name, dtype, shape, bytes) of every parameter, in name order."""
    import torch

    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_experience(experience) -> str:
    """Save what the replay buffer is given; returns the file name."""
    import torch

    d = probe_dir()
    name = f"append-{os.getpid()}-{next(_counter):04d}.pt"

    def cpu(x):
        return x.detach().cpu().clone() if isinstance(x, torch.Tensor) else x

    rec = {
        "advantages": cpu(experience.advantages),
        "returns": cpu(experience.returns),
        "action_mask": cpu(experience.action_mask),
        "sequences": cpu(experience.sequences),
        "rewards": cpu(experience.rewards),
        "labels": list(experience.labels or []),
        "index": list(experience.index or []),
        "kl": cpu(experience.kl),
        "info": {k: cpu(v) for k, v in experience.info.items()},
    }
    torch.save(rec, os.path.join(d, name))
    return name


def _scalar(v):
    try:
        import torch

        if isinstance(v, torch.Tensor):
            return float(v.float().mean())
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def wrap_replay_buffer(module) -> None:
    cls = module.NaiveReplayBuffer
    original = cls.append

    def append(self, experience):
        if probe_dir():
            name = save_experience(experience)
            log_event("policy", "append", file=name, n=int(experience.action_mask.shape[0]),
                      info_keys=sorted(experience.info))
        return original(self, experience)

    cls.append = append


def wrap_policy_trainer(module) -> None:
    cls = module.ActorPPOTrainer
    original = cls.ppo_train

    def ppo_train(self, kl_ctl):
        model = self.actor.model.module
        before = weights_digest(model) if probe_dir() else ""
        t0 = time.time()
        status = original(self, kl_ctl)
        if probe_dir():
            log_event("policy", "ppo_train", before=before, after=weights_digest(model),
                      seconds=time.time() - t0, status={k: _scalar(v) for k, v in status.items()})
        return status

    cls.ppo_train = ppo_train
