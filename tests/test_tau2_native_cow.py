"""The tau2-native layer's speed-ups keep tau2's outcomes: the digest, per record and per entry of a record's dict
of records, says equal exactly when tau2's own hash does, on the cases built to break it.

The differential tests (tests/test_tau2_differential.py, tests/test_tau2_native_retail.py) check the same
against tau2's whole run; these check each shortcut on the cases built to break it.
"""

import copy
import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def airline(tau2_family):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    version, data_dir = tau2_family
    return AirlineEnv(version, data_dir)


def _fresh(airline):
    """A new domain of the same version: its shared caches start empty."""
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    return AirlineEnv(airline.version, airline.data_dir)


def _tau2_hash(env):
    from tau2.utils.utils import get_dict_hash

    return get_dict_hash(env.tools.db.model_dump())


# -- the digest, per record and per entry -----------------------------------------------------------------------

def _states(domain):
    """(name, environment) pairs: hand-made changes of the kinds the per-entry digest treats apart."""
    task = domain.tasks("base")[0]
    pristine = domain.pristine
    fid, date = next((k, d) for k, f in pristine.flights.items() if len(f.dates) > 2
                     for d, s in f.dates.items() if hasattr(s, "available_seats") and s.prices)
    other = next(d for d in pristine.flights[fid].dates if d != date)
    uid = next(k for k, u in pristine.users.items() if len(u.payment_methods) > 1)
    pid = next(iter(pristine.users[uid].payment_methods))
    rid = next(iter(pristine.reservations))
    out = []

    def state(name, change):
        env = domain.environment(task)
        change(env.tools.db)
        out.append((name, env))

    def seats(db, n):
        status = db.flights[fid].dates[date]
        cabin = next(iter(status.available_seats))
        status.available_seats[cabin] += n

    state("pristine", lambda db: None)
    state("read only", lambda db: (db.flights[fid].dates[date], db.users[uid].payment_methods[pid],
                                   db.reservations[rid]))
    state("one seat less", lambda db: seats(db, -1))
    state("one seat less, then back", lambda db: (seats(db, -1), seats(db, +1)))
    state("date entry removed", lambda db: db.flights[fid].dates.pop(other))
    state("date entry added", lambda db: db.flights[fid].dates.__setitem__(
        "2099-01-01", copy.deepcopy(pristine.flights[fid].dates[date])))
    state("dates cleared", lambda db: db.flights[fid].dates.clear())
    state("dates a plain dict, equal", lambda db: setattr(db.flights[fid], "dates", dict(db.flights[fid].dates)))
    state("dates a plain dict, reversed order", lambda db: setattr(
        db.flights[fid], "dates", dict(reversed(list(db.flights[fid].dates.items())))))
    state("dates not a dict", lambda db: setattr(db.flights[fid], "dates", list(db.flights[fid].dates)))
    state("rest field changed", lambda db: setattr(db.flights[fid], "origin", "XXX"))
    state("rest field equal, new object", lambda db: setattr(db.flights[fid], "origin",
                                                             "".join(list(db.flights[fid].origin))))
    state("int where the float was", lambda db: _set_price(db.flights[fid].dates[date]))
    state("balance changed", lambda db: _bump(db.users[uid].payment_methods[pid]))
    state("payment method added", lambda db: db.users[uid].payment_methods.__setitem__(
        "certificate_x", copy.deepcopy(pristine.users[uid].payment_methods[pid])))
    state("user's reservations appended", lambda db: db.users[uid].reservations.append("NEW001"))
    state("reservation changed", lambda db: setattr(db.reservations[rid], "total_baggages",
                                                    db.reservations[rid].total_baggages + 1))
    state("reservation added", lambda db: db.reservations.__setitem__("NEW001", copy.deepcopy(
        pristine.reservations[rid])))
    return out


def _set_price(status):
    cabin = next(iter(status.prices))
    status.prices[cabin] = float(status.prices[cabin]) if type(status.prices[cabin]) is int \
        else int(status.prices[cabin])


def _bump(method):
    for field in ("amount", "balance"):
        if hasattr(method, field):
            setattr(method, field, getattr(method, field) + 1)
            return
    method.id = method.id + "x"


def test_the_per_entry_digest_says_equal_exactly_when_tau2s_hash_does(airline):
    """Pairs of hand-made states (entries changed, added, removed; a split field replaced by an equal, a
    reordered and a non-dict value; an int for a float; equal values in new objects): the digest of the
    records each state touched (as the episode digests them), and of every record it copied, says equal
    exactly when tau2's own get_db_hash does."""
    domain = _fresh(airline)
    states = [(name, domain.state_hashes(env), _tau2_hash(env)) for name, env in _states(domain)]
    pairs = equal = 0
    for a in states:
        for b in states:
            assert (a[1] == b[1]) == (a[2] == b[2]), (a[0], b[0])
            pairs += 1
            equal += a[2] == b[2]
    assert equal > len(states)  # some changed states equal the pristine one, as tau2 says
    assert pairs - equal > 100
    assert domain.pristine_intact()


