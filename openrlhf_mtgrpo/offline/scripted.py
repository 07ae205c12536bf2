"""A scripted policy engine and a rule-based customer, for the offline demo and the tests.

``ScriptedEngine`` looks like OpenRLHF's vLLM rollout engine (token ids in, token
ids out).  It reads the conversation so far and plays the task's gold actions in
order, asking for confirmation before each write and ending with the information
the task requires, and with probability ``mistake_rate`` per turn makes one of the
mistakes real agents make instead (an extra lookup, a wrong argument, a malformed
call, a repeated call, a non-gold write, a write without confirmation, a needless
transfer, a premature goodbye).  It is not a model.

``rule_based_user`` answers as the customer: opens with the scenario, confirms
when asked, ends with ###STOP### when offered further help.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import threading
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.rewards.matching import deep_equal

REF = re.compile(r"\(ref: task-([^)]+)\)")
MISTAKES = ("extra_read", "wrong_argument", "malformed", "duplicate", "wrong_write", "unconfirmed", "transfer",
            "premature_end")
CONFIRM_ASK = "Shall I proceed? Please confirm."


def _turns(text: str) -> List[Dict[str, str]]:
    """(role, content) segments of a Qwen-style rendered conversation."""
    out = []
    for seg in text.split("<|im_start|>")[1:]:
        role, _, body = seg.partition("\n")
        out.append({"role": role.strip(), "content": body.split("<|im_end|>")[0]})
    return out


def _calls(content: str) -> List[Dict[str, Any]]:
    calls = []
    for body in re.findall(r"<tool_call>(.*?)</tool_call>", content, re.S):
        try:
            obj = json.loads(body)
            calls.append({"name": obj.get("name"), "arguments": obj.get("arguments", {})})
        except json.JSONDecodeError:
            calls.append({"name": None, "arguments": None})
    return calls


def _tool_call(name: str, args: Dict[str, Any]) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


tool_call_text = _tool_call


def is_customer_action(action) -> bool:
    return getattr(action, "requestor", "assistant") == "user"


def agent_actions(task) -> list:
    """The task's gold actions the agent performs (a dual-control task's customer actions are the customer's)."""
    return [a for a in task.actions if not is_customer_action(a)]


def gold_sequence(task) -> list:
    """The task's gold actions in order, the customer's included (the agent asks the customer for those)."""
    return list(task.actions)


PERFORM = "Please do this on your phone and tell me when it is done:"


def ask_customer(action) -> str:
    """The scripted agent's request that the customer perform one of its gold actions."""
    return f"{PERFORM} {action.name} {json.dumps(action.arguments, sort_keys=True)}"


def requested_action(agent_text: str):
    """(name, arguments) the agent asked the customer to perform (:func:`ask_customer`), or None."""
    if PERFORM not in (agent_text or ""):
        return None
    rest = agent_text.split(PERFORM, 1)[1].strip()
    name, _, args = rest.partition(" ")
    try:
        return name, json.loads(args) if args.strip() else {}
    except json.JSONDecodeError:
        return None


