"""Fresh episode databases over one pristine tau2 database, and a digest for comparing them.

Three tools, each for one shape of database:

* :class:`CopyOnAccessTable`: a table (a ``dict`` of records, as in retail's ``RetailDB``) whose records are
  copied from the pristine ones the first time tau2's code looks one up by key; :func:`copy_on_access_db`
  builds a whole database of them (a fresh retail database costs three dict copies, not a 2.8 MB load), and
  :class:`TablePool` reuses the tables of databases nothing refers to any more, put back (no copy at all).
  ``items()``/``values()``/iteration hand out the current records, copied or pristine: tau2's code only
  reads them there (retail's user search and product list); the tests check with tau2's own hash that the
  pristine database is never changed.  :func:`same_records` compares two such databases record by record
  where that is cheap (:func:`same_dump`).
* :class:`CopyPlan`: a copier for a small database that tau2 walks in full (telecom's lists of records,
  which its ``sync_tools`` reads after every call, so copying on access would copy everything anyway):
  built once from a state, it makes independent copies of it about ten times faster than pydantic's deep
  copy, by copying only the containers and models and sharing the immutable values.
* :class:`DBDigest`: a hash of a whole copy-on-access database updated per record (and per entry of a
  record's dict of records): equal for two databases exactly when tau2's ``get_db_hash``
  (``sha256(json.dumps(db.model_dump(), sort_keys=True, default=str))``) is equal, computed from the parts
  of the touched records that may differ from the pristine ones.

Copies of pydantic models are made as pydantic's own ``__deepcopy__`` makes them (a new instance with the
field values, ``__pydantic_fields_set__``, extra and private values copied), with immutable values (str,
numbers, enums, dates) shared; a state in which one mutable object is reachable twice is refused by
:class:`CopyPlan` (a deep copy keeps such sharing, this copier would not).
"""

from __future__ import annotations

import copy
import datetime as _dt
import decimal
import enum
import hashlib
import json
import math
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Optional

from pydantic import BaseModel

_new = object.__new__
_set = object.__setattr__
_ATOMIC = frozenset({str, int, float, bool, type(None), bytes, complex, _dt.date, _dt.datetime, _dt.time,
                     _dt.timedelta, decimal.Decimal})
_atomic_types: Dict[type, bool] = {t: True for t in _ATOMIC}


def _is_atomic(t: type) -> bool:
    a = _atomic_types.get(t)
    if a is None:
        a = _atomic_types[t] = t in _ATOMIC or issubclass(t, enum.Enum)
    return a


def fast_copy(value: Any) -> Any:
    """An independent copy of ``value`` (pydantic models, lists, dicts, tuples, sets; immutable values shared;
    anything else through :func:`copy.deepcopy`).  A dict with mutable values becomes a :class:`LazyDict`,
    whose values are copied when first looked up."""
    t = type(value)
    known = _atomic_types.get(t)
    if known if known is not None else _is_atomic(t):
        return value
    if isinstance(value, BaseModel):
        m = _new(t)
        d = value.__dict__.copy()
        for k, x in d.items():
            known = _atomic_types.get(type(x))
            if not (known if known is not None else _is_atomic(type(x))):
                d[k] = fast_copy(x)
        _set(m, "__dict__", d)
        _set(m, "__pydantic_fields_set__", set(value.__pydantic_fields_set__))
        extra = value.__pydantic_extra__
        _set(m, "__pydantic_extra__", None if extra is None else fast_copy(extra))
        private = getattr(value, "__pydantic_private__", None)
        _set(m, "__pydantic_private__", None if private is None else copy.deepcopy(private))
        return m
    if t is list:
        return [x if _atomic_types.get(type(x)) else fast_copy(x) for x in value]
    if t is dict or t is LazyDict:
        for x in value.values():
            if not _atomic_types.get(type(x)) and not _is_atomic(type(x)):
                return LazyDict(value)
        return dict(value)
    if t is tuple:
        return tuple(fast_copy(x) for x in value)
    if t is set:
        return set(value)  # set members are hashable, hence (in practice) immutable
    return copy.deepcopy(value)


