"""Copy-on-write view of the airline database for one episode.

All episodes share one read-only base (the loaded benchmark DB).  An episode
keeps an overlay of the records it changed: :meth:`EpisodeDB.write` copies a
record into the overlay on first write, :meth:`EpisodeDB.read` prefers the
overlay.  ``reset`` is therefore O(1), and episodes running at the same time in
threads or on one event loop never see each other's writes.

Tool code must take a record with ``write`` before changing it; a record from
``read`` may be the shared base object.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Dict, Iterator, Optional

TABLES = ("flights", "users", "reservations")
_ABSENT = object()


def canonical(obj: Any) -> str:
    """Deterministic, type-sensitive serialisation (1 and 1.0 differ, key order does not)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


class EpisodeDB:
    def __init__(self, base: Dict[str, Dict[str, Any]]):
        self._base = base
        self._overlay: Dict[str, Dict[str, Any]] = {t: {} for t in TABLES}

    # -- access
    def read(self, table: str, key: Any) -> Optional[Dict[str, Any]]:
        """The record, or None; an unhashable key raises ``TypeError`` as a dict lookup does."""
        ov = self._overlay[table]
        if key in ov:
            return ov[key]
        return self._base[table].get(key)

    def contains(self, table: str, key: Any) -> bool:
        """``key in table``, with a dict's semantics: an unhashable key raises ``TypeError``
        (``unhashable type: 'list'``), which both benchmarks report as the tool's error."""
        return key in self._overlay[table] or key in self._base[table]

    def write(self, table: str, key: Any) -> Dict[str, Any]:
        ov = self._overlay[table]
        if key not in ov:
            ov[key] = copy.deepcopy(self._base[table][key])
        return ov[key]

    def insert(self, table: str, key: str, record: Dict[str, Any]) -> None:
        self._overlay[table][key] = record

    def written(self, table: str) -> Dict[Any, Dict[str, Any]]:
        """The records of ``table`` this episode wrote or added (read-only use)."""
        return self._overlay[table]

    def values(self, table: str) -> Iterator[Dict[str, Any]]:
        ov = self._overlay[table]
        for k, v in self._base[table].items():
            yield ov.get(k, v)
        for k, v in ov.items():
            if k not in self._base[table]:
                yield v

    # -- state
    def changes(self) -> Dict[str, Dict[str, Any]]:
        """Records that differ from the base (new or modified), per table."""
        out = {}
        for t in TABLES:
            base = self._base[t]
            diff = {k: v for k, v in self._overlay[t].items() if k not in base or canonical(v) != canonical(base[k])}
            if diff:
                out[t] = diff
        return out

    def state_hash(self) -> str:
        """Hash of the final state.  Two episodes over the same base have equal hashes
        exactly when their full databases are equal (untouched records are the base's)."""
        return hashlib.sha256(_utf8(canonical(self.changes()))).hexdigest()

    def materialise(self) -> Dict[str, Dict[str, Any]]:
        """The full database (a deep copy); for checks and debugging, not for the hot path."""
        return {t: {k: copy.deepcopy(v) for k, v in zip(self._keys(t), self.values(t))} for t in TABLES}

    def _keys(self, table):
        yield from self._base[table]
        yield from (k for k in self._overlay[table] if k not in self._base[table])


def full_state_hash(db: Dict[str, Dict[str, Any]]) -> str:
    """Hash of a whole database, as the benchmark computes it (for cross-checks)."""
    return hashlib.sha256(_utf8(canonical(db))).hexdigest()


def _utf8(text: str) -> bytes:
    """UTF-8, with a lone surrogate (a model can write one as a JSON escape, and a tool store it) kept as its
    own bytes: every text still has its own encoding."""
    return text.encode("utf-8", "surrogatepass")