def generic_mistake(env, kind: str, actions, done: int, last_call, rng: random.Random, gold=()) -> str:
    """A mistake of ``kind`` for any domain: its tool kinds and the task's gold actions say what is a read, a
    write and a hand-off."""
    kinds = env.tool_kinds
    reads = [a for a in actions if kinds.kind(a.name) == "read"]
    nxt = actions[done] if done < len(actions) else None
    if kind == "extra_read" and reads:
        a = rng.choice(reads)
        return _tool_call(a.name, copy.deepcopy(a.arguments))
    if kind == "wrong_argument" and nxt is not None and nxt.arguments:
        args = copy.deepcopy(nxt.arguments)
        key = rng.choice(sorted(args))
        args[key] = (args[key] + "X") if isinstance(args[key], str) else "1"
        return _tool_call(nxt.name, args)
    if kind == "malformed":
        name = next(iter(sorted(n for n, k in kinds.kinds.items() if k == "read")), "lookup")
        return "<tool_call>\n{\"name\": \"%s\", \"arguments\": {\"id\": \n</tool_call>" % name
    if kind == "duplicate" and last_call and last_call.get("name"):
        return _tool_call(last_call["name"], last_call["arguments"])
    if kind == "wrong_write" and kinds.customer is not None and rng.random() < 0.5:
        # ask the customer for a change on its own side that the task does not need
        gold_names = {getattr(x, "name", None) for x in list(actions) + list(gold)}
        free = sorted(s["function"]["name"] for s in (env.customer_tool_schemas() or [])
                      if s["function"]["name"] in kinds.customer.writes and s["function"]["name"] not in gold_names
                      and not s["function"].get("parameters", {}).get("required"))
        if free:
            return ask_customer(SimpleNamespace(name=rng.choice(free), arguments={}))
    if kind == "wrong_write":
        writes = [a for a in actions if a.name in kinds.writes]
        if writes:  # a gold write on another target: its target arguments altered
            a = rng.choice(writes)
            args = copy.deepcopy(a.arguments)
            for t in kinds.write_targets.get(a.name, ()):
                if isinstance(args.get(t), str):
                    args[t] = args[t][:-1] + ("0" if not args[t].endswith("0") else "1")
            return _tool_call(a.name, args)
    if kind == "unconfirmed" and nxt is not None:
        return _tool_call(nxt.name, copy.deepcopy(nxt.arguments))
    if kind == "transfer" and kinds.transfer_tool:
        return _tool_call(kinds.transfer_tool, {"summary": "The customer needs help I cannot give."})
    return "I have done what I can. Is there anything else I can help you with?"