class LazyDict(dict):
    """A copy of a dict of mutable values that copies each value (:func:`fast_copy`) the first time it is looked
    up by key (``[key]``, ``get``, ``pop``, ``setdefault``).  Iteration, ``values()`` and ``items()`` hand out
    the current values, copied or original, without copying: tau2's tools only read there (a nested record
    of the airline's or retail's database: a flight's dates, a user's payment methods).  The stored values are
    always the current ones, so a dump, a comparison or a deep copy of it sees the copy's state.

    ``origin`` is the dict it was made from; ``dirty`` names every key whose entry may differ from the origin's
    (looked up by key, set, removed): the other entries are the origin's own objects, which
    :class:`DBDigest` then need not dump again."""

    __slots__ = ("owned", "dirty", "origin")

    def __init__(self, original: Dict[Any, Any]):
        super().__init__(original)
        self.owned: set = set()
        self.dirty: set = set()
        self.origin = original

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if key not in self.owned:
            value = fast_copy(value)
            dict.__setitem__(self, key, value)
            self.owned.add(key)
            self.dirty.add(key)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key, value):
        self.owned.add(key)
        self.dirty.add(key)
        dict.__setitem__(self, key, value)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key, *default):
        if key not in self:
            return dict.pop(self, key, *default)
        value = self[key]
        dict.__delitem__(self, key)
        self.owned.discard(key)
        return value

    def __delitem__(self, key):
        dict.__delitem__(self, key)
        self.owned.discard(key)
        self.dirty.add(key)

    def popitem(self):
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self):
        self.dirty.update(dict.keys(self))
        self.owned.clear()
        dict.clear(self)

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def __ior__(self, other):
        self.update(other)
        return self

    def __deepcopy__(self, memo):
        return {k: copy.deepcopy(v, memo) for k, v in dict.items(self)}

    def __reduce__(self):
        return dict, (dict(dict.items(self)),)


class Aliased(ValueError):
    """A state in which one mutable object is reachable twice (a plan's copies would not share it)."""


class CopyPlan:
    """Independent copies of one state, fast: ``plan()`` returns a new copy each call.

    The state must not change after the plan is built (the plan keeps its immutable values)."""

    def __init__(self, state: Any):
        self._seen: set = set()
        self._make = self._compile(state)
        del self._seen

    def __call__(self) -> Any:
        return self._make()

    def _compile(self, v: Any) -> Optional[Callable[[], Any]]:
        t = type(v)
        if _is_atomic(t):
            return None
        if id(v) in self._seen:
            raise Aliased(f"a {t.__name__} is reachable twice in the state")
        self._seen.add(id(v))
        if t is list or t is dict:
            keys = range(len(v)) if t is list else list(v)
            subs = [(k, p) for k, p in ((k, self._compile(v[k])) for k in keys) if p is not None]
            template = v.copy()
            if not subs:
                return template.copy

            def container(template=template, subs=subs):
                c = template.copy()
                for k, p in subs:
                    c[k] = p()
                return c

            return container
        if isinstance(v, BaseModel):
            template = dict(v.__dict__)
            subs = [(k, p) for k, p in ((k, self._compile(x)) for k, x in template.items()) if p is not None]
            fields_set = frozenset(v.__pydantic_fields_set__)
            extra = v.__pydantic_extra__
            if extra is not None:
                extra = self._compile(extra) or extra.copy
            private = getattr(v, "__pydantic_private__", None)

            def model(t=t, template=template, subs=subs, fields_set=fields_set, extra=extra, private=private):
                m = _new(t)
                d = template.copy()
                for k, p in subs:
                    d[k] = p()
                _set(m, "__dict__", d)
                _set(m, "__pydantic_fields_set__", set(fields_set))
                _set(m, "__pydantic_extra__", None if extra is None else extra())
                _set(m, "__pydantic_private__", None if private is None else copy.deepcopy(private))
                return m

            return model
        if t is tuple:
            parts = [self._compile(x) or (lambda x=x: x) for x in v]
            return lambda parts=parts: tuple(p() for p in parts)
        frozen = copy.deepcopy(v)
        return lambda frozen=frozen: copy.deepcopy(frozen)


