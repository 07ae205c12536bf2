"""The ``mtgrpo`` command.

Sub-commands are registered lazily: ``mtgrpo --help`` lists them all from a table, and only the
module of the sub-command being run is imported (the demo imports torch, eval the rollout stack),
so ``mtgrpo --help``, ``mtgrpo --version`` and ``mtgrpo doctor`` start fast.  Every ``--help``
shows each option's default.
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import List, Optional


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` for every option that has a meaningful default, documented or not."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        d = action.default
        if d is None or d is argparse.SUPPRESS or isinstance(d, bool) or d == []:
            return False
        return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)

    def _format_action(self, action):
        if not action.help and self._shows_default(action):
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ""
        if self._shows_default(action) and "%(default)" not in text and "(default:" not in text:
            text = f"{text} (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose help shows defaults; sub-parsers inherit it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def _cmd_doctor(ns) -> int:
    from openrlhf_mtgrpo.doctor import run_doctor

    return run_doctor(check_ray=ns.ray, full=ns.full)


def _cmd_agent_path(ns) -> int:
    from openrlhf_mtgrpo.rollout import agent_func

    print(agent_func.__file__)
    return 0


def _cmd_install_hook(ns) -> int:
    from openrlhf_mtgrpo.doctor import install_startup_hook

    for path in install_startup_hook(ns.site_packages):
        print(f"wrote {path}")
    return 0


def _add_builtin(sub, name: str) -> None:
    if name == "doctor":
        d = sub.add_parser("doctor", help="versions, hook status, benchmark data, registered estimators")
        d.add_argument("--full", action="store_true",
                       help="also import every plugin, load every domain at its default version and check its "
                            "interface, and import OpenRLHF to check that our hooks attach")
        d.add_argument("--ray", action="store_true", help="also start a local Ray and check a worker process "
                                                          "(implies --full)")
        d.set_defaults(fn=_cmd_doctor)
    elif name == "agent-path":
        a = sub.add_parser("agent-path", help="path of the agent file for --train.agent_func_path")
        a.set_defaults(fn=_cmd_agent_path)
    elif name == "install-hook":
        h = sub.add_parser("install-hook", help="(re)write the start-up hook files, e.g. after an editable install")
        h.add_argument("--site-packages", default=None, help="target folder (default: this interpreter's)")
        h.set_defaults(fn=_cmd_install_hook)


BUILTIN = ("doctor", "agent-path", "install-hook")


def _selected(argv: List[str]) -> Optional[str]:
    """The sub-command named in ``argv`` (the first word that is not an option), if any."""
    for tok in argv:
        if tok == "--":
            return None
        if not tok.startswith("-"):
            return tok
    return None


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    """The ``mtgrpo`` parser.  With ``argv``, only the sub-command it names is fully built (its
    module imported); the others appear in ``--help`` by name.  Without, all are built."""
    from openrlhf_mtgrpo import __version__, cli_extra

    p = Parser(prog="mtgrpo", description="Multi-turn tool-calling agent RL for OpenRLHF")
    p.add_argument("--version", action="version", version=f"openrlhf-mtgrpo {__version__}",
                   help="print the package version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only = None if argv is None else _selected(argv)
    for name, help_text in cli_extra.COMMANDS:
        if argv is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
        elif name in BUILTIN:
            _add_builtin(sub, name)
        else:
            cli_extra.add_command(sub, name)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser(argv).parse_args(argv)
    try:
        return int(ns.fn(ns) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
