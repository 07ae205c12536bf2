"""One episode's view of the database: copy-on-write over one shared, frozen database.

The loaded database is frozen once (:func:`freeze`: read-only mappings and tuples), so no episode can
change it, even by mistake: a tool that tried would raise ``TypeError``.  An episode reads records as
plain copies (:meth:`EpisodeState.get`) and changes a record only through :meth:`EpisodeState.edit`,
which copies it into the episode's own overlay first.  A reset costs nothing, and episodes running at the
same time never see each other's writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from types import MappingProxyType
from typing import Any, Dict, Iterator, Mapping, Optional


def freeze(obj: Any) -> Any:
    """A read-only deep copy: dicts become ``MappingProxyType``, lists tuples."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """A plain, mutable deep copy of a frozen (or plain) value."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    return obj


def canonical(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces): equal text exactly when the values are equal."""
    return json.dumps(thaw(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class EpisodeState:
    """The database as one episode sees it: the shared frozen ``base`` plus the records it changed."""

    def __init__(self, base: Mapping[str, Mapping[str, Any]]):
        self._base = base
        self._overlay: Dict[str, Dict[str, Dict[str, Any]]] = {t: {} for t in base}

    def get(self, table: str, key: Any) -> Optional[Dict[str, Any]]:
        """A copy of the record (None if there is none); changing it changes nothing."""
        if not isinstance(key, str):
            return None
        own = self._overlay[table].get(key)
        if own is not None:
            return copy.deepcopy(own)
        rec = self._base[table].get(key)
        return None if rec is None else thaw(rec)

    def edit(self, table: str, key: str) -> Dict[str, Any]:
        """The episode's own, mutable copy of an existing record (``KeyError`` if there is none)."""
        own = self._overlay[table]
        if key not in own:
            own[key] = thaw(self._base[table][key])
        return own[key]

    def values(self, table: str) -> Iterator[Dict[str, Any]]:
        """Copies of every record of ``table``, in the database's order."""
        for key in self._base[table]:
            yield self.get(table, key)

    def changes(self) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """The records that differ from the shared database, per table (tables without changes left out)."""
        out = {}
        for table, own in self._overlay.items():
            diff = {k: v for k, v in own.items() if canonical(v) != canonical(self._base[table][k])}
            if diff:
                out[table] = diff
        return out

    def state_hash(self) -> str:
        """sha256 of the changes: two episodes' databases are equal exactly when their hashes are."""
        return hashlib.sha256(canonical(self.changes()).encode()).hexdigest()
