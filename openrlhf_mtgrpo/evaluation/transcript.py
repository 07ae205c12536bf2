"""An eval episode's whole conversation as it happened: both sides, in order, with wall-clock times.

The policy's own conversation (the record's ``messages``) is what the policy saw: it lacks the customer's
tool calls and their results (the agent never sees them) and the customer's last message (the episode ends
on it).  A benchmark's own results format records all of it, so every eval record also holds a
``transcript``: one entry per message, in the order they happened, each with its ``time`` (seconds since the
epoch, when it was made):

* ``{"role": "assistant", "content", "tool_calls": [{"id", "name", "arguments"}], "malformed", "time"}``: the
  agent's greeting (no calls; ``"greeting": true``), then each policy message the domain was handed: its text
  without reasoning or call markup (what the customer and the domain saw), its usable tool calls as written and
  the number of calls whose arguments were not a JSON object;
* ``{"role": "tool", "id", "name", "content", "error", "requestor", "time"}``: each call the domain ran and
  its result, right after the message that made it (``requestor`` ``assistant`` or ``user``);
* ``{"role": "user", "content", "tool_calls": [...] or None, "time"}``: each customer message, its own tool
  calls included (dual control), the last one too.

Which of these a benchmark's run would record (a message its run fails at, a solo agent's stop tool) is the
domain's business when it writes its own format (``BenchmarkResults``, docs/domains.md): the transcript
records what happened.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence


def _calls(calls: Sequence[Any]) -> List[Dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


class Transcript:
    """Collects the events of one episode as they happen; :meth:`entries` assembles the transcript from them and
    from the loop's own records (the results of the calls) once the conversation has ended."""

    def __init__(self, greeting: Optional[str] = None):
        self.started = time.time()
        self._events: List[Dict[str, Any]] = []
        if greeting is not None:
            self._events.append({"kind": "greeting", "content": greeting, "time": self.started})

    # -- the policy side (ChatTurnSource)
    def agent(self, turn: Any, ran: Sequence[int], replied_at: float) -> None:
        """A policy message the domain was handed (``turn``: the loop's PolicyTurn), the indices of its calls
        that ran, and when the reply arrived; the calls' results follow now."""
        self._events.append({"kind": "agent", "content": turn.text, "calls": _calls(turn.calls), "ran": list(ran),
                             "malformed": turn.malformed, "time": replied_at, "tools_time": time.time()})

    # -- the customer side (RecordedCustomer)
    def customer(self, msg: Any) -> None:
        text = msg if isinstance(msg, str) else (getattr(msg, "text", "") or "")
        calls = [] if isinstance(msg, str) else list(getattr(msg, "calls", None) or [])
        self._events.append({"kind": "customer", "content": text, "calls": _calls(calls), "time": time.time()})

    def customer_results(self) -> None:
        """The results of the customer's last calls went back to it now."""
        self._events.append({"kind": "customer_results", "time": time.time()})

    def entries(self, turns: Sequence[Dict[str, Any]], customer_calls: Sequence[Dict[str, Any]],
                ended: float) -> List[Dict[str, Any]]:
        """The transcript (see the module docstring).  turns: the record's turns (each with the results of the
        calls that ran, in order); customer_calls: the results of the customer's calls, in order; ended: when
        the conversation ended (the time of results that never went back to the customer)."""
        out: List[Dict[str, Any]] = []
        agent_turn = 0
        customer_done = 0
        pending: List[Dict[str, Any]] = []  # the tool entries of the customer's last calls, until timed

        def flush(when: float) -> None:
            for entry in pending:
                entry["time"] = when
            out.extend(pending)
            pending.clear()

        for e in self._events:
            kind = e["kind"]
            if kind == "greeting":
                out.append({"role": "assistant", "content": e["content"], "tool_calls": [], "malformed": 0,
                            "greeting": True, "time": e["time"]})
            elif kind == "agent":
                results = (turns[agent_turn].get("tool_calls") or []) if agent_turn < len(turns) else []
                agent_turn += 1
                out.append({"role": "assistant", "content": e["content"], "tool_calls": e["calls"],
                            "malformed": e["malformed"], "time": e["time"]})
                for idx, res in zip(e["ran"], results):
                    call = e["calls"][idx]
                    out.append({"role": "tool", "id": call["id"], "name": call["name"], "content": res.get("content"),
                                "error": bool(res.get("error")), "requestor": res.get("requestor", "assistant"),
                                "time": e["tools_time"]})
            elif kind == "customer":
                out.append({"role": "user", "content": e["content"], "tool_calls": e["calls"] or None,
                            "time": e["time"]})
                for call in e["calls"]:
                    res = customer_calls[customer_done] if customer_done < len(customer_calls) else None
                    customer_done += 1
                    if res is None:  # the run ended before this call ran (it never does: the domain runs them all)
                        continue
                    pending.append({"role": "tool", "id": call["id"], "name": call["name"],
                                    "content": res.get("content"), "error": bool(res.get("error")),
                                    "requestor": "user", "time": None})
            else:  # customer_results
                flush(e["time"])
        flush(ended)  # the customer's last calls ran, and the run ended before their results went back to it
        return out


class RecordedCustomer:
    """A customer (the loop's ``Customer``) whose every message, and every return of results to it, is noted in a
    :class:`Transcript`; everything else is the wrapped customer's (``calls``, ``history``, ...)."""

    def __init__(self, inner: Any, transcript: Transcript):
        self._inner = inner
        self._transcript = transcript

    async def start(self) -> Any:
        msg = await self._inner.start()
        self._transcript.customer(msg)
        return msg

    async def reply(self, agent_text: str) -> Any:
        msg = await self._inner.reply(agent_text)
        self._transcript.customer(msg)
        return msg

    async def tool_results(self, results: Any) -> Any:
        self._transcript.customer_results()
        msg = await self._inner.tool_results(results)
        self._transcript.customer(msg)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
