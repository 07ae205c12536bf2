"""End-user workflows behind the ``mtgrpo`` sub-commands: demo, data, train, eval.

Each module has ``add_command(sub)``; :mod:`openrlhf_mtgrpo.cli_extra` lists them and the CLI
imports one only when its sub-command runs.
"""


def add_commands(sub) -> None:
    """Add all four workflow sub-commands (imports each module, the demo's torch included)."""
    from openrlhf_mtgrpo.workflows import data, demo, eval_cmd, train

    demo.add_command(sub)
    data.add_command(sub)
    train.add_command(sub)
    eval_cmd.add_command(sub)
