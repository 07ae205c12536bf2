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

from openrlhf_mtgrpo.envs.airline import AirlineEnv
from openrlhf_mtgrpo.rewards.components import WRITE_TOOLS
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


class ScriptedEngine:
    def __init__(self, tokenizer, env: AirlineEnv, mistake_rate: float = 0.0, seed: int = 0,
                 script: Optional[Dict[str, List[str]]] = None):
        self.tok = tokenizer
        self.env = env
        self.mistake_rate = mistake_rate
        self.seed = seed
        self.script = script  # task id -> fixed assistant texts (tests), overrides the planner
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
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

    def decide(self, text: str, rng: random.Random) -> str:
        m = REF.search(text)
        if m is None:
            return "I am sorry, I could not identify your request."
        task = self.env.task(m.group(1))
        turns = _turns(text)
        assistant_turns = [t for t in turns if t["role"] == "assistant" and t["content"]]
        if self.script is not None:
            texts = self.script[task.id]
            return texts[min(len(assistant_turns) - 1, len(texts) - 1)]  # first assistant turn is the greeting
        # progress through the gold actions: successful calls in order
        done, last_call = 0, None
        for j, t in enumerate(turns):
            if t["role"] != "assistant":
                continue
            calls = _calls(t["content"])
            resp = turns[j + 1]["content"] if j + 1 < len(turns) else ""
            responses = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", resp, re.S)
            for c, r in zip(calls, responses):
                last_call = c
                if done < len(task.actions) and not r.startswith("Error") and c["name"] == task.actions[done].name \
                        and deep_equal(c["arguments"], task.actions[done].arguments):
                    done += 1
        last_user = next((t["content"] for t in reversed(turns) if t["role"] == "user"
                          and "<tool_response>" not in t["content"]), "")
        last_assistant = assistant_turns[-1]["content"] if assistant_turns else ""
        confirmed = CONFIRM_ASK in last_assistant and "yes" in last_user.lower()

        if self.mistake_rate and rng.random() < self.mistake_rate:
            return self._mistake(rng.choice(MISTAKES), task, done, last_call, rng)
        if done < len(task.actions):
            nxt = task.actions[done]
            if nxt.name in WRITE_TOOLS and not confirmed:
                return f"I will now run {nxt.name} with {json.dumps(nxt.arguments)}. {CONFIRM_ASK}"
            return _tool_call(nxt.name, copy.deepcopy(nxt.arguments))
        info = " ".join(task.communicate_info)
        return f"Your request is complete. {info} Is there anything else I can help you with?".replace("  ", " ")

    def _mistake(self, kind, task, done, last_call, rng) -> str:
        uid = task.user_id or next(iter(self.env.data.db["users"]))
        user = self.env.data.db["users"].get(uid) or {"reservations": []}
        if kind == "extra_read":
            if user["reservations"] and rng.random() < 0.5:
                return _tool_call("get_reservation_details", {"reservation_id": rng.choice(user["reservations"])})
            return _tool_call("get_user_details", {"user_id": uid})
        if kind == "wrong_argument" and done < len(task.actions) and task.actions[done].arguments:
            a = copy.deepcopy(task.actions[done].arguments)
            key = rng.choice(sorted(a))
            a[key] = (a[key] + "X") if isinstance(a[key], str) else ("1" if not isinstance(a[key], str) else a[key])
            return _tool_call(task.actions[done].name, a)
        if kind == "malformed":
            return "<tool_call>\n{\"name\": \"get_user_details\", \"arguments\": {\"user_id\": \n</tool_call>"
        if kind == "duplicate" and last_call and last_call.get("name"):
            return _tool_call(last_call["name"], last_call["arguments"])
        if kind == "wrong_write" and user["reservations"]:
            return _tool_call("cancel_reservation", {"reservation_id": rng.choice(user["reservations"])})
        if kind == "unconfirmed" and done < len(task.actions):
            return _tool_call(task.actions[done].name, copy.deepcopy(task.actions[done].arguments))
        if kind == "transfer":
            return _tool_call("transfer_to_human_agents", {"summary": "The customer needs help I cannot give."})
        return "I have done what I can. Is there anything else I can help you with?"

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


def make_rule_based_user(env: AirlineEnv, max_user_turns: int = 30):
    """Responder for :class:`LocalChatServer` that plays the customer of the task in the system prompt."""
    by_scenario = {t.user_instructions: t for t in env.tasks("base")}

    def respond(request: Dict[str, Any]) -> Dict[str, Any]:
        msgs = request["messages"]
        sys_text = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
        scenario = sys_text.split("Scenario:\n", 1)[-1].split("\n\nWhen your goal", 1)[0]
        task = by_scenario.get(scenario)
        if task is None:
            return {"content": "###OUT-OF-SCOPE###"}
        convo = msgs[1:]
        if len(convo) <= 1:
            first = task.user_instructions.strip().splitlines()
            opening = " ".join(line for line in first if line.strip())[:300]
            return {"content": f"Hello. (ref: task-{task.id}) {opening}"}
        agent = (convo[-1].get("content") or "").lower()
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


def make_scripted_policy_responder(env: AirlineEnv, fails=None):
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
        done = 0
        results = {mm.get("tool_call_id"): mm["content"] for mm in msgs if mm["role"] == "tool"}
        for mm in msgs:
            for tc in mm.get("tool_calls") or []:
                args = json.loads(tc["function"]["arguments"])
                ok = not str(results.get(tc["id"], "Error")).startswith("Error")
                if ok and done < len(task.actions) and tc["function"]["name"] == task.actions[done].name \
                        and deep_equal(args, task.actions[done].arguments):
                    done += 1
        last_user = next((mm["content"] for mm in reversed(msgs) if mm["role"] == "user"), "")
        last_assistant = next((mm.get("content") or "" for mm in reversed(msgs) if mm["role"] == "assistant"), "")
        if done < len(task.actions):
            nxt = task.actions[done]
            if nxt.name in WRITE_TOOLS and not (CONFIRM_ASK in last_assistant and "yes" in last_user.lower()):
                return {"content": f"I will now run {nxt.name}. {CONFIRM_ASK}"}
            return {"content": "", "tool_calls": [{"name": nxt.name, "arguments": nxt.arguments}]}
        info = " ".join(task.communicate_info)
        return {"content": f"Your request is complete. {info} Is there anything else I can help you with?"}

    return respond