class ScriptedEngine:
    def __init__(self, tokenizer, env, mistake_rate: float = 0.0, seed: int = 0,
                 script: Optional[Dict[str, List[str]]] = None):
        self.tok = tokenizer
        self.env = env
        self.mistake_rate = mistake_rate
        self.seed = seed
        self.script = script  # task id -> fixed assistant texts (tests), overrides the planner
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>") if tokenizer is not None else None  # None: decide() only
        self.calls = 0
        self._seen: Dict[str, int] = {}
        self._lock = threading.Lock()

    # -- what the policy "decides"
    def _rng(self, text: str) -> random.Random:
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            k = self._seen.get(key, 0)
            self._seen[key] = k + 1
        return random.Random(f"{self.seed}:{key}:{k}")

    def decide(self, text: str, rng: random.Random, task_id: Optional[str] = None) -> str:
        """The policy's next message for the conversation ``text``; its task is the one the customer names, else
        ``task_id`` (an eval request's ``user`` tag: a solo domain has no customer), else the domain's own
        ``task_of_text``."""
        m = REF.search(text)
        task = self.env.task(m.group(1)) if m else None
        if task is None and task_id is not None:
            try:
                task = self.env.task(task_id)
            except (KeyError, ValueError):
                task = None
        if task is None and hasattr(self.env, "task_of_text"):  # no customer to name the task (solo mode)
            task = self.env.task_of_text(text)
        if task is None:
            return "I am sorry, I could not identify your request."
        turns = _turns(text)
        assistant_turns = [t for t in turns if t["role"] == "assistant" and t["content"]]
        if self.script is not None:
            texts = self.script[task.id]
            first_user = next((i for i, t in enumerate(turns) if t["role"] == "user"), 0)
            done = sum(1 for t in turns[first_user:] if t["role"] == "assistant" and t["content"])  # not the greeting
            return texts[min(done, len(texts) - 1)]
        solo = self.env.customer_prompt is None
        # progress through the gold actions: successful calls in order; a customer's action is done when the
        # customer says so (it performs it with its own tools, which the agent never sees)
        actions = list(task.actions) if solo else gold_sequence(task)
        # gold calls that fail in the benchmark's own gold replay too (tau2's retail has some): done when made
        failing = getattr(self.env, "failing_gold", lambda t: frozenset())(task)
        done, last_call = 0, None
        for j, t in enumerate(turns):
            if t["role"] == "user" and "<tool_response>" not in t["content"]:
                if done < len(actions) and is_customer_action(actions[done]) and \
                        f"(done: {actions[done].name})" in t["content"]:
                    done += 1  # one customer action per message
                continue
            if t["role"] != "assistant":
                continue
            calls = _calls(t["content"])
            resp = turns[j + 1]["content"] if j + 1 < len(turns) else ""
            responses = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", resp, re.S)
            for c, r in zip(calls, responses):
                last_call = c
                if done < len(actions) and (not r.startswith("Error") or done in failing) \
                        and c["name"] == actions[done].name and deep_equal(c["arguments"], actions[done].arguments):
                    done += 1
        last_user = next((t["content"] for t in reversed(turns) if t["role"] == "user"
                          and "<tool_response>" not in t["content"]), "")
        last_assistant = assistant_turns[-1]["content"] if assistant_turns else ""
        confirmed = CONFIRM_ASK in last_assistant and "yes" in last_user.lower()

        if self.mistake_rate and rng.random() < self.mistake_rate:
            return self._mistake(rng.choice(MISTAKES), task, done, last_call, rng)
        if done < len(actions):
            nxt = actions[done]
            if not solo and is_customer_action(nxt):
                return ask_customer(nxt)
            if not solo and self.env.tool_kinds.call_kind(nxt.name, nxt.arguments) == "write" and not confirmed:
                return f"I will now run {nxt.name} with {json.dumps(nxt.arguments)}. {CONFIRM_ASK}"
            return _tool_call(nxt.name, copy.deepcopy(nxt.arguments))
        if solo:  # no one to tell: the solo agent ends with its stop tool
            return _tool_call(getattr(self.env, "stop_tool", "done"), {})
        info = " ".join(task.communicate_info)
        return f"Your request is complete. {info} Is there anything else I can help you with?".replace("  ", " ")

    def _mistake(self, kind, task, done, last_call, rng) -> str:
        """One realistic mistake: the domain's own (``scripted_mistake``, where it has one), else a generic one
        built from its tool kinds and the task's gold actions."""
        own = getattr(self.env, "scripted_mistake", None)
        if own is not None:
            text = own(kind, task, done, last_call, rng)
            if text is not None:
                return text
        return generic_mistake(self.env, kind, agent_actions(task), done, last_call, rng, gold=task.actions)

    # -- the vLLM-engine interface OpenRLHF's executor uses
    async def generate(self, token_ids, sampling_params, multi_modal_data=None):
        self.calls += 1
        text = self.tok.decode(token_ids, skip_special_tokens=False)
        # seeded by the conversation after the system message: the same draws whichever policy text and
        # tool schemas (benchmark source or own words) the system message carries
        reply = self.decide(text, self._rng(text.split("<|im_end|>", 1)[-1]))
        ids = self.tok(reply, add_special_tokens=False)["input_ids"] + [self.eos]
        finish = "stop"
        max_tokens = getattr(sampling_params, "max_tokens", None)
        if max_tokens is not None and len(ids) > max_tokens:
            ids, finish = ids[:max_tokens], "length"
        out = SimpleNamespace(token_ids=ids, text=self.tok.decode(ids), finish_reason=finish, logprobs=None)
        return SimpleNamespace(outputs=[out])


def task_of_tag(env, tag: Optional[str]):
    """The task a request's ``user`` tag names ("<task id>" or "<task id>:<trial>"), or None."""
    if not tag:
        return None
    for key in (str(tag), str(tag).rsplit(":", 1)[0]):
        try:
            return env.task(key)
        except (KeyError, ValueError):
            continue
    return None


def task_of_prompt(system_prompt: str, tasks) -> Optional[Any]:
    """The task whose scenario the customer's system prompt holds (whichever prompt frames it), or None;
    the longest match where one scenario is part of another."""
    hits = [t for t in tasks if t.user_instructions and t.user_instructions in system_prompt]
    return max(hits, key=lambda t: len(t.user_instructions)) if hits else None


