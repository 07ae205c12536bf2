"""``mtgrpo eval``: pass^k of a served policy on a benchmark split, resumable.

The policy is any OpenAI-compatible chat endpoint with tool calling (e.g.
``vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes``); the
customer is the LLM user simulator.  Each finished (task, trial) is appended to
``results.jsonl`` (and its full episode to ``rollouts-eval.jsonl``) the moment it
ends, so an interrupted run continues where it stopped: finished pairs are
skipped, nothing is lost.  ``results.json`` holds pass^1..pass^k, per-task
success counts and the settings of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.airline import DEFAULT_VERSION, VERSION_NAMES, AirlineEnv, Task
from openrlhf_mtgrpo.evaluation.passk import compute_pass_k
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.components import CallRecord, TurnClassifier, TurnInput, schema_problems
from openrlhf_mtgrpo.rollout.episode import GREETING, message_customer
from openrlhf_mtgrpo.rollout.jsonl import JsonlReadReport, append_jsonl, iter_jsonl
from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig, UserSimulator, UserSimulatorError, is_stop


class PolicyError(RuntimeError):
    pass


async def _policy_call(client, model, messages, tools, temperature, user_tag, retries=3):
    last = None
    for attempt in range(retries + 1):
        try:
            return await client.chat.completions.create(model=model, messages=messages, tools=tools,
                                                        temperature=temperature, user=user_tag)
        except Exception as e:
            last = e
            if attempt < retries:
                await asyncio.sleep(0.5 * 2 ** attempt * (1 + 0.25 * random.random()))
    raise PolicyError(f"policy endpoint failed after {retries + 1} attempts: {type(last).__name__}: {last}")


async def run_chat_episode(env: AirlineEnv, task: Task, client, model: str, user: UserSimulator, calibration,
                           trial: int, max_turns: int = 40, temperature: float = 0.0, judge=None) -> Dict[str, Any]:
    t0 = time.perf_counter()
    ep = env.reset(task)
    schemas = env.tool_schemas()
    by_name = {s["function"]["name"]: s for s in schemas}
    classifier = TurnClassifier(task.actions)
    messages: List[Dict[str, Any]] = [{"role": "system", "content": env.policy},
                                      {"role": "assistant", "content": GREETING}]
    turns, termination, error = [], "", ""
    try:
        first = await user.start(GREETING)
        messages.append({"role": "user", "content": first})
        last_user = first
        termination = "user_stop" if is_stop(first) else ""
        while not termination:
            out = await _policy_call(client, model, messages, schemas, temperature, f"{task.id}:{trial}")
            msg = out.choices[0].message
            text = msg.content or ""
            calls, call_dicts, new, parsed, malformed = [], [], [], [], 0
            for tc in msg.tool_calls or []:
                try:
                    args = json.loads(tc.function.arguments or "{}")
                except json.JSONDecodeError as e:
                    malformed += 1
                    new.append({"role": "tool", "tool_call_id": tc.id, "name": tc.function.name,
                                "content": f"Error: tool call arguments are not valid JSON ({e.msg})"})
                    continue
                parsed.append((tc, args))
            step = ep.assistant_message(text, [(tc.function.name, args) for tc, args in parsed], malformed=malformed)
            ran = [parsed[i] for i in step.ran]
            assistant = {"role": "assistant", "content": text}
            if msg.tool_calls:
                # tau1 keeps only the call it ran in the history (tool_calling_agent.py); tau2 keeps all
                shown = msg.tool_calls if env.family == "tau2" else [tc for tc, _ in ran][:1] or msg.tool_calls[:1]
                assistant["tool_calls"] = [{"id": tc.id, "type": "function",
                                            "function": {"name": tc.function.name,
                                                         "arguments": tc.function.arguments}}
                                           for tc in shown]
            messages.append(assistant)
            for (tc, args), res in zip(ran, step.results):
                calls.append(CallRecord(tc.function.name, args, res.error,
                                        schema_problems(by_name.get(tc.function.name), args)))
                call_dicts.append(res.to_dict())
                new.append({"role": "tool", "tool_call_id": tc.id, "name": tc.function.name, "content": res.content})
            feats = classifier.features(TurnInput(calls, malformed, last_user))
            turns.append({"index": len(turns), "text": text, "tool_calls": call_dicts,
                          "features": feats, "reward": calibration.turn_reward(feats)})
            if step.to_user:
                termination, reply = await message_customer(user, text)
                if termination:
                    break
                last_user = reply
                new.append({"role": "user", "content": reply})
            elif step.agent_stop:
                termination = "agent_stop"
                break
            messages.extend(new)
            if len(turns) >= max_turns:
                termination = "max_turns"
    except (UserSimulatorError, PolicyError) as e:
        termination, error = "infrastructure_error", str(e)
    infra = termination == "infrastructure_error"
    if infra:
        outcome = {"reward": 0.0, "success": False}
    else:  # the NL judge is synchronous (one request per episode): keep it off the event loop
        res = await asyncio.to_thread(ep.evaluate, termination, judge, messages) if judge else \
            ep.evaluate(termination, messages=messages)
        outcome = res.to_dict()
    return {"task_id": task.id, "trial": trial, "version": env.version, "messages": messages, "turns": turns,
            "termination": termination, "outcome": outcome, "reward": float(outcome["reward"] or 0.0),
            "success": bool(outcome.get("success")) and not infra, "infra_failed": infra, "infra_error": error,
            "seconds": time.perf_counter() - t0}


def _done_pairs(results_path: str):
    if not os.path.exists(results_path):
        return {}, JsonlReadReport()
    report = JsonlReadReport()
    done = {}
    for r in iter_jsonl([results_path], report):
        done[(str(r["task_id"]), int(r["trial"]))] = r
    return done, report


def run_eval(*, policy_base_url: str, policy_model: str, user_base_url: str, user_model: str, out_dir: str,
             version: str = "tau2", split: str = "test", trials: int = 4, concurrency: int = 8,
             data_dir: Optional[str] = None, max_turns: int = 40, temperature: float = 0.0,
             user_temperature: float = 0.0, policy_api_key_env: str = "OPENAI_API_KEY",
             user_api_key_env: str = "OPENAI_API_KEY", task_ids: Optional[List[str]] = None, progress: bool = True,
             timeout: float = 120.0, retries: int = 3, judge_base_url: Optional[str] = None,
             judge_model: Optional[str] = None) -> Dict[str, Any]:
    from openai import AsyncOpenAI
    from tqdm import tqdm

    env = AirlineEnv(version, data_dir)
    tasks = env.tasks(split) if not task_ids else [env.task(t) for t in task_ids]
    os.makedirs(out_dir, exist_ok=True)
    results_path = os.path.join(out_dir, "results.jsonl")
    rollouts_path = os.path.join(out_dir, "rollouts-eval.jsonl")
    done, report = _done_pairs(results_path)
    todo = [(t, k) for k in range(trials) for t in tasks if (t.id, k) not in done]
    cal = load_calibration()
    judge = None
    if judge_base_url:
        from openrlhf_mtgrpo.envs.airline.evaluation import OpenAIJudge

        judge = OpenAIJudge(judge_base_url, judge_model or "gpt-4.1", os.environ.get(user_api_key_env), timeout)
    user_cfg = UserSimConfig(base_url=user_base_url, model=user_model, api_key_env=user_api_key_env,
                             temperature=user_temperature, timeout=timeout, max_retries=retries)
    bar = tqdm(total=len(tasks) * trials, initial=len(tasks) * trials - len(todo), disable=not progress,
               desc=f"{version}/{split}", unit="episode", file=sys.stderr)

    async def main():
        client = AsyncOpenAI(base_url=policy_base_url, api_key=os.environ.get(policy_api_key_env) or "EMPTY",
                             timeout=timeout, max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(task, trial):
            async with sem:
                rec = await run_chat_episode(env, task, client, policy_model,
                                             UserSimulator(user_cfg, task.user_instructions), cal, trial,
                                             max_turns, temperature, judge)
            append_jsonl(rollouts_path, rec)  # the episode first, then the result that marks it done
            append_jsonl(results_path, {k: rec[k] for k in ("task_id", "trial", "reward", "success", "infra_failed",
                                                             "termination", "seconds")})
            bar.update(1)

        await asyncio.gather(*(one(t, k) for t, k in todo))

    asyncio.run(main())
    bar.close()
    done, report2 = _done_pairs(results_path)
    rows = [r for (tid, k), r in done.items() if tid in {t.id for t in tasks} and k < trials]
    rep = compute_pass_k(rows, max_k=trials)
    summary = {"version": version, "split": split, "trials": trials, "policy_model": policy_model,
               "user_model": user_model, "temperature": temperature, "user_temperature": user_temperature,
               "nl_assertions": "judged" if judge else "not evaluated (no --judge-base-url); reported per episode",
               "tasks": len(tasks), "episodes": len(rows), "resumed_from": len(tasks) * trials - len(todo),
               "pass_k": {str(k): v for k, v in rep.pass_k.items()}, "infra_failures": rep.excluded_infra,
               "successes_per_task": rep.successes_per_task, "trials_per_task": rep.trials_per_task,
               "skipped_corrupt_result_lines": [f"{b.path}:{b.line}" for b in report2.bad]}
    tmp = os.path.join(out_dir, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "results.json"))
    summary["table"] = rep.table()
    return summary


def add_command(sub) -> None:
    p = sub.add_parser("eval", help="pass^k of a served policy on a benchmark split (resumable)")
    p.add_argument("--policy-base-url", required=True)
    p.add_argument("--policy-model", required=True)
    p.add_argument("--user-base-url", required=True)
    p.add_argument("--user-model", required=True)
    p.add_argument("--version", choices=list(VERSION_NAMES), default=DEFAULT_VERSION,
                   help="benchmark version: tau2 (current tasks), tau2-2025 (2025 release tasks), tau1")
    p.add_argument("--split", default="test")
    p.add_argument("--trials", type=int, default=4, help="k: runs per task (paper: 4)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", default="eval_out")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-turns", type=int, default=40)
    p.add_argument("--temperature", type=float, default=0.0, help="policy temperature (paper: greedy)")
    p.add_argument("--user-temperature", type=float, default=0.0)
    p.add_argument("--policy-api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--user-api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--tasks", nargs="*", default=None, help="only these task ids")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--judge-base-url", default=None,
                   help="OpenAI-compatible endpoint judging the tasks' natural-language assertions")
    p.add_argument("--judge-model", default=None)

    def fn(ns):
        from openrlhf_mtgrpo.envs.airline.data import DataNotFound

        if ns.trials < 1 or ns.concurrency < 1:
            print("mtgrpo eval: error: --trials and --concurrency must be >= 1", file=sys.stderr)
            return 2
        try:
            s = run_eval(policy_base_url=ns.policy_base_url, policy_model=ns.policy_model,
                         user_base_url=ns.user_base_url, user_model=ns.user_model, out_dir=ns.out,
                         version=ns.version, split=ns.split, trials=ns.trials, concurrency=ns.concurrency,
                         data_dir=ns.data_dir, max_turns=ns.max_turns, temperature=ns.temperature,
                         user_temperature=ns.user_temperature, policy_api_key_env=ns.policy_api_key_env,
                         user_api_key_env=ns.user_api_key_env, task_ids=ns.tasks, progress=not ns.no_progress,
                         timeout=ns.timeout, judge_base_url=ns.judge_base_url, judge_model=ns.judge_model)
        except (DataNotFound, KeyError) as e:
            print(f"mtgrpo eval: error: {e}", file=sys.stderr)
            return 2
        print(s["table"])
        print(f"{s['episodes']} episodes ({s['resumed_from']} from an earlier run), "
              f"{s['infra_failures']} infrastructure failures excluded; results in {ns.out}/results.json")
        return 0

    p.set_defaults(fn=fn)