class CopyOnAccessTable(dict):
    """A table of records copied from the pristine table on first lookup by key (``[key]``, ``get``).

    ``touched`` names the keys whose record this table owns (copied, or set); ``accessed`` the keys looked up
    or set since it was last cleared (an episode clears it before each tool call, to learn which records a
    call could have changed).  Reading through ``items()``/``values()``/iteration sees the current records
    without copying; removing records is refused (no tau2 tool does it), so a table always has the pristine
    keys plus any added ones."""

    __slots__ = ("touched", "accessed", "copier")

    def __init__(self, pristine: Dict[Any, Any], copier: Callable[[Any], Any] = fast_copy):
        super().__init__(pristine)
        self.touched: set = set()
        self.accessed: set = set()
        self.copier = copier

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        self.accessed.add(key)
        if key not in self.touched:
            value = self.copier(value)
            dict.__setitem__(self, key, value)
            self.touched.add(key)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key, value):
        self.touched.add(key)
        self.accessed.add(key)
        dict.__setitem__(self, key, value)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def record(self, key):
        """The current record of ``key`` without copying it (for digests and checks)."""
        return dict.__getitem__(self, key)

    def may_differ(self, pristine: Dict[Any, Any], changed: Optional[Iterable[Any]] = None) -> set:
        """The keys whose records may differ from ``pristine``'s (the dict this table was made from): every touched
        one; with ``changed`` (the touched keys a mutating call looked up, see ``accessed``), those and the added
        keys only (a record only a read copied is the pristine one)."""
        if changed is None:
            return self.touched
        return {k for k in self.touched if k in changed or k not in pristine}

    def restore(self, pristine: Dict[Any, Any]) -> bool:
        """Make this table again a fresh one over ``pristine`` (the dict it was made from): every record it owns
        put back as the pristine one, added keys removed (keys stay in the pristine order: records are never
        removed); False where it then does not have the pristine's size (it was changed past this class)."""
        for key in self.touched:
            value = dict.get(pristine, key, _MISSING)
            if value is _MISSING:
                dict.__delitem__(self, key)
            else:
                dict.__setitem__(self, key, value)
        self.touched.clear()
        self.accessed.clear()
        return len(self) == len(pristine)

    def _refuse(self, *a, **k):
        raise NotImplementedError("a copy-on-access table does not remove records (no tau2 tool does); "
                                  "extend CopyOnAccessTable if one starts to")

    pop = popitem = clear = __delitem__ = _refuse

    def __deepcopy__(self, memo):
        return {k: copy.deepcopy(v, memo) for k, v in dict.items(self)}

    def __reduce__(self):
        return dict, (dict(dict.items(self)),)


def _refs(tables: Iterable[Any]) -> int:
    """The most references any of ``tables`` has, counted from here (see :class:`TablePool`)."""
    return max(sys.getrefcount(t) for t in tables)


#: what :func:`_refs` counts for a table only a tuple of tables refers to (this interpreter's count); None where
#: reference counts are not exact (a free-threaded build): tables are then never reused
_ONLY_IN_A_TUPLE = _refs((CopyOnAccessTable({}),)) if getattr(sys, "_is_gil_enabled", lambda: True)() else None