def make_rule_based_user(env, max_user_turns: int = 30):
    """Responder for :class:`LocalChatServer` that plays the customer of the task in the system prompt."""
    tasks = env.tasks("base")

    def respond(request: Dict[str, Any]) -> Dict[str, Any]:
        msgs = request["messages"]
        sys_text = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
        task = task_of_tag(env, request.get("user")) or task_of_prompt(sys_text, tasks)
        if task is None:
            return {"content": "###OUT-OF-SCOPE###"}
        convo = msgs[1:]
        if convo and convo[-1].get("role") == "tool":  # the result of its own tool call: report it to the agent
            made = next((m for m in reversed(convo) if m.get("role") == "assistant" and m.get("tool_calls")), None)
            name = made["tool_calls"][0]["function"]["name"] if made else "it"
            return {"content": f"I did it (done: {name}). My phone shows: {convo[-1].get('content', '')[:200]}"}
        asked = requested_action(convo[-1].get("content") or "") if convo and request.get("tools") else None
        if asked is not None:
            return {"content": "", "tool_calls": [{"name": asked[0], "arguments": asked[1]}]}
        if len(convo) <= 1:
            first = task.user_instructions.strip().splitlines()
            opening = " ".join(line for line in first if line.strip())[:300]
            return {"content": f"Hello. (ref: task-{task.id}) {opening}"}
        # what the agent says, less the arguments it echoes ("I will now run X with {...}"): a tool or a value
        # named there (banking's transfer_funds_... tool) is no request to the customer
        agent = re.sub(r"\{.*\}", "", (convo[-1].get("content") or ""), flags=re.S).lower()
        if len(convo) > 2 * max_user_turns:
            return {"content": "###STOP###"}
        if "anything else" in agent:
            return {"content": "No, that's all. ###STOP###"}
        if "transfer" in agent:
            return {"content": "###TRANSFER###"}
        if "confirm" in agent or "proceed" in agent:
            return {"content": "Yes, please go ahead."}
        return {"content": "Okay, what else do you need from me?"}

    return respond


def make_scripted_policy_responder(env, fails=None):
    """Responder for :class:`LocalChatServer` acting as an OpenAI tool-calling *policy* endpoint.

    Plays the gold actions (confirming writes first) and ends with the required
    information.  ``fails(task_id, trial) -> bool`` makes chosen trials end at once
    (a failure for tasks that need writes); the trial comes from the request's
    ``user`` field, which ``mtgrpo eval`` sets to ``"<task>:<trial>"``."""

    def respond(request: Dict[str, Any]) -> Dict[str, Any]:
        msgs = request["messages"]
        text = "\n".join(str(m.get("content") or "") for m in msgs if m["role"] == "user")
        m = REF.search(text)
        if m is None:
            return {"content": "Sorry, I cannot help. Is there anything else I can help you with?"}
        task = env.task(m.group(1))
        trial = int(str(request.get("user", "0:0")).rsplit(":", 1)[-1] or 0)
        if fails is not None and fails(task.id, trial):
            return {"content": "I cannot do that. Is there anything else I can help you with?"}
        actions = agent_actions(task)
        done = 0
        results = {mm.get("tool_call_id"): mm["content"] for mm in msgs if mm["role"] == "tool"}
        for mm in msgs:
            for tc in mm.get("tool_calls") or []:
                args = json.loads(tc["function"]["arguments"])
                ok = not str(results.get(tc["id"], "Error")).startswith("Error")
                if ok and done < len(actions) and tc["function"]["name"] == actions[done].name \
                        and deep_equal(args, actions[done].arguments):
                    done += 1
        last_user = next((mm["content"] for mm in reversed(msgs) if mm["role"] == "user"), "")
        last_assistant = next((mm.get("content") or "" for mm in reversed(msgs) if mm["role"] == "assistant"), "")
        if done < len(actions):
            nxt = actions[done]
            if env.tool_kinds.call_kind(nxt.name, nxt.arguments) == "write" \
                    and not (CONFIRM_ASK in last_assistant and "yes" in last_user.lower()):
                return {"content": f"I will now run {nxt.name}. {CONFIRM_ASK}"}
            return {"content": "", "tool_calls": [{"name": nxt.name, "arguments": nxt.arguments}]}
        info = " ".join(task.communicate_info)
        return {"content": f"Your request is complete. {info} Is there anything else I can help you with?"}

    return respond


