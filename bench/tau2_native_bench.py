"""tau2-native domains vs tau2's default path: reset, step and evaluate per episode, memory per live episode.

Domains: retail-2025, telecom, telecom-solo, and the airline's tau2 versions (``--domains tau2 tau2-2025``; its
speed against the airline's re-implementation it replaced is ``bench/env_bench.py``).  The current retail
(``retail``) runs a tool tau2's default path lacks (``get_item_details``), so it is not offered here.

Both variants run in this process, one after the other, on the same tasks (the base split) and the same
workload (each task's gold actions: the agent's as agent calls, the customer's as customer calls):

* ours: ``domain.reset(task)``, ``assistant_message`` / ``user_tool_call``, ``evaluate`` (gold end states
  cached: the number a training run sees after its first pass over the tasks; the first, cold, evaluation
  of a task is printed too);
* tau2's default path: ``get_environment()`` (tau2's environment constructor, which loads the database
  from its file) plus ``set_state`` of the task's initial state; also printed with the database deep-copied
  from a pristine one instead (``get_environment(db=copy)``); ``get_response`` per call; evaluation by
  tau2's ``EnvironmentEvaluator`` (a fresh predicted and gold environment, both replays, four hashes),
  ``ActionEvaluator`` and ``CommunicateEvaluator``, as ``evaluate_simulation`` runs them.

Memory per live episode: tracemalloc's growth while ``--live`` episodes (after their gold actions) are
alive, divided by their number.  Times are medians over the tasks (microseconds); the ratio is tau2's
time over ours.  The machine's load shows in both columns alike.

    python bench/tau2_native_bench.py [--domains retail-2025 telecom telecom-solo] [--tasks 40] [--live 20]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from openrlhf_mtgrpo.benchmarks.airline import make_airline  # noqa: E402
from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail, make_telecom  # noqa: E402


def median_us(xs):
    return statistics.median(xs) * 1e6


def play_ours(domain, task):
    ep = domain.reset(task)
    t0 = time.perf_counter()
    for a in task.actions:
        if a.requestor == "user" and not domain.solo:
            ep.user_tool_call(a.name, a.arguments)
        else:
            ep.assistant_message(None, [(a.name, a.arguments)])
    if domain.solo:
        ep.assistant_message(None, [(domain.solo_stop.function_name, {})])
    for info in task.communicate_info:
        ep.assistant_message(f"To confirm: {info}.", [])
    return ep, (time.perf_counter() - t0) / max(1, len(task.actions))


def ours(domain, tasks, live):
    resets, steps, cold, warm = [], [], [], []
    for task in tasks:
        domain.reset(task)  # the telecom snapshot of the task is built on first use, as in a training run
        t0 = time.perf_counter()
        domain.reset(task)
        resets.append(time.perf_counter() - t0)
        ep, step = play_ours(domain, task)
        steps.append(step)
        end = "agent_stop" if domain.solo else "user_stop"
        t0 = time.perf_counter()
        r = ep.evaluate(end)
        cold.append(time.perf_counter() - t0)
        assert r.reward == 1.0, (task.id, r.to_dict())
        ep, _ = play_ours(domain, task)
        t0 = time.perf_counter()
        ep.evaluate(end)
        warm.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep = [play_ours(domain, tasks[i % len(tasks)])[0] for i in range(live)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    mem = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(keep)
    return {"reset": median_us(resets), "step": median_us(steps), "evaluate": median_us(warm),
            "evaluate_cold": median_us(cold), "memory": mem}


class Tau2Default:
    """tau2's own path, with only tau2's code (no litellm needed)."""

    def __init__(self, domain):
        from tau2.data_model import message as m
        from tau2.evaluator.evaluator_action import ActionEvaluator
        from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
        from tau2.evaluator.evaluator_env import EnvironmentEvaluator

        self.m, self.env_eval, self.action_eval, self.comm_eval = m, EnvironmentEvaluator, ActionEvaluator, \
            CommunicateEvaluator
        mod = __import__(f"tau2.domains.{domain.spec.tau2_domain}.environment", fromlist=["get_environment"])
        self.solo = domain.solo
        self.get_environment = mod.get_environment
        base = self.get_environment()
        self.pristine, self.pristine_user = base.tools.db, (base.user_tools.db if base.user_tools else None)

    def constructor(self, solo_mode=False):
        return self.get_environment(solo_mode=solo_mode)

    def copied(self, solo_mode=False):
        kw = {"db": copy.deepcopy(self.pristine)}
        if self.pristine_user is not None:
            kw["user_db"] = copy.deepcopy(self.pristine_user)
        return self.get_environment(solo_mode=solo_mode, **kw)

    @staticmethod
    def init(env, task):
        s = task.tau2.initial_state
        if s is not None:
            env.set_state(s.initialization_data, s.initialization_actions, [])
        return env

    def play(self, env, task):
        m, traj, times = self.m, [], []
        if not self.solo:
            traj.append(m.AssistantMessage(role="assistant", content="Hi! How can I help you today?"))
        for i, a in enumerate(task.actions):
            user = a.requestor == "user" and not self.solo
            tc = m.ToolCall(id=f"c{i}", name=a.name, arguments=copy.deepcopy(a.arguments),
                            requestor="user" if user else "assistant")
            cls = m.UserMessage if user else m.AssistantMessage
            traj.append(cls(role="user" if user else "assistant", tool_calls=[tc]))
            t0 = time.perf_counter()
            traj.append(env.get_response(tc))
            env.sync_tools()
            times.append(time.perf_counter() - t0)
        for info in task.communicate_info:
            traj.append(m.AssistantMessage(role="assistant", content=f"To confirm: {info}."))
        return traj, sum(times) / max(1, len(times))

    def evaluate(self, task, traj):
        r = self.env_eval.calculate_reward(environment_constructor=self.constructor, task=task.tau2,
                                           full_trajectory=traj, solo_mode=self.solo)
        a = self.action_eval.calculate_reward(task=task.tau2, full_trajectory=traj)
        c = self.comm_eval.calculate_reward(task=task.tau2, full_trajectory=traj)
        return r.reward, a.reward, c.reward


def tau2_default(domain, tasks, live):
    d = Tau2Default(domain)
    loads, copies, steps, evals = [], [], [], []
    for task in tasks:
        t0 = time.perf_counter()
        env = d.init(d.constructor(solo_mode=domain.solo), task)
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        d.init(d.copied(solo_mode=domain.solo), task)
        copies.append(time.perf_counter() - t0)
        traj, step = d.play(env, task)
        steps.append(step)
        t0 = time.perf_counter()
        d.evaluate(task, traj)
        evals.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep = []
    for i in range(live):
        task = tasks[i % len(tasks)]
        env = d.init(d.copied(solo_mode=domain.solo), task)
        d.play(env, task)
        keep.append(env)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    mem = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(keep)
    return {"reset": median_us(loads), "reset_copy": median_us(copies), "step": median_us(steps),
            "evaluate": median_us(evals), "memory": mem}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--domains", nargs="+", default=["retail-2025", "telecom", "telecom-solo"],
                   help="retail-2025, telecom, telecom-solo, or an airline version (tau2, tau2-2025)")
    p.add_argument("--tasks", type=int, default=40, help="base-split tasks per domain")
    p.add_argument("--live", type=int, default=20, help="episodes kept alive for the memory measurement")
    args = p.parse_args()
    import subprocess

    probe = ("import sys, time; t = time.perf_counter(); import openrlhf_mtgrpo.benchmarks.tau2_native; "
             "print(f'{time.perf_counter() - t:.3f} s,', 'tau2 modules:', "
             "sum(k.startswith('tau2') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    print(f"import openrlhf_mtgrpo.benchmarks.tau2_native (fresh process): {out.stdout.strip() or out.stderr[-300:]}")
    for name in args.domains:
        t0 = time.perf_counter()
        if name == "retail":
            raise SystemExit("the current retail (retail) calls a tool tau2's default path lacks; use retail-2025")
        domain = (make_retail(name) if name.startswith("retail") else make_telecom(name) if name.startswith("telecom")
                  else make_airline(name))
        load = time.perf_counter() - t0
        tasks = domain.tasks("base")[:args.tasks]
        o = ours(domain, tasks, args.live)
        b = tau2_default(domain, tasks, args.live)
        print(f"\n== {name} ({len(tasks)} base tasks; domain load {load:.2f} s, tau2 imports included the first "
              "time) ==")
        print(f"{'':34s}{'ours':>12s}{'tau2 default':>15s}{'ratio':>9s}")

        def row(label, a, bv, unit="us"):
            fmt = (lambda v: f"{v:,.1f}") if unit == "us" else (lambda v: f"{v / 1024:,.1f} KiB")
            print(f"{label:34s}{fmt(a):>12s}{fmt(bv):>15s}{bv / a:>8.1f}x")

        row("reset, get_environment() (us)", o["reset"], b["reset"])
        row("reset, get_environment(db=copy)", o["reset"], b["reset_copy"])
        row("step per call (us)", o["step"], b["step"])
        row("evaluate, gold cached (us)", o["evaluate"], b["evaluate"])
        row("evaluate, first time (us)", o["evaluate_cold"], b["evaluate"])
        row("memory per live episode", o["memory"], b["memory"], unit="mem")


if __name__ == "__main__":
    main()