class TablePool:
    """Fresh copy-on-access databases over one pristine database, reusing the tables of finished ones.

    A new database's tables are new copies of the pristine tables (a dict copy of every key: most of what a
    reset costs), or the tables of an earlier database of this pool that nothing refers to any more (its
    database, episode and environment are gone: the pool's reference is the only one, by the interpreter's
    reference count), each put back by :meth:`CopyOnAccessTable.restore`.  The pool keeps the tables of the
    last ``size`` databases it made.  Thread-safe."""

    def __init__(self, pristine: BaseModel, size: int = 16):
        self.pristine = pristine
        self.fields = tuple(f for f, v in pristine.__dict__.items() if type(v) is dict)
        self.size = size
        self._sets: list = []  # tuples of tables, in self.fields' order, oldest first
        self._lock = threading.Lock()
        self.reused = 0  # databases made of reused tables

    def database(self) -> BaseModel:
        """A fresh database over the pristine one (see :func:`copy_on_access_db`)."""
        tables = self._reuse()
        reused = tables is not None
        if not reused:
            tables = tuple(CopyOnAccessTable(getattr(self.pristine, f)) for f in self.fields)
        db = copy_on_access_db(self.pristine, dict(zip(self.fields, tables)))
        with self._lock:
            self.reused += reused
            self._sets.append(tables)
            if len(self._sets) > self.size:
                del self._sets[0]
        return db

    def _reuse(self) -> Optional[tuple]:
        if _ONLY_IN_A_TUPLE is None:
            return None
        with self._lock:
            for i, tables in enumerate(self._sets):
                if _refs(tables) == _ONLY_IN_A_TUPLE:
                    del self._sets[i]
                    break
            else:
                return None
        if all(t.restore(getattr(self.pristine, f)) for f, t in zip(self.fields, tables)):
            return tables
        return None


def table_fields(model: BaseModel) -> Iterable[str]:
    """The fields of a database model that are tables (dicts of records)."""
    return [f for f in type(model).model_fields if isinstance(getattr(model, f), dict)]


def copy_on_access_db(pristine: BaseModel, tables: Optional[Dict[str, CopyOnAccessTable]] = None) -> BaseModel:
    """A fresh database over ``pristine``: every table a :class:`CopyOnAccessTable` (``tables``: fresh ones to
    use, by field), any other field copied; made as ``model_construct`` with every field given makes it (and as
    :func:`fast_copy` copies a model)."""
    values = {}
    for f, v in pristine.__dict__.items():
        if type(v) is dict:
            values[f] = tables[f] if tables is not None and f in tables else CopyOnAccessTable(v)
        else:
            values[f] = fast_copy(v)
    db = _new(type(pristine))
    _set(db, "__dict__", values)
    _set(db, "__pydantic_fields_set__", set(pristine.__pydantic_fields_set__))
    _set(db, "__pydantic_extra__", None if pristine.__pydantic_extra__ is None else fast_copy(pristine.__pydantic_extra__))
    private = getattr(pristine, "__pydantic_private__", None)
    _set(db, "__pydantic_private__", None if private is None else copy.deepcopy(private))
    return db


_canonical = json.JSONEncoder(sort_keys=True, default=str).encode  # json.dumps(.., sort_keys=True, default=str)


def canonical(obj: Any) -> str:
    """tau2's canonical text of a dumped value (``get_dict_hash``: ``json.dumps(sort_keys=True, default=str)``)."""
    return _canonical(obj)


_MOD = 1 << 256


def _item(field: str, key: Any, text: str) -> int:
    h = hashlib.sha256()
    h.update(json.dumps([field, key], default=str).encode())
    h.update(b"\x00")
    h.update(text.encode())
    return int.from_bytes(h.digest(), "big")


def _where(where: tuple) -> bytes:
    return json.dumps(list(where), default=str).encode() + b"\x00"


def _hash(prefix: bytes, text: str) -> int:
    return int.from_bytes(hashlib.sha256(prefix + text.encode()).digest(), "big")


class _Record:
    """A record's part of a digest: the hash of its dump without its split fields (``rest``) and one hash per
    entry of each split field that is a dict (``entries``: field -> entry key -> hash); ``total`` is their sum."""

    __slots__ = ("total", "rest", "entries")

    def __init__(self, rest: int, entries: Dict[str, Dict[Any, int]]):
        self.rest = rest
        self.entries = entries
        self.total = rest + sum(sum(e.values()) for e in entries.values())


