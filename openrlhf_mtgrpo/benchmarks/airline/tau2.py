"""The airline's tau2 versions (``tau2``, ``tau2-2025``) on tau2-bench's own classes.

Tools, schemas, policy, data models and evaluators are tau2's, run by the tau2-native layer
(:class:`~openrlhf_mtgrpo.benchmarks.tau2_native.domain.Tau2NativeDomain`: copy-on-access databases, cached
gold end states, ``calculate`` bounded).  What the airline adds:

* its tasks: ``tau2``'s ``tasks.json`` is data, found by the benchmark-data lookup (``mtgrpo data fetch tau2``
  or a data folder); ``tau2-2025``'s is the wheel's (:mod:`openrlhf_mtgrpo.benchmarks.tau2_native.versions`);
* its prompts and greeting by the data lookup (:mod:`.prompting`): ``tau2`` is prompted with a2c0247's own
  customer guidelines where ``mtgrpo data fetch tau2`` got them (else tau2-2025's, flagged);
* its run rules as they have always been recorded (:mod:`.versions`);
* its identity as it has always been recorded (version, tasks and database sha256: the same values as
  before the airline moved onto tau2's classes, so logs of both compare);
* splits as task ids, the demo's airline mistakes, the toy tokenizer's corpus and the data as plain records.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.benchmarks.airline import versions
from openrlhf_mtgrpo.benchmarks.tau2_native.domain import Tau2NativeDomain
from openrlhf_mtgrpo.envs.base import AgentPrompt, CustomerPrompt, RunRules


class Tau2Airline(Tau2NativeDomain):
    """The airline of ``tau2`` or ``tau2-2025`` (see the module's notes)."""

    family = "tau2"

    def __init__(self, version: str = "tau2", data_dir: Optional[str] = None):
        if version not in ("tau2", "tau2-2025"):
            raise ValueError(f"Tau2Airline runs tau2 and tau2-2025, not {version!r}")
        self._greeting: Optional[str] = None
        super().__init__(version, data_dir)

    # -- what differs from retail and telecom
    def greeting(self) -> Optional[str]:
        """The agent's first message, read from the version's tau2 orchestrator by the data lookup (on the engine
        tau2-bench >= 1.0: from its own orchestrator, the harness that runs it)."""
        if self.engine.is_v1:
            return super().greeting()
        if self._greeting is None:
            from openrlhf_mtgrpo.benchmarks.airline.prompting import resolve_greeting

            self._greeting = resolve_greeting(self.version, self.data_dir)
        return self._greeting

    def _rules(self) -> RunRules:
        return replace(versions.get_version(self.version).rules, agent_greeting=self.greeting())

    def _prompts(self) -> Tuple[AgentPrompt, Optional[CustomerPrompt]]:
        if self.engine.is_v1:  # tau2-bench's own harness is installed: its prompts (its pinned files, .prompting)
            return super()._prompts()
        from openrlhf_mtgrpo.benchmarks.airline.prompting import resolve_prompts

        agent, customer, _ = resolve_prompts(self.version, self._policy, self.data_dir)
        return agent, customer

    @property
    def splits(self) -> Dict[str, List[str]]:
        """Split name -> task ids."""
        return {k: list(v) for k, v in self.task_set.splits.items()}

    # -- for the offline scripted policy, the toy tokenizer and tests
    @functools.cached_property
    def data(self):
        """The version's data as plain records (:func:`.data.load_airline`: the database as tau2's ``FlightDB``
        dumps it, the tasks' fields), read-only; loaded on first use."""
        from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

        return load_airline(self.version, self.data_dir)

    def _task_fields(self, raw: Dict[str, Any]) -> Dict[str, Any]:
        """Besides the generic fields: the user id the task's scenario names in its known information
        (``user_id``), as the airline's tasks have always carried it (None where it names none)."""
        instructions = (raw.get("user_scenario") or {}).get("instructions") or {}
        known = instructions.get("known_info", "") if isinstance(instructions, dict) else ""
        found = None
        for token in (known or "").replace(".", " ").split():
            if "_" in token and token.rstrip(",") in self.pristine.users:
                found = token.rstrip(",")
        return dict(super()._task_fields(raw), user_id=found)

    def tokenizer_corpus(self) -> List[str]:
        """Database records for the offline toy tokenizer's training texts."""
        db = self.data.db
        return ([json.dumps(r) for r in list(db["reservations"].values())[:200]]
                + [json.dumps(u) for u in list(db["users"].values())[:100]])

    def scripted_mistake(self, kind, task, done, last_call, rng) -> str:
        """The offline scripted policy's airline mistakes (``mtgrpo demo``; see :mod:`.scripted`)."""
        from openrlhf_mtgrpo.benchmarks.airline.scripted import airline_mistake

        return airline_mistake(self.data.db, task.user_id, kind, task, done, last_call, rng)
