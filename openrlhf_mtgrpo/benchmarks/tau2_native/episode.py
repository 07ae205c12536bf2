"""One conversation on tau2's own environment: the agent's messages, the customer's tool calls, the reward.

Every call goes through tau2's ``Environment.get_response(ToolCall(...))``, the call tau2's orchestrator
makes: the observation is tau2's (``"Error: ..."`` for a refused call, with ``error`` set), tau2 routes it
(the customer's calls to their own tools; in solo mode the agent's calls of customer tools too) and runs
``sync_tools`` after every call that succeeded.  After every message that called tools the episode runs
``sync_tools`` once more, as the orchestrator does at the end of each step.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import AssistantTurn, ToolResult
from openrlhf_mtgrpo.benchmarks.tau2_native.evaluation import NLJudge, RewardResult, evaluate_episode


def _has_text(text: Optional[str]) -> bool:
    """tau2's ``has_text_content``: not None and not only whitespace."""
    return text is not None and text.strip() != ""


def _message(cls: Any, role: str, content: Optional[str], tool_calls: Optional[list]) -> Any:
    """A tau2 message without validation; every field given, so pydantic resolves no default (the timestamp's
    default factory alone costs more than the evaluators that read the message)."""
    return cls.model_construct(role=role, content=content, tool_calls=tool_calls, turn_idx=None, timestamp=None,
                               cost=None, usage=None, raw_data=None)


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
        return self.domain.state_hashes(self.env)

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

    def evaluate(self, termination: str, judge: Optional[NLJudge] = None,
                 messages: Optional[List[Dict[str, Any]]] = None, check_db: bool = False) -> RewardResult:
        """The benchmark's reward for the episode ended by ``termination`` (see :mod:`.evaluation`);
        ``check_db``: also compare the databases where DB is not in the task's reward basis."""
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
                                    arguments=copy.deepcopy(args), requestor=requestor))
        except ValidationError:
            return None
        self._ids += len(out)
        return out

    def _run(self, tc: Any, arguments: Any) -> ToolResult:
        msg = self.env.get_response(tc)
        res = ToolResult(content=msg.content, error=bool(msg.error), name=tc.name, arguments=arguments,
                         requestor=tc.requestor)
        self.tool_results.append(res)
        return res
