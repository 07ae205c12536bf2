"""``mtgrpo data prepare``: the prompt dataset OpenRLHF reads (``--data.input_key prompt --data.label_key label``)."""

from __future__ import annotations

import json
import os
import sys


def prepare(version: str, split: str, out: str, data_dir=None, repeat: int = 1) -> int:
    from openrlhf_mtgrpo.envs.airline import AirlineEnv

    env = AirlineEnv(version, data_dir)
    tasks = env.tasks(split)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for _ in range(repeat):
            for t in tasks:
                # the agent builds the conversation itself; the prompt text is for logs and filtering
                summary = t.user_instructions.strip().splitlines()[0][:200] if t.user_instructions else t.id
                f.write(json.dumps({"prompt": f"[{version} airline task {t.id}] {summary}",
                                    "label": json.dumps({"task_id": t.id, "version": version})}) + "\n")
    os.replace(tmp, out)
    return len(tasks) * repeat


def add_command(sub) -> None:
    d = sub.add_parser("data", help="datasets for OpenRLHF")
    dsub = d.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("prepare", help="write the prompt dataset of a benchmark split")
    from openrlhf_mtgrpo.envs.airline.versions import DEFAULT_VERSION, VERSION_NAMES

    p.add_argument("--version", choices=list(VERSION_NAMES), default=DEFAULT_VERSION,
                   help="benchmark version: tau2 (current tasks), tau2-2025 (2025 release tasks), tau1")
    p.add_argument("--split", default="train")
    p.add_argument("--out", default=None, help="JSONL path (default data/<version>_<split>.jsonl)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--repeat", type=int, default=1, help="write each task this many times")

    def fn(ns):
        from openrlhf_mtgrpo.envs.airline.data import DataNotFound

        out = ns.out or os.path.join("data", f"{ns.version}_{ns.split}.jsonl")
        try:
            n = prepare(ns.version, ns.split, out, ns.data_dir, ns.repeat)
        except (DataNotFound, KeyError) as e:
            print(f"mtgrpo data prepare: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {n} prompts to {out} (input_key=prompt, label_key=label)")
        return 0

    p.set_defaults(fn=fn)
