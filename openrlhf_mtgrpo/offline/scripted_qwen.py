"""A scripted engine that writes its turns the way a Qwen model does under a real chat template.

Each turn is the assistant message the template itself renders (reasoning block, answer,
tool calls in the template's own format: hermes JSON for Qwen3, ``<function=...>`` XML for
Qwen3.5), less the prefill the generation prompt already holds: what a model trained
on that template emits.  The plan plays a task's gold actions: consecutive read-only
actions as one turn with several calls (tau2 runs them all; tau1 runs one call per
message, so there every call is its own turn), a confirmation question before each
write, then the task's required information and "anything else?".  The engine is
stateless (the turn index is read from the prompt: the number of assistant turns in
it), so one engine may serve concurrent episodes; it records every prompt it receives
and every output it returns, for the on-policy checks.  It is not a model.

``spacing`` makes the output deviate from the template's own whitespace the way a sampled model
may (:data:`SPACING_VARIANTS`): a variant name, or a sequence of names used in turn order (turn i
gets ``spacing[i % len(spacing)]``).  The calls and answers stay the same; only the whitespace
around the reasoning tags, or at the start or end of the turn, changes.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple


#: whitespace variants of a generated turn: name -> (after <think>, before </think>, after </think>, lead, tail);
#: None keeps the template's own layout (``<think>\n`` R ``\n</think>\n\n`` A).  The first four change the
#: reasoning tags (turns with a reasoning block), the last two the turn's start or end (any turn).
SPACING_VARIANTS: Dict[str, Tuple[Optional[str], Optional[str], Optional[str], str, str]] = {
    "exact": (None, None, None, "", ""),
    "tight_tags": ("", "", "", "", ""),  # <think>R</think>A
    "one_newline_after_close": (None, None, "\n", "", ""),  # </think>\nA
    "extra_newline_after_close": (None, None, "\n\n\n", "", ""),  # </think>\n\n\nA
    "no_newline_before_close": (None, "", None, "", ""),  # R</think>\n\nA
    "trailing_newline": (None, None, None, "", "\n"),  # A\n<|im_end|>
    "leading_newline": (None, None, None, "\n", ""),  # \nA (turns without a reasoning block)
}
REASONING_TAG_VARIANTS = ("tight_tags", "one_newline_after_close", "extra_newline_after_close",
                          "no_newline_before_close", "trailing_newline")
ANSWER_ONLY_VARIANTS = ("leading_newline", "trailing_newline")


def variants_for(thinking: bool) -> Tuple[str, ...]:
    """The non-exact spacing variants that apply to turns with (thinking) or without a reasoning block."""
    return REASONING_TAG_VARIANTS if thinking else ANSWER_ONLY_VARIANTS


def respace(body: str, variant: str) -> str:
    """``body`` (a turn in the template's own layout, after the prefill) with ``variant``'s whitespace."""
    after_open, before_close, after_close, lead, tail = SPACING_VARIANTS[variant]
    if variant == "exact":
        return body
    if "</think>" in body:
        head, answer = body.split("</think>", 1)
        opener = "<think>" if head.startswith("<think>") else ""
        reasoning = head[len(opener):].strip("\n")
        open_ws = "\n" if after_open is None else after_open
        body = (opener + (open_ws if opener else "") + reasoning + ("\n" if before_close is None else before_close)
                + "</think>" + ("\n\n" if after_close is None else after_close) + answer.lstrip("\n"))
    elif lead:
        body = lead + body
    return body + tail


REF = re.compile(r"\(ref: task-([^)]+)\)")
CONFIRM_ASK = "Shall I proceed? Please confirm."
ASSISTANT_HEADER = "<|im_start|>assistant\n"


@dataclass
class PlannedTurn:
    calls: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)
    answer: str = ""
    reasoning: str = ""


def plan_for(task, writes, parallel_reads: bool = True) -> List[PlannedTurn]:
    """The assistant turns that play ``task``'s gold actions: each write (one of ``writes``) after a confirmation
    question; consecutive reads in one message where the domain runs several calls of a message
    (``parallel_reads``; tau-bench runs only the first)."""
    plan: List[PlannedTurn] = []
    actions = list(task.actions)
    i = 0
    while i < len(actions):
        a = actions[i]
        if a.name in writes:
            plan.append(PlannedTurn(answer=f"I will now run {a.name} with {json.dumps(a.arguments)}. {CONFIRM_ASK}",
                                    reasoning=f"The next step changes the booking ({a.name}).\n"
                                              "The policy asks for explicit confirmation first."))
            plan.append(PlannedTurn(calls=[(a.name, a.arguments)],
                                    reasoning="The customer confirmed.\nI can run the change now."))
            i += 1
            continue
        group = [a]
        i += 1
        while parallel_reads and i < len(actions) and actions[i].name not in writes:
            group.append(actions[i])
            i += 1
        names = ", ".join(g.name for g in group)
        plan.append(PlannedTurn(calls=[(g.name, g.arguments) for g in group],
                                reasoning=f"I need more information before acting.\nLook it up: {names}."))
    info = " ".join(task.communicate_info)
    plan.append(PlannedTurn(answer=f"Your request is complete. {info} Is there anything else I can help you with?"
                            .replace("  ", " "), reasoning="Everything is done.\nTell the customer the result."))
    return plan


class ScriptedQwenEngine:
    """vLLM-engine look-alike (token ids in, token ids out) speaking a real Qwen template's format."""

    def __init__(self, tokenizer, env, *, chat_template: Optional[str] = None,
                 enable_thinking: bool = False, reasoning: bool = True, spacing: Any = "exact"):
        self.tok = tokenizer
        self.env = env
        self.template = chat_template or tokenizer.chat_template
        self.thinking = enable_thinking and "</think>" in self.template
        self.reasoning = reasoning
        self.spacing = (spacing,) if isinstance(spacing, str) else tuple(spacing)
        unknown = [v for v in self.spacing if v not in SPACING_VARIANTS]
        if unknown or not self.spacing:
            raise ValueError(f"unknown spacing variant(s) {unknown}; known: {sorted(SPACING_VARIANTS)}")
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.tools = env.tool_schemas()
        self.prefill = self._prefill()
        self.calls = 0
        self.log: List[Dict[str, Any]] = []  # {"task", "turn", "prompt", "output"} per call, in call order
        self._lock = threading.Lock()
        self._plans: Dict[str, List[PlannedTurn]] = {}

    def _render(self, messages, add_generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(messages, tools=self.tools, tokenize=False, chat_template=self.template,
                                            add_generation_prompt=add_generation_prompt,
                                            enable_thinking=self.thinking)

    def _prefill(self) -> str:
        m = [{"role": "user", "content": "-"}]
        added = self._render(m, True)[len(self._render(m, False)):]
        return added[len(ASSISTANT_HEADER):] if added.startswith(ASSISTANT_HEADER) else ""

    def turn_text(self, turn: PlannedTurn) -> str:
        """The text the model generates for ``turn`` (after the generation prompt, before <|im_end|>)."""
        msg: Dict[str, Any] = {"role": "assistant", "content": turn.answer}
        if self.thinking:
            msg["reasoning_content"] = turn.reasoning if self.reasoning else ""
        if turn.calls:
            msg["tool_calls"] = [{"type": "function", "function": {"name": n, "arguments": a}} for n, a in turn.calls]
        text = self._render([{"role": "user", "content": "-"}, msg], False)
        body = text[text.rindex(ASSISTANT_HEADER) + len(ASSISTANT_HEADER):]
        body = body[:body.rindex("<|im_end|>")]
        if self.prefill and body.startswith(self.prefill):
            body = body[len(self.prefill):]
        return body

    def plan(self, task_id: str) -> List[PlannedTurn]:
        with self._lock:
            if task_id not in self._plans:
                self._plans[task_id] = plan_for(self.env.task(task_id), self.env.tool_kinds.writes,
                                                parallel_reads=getattr(self.env, "family", "tau2") != "tau1")
            return self._plans[task_id]

    async def generate(self, token_ids, sampling_params, multi_modal_data=None):
        text = self.tok.decode(token_ids, skip_special_tokens=False)
        m = REF.search(text)
        if m is None:
            reply = "I am sorry, I could not identify your request."
            task_id, turn = None, -1
        else:
            task_id = m.group(1)
            turn = text.count(ASSISTANT_HEADER) - 2  # less the greeting and the open generation prompt
            plan = self.plan(task_id)
            reply = respace(self.turn_text(plan[min(turn, len(plan) - 1)]),
                            self.spacing[max(turn, 0) % len(self.spacing)])
        ids = list(self.tok(reply, add_special_tokens=False)["input_ids"]) + [self.eos]
        finish = "stop"
        max_tokens = getattr(sampling_params, "max_tokens", None)
        if max_tokens is not None and len(ids) > max_tokens:
            ids, finish = ids[:max_tokens], "length"
        with self._lock:
            self.calls += 1
            self.log.append({"task": task_id, "turn": turn, "prompt": list(token_ids), "output": list(ids)})
        out = SimpleNamespace(token_ids=ids, text=self.tok.decode(ids), finish_reason=finish, logprobs=None)
        return SimpleNamespace(outputs=[out])
