"""The groups the trainer normalised over, recorded for IRC: ``trainer_groups.jsonl`` beside the rollout logs.

Training's estimators group a batch by OpenRLHF's sample index (``index // n_samples_per_prompt``); the rollout
log's own group ids are the rollout worker's view of the same calls (``GroupKeys``).  The two agree under
OpenRLHF 0.11 (a prompt's samples are one ``generate_responses`` call on one engine), but IRC must never depend
on that: each episode carries an id (``episode`` in its log line, ``mtgrpo_episode`` in its sample info), and
the trainer appends, per training step, the episodes of each of its groups.  IRC groups every episode the
trainer saw by the trainer's groups, and says where the rollout log's ids disagree.

One line per step: ``{"format": 1, "n": n_samples_per_prompt, "groups": [[episode, ...], ...]}`` (episode keys
as integers).  Stdlib only.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Dict, Iterable, List, Optional, Sequence

FILE = "trainer_groups.jsonl"
FORMAT = 1
#: the hex digits of an episode id that make its integer key (60 bits: exact in an int64 tensor)
KEY_DIGITS = 15


def new_episode_id() -> str:
    """A fresh episode id (32 hex digits), unique across processes and nodes."""
    return uuid.uuid4().hex


def episode_key(episode_id: str) -> int:
    """The integer key of an episode id, as the sample info carries it to the trainer."""
    return int(episode_id[:KEY_DIGITS], 16)


def append_step(log_dir: str, groups: Sequence[Sequence[int]], n: int) -> str:
    """Append one training step's groups (lists of episode keys) to ``log_dir``/:data:`FILE`; its path."""
    from openrlhf_mtgrpo.jsonl import append_jsonl

    path = os.path.join(log_dir, FILE)
    append_jsonl(path, {"format": FORMAT, "n": int(n), "groups": [[int(e) for e in g] for g in groups]})
    return path


def read_groups(dirs: Iterable[str]) -> Dict[int, str]:
    """Episode key -> the trainer's group (``"<file>:<line>:<group>"``) from the :data:`FILE` of each folder
    (empty where there is none).  Malformed lines are skipped, never guessed."""
    out: Dict[int, str] = {}
    for d in sorted(set(dirs)):
        path = os.path.join(d, FILE)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                groups = rec.get("groups") if isinstance(rec, dict) else None
                if not isinstance(groups, list):
                    continue
                for g, members in enumerate(groups):
                    for e in members if isinstance(members, list) else []:
                        if isinstance(e, int):
                            out[e] = f"{path}:{i}:{g}"
    return out


def key_of(rec: Dict) -> Optional[int]:
    """The episode key of a rollout-log line (None for lines written before episodes had ids)."""
    ep = rec.get("episode")
    if not isinstance(ep, str) or len(ep) < KEY_DIGITS:
        return None
    try:
        return episode_key(ep)
    except ValueError:
        return None


def groups_of(episodes: Sequence[int], group_index: Sequence[int]) -> List[List[int]]:
    """The episodes of each group, in order of first appearance (the trainer's grouping of a batch)."""
    order: Dict[int, List[int]] = {}
    for e, g in zip(episodes, group_index):
        order.setdefault(int(g), []).append(int(e))
    return list(order.values())