class DBDigest:
    """Digest of a database of tables over one pristine database, updated per record.

    The digest is the sum (mod 2**256) of SHA-256 hashes, each over tau2's canonical text of a part of the
    dumped database: one per non-table field; per record of a table, one over the record's dump without its
    *split fields* and one per entry of each split field whose dumped value is a dict (the fields that are
    dicts of records in every pristine record of the table: a flight's dates, a user's payment methods).
    Every hash is salted with where its part sits (table, key, the split fields left out; field and entry key
    for an entry), so the parts determine the dump and the dump the parts: two databases have the same digest
    exactly when their dumps are equal (up to SHA-256 collisions), i.e. when tau2's ``get_db_hash`` is equal
    (tau2 hashes ``json.dumps(db.model_dump(), sort_keys=True)``; keys are compared as they are, type
    included, as everywhere in this digest).

    For a copy-on-access database only the records a call may have changed are dumped (see :meth:`digest`),
    and of a split field that is still the :class:`LazyDict` copied from the pristine record only the entries
    it marks ``dirty``; the pristine records' parts are hashed once (thread-safe: each value is computed
    whole before it is stored, and any thread computes the same)."""

    def __init__(self, pristine: BaseModel):
        self.pristine = pristine
        self.tables = tuple(table_fields(pristine))
        #: table -> the split fields of its records (see the class's notes)
        self.split: Dict[str, tuple] = {f: _split_fields(getattr(pristine, f)) for f in self.tables}
        self._exclude = {f: set(split) for f, split in self.split.items()}
        self._pristine_records: Dict[tuple, _Record] = {}
        self._prefixes: Dict[tuple, bytes] = {}
        self._base: Optional[int] = None
        self._lock = threading.Lock()

    # -- the parts
    def _prefix(self, *where: Any) -> bytes:
        """The salt of a part: where it sits, as JSON (kept for the parts of records an episode changed)."""
        p = self._prefixes.get(where)
        if p is None:
            p = self._prefixes[where] = _where(where)
        return p

    def _record_of_dump(self, field: str, key: Any, dump: Any) -> _Record:
        """A record's parts from its whole dump."""
        rest, entries = dump, {}
        split = self.split[field]
        if split and type(dump) is dict:
            done = [sf for sf in split if type(dump.get(sf)) is dict]
            if done:
                rest = {k: v for k, v in dump.items() if k not in done}
                for sf in done:
                    entries[sf] = {ek: _hash(_where((field, key, sf, ek)), _canonical(ev))
                                   for ek, ev in dump[sf].items()}
            return _Record(_hash(_where((field, key, tuple(done))), _canonical(rest)), entries)
        return _Record(_hash(_where((field, key, ())), _canonical(rest)), entries)

    def _pristine_record(self, field: str, key: Any) -> _Record:
        k = (field, key)
        r = self._pristine_records.get(k)
        if r is None:
            r = self._pristine_records[k] = self._record_of_dump(
                field, key, dict.__getitem__(getattr(self.pristine, field), key).model_dump())
        return r

    def _base_total(self) -> int:
        if self._base is None:
            with self._lock:
                if self._base is None:
                    total = 0
                    for f in type(self.pristine).model_fields:
                        if f in self.tables:
                            total += sum(self._pristine_record(f, k).total for k in getattr(self.pristine, f))
                        else:
                            total += _item(f, None, canonical(_dump(getattr(self.pristine, f))))
                    self._base = total % _MOD
        return self._base

    def _change(self, field: str, key: Any, rec: Any, prec: Any) -> int:
        """The digest's change from the pristine record ``prec`` of ``key`` to ``rec``.  Only parts that may
        differ are dumped: a part whose values are the pristine part's own objects, or equal immutable
        values, is the pristine part (:func:`same_dump`); of a split field still copied from ``prec``'s (a
        :class:`LazyDict` whose origin is ``prec``'s dict) only its dirty entries are looked at."""
        p = self._pristine_record(field, key)
        split = self.split[field]
        if type(rec) is not type(prec) or not isinstance(rec, BaseModel):
            return self._record_of_dump(field, key, rec.model_dump()).total - p.total
        if not split:
            return 0 if same_dump(rec, prec) else self._record_of_dump(field, key, rec.model_dump()).total - p.total
        d, pd = rec.__dict__, prec.__dict__
        values = [d.get(sf) for sf in split]
        if not all(isinstance(v, dict) and sf in p.entries for sf, v in zip(split, values)):
            return self._record_of_dump(field, key, rec.model_dump()).total - p.total
        change = 0
        if not same_dump(rec, prec, skip=split):
            change = (_hash(self._prefix(field, key, split), _canonical(rec.model_dump(exclude=self._exclude[field])))
                      - p.rest)
        for sf, v in zip(split, values):
            pe, porigin = p.entries[sf], pd.get(sf)
            keys = v.dirty if type(v) is LazyDict and v.origin is porigin else set(v) | set(pe)
            keys = [ek for ek in keys
                    if not (ek in v and ek in pe and same_dump(dict.__getitem__(v, ek), dict.__getitem__(porigin, ek)))]
            if not keys:
                continue
            present = {ek for ek in keys if dict.__contains__(v, ek)}
            now = rec.model_dump(include={sf: present})[sf] if present else {}
            for ek in keys:
                h = pe.get(ek)
                if h is not None:
                    change -= h
                if ek in present:
                    change += _hash(self._prefix(field, key, sf, ek), _canonical(now[ek]))
        return change

    def digest(self, db: BaseModel, changed: Optional[Dict[str, set]] = None) -> str:
        """The digest of ``db`` (a database from :func:`copy_on_access_db` over the pristine one, or any
        database of the same model: its tables without ``touched`` are digested in full).

        ``changed``: per table, the touched keys whose records may differ from the pristine ones (those a
        mutating tool looked up; see :class:`CopyOnAccessTable`'s ``accessed``); the other touched records
        are the pristine ones, copied by a read.  None: any touched record may differ."""
        total = self._base_total()
        for f in type(self.pristine).model_fields:
            v = getattr(db, f)
            if f not in self.tables:
                total += _item(f, None, canonical(_dump(v)))
                total -= _item(f, None, canonical(_dump(getattr(self.pristine, f))))
                continue
            pristine = getattr(self.pristine, f)
            if isinstance(v, CopyOnAccessTable):
                keys = v.may_differ(pristine, None if changed is None else changed.get(f, ()))
                record = v.record
            else:  # a replaced table (tau2's update_db makes a new validated database): compare every record
                keys = set(v) | set(pristine)
                record = v.__getitem__
            for key in keys:
                if key in pristine:
                    if key in v:
                        total += self._change(f, key, record(key), dict.__getitem__(pristine, key))
                    else:
                        total -= self._pristine_record(f, key).total
                elif key in v:
                    total += self._record_of_dump(f, key, record(key).model_dump()).total
        return f"{total % _MOD:064x}"


