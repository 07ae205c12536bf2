"""One conversation on tau2's own environment: the agent's messages, the customer's tool calls, the reward.

Every call goes the way tau2's ``Environment.get_response(ToolCall(...))`` takes it, the call tau2's
orchestrator makes (:meth:`Tau2NativeEpisode._respond`: the same steps without its debug log line): the
observation is tau2's (``"Error: ..."`` for a refused call, with ``error`` set), tau2 routes it (the customer's
calls to their own tools; in solo mode the agent's calls of customer tools too) and runs ``sync_tools`` after
every call that succeeded.  After every message that called tools the episode runs ``sync_tools`` once more,
as the orchestrator does at the end of each step.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import AssistantTurn, ToolResult
from openrlhf_mtgrpo.benchmarks.tau2_native.evaluation import RewardResult, evaluate_episode


def _has_text(text: Optional[str]) -> bool:
    """tau2's ``has_text_content``: not None and not only whitespace."""
    return text is not None and text.strip() != ""


def _json_copy(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists, scalars; anything else through :func:`copy.deepcopy`)."""
    t = type(value)
    if t is dict:
        return {k: _json_copy(x) for k, x in value.items()}
    if t is list:
        return [_json_copy(x) for x in value]
    if t in _JSON_ATOMS:
        return value
    return copy.deepcopy(value)


_JSON_ATOMS = (str, int, float, bool, type(None))


def _own_copy(args: Any) -> Any:
    """A deep copy of a call's arguments, so that a tool never changes what the caller logged; arguments nested
    deeper than Python's recursion allows here (JSON parses ~1,000 levels) are passed as they are, as tau2's
    own run passes its freshly parsed arguments."""
    try:
        return _json_copy(args)
    except RecursionError:
        return args


_GIVEN = ("role", "content", "tool_calls", "turn_idx", "timestamp", "cost", "usage", "raw_data")


def _message(cls: Any, role: str, content: Optional[str], tool_calls: Optional[list]) -> Any:
    """A tau2 message as ``cls.model_construct(role=..., content=..., tool_calls=..., turn_idx=None,
    timestamp=None, cost=None, usage=None, raw_data=None)`` makes it (no validation; every field given, so no
    default is resolved: the timestamp's default factory alone costs more than the evaluators that read the
    message), built directly (``model_construct`` itself costs as much as the evaluators)."""
    fields = cls.model_fields
    if any(f not in fields for f in _GIVEN) or len(fields) != len(_GIVEN):
        return cls.model_construct(role=role, content=content, tool_calls=tool_calls, turn_idx=None,
                                   timestamp=None, cost=None, usage=None, raw_data=None)
    m = object.__new__(cls)
    object.__setattr__(m, "__dict__", {"role": role, "content": content, "tool_calls": tool_calls, "turn_idx": None,
                                       "timestamp": None, "cost": None, "usage": None, "raw_data": None})
    object.__setattr__(m, "__pydantic_fields_set__", set(_GIVEN))
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m


class Tau2NativeEpisode:
    """The state of one episode (made by :meth:`.domain.Tau2NativeDomain.reset`).

    ``tool_results``: every call's result, the agent's and the customer's, in order; ``assistant_texts``: the
    text of every agent message that was applied (the greeting is not among them)."""

    def __init__(self, domain: Any, task: Any, env: Any):
        self.domain = domain
        self.task = task
        self.env = env
        self.tool_results: List[ToolResult] = []
        self.assistant_texts: List[str] = []
        self.stopped = False  # a solo agent called its stop tool
        #: ("assistant" | "user", content, [tau2 ToolCall]) per applied message, in order
        self._messages: List[Tuple[str, Optional[str], list]] = []
        self._ids = 0
        #: (field, table) of the agent database's copy-on-access tables (airline, retail), and per field the keys
        #: a mutating call looked up
        self._tables = tuple((f, env.tools.db.__dict__[f]) for f in domain.cow_tables)
        self._changed: Dict[str, set] = {}

    # -- the agent
    def assistant_message(self, text: str, calls: Sequence[Tuple[str, Any]], malformed: int = 0,
                          first_call_malformed: bool = False) -> AssistantTurn:
        """Apply one agent message as tau2 does.

        text: the message's text without tool-call markup; calls: (name, arguments) of its tool calls;
        malformed: calls whose arguments are not a JSON object (``first_call_malformed``: the first one is
        such a call; tau2 treats every call alike).  tau2's client builds a ``ToolCall`` (``arguments:
        dict``) for every call of the message before any runs, so such a message fails the run
        (``agent_error``, reward 0) with no call run; so does a message with neither text nor a call
        (``AssistantMessage.validate``).  Otherwise every call runs in order and the text counts for
        COMMUNICATE, also in a message that calls tools.

        Solo mode (tau2's ``LLMSoloAgent``): a message without a tool call fails the run; a message that
        calls the stop tool (``done``) becomes tau2's stop message, no call of it runs, and the episode
        ends (``agent_stop``); a message that calls tools while its text holds the stop token ends tau2's
        run with an error (the orchestrator stops with the calls unanswered): ``agent_error``."""
        tcs = None if malformed else self._tool_calls(calls, "assistant")
        if tcs is None:
            return AssistantTurn([], [], False, False, agent_error=True)
        if self.domain.solo:
            stop = self.domain.solo_stop
            if not tcs:
                return AssistantTurn([], [], False, False, agent_error=True)
            if any(tc.name == stop.function_name for tc in tcs):
                self._messages.append(("assistant", stop.stop_token, []))
                self.assistant_texts.append(stop.stop_token)
                self.stopped = True
                return AssistantTurn([], [], False, True)
            if text is not None and stop.stop_token in text:
                return AssistantTurn([], [], False, False, agent_error=True)
        elif not tcs and not _has_text(text):
            return AssistantTurn([], [], False, False, agent_error=True)
        self._messages.append(("assistant", text, tcs))
        if _has_text(text):
            self.assistant_texts.append(text)
        results = [self._run(tc, args) for tc, (_, args) in zip(tcs, calls)]
        if tcs:
            self.env.sync_tools()
        return AssistantTurn(results, list(range(len(tcs))), not tcs, False)

    # -- conveniences for scripts and tests
    def call_tool(self, name: str, arguments: Any) -> ToolResult:
        """One agent message with this one tool call and no text; the call's result.  ValueError where the
        message runs no call (tau2 refuses it, or it is the solo agent's stop)."""
        turn = self.assistant_message("", [(name, arguments)])
        if not turn.results:
            raise ValueError(f"the message calling {name} ran no call (agent_error {turn.agent_error}, "
                             f"agent_stop {turn.agent_stop})")
        return turn.results[0]

    def say(self, text: str) -> None:
        """One agent message with this text and no tool call."""
        self.assistant_message(text, [])

    # -- the customer
    def user_tool_call(self, name: str, arguments: Any) -> ToolResult:
        """One tool call of the customer (telecom), as one customer message: its result is what the
        customer's simulator gets back (as a tool message), hidden from the agent."""
        return self.user_tool_calls([(name, arguments)])[0]

    def user_tool_calls(self, calls: Sequence[Tuple[str, Any]]) -> List[ToolResult]:
        """The tool calls of one customer message, in order (then ``sync_tools``, as tau2's orchestrator)."""
        if self.domain.solo or self.env.user_tools is None:
            raise RuntimeError(f"{self.domain.version}: the customer has no tools here")
        tcs = self._tool_calls(calls, "user")
        if tcs is None:
            raise ValueError("a customer tool call's arguments must be a JSON object")
        self._messages.append(("user", None, tcs))
        results = [self._run(tc, args) for tc, (_, args) in zip(tcs, calls)]
        self.env.sync_tools()
        return results

    # -- state
    def probes(self) -> Dict[str, float]:
        """Cheap state probes: the fraction of the task's env assertions the live state meets (telecom; each
        assertion function called on the live toolkits, without tau2's ``sync_tools``, so nothing changes);
        empty for tasks without env assertions."""
        assertions = self.task.tau2.evaluation_criteria.env_assertions if self.task.tau2.evaluation_criteria \
            else None
        if not assertions:
            return {}
        met = 0
        for a in assertions:
            kit = self.env.user_tools if a.env_type == "user" else self.env.tools
            try:
                value = getattr(kit, a.func_name)(**a.arguments)
            except Exception:  # noqa: BLE001 -- an assertion that cannot be checked is not met
                continue
            met += isinstance(value, bool) and value == a.assert_value
        return {"env_assertions_met": met / len(assertions)}

    def state_hashes(self) -> Tuple[Optional[str], Optional[str]]:
        """(agent database, customer database) hashes: equal for two episodes exactly when tau2's
        ``get_db_hash`` / ``get_user_db_hash`` are (see :meth:`.domain.Tau2NativeDomain.state_hashes`)."""
        return self.domain.state_hashes(self.env, self._changed if self._tables else None)

    def matches_gold(self) -> bool:
        """Whether both databases are the task's gold end state (tau2's DB check; see
        :meth:`.domain.Tau2NativeDomain.matches_gold`)."""
        return self.domain.matches_gold(self.task, self.env, self._changed if self._tables else None)

    @property
    def failed_calls(self) -> int:
        """Tool calls that returned an error, the customer's included (tau2's ``max_errors`` counts these)."""
        return sum(r.error for r in self.tool_results)

    def tau2_messages(self) -> list:
        """The episode as tau2 messages (greeting first, outside solo mode), for tau2's evaluators."""
        m = self.domain.t.message
        out = []
        if not self.domain.solo:
            out.append(_message(m.AssistantMessage, "assistant", self.domain.greeting(), None))
        for role, content, tcs in self._messages:
            cls = m.AssistantMessage if role == "assistant" else m.UserMessage
            out.append(_message(cls, role, content, tcs or None))
        return out

    def tau2_trajectory(self, messages: Optional[List[Dict[str, Any]]] = None) -> list:
        """The episode as tau2's orchestrator records it (what tau2's NL judge reads; tau2's own models): the
        greeting (outside solo mode), each agent message with its tool calls (its text, None where it has
        none), one ``ToolMessage`` per call (content, error flag, requestor), the customer's messages: their
        text from ``messages`` (the conversation as the episode loop keeps it: its ``user`` entries, in
        order), their own tool calls from the episode."""
        m = self.domain.t.message
        out: list = []
        if not self.domain.solo:
            out.append(m.AssistantMessage(role="assistant", content=self.domain.greeting()))
        results = iter(self.tool_results)

        def emit(role: str, content: Optional[str], tcs: list) -> None:
            cls = m.AssistantMessage if role == "assistant" else m.UserMessage
            out.append(cls(role=role, content=content if _has_text(content) else None, tool_calls=tcs or None))
            for tc in tcs:
                r = next(results)
                out.append(m.ToolMessage(id=tc.id, role="tool", content=r.content, requestor=tc.requestor,
                                         error=r.error))

        pending = list(self._messages)
        chat = [x for x in (messages or []) if x.get("role") in ("user", "assistant")]
        if chat and not self.domain.solo and chat[0].get("role") == "assistant":
            chat = chat[1:]  # the greeting
        for x in chat:
            while pending and pending[0][0] == "user":  # the customer's own tool calls come before its text
                emit(*pending.pop(0))
            if x["role"] == "user":
                out.append(m.UserMessage(role="user", content=x.get("content")))
            elif pending:
                emit(*pending.pop(0))
        for entry in pending:
            emit(*entry)
        return out

    def evaluate(self, termination: str, judge: Any = None,
                 messages: Optional[List[Dict[str, Any]]] = None, check_db: bool = False) -> RewardResult:
        """The benchmark's reward for the episode ended by ``termination`` (see :mod:`.evaluation`); ``judge``:
        the run's judge (:mod:`openrlhf_mtgrpo.evaluation.judge`: an LLM judge, the ``off`` choice, or None);
        ``messages``: the conversation as the episode loop keeps it (the NL judge reads the customer's messages
        from it); ``check_db``: also compare the databases where DB is not in the task's reward basis."""
        return evaluate_episode(self, termination, judge, messages, check_db)

    # -- internals
    def _tool_calls(self, calls: Sequence[Tuple[str, Any]], requestor: str) -> Optional[list]:
        """tau2 ToolCalls for ``calls`` (None where tau2's model refuses one: the message fails as a whole)."""
        from pydantic import ValidationError

        ToolCall = self.domain.t.message.ToolCall
        out = []
        try:
            for name, args in calls:
                out.append(ToolCall(id=f"call_{self._ids + len(out)}", name=name,
                                    arguments=_own_copy(args), requestor=requestor))
        except ValidationError:
            return None
        self._ids += len(out)
        return out

    def _run(self, tc: Any, arguments: Any) -> ToolResult:
        content, error = self._respond(tc)
        res = ToolResult(content=content, error=error, name=tc.name, arguments=arguments, requestor=tc.requestor)
        self.tool_results.append(res)
        return res

    def _respond(self, tc: Any) -> Tuple[Optional[str], bool]:
        """tau2's ``Environment.get_response(tc)`` as (content, error), step for step: ``make_tool_call``,
        ``sync_tools`` after a call that succeeded, a failure worded as tau2 words it (``error_prefix``: measured
        on tau2's own ``get_response`` when the domain loads), ``to_json_str``.  Left out: its debug log line,
        whose f-string renders every result even with logging off (half a call's time), and the
        ``ToolMessage`` it wraps the content in.  Also notes which copy-on-access records a mutating call
        looked up (:meth:`state_hashes` then digests only those)."""
        env = self.env
        tables = self._tables
        for _, t in tables:
            t.accessed.clear()
        try:
            resp = env.make_tool_call(tc.name, requestor=tc.requestor, **tc.arguments)
            env.sync_tools()
            error = False
        except Exception as e:  # noqa: BLE001 -- tau2 reports every exception of a call this way
            resp, error = self.domain.error_prefix + str(e), True
        finally:
            if tables and self.domain.mutates(tc.name, tc.requestor):
                for f, t in tables:
                    self._changed.setdefault(f, set()).update(t.accessed)
        return env.to_json_str(resp), error