# -- the demo's scripted policy as an OpenAI-compatible chat endpoint (``mtgrpo serve-scripted``) ------------------

def messages_text(messages: List[Dict[str, Any]]) -> str:
    """An OpenAI chat (system, user, assistant with ``tool_calls``, tool results) as the Qwen-style text
    :meth:`ScriptedEngine.decide` reads, the way a Qwen chat template renders it: each call a ``<tool_call>``
    block of its assistant turn, consecutive tool results one user turn of ``<tool_response>`` blocks; ends with
    the opened assistant turn."""
    turns: List[List[Any]] = []  # [role, [bodies]]
    for m in messages:
        role = m.get("role")
        if role == "tool":
            body = f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"
            if turns and turns[-1][0] == "tool":
                turns[-1][1].append(body)
            else:
                turns.append(["tool", [body]])
            continue
        content = m.get("content") or ""
        if not isinstance(content, str):  # content parts: their text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        calls = []
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            try:
                args = json.loads(args) if isinstance(args, str) else args
            except json.JSONDecodeError:
                pass
            calls.append(_tool_call(fn.get("name"), args))
        turns.append([role, ["\n".join([content] + calls) if calls else content]])
    text = "".join(f"<|im_start|>{'user' if role == 'tool' else role}\n" + "\n".join(bodies) + "<|im_end|>\n"
                   for role, bodies in turns)
    return text + "<|im_start|>assistant\n"


def reply_message(text: str) -> Dict[str, Any]:
    """The scripted policy's reply as an OpenAI assistant message: its ``<tool_call>`` blocks as ``tool_calls``
    and the rest as ``content``; a reply with a block that is not JSON comes back as text alone, markup
    included, as a vLLM tool-call parser returns a call it cannot parse."""
    blocks = re.findall(r"<tool_call>(.*?)</tool_call>", text, re.S)
    calls = []
    for body in blocks:
        try:
            obj = json.loads(body)
        except json.JSONDecodeError:
            return {"content": text}
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return {"content": text}
        calls.append({"name": obj["name"], "arguments": obj.get("arguments", {})})
    content = re.sub(r"<tool_call>.*?</tool_call>", "", text, flags=re.S).strip()
    return {"content": content, "tool_calls": calls} if calls else {"content": content}


def make_scripted_chat_policy(env, mistake_rate: float = 0.0, seed: int = 0):
    """Responder for :class:`LocalChatServer`: the demo's scripted policy (:class:`ScriptedEngine`: the task's gold
    actions, asking before each write, and with probability ``mistake_rate`` per turn one of its mistakes, the
    domain's own ``scripted_mistake`` included) as an OpenAI tool-calling policy endpoint, for ``mtgrpo eval``.

    Its draws are seeded by ``seed``, the request's ``user`` tag (``mtgrpo eval`` sends ``"<task>:<trial>"``) and
    the conversation after the system message: a rerun replays the same episodes, and each trial draws its own."""
    engine = ScriptedEngine(None, env, mistake_rate=mistake_rate, seed=seed)

    def respond(request: Dict[str, Any]) -> Dict[str, Any]:
        text = messages_text(request.get("messages") or [])
        convo = text.split("<|im_end|>", 1)[-1]
        key = hashlib.sha256(convo.encode()).hexdigest()
        tag = request.get("user") or ""
        rng = random.Random(f"{seed}:{tag}:{key}")
        task_id = tag.rsplit(":", 1)[0] if ":" in tag else None  # "<task>:<trial>"
        return reply_message(engine.decide(text, rng, task_id))

    return respond