_MISSING = object()
_DICTS = (dict, LazyDict)


def owned_records(db: BaseModel, tables: Iterable[str]) -> Optional[Dict[str, Dict[Any, Any]]]:
    """Per table of a copy-on-access database, the records it owns (copied or set: the only ones that may differ
    from the pristine records); None where a table is no longer a :class:`CopyOnAccessTable`."""
    out = {}
    for f in tables:
        t = db.__dict__.get(f)
        if type(t) is not CopyOnAccessTable:
            return None
        out[f] = {k: t.record(k) for k in t.touched}
    return out


def same_records(db: BaseModel, other: Dict[str, Dict[Any, Any]], pristine: BaseModel,
                 changed: Optional[Dict[str, set]] = None) -> Optional[bool]:
    """Whether copy-on-access database ``db`` dumps as the database whose owned records are ``other``
    (:func:`owned_records`; over the same ``pristine``, every field of which is a table, as the domains check
    before they compare this way): True when every record either side may have changed dumps alike on both
    (:func:`same_dump`), False when a record is on one side only, None where a pair cannot be told apart cheaply
    (compare digests then).  ``changed``: as :meth:`DBDigest.digest` takes it (``db``'s touched records
    outside it are its pristine ones)."""
    for f, theirs in other.items():
        mine = db.__dict__.get(f)
        if type(mine) is not CopyOnAccessTable:
            return None
        base = pristine.__dict__[f]
        keys = set(theirs)
        keys.update(mine.may_differ(base, None if changed is None else changed.get(f, ())))
        for k in keys:
            a = dict.get(mine, k, _MISSING)
            b = theirs.get(k, _MISSING)
            if b is _MISSING:
                b = dict.get(base, k, _MISSING)
            if a is _MISSING or b is _MISSING:
                if a is not b:
                    return False
            elif not same_dump(a, b):
                return None
    return True


