"""The ``mtgrpo`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _cmd_doctor(ns) -> int:
    from openrlhf_mtgrpo.doctor import run_doctor

    return run_doctor(check_ray=ns.ray)


def _cmd_agent_path(ns) -> int:
    from openrlhf_mtgrpo.rollout import agent_func

    print(agent_func.__file__)
    return 0


def _cmd_install_hook(ns) -> int:
    from openrlhf_mtgrpo.doctor import install_startup_hook

    for path in install_startup_hook(ns.site_packages):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtgrpo", description="Multi-turn tool-calling agent RL for OpenRLHF")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("doctor", help="versions, hook status, registered estimators, vLLM")
    d.add_argument("--ray", action="store_true", help="also start a local Ray and check a worker process")
    d.set_defaults(fn=_cmd_doctor)

    a = sub.add_parser("agent-path", help="path of the agent file for --train.agent_func_path")
    a.set_defaults(fn=_cmd_agent_path)

    h = sub.add_parser("install-hook", help="(re)write the start-up hook files, e.g. after an editable install")
    h.add_argument("--site-packages", default=None)
    h.set_defaults(fn=_cmd_install_hook)

    from openrlhf_mtgrpo import cli_extra

    cli_extra.add_commands(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return int(ns.fn(ns) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