def test_record_by_record_comparison_agrees_with_tau2s_hash(airline):
    """The gold check's shortcut (``same_records``, record by record against the gold state's owned records)
    on every pair of the hand-made states: where it decides, it says what tau2's own hashes say; it decides
    every equal pair it can walk, and every pair where a record is on one side only."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import owned_records, same_records

    domain = _fresh(airline)
    states = [(name, env, _tau2_hash(env)) for name, env in _states(domain)]
    decided = {True: 0, False: 0}
    for a in states:
        for b in states:
            verdict = same_records(a[1].tools.db, owned_records(b[1].tools.db, domain.cow_tables), domain.pristine)
            if verdict is not None:
                assert verdict == (a[2] == b[2]), (a[0], b[0], verdict)
                decided[verdict] += 1
            if a[0] == b[0]:
                assert verdict is True, a[0]
    assert decided[True] > len(states) and decided[False] >= 4  # "reservation added" against every other


def test_same_dump_is_conservative():
    from pydantic import BaseModel

    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import LazyDict, same_dump

    class M(BaseModel):
        a: object = None
        b: list = []

    x = M(a="s", b=[1, {"k": 2}])
    assert same_dump(x, M(a="s", b=[1, {"k": 2}]))
    assert same_dump(x, copy.deepcopy(x)) and same_dump({"k": x}, LazyDict({"k": x}))
    assert not same_dump(M(a=1), M(a=1.0)) and not same_dump(M(a=1), M(a=True))  # equal in Python, not as JSON
    # floats: equal ones print alike (json.dumps uses repr), but 0.0 and -0.0 do not, and NaN is not equal to itself
    for a, b, alike in ((0.5, float("0.5"), True), (1e308 * 10, float("inf"), True), (0.0, -0.0, False),
                        (-0.0, -0.0 * 1, True), (0.1 + 0.2, 0.3, False), (float("nan"), float("nan"), False)):
        assert same_dump(M(a=a), M(a=b)) is alike
        if alike:  # never True where the dumps differ
            assert json.dumps(M(a=a).model_dump()) == json.dumps(M(a=b).model_dump())
        elif a == a and b == b:
            assert json.dumps(M(a=a).model_dump()) != json.dumps(M(a=b).model_dump())
    # two copies of one dict of records: only the entries either marks dirty are looked at
    origin = {"d1": M(a="x"), "d2": M(a="y")}
    one, two = LazyDict(origin), LazyDict(origin)
    assert same_dump(one, two)
    one["d1"].a = "changed"
    assert not same_dump(one, two) and not same_dump(two, one)
    two["d1"].a = "changed"
    assert same_dump(one, two)
    two.pop("d2")
    assert not same_dump(one, two)
    one.pop("d2")
    assert same_dump(one, two)
    assert not same_dump({1: "x"}, {1: "x"})  # keys that are not str: not looked into
    assert not same_dump(M(b=[1, 2]), M(b=[1, 2, 3])) and not same_dump(M(b=[{"k": 1}]), M(b=[{"k": 2}]))
    assert same_dump(M(a="s", b=[1]), M(a="s", b=[2]), skip=("b",))
    def deep():
        top = cur = []
        for _ in range(5000):
            cur.append([])
            cur = cur[0]
        return top

    assert not same_dump(deep(), deep())  # too deep to look into: False, not an error


# -- tables reused across resets -----------------------------------------------------------------------------

def test_a_reset_reuses_only_tables_nothing_refers_to(airline):
    """A new episode takes the tables of an earlier one only once nothing refers to them (its episode,
    environment and database gone), put back as the pristine ones: same keys in the same order, the same
    records by tau2's hash, no record owned; tables still held anywhere (an episode kept, a table kept on its
    own) are never handed out again."""
    import gc

    domain = _fresh(airline)
    task = domain.tasks("base")[0]
    fresh_hash = _tau2_hash(domain.environment(task))
    gc.collect()

    def tables(ep):
        return [ep.env.tools.db.__dict__[f] for f in domain.cow_tables]

    kept = domain.reset(task)
    marks = []  # the tables' own sets: holding them does not hold the tables
    for name, env in _states(domain):  # every kind of change, each state dropped after use
        assert _tau2_hash(env) == fresh_hash or name not in ("pristine", "read only")
        marks += [env.tools.db.__dict__[f].touched for f in domain.cow_tables]
    del env
    ep = domain.reset(task)
    ids = [id(t) for t in tables(ep)]
    assert all(any(t.touched is m for m in marks) for t in tables(ep))  # a changed state's tables, put back
    assert all(not t.touched and not t.accessed for t in tables(ep))
    assert _tau2_hash(ep.env) == fresh_hash
    for f, t in zip(domain.cow_tables, tables(ep)):
        assert list(t) == list(getattr(domain.pristine, f))
    assert not set(ids) & {id(t) for t in tables(kept)}  # the kept episode's tables are its own
    ep.call_tool("cancel_reservation", {"reservation_id": next(iter(domain.pristine.reservations))})
    held = tables(ep)[0]
    del ep
    again = domain.reset(task)
    assert id(held) not in {id(t) for t in tables(again)}  # one of its tables is still referred to
    assert _tau2_hash(again.env) == fresh_hash
    assert domain.pristine_intact()


def test_a_table_changed_past_its_class_is_not_reused():
    """A table whose keys changed behind the class's back (a key added by dict's own method) is dropped, not
    handed out again."""
    from pydantic import BaseModel

    from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import TablePool

    class R(BaseModel):
        v: int = 0

    class DB(BaseModel):
        rows: dict

    pool = TablePool(DB(rows={"a": R(v=1), "b": R(v=2)}))
    db = pool.database()
    mark = db.rows.touched  # the table's own set: holding it does not hold the table
    db.rows["a"].v = 5
    db.rows["c"] = R(v=3)
    kept = pool.database()  # another database while the first is still held: new tables
    assert kept.rows.touched is not mark
    del db
    db = pool.database()
    assert db.rows.touched is mark and list(db.rows) == ["a", "b"] and db.rows["a"].v == 1  # put back
    dict.__setitem__(db.rows, "z", R())  # past the class: not in its touched records
    del db
    db = pool.database()
    assert db.rows.touched is not mark and list(db.rows) == ["a", "b"]