def same_dump(a: Any, b: Any, skip: tuple = ()) -> bool:
    """True only if ``a`` and ``b`` (in the same place of a database) dump alike: the same object, equal values
    of the same immutable type (str, int, bool; floats equal and of the same sign), or models of the same class
    without extra values, lists, tuples and str-keyed dicts of such, recursively (``skip``: a model's fields left
    out).  False where it cannot tell cheaply (e.g. two enum members, a value too deeply nested): the caller
    then dumps."""
    try:
        return _same(a, b, skip)
    except RecursionError:
        return False


def _same(a: Any, b: Any, skip: tuple = ()) -> bool:
    if a is b:
        return True
    t = type(a)
    if t is not type(b):
        if t in _DICTS and type(b) in _DICTS:  # a LazyDict dumps as the dict it copies
            t = dict
        else:
            return False
    if t is str or t is int or t is bool:
        return a == b
    if t is float:  # equal floats print alike, but for 0.0 and -0.0
        return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))
    if isinstance(a, BaseModel):
        plain = _plain_models.get(t)
        if plain is None:
            plain = _plain_models[t] = _dumps_its_fields(t)
        if not plain or a.__pydantic_extra__ is not None or b.__pydantic_extra__ is not None:
            return False
        da, db = a.__dict__, b.__dict__
        if len(da) != len(db):
            return False
        nested = []  # the immutable fields first: a changed one answers without a walk through the nested ones
        for k, x in da.items():
            y = db.get(k, _MISSING)
            if x is y or k in skip:
                continue
            tx = type(x)
            if tx is str or tx is int or tx is bool:
                if type(y) is not tx or x != y:
                    return False
            else:
                nested.append((x, y))
        for x, y in nested:
            if not _same(x, y):
                return False
        return True
    if t is list or t is tuple:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if x is not y and not _same(x, y):
                return False
        return True
    if t in _DICTS:
        if len(a) != len(b):
            return False
        if type(a) is LazyDict and type(b) is LazyDict and a.origin is b.origin:
            # copies of one dict: an entry neither marks dirty is the origin's own object on both sides
            for k in a.dirty | b.dirty:
                if type(k) is not str:
                    return False
                x, y = dict.get(a, k, _MISSING), dict.get(b, k, _MISSING)
                if x is not y and (x is _MISSING or y is _MISSING or not _same(x, y)):
                    return False
            return True
        for k, x in dict.items(a):
            if type(k) is not str:
                return False
            y = dict.get(b, k, _MISSING)
            if x is not y and not _same(x, y):
                return False
        return True
    return False


#: model class -> whether its dump is its fields' values dumped, nothing else (see :func:`_dumps_its_fields`)
_plain_models: Dict[type, bool] = {}


def _dumps_its_fields(cls: type) -> bool:
    """Whether a model class dumps just its fields' values: no computed fields, no serializers of its own."""
    dec = cls.__pydantic_decorators__
    return not (cls.model_computed_fields or dec.model_serializers or dec.field_serializers)


def _split_fields(table: Dict[Any, Any]) -> tuple:
    """The fields of a table's records that are hashed per entry: those that are dicts in every record, some
    with records (models) in them; none where the records are of several classes, or of a class with its own
    serializers (its dump without a field might not be its whole dump less that field)."""
    records = list(table.values())
    classes = {type(r) for r in records}
    if len(classes) != 1:
        return ()
    cls = classes.pop()
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or not _dumps_its_fields(cls) \
            or cls.model_config.get("extra") == "allow":
        return ()
    out = []
    for f in cls.model_fields:
        values = [r.__dict__.get(f) for r in records]
        if all(type(v) is dict for v in values) and any(isinstance(x, BaseModel) for v in values
                                                         for x in v.values()):
            out.append(f)
    return tuple(out)


def _dump(v: Any) -> Any:
    if isinstance(v, BaseModel):
        return v.model_dump()
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v
