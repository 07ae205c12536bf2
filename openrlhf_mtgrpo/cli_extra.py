"""The table of ``mtgrpo`` sub-commands, and where each one's parser lives.

``mtgrpo --help`` lists them from this table without importing their modules; a sub-command's
module is imported only when that sub-command runs (see :func:`openrlhf_mtgrpo.cli.build_parser`).
"""

from __future__ import annotations

import importlib

#: name, one-line help (shown by ``mtgrpo --help``), in the order listed
COMMANDS = (
    ("demo", "offline CPU demo: scripted rollouts -> per-turn rewards -> IRC -> estimators"),
    ("data", "benchmark data: fetch it, list where it is, write the prompt dataset for OpenRLHF"),
    ("train", "expand a recipe into the OpenRLHF launch command and run it"),
    ("eval", "pass^k of a served policy on a benchmark split (resumable)"),
    ("serve-scripted", "serve the demo's scripted policy and rule-based customer for `mtgrpo eval` (no model)"),
    ("irc", "Iterative Reward Calibration on rollout logs"),
    ("doctor", "versions, hook status, benchmark data, registered estimators"),
    ("agent-path", "path of the agent file for --train.agent_func_path"),
    ("install-hook", "(re)write the start-up hook files, e.g. after an editable install"),
)

#: sub-command -> (module, function that adds its parser to a sub-parsers action)
MODULES = {
    "demo": ("openrlhf_mtgrpo.workflows.demo", "add_command"),
    "data": ("openrlhf_mtgrpo.workflows.data", "add_command"),
    "train": ("openrlhf_mtgrpo.workflows.train", "add_command"),
    "eval": ("openrlhf_mtgrpo.workflows.eval_cmd", "add_command"),
    "serve-scripted": ("openrlhf_mtgrpo.workflows.serve_scripted", "add_command"),
    "irc": ("openrlhf_mtgrpo.irc.cli", "add_commands"),
}


def add_command(sub, name: str) -> None:
    """Import the module of sub-command ``name`` and add its full parser to ``sub``."""
    module, fn = MODULES[name]
    getattr(importlib.import_module(module), fn)(sub)


def add_commands(sub) -> None:
    """Add the full parsers of every sub-command in :data:`MODULES` (imports all of them)."""
    for name in MODULES:
        add_command(sub, name)
