"""The built-in component set ``tau``: what each assistant turn of a tau-bench-style tool domain did.

Each tool call of a turn gets exactly one *type* (first that applies):
``tool_error`` (malformed call or an error result) > ``duplicate`` (same name and
deep-equal arguments as an earlier call of the episode) > ``gold_exact`` >
``soft_match`` (same tool as a gold action with a real argument overlap and, for a
write, the gold target and another gold argument right; scored 0.5 + 0.5 * overlap,
below 1) > ``state_change`` (a write that is not gold, e.g. one on another record)
> ``read_only``.  A turn without tool calls is ``message``.
The paper's seven turn types are these.  Our own *flags* add to a call's type:
``unconfirmed_write`` (a write call although the user's last message did not
confirm), ``unneeded_transfer`` (a call of the domain's hand-off tool when the task's
gold has none), ``schema_invalid`` (arguments that break the tool's JSON schema).

A component's value in a turn is the mean over the turn's calls of the call's
activation (its score for its type, 1 for a flag), so the turn reward
``sum_c w_c * x_c`` is the mean of the per-call rewards.

What a write is (per call: a call of a dispatching tool is what the tool it runs is,
``ToolKinds.call_kind``), what each write changes (its target arguments) and which tool hands off
to a human come from the domain's :class:`~openrlhf_mtgrpo.envs.base.ToolKinds`; the gold
is the task's ``actions`` the agent is to take (``requestor`` "assistant", the default).
The customer's own calls (``TurnInput.user_calls``) and ``probes`` are not scored here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import WRITE, ToolKinds
from openrlhf_mtgrpo.rewards.matching import GoldMatcher, deep_equal
from openrlhf_mtgrpo.rewards.turns import TurnInput

NAME = "tau"
TYPE_COMPONENTS = ("gold_exact", "soft_match", "read_only", "state_change", "message", "tool_error", "duplicate")
FLAG_COMPONENTS = ("unconfirmed_write", "unneeded_transfer", "schema_invalid")
NAMES = TYPE_COMPONENTS + FLAG_COMPONENTS
#: components whose weight IRC and EDG never change unless told (``--pin`` / ``--mtgrpo.edg_pin``)
PINNED = ("gold_exact",)

_CONFIRM = re.compile(r"\b(yes|yeah|yep|confirm(ed|s)?|go ahead|proceed|please do|sure|correct|ok(ay)?|do it|"
                      r"absolutely)\b", re.I)
#: words that negate or hold back a confirmation in its sentence, before or after the confirming word
_AGAINST = re.compile(r"\b(no|not|never|cannot|nope|wait|hold on|hang on|stop|let me think|think about it)\b|"
                      r"n't\b|\b(dont|wont|cant)\b", re.I)
#: a later sentence that takes a confirmation back
_RETRACT = re.compile(r"\b(wait|hold on|hang on|stop|never ?mind|on second thought)\b", re.I)
#: idioms with a negation that do not negate (removed before the search)
_BENIGN = re.compile(r"\b(no problem|not a problem|no worries|why not|no doubt|can't wait)\b|"
                     r"\b(do|does|did)(n't| not) mind\b", re.I)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*")


def is_confirmation(text: str) -> bool:
    """The customer's last message confirms: a sentence with a confirming phrase (yes, go ahead, proceed,
    sure, correct, ...) and no message sentence that negates or holds one back.

    A sentence with a confirming phrase negates it when it also has a negation or hesitation anywhere
    ("I'm not sure", "don't proceed", "Yes, but not now", "yes please don't", "Yes -- hold on"); a later
    sentence takes it back with wait / hold on / stop / never mind ("Yes. Actually, no - wait.").  A
    question confirms only when it opens with the confirming word ("Is that correct?" does not).  Curly
    apostrophes count as apostrophes; "no problem", "don't mind" and the like are not negations.  Other
    sentences do not matter ("Yes, go ahead. I don't have other questions." confirms)."""
    plain = against = 0
    for sentence in _SENTENCE.findall(_BENIGN.sub(" ", (text or "").translate(_APOSTROPHES))):
        m = _CONFIRM.search(sentence)
        if m is None:
            if plain and _RETRACT.search(sentence):
                against += 1
            continue
        if sentence.rstrip().endswith("?") and sentence[:m.start()].strip(" ,'\"-"):
            continue  # a question about it, not an answer
        if _AGAINST.search(sentence):
            against += 1
        else:
            plain += 1
    return plain > 0 and against == 0


def agent_gold(actions: Sequence[Any]) -> List[Tuple[str, Any]]:
    """(name, arguments) of the gold actions the agent is to take: objects with ``.name`` / ``.arguments``
    (and optionally ``.requestor``: only ``"assistant"`` counts) or (name, arguments) pairs."""
    out = []
    for a in actions:
        if hasattr(a, "name"):
            if getattr(a, "requestor", "assistant") == "assistant":
                out.append((a.name, a.arguments))
        else:
            out.append(tuple(a))
    return out


class TauScorer:
    """Scores the turns of one episode; stateful (duplicates, one-to-one gold matching)."""

    def __init__(self, gold: Sequence[Tuple[str, Any]], tool_kinds: ToolKinds):
        self.matcher = GoldMatcher(list(gold), targets=dict(tool_kinds.write_targets))
        self.kinds = tool_kinds
        self.transfer_tool = tool_kinds.transfer_tool
        self.gold_has_transfer = self.transfer_tool is not None and \
            any(name == self.transfer_tool for name, _ in self.matcher.gold)
        self.seen: List[tuple] = []

    def features(self, turn: TurnInput) -> Dict[str, float]:
        """Every component of :data:`NAMES`, each in [0, 1] (the module docstring)."""
        x = {c: 0.0 for c in NAMES}
        n = len(turn.calls) + turn.malformed_calls
        if n == 0:
            x["message"] = 1.0
            return x
        x["tool_error"] += turn.malformed_calls
        x["schema_invalid"] += turn.malformed_calls
        confirmed = is_confirmation(turn.last_user_message or "")
        for call in turn.calls:
            if call.schema_errors:
                x["schema_invalid"] += 1
            write = self.kinds.call_kind(call.name, call.arguments) == WRITE  # what a dispatched call runs
            if write and not confirmed:
                x["unconfirmed_write"] += 1
            if self.transfer_tool is not None and call.name == self.transfer_tool and not self.gold_has_transfer:
                x["unneeded_transfer"] += 1
            dup = any(name == call.name and deep_equal(args, call.arguments) for name, args in self.seen)
            self.seen.append((call.name, call.arguments))
            if call.error:
                x["tool_error"] += 1
                continue
            if dup:
                x["duplicate"] += 1
                continue
            kind, score = self.matcher.match(call.name, call.arguments if isinstance(call.arguments, dict) else {})
            if kind == "exact":
                x["gold_exact"] += 1
            elif kind == "soft":
                x["soft_match"] += score
            elif write:
                x["state_change"] += 1
            else:
                x["read_only"] += 1
        return {c: v / n for c, v in x.items()}


@dataclass(frozen=True)
class TauComponents:
    """The ``tau`` set for one domain's tools (see the module docstring)."""

    tool_kinds: ToolKinds
    name: str = NAME
    names: Tuple[str, ...] = NAMES
    pinned: Tuple[str, ...] = PINNED

    def new_episode(self, task: Any) -> TauScorer:
        """A scorer for one episode of ``task`` (its gold: ``task.actions``)."""
        return TauScorer(agent_gold(task.actions), self.tool_kinds)


def tau_components(tool_kinds: ToolKinds) -> TauComponents:
    """The factory registered as ``tau``: the set for a domain with these tools."""
    if not isinstance(tool_kinds, ToolKinds):
        raise TypeError(f"tau_components needs the domain's ToolKinds, got {type(tool_kinds).__name__}")
    return TauComponents(tool_kinds)
