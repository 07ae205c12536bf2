"""Per-turn reward components: what each assistant turn did, as numbers in [0, 1].

Each tool call of a turn gets exactly one *type* (first that applies):
``tool_error`` (malformed call or an error result) > ``duplicate`` (same name and
deep-equal arguments as an earlier call of the episode) > ``gold_exact`` >
``soft_match`` (same tool as a gold action with a real argument overlap and, for a
write, the gold target and another gold argument right; scored 0.5 + 0.5 * overlap,
below 1) > ``state_change`` (a
write that is not gold, e.g. one on another reservation) > ``read_only``.  A turn
without tool calls is ``message``.
The paper's seven turn types are these.  Our own *flags* add to a call's type:
``unconfirmed_write`` (a write call although the user's last message did not
confirm), ``unneeded_transfer`` (transfer to a human when the task's gold has
none), ``schema_invalid`` (arguments that break the tool's JSON schema).

A component's value in a turn is the mean over the turn's calls of the call's
activation (its score for its type, 1 for a flag), so the turn reward
``sum_c w_c * x_c`` is the mean of the per-call rewards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from openrlhf_mtgrpo.rewards.matching import GoldMatcher, deep_equal

TYPE_COMPONENTS = ("gold_exact", "soft_match", "read_only", "state_change", "message", "tool_error", "duplicate")
FLAG_COMPONENTS = ("unconfirmed_write", "unneeded_transfer", "schema_invalid")
COMPONENTS = TYPE_COMPONENTS + FLAG_COMPONENTS

WRITE_TOOLS = frozenset({"book_reservation", "cancel_reservation", "update_reservation_flights",
                         "update_reservation_baggages", "update_reservation_passengers", "send_certificate"})
#: what a write changes: a soft match of a write must name the gold target (docs/irc.md)
WRITE_TARGETS = {"book_reservation": ("user_id",), "cancel_reservation": ("reservation_id",),
                 "update_reservation_flights": ("reservation_id",), "update_reservation_baggages": ("reservation_id",),
                 "update_reservation_passengers": ("reservation_id",), "send_certificate": ("user_id",)}
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


@dataclass
class CallRecord:
    name: str
    arguments: Any
    error: bool
    schema_errors: List[str] = field(default_factory=list)


@dataclass
class TurnInput:
    """What the classifier needs to know about one assistant turn."""

    calls: List[CallRecord]
    malformed_calls: int = 0  # tool calls that could not be parsed at all
    last_user_message: str = ""


def schema_problems(schema: Optional[Dict[str, Any]], args: Any) -> List[str]:
    """Light JSON-schema check of one call's arguments (required, unknown keys, JSON types)."""
    if schema is None:
        return ["unknown tool"]
    params = schema["function"]["parameters"]
    if not isinstance(args, dict):
        return ["arguments are not an object"]
    out = [f"missing '{k}'" for k in params.get("required", []) if k not in args]
    props = params.get("properties", {})
    out += [f"unknown argument '{k}'" for k in args if k not in props]
    kinds = {"string": str, "integer": int, "number": (int, float), "array": list, "object": dict, "boolean": bool}
    for k, v in args.items():
        t = props.get(k, {}).get("type")
        if t in kinds and (not isinstance(v, kinds[t]) or (t in ("integer", "number") and isinstance(v, bool))):
            out.append(f"'{k}' should be {t}")
        enum = props.get(k, {}).get("enum")
        if enum and v not in enum:
            out.append(f"'{k}' not one of {enum}")
    return out


class TurnClassifier:
    """Stateful over one episode (duplicates, one-to-one gold matching)."""

    def __init__(self, gold_actions: Sequence, read_tools: Optional[set] = None):
        self.matcher = GoldMatcher([(a.name, a.arguments) if hasattr(a, "name") else tuple(a) for a in gold_actions],
                                   targets=WRITE_TARGETS)
        self.gold_has_transfer = any(name == "transfer_to_human_agents" for name, _ in self.matcher.gold)
        self.seen: List[tuple] = []

    def features(self, turn: TurnInput) -> Dict[str, float]:
        x = {c: 0.0 for c in COMPONENTS}
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
            if call.name in WRITE_TOOLS and not confirmed:
                x["unconfirmed_write"] += 1
            if call.name == "transfer_to_human_agents" and not self.gold_has_transfer:
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
            elif call.name in WRITE_TOOLS:
                x["state_change"] += 1
            else:
                x["read_only"] += 1
        return {c: v / n for c, v in x.items()}
