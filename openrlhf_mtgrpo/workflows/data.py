"""``mtgrpo data``: write the prompt dataset OpenRLHF reads (``prepare``: ``--data.input_key prompt
--data.label_key label``) for any domain; packages add sub-commands for their own data (the tau-bench
domains: ``fetch`` and ``list``) through the entry-point group :data:`DATA_COMMAND_ENTRY_POINTS`."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN
from openrlhf_mtgrpo.workflows import add_domain_argument

DATA_DIR_HELP = ("the domain's data folder (default: where the domain looks for its data; `mtgrpo data list` shows "
                 "where the installed benchmark domains find theirs)")


def prepare(version: Optional[str], split: str, out: str, data_dir=None, repeat: int = 1,
            domain: str = DEFAULT_DOMAIN, tasks=None) -> int:
    """Write the prompt dataset of ``split`` (or of ``tasks``, a list of the domain's tasks): one line per task
    and repeat, its label ``{"task_id", "version", "domain"}``; the number of lines written."""
    from openrlhf_mtgrpo.envs import load_domain

    env = load_domain(domain, version, data_dir)
    # the name training will load: a "module:factory" the user gave stays one (env.name may be registered nowhere)
    label_domain = domain if ":" in domain else env.name
    tasks = env.tasks(split) if tasks is None else tasks
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for _ in range(repeat):
            for t in tasks:
                # the agent builds the conversation itself; the prompt text is for logs and filtering
                summary = " ".join((t.user_instructions or "").split())[:200] or t.id
                f.write(json.dumps({"prompt": f"[{env.name} {env.version} task {t.id}] {summary}",
                                    "label": json.dumps({"task_id": t.id, "version": env.version,
                                                         "domain": label_domain})}) + "\n")
    os.replace(tmp, out)
    return len(tasks) * repeat


def stratified(env, split: str, per_group: int, exclude: Optional[str] = None, seed: int = 0):
    """(tasks, {group: (in the pool, taken)}): at most ``per_group`` tasks of each of the domain's task groups
    (``task_group``, e.g. telecom's issue type) from ``split`` less the tasks of ``exclude`` (e.g. the held-out
    test split), drawn with ``seed``, in the split's order."""
    import random

    group_of = getattr(env, "task_group", None)
    if group_of is None:
        raise ValueError(f"domain {env.name} has no task groups to stratify by (it gives no task_group)")
    held = {t.id for t in env.tasks(exclude)} if exclude else set()
    pool = [t for t in env.tasks(split) if t.id not in held]
    groups: Dict[str, list] = {}
    for t in pool:
        groups.setdefault(group_of(t), []).append(t)
    rng = random.Random(seed)
    taken = set()
    for g in sorted(groups):
        members = groups[g]
        taken |= {t.id for t in (rng.sample(members, per_group) if len(members) > per_group else members)}
    chosen = [t for t in pool if t.id in taken]
    return chosen, {g: (len(groups[g]), sum(t.id in taken for t in groups[g])) for g in sorted(groups)}


def add_command(sub) -> None:
    d = sub.add_parser("data", help="benchmark data: fetch it, list where it is, write the prompt dataset for OpenRLHF")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    p = dsub.add_parser("prepare", help="write the prompt dataset of a benchmark split",
                        description="Writes the prompt dataset OpenRLHF reads (--data.input_key prompt "
                                    "--data.label_key label): one line per task of the split, its label naming the "
                                    "domain, version and task. Several domains train together by giving several "
                                    "files to --data.prompt_dataset (a group's rollouts always share one task).")
    add_domain_argument(p)
    p.add_argument("--version", default=None,
                   help="the domain's version (airline: tau2 (current tasks), tau2-2025 (2025 release tasks), tau1) "
                        "(default: the domain's default; airline: tau2)")
    p.add_argument("--split", default="train", help="task split (airline tau2 family: train, test, base; tau1: test, "
                                                    "base)")
    p.add_argument("--out", default=None, help="JSONL path (default data/<version>_<split>.jsonl)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--repeat", type=int, default=1, help="write each task this many times")
    p.add_argument("--per-group", type=int, default=None,
                   help="stratify: at most this many tasks of each of the domain's task groups (telecom: issue "
                        "type; its full pool is 87%% MMS), drawn with --seed; prints what it took (default: all)")
    p.add_argument("--exclude", default=None,
                   help="leave out the tasks of this split, e.g. --split full --exclude test (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified draw")

    def fn(ns):
        from openrlhf_mtgrpo.envs import DomainError, load_domain
        from openrlhf_mtgrpo.envs.base import DataNotFound

        try:
            env = load_domain(ns.domain, ns.version, ns.data_dir)
            version = env.version
            out = ns.out or os.path.join("data", f"{version}_{ns.split}.jsonl")
            tasks = None
            if ns.per_group is not None or ns.exclude:
                if ns.per_group is not None and ns.per_group < 1:
                    raise ValueError("--per-group must be >= 1")
                if ns.per_group is None:
                    held = {t.id for t in env.tasks(ns.exclude)}
                    tasks = [t for t in env.tasks(ns.split) if t.id not in held]
                    print(f"{ns.split} less {ns.exclude}: {len(tasks)} tasks")
                else:
                    tasks, counts = stratified(env, ns.split, ns.per_group, ns.exclude, ns.seed)
                    print(f"stratified {ns.split}" + (f" less {ns.exclude}" if ns.exclude else "") +
                          f" by {getattr(env, 'task_group_name', 'task group')}, at most {ns.per_group} each "
                          f"(seed {ns.seed}): " + ", ".join(f"{g} {k} of {n}" for g, (n, k) in counts.items()))
            n = prepare(version, ns.split, out, ns.data_dir, ns.repeat, domain=ns.domain, tasks=tasks)
        except (DataNotFound, KeyError, DomainError, ValueError) as e:
            print(f"mtgrpo data prepare: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
            return 2
        print(f"wrote {n} prompts to {out} (input_key=prompt, label_key=label)")
        return 0

    p.set_defaults(fn=fn)
    for provider in data_providers():
        provider.add_data_commands(dsub)


#: entry-point group of the packages that add ``mtgrpo data`` sub-commands for their domains' data (``fetch`` and
#: ``list`` of the tau-bench domains): each names a module with ``add_data_commands(dsub)`` and ``doctor_lines()``
DATA_COMMAND_ENTRY_POINTS = "openrlhf_mtgrpo.data_commands"


def data_providers() -> List[Any]:
    """The modules that add ``mtgrpo data`` sub-commands (entry points :data:`DATA_COMMAND_ENTRY_POINTS`); one
    that cannot be imported is named on stderr and left out, never breaking the other commands."""
    from importlib import metadata

    out = []
    for ep in sorted(metadata.entry_points(group=DATA_COMMAND_ENTRY_POINTS), key=lambda e: e.name):
        try:
            out.append(ep.load())
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, never hidden
            print(f"mtgrpo data: warning: the data commands of {ep.name} ({ep.value}) could not be loaded: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
    return out
