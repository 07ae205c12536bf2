"""End-user workflows behind the ``mtgrpo`` sub-commands: demo, data, train, eval.

Each module has ``add_command(sub)``; :mod:`openrlhf_mtgrpo.cli_extra` lists them and the CLI
imports one only when its sub-command runs.
"""


def add_domain_argument(p) -> None:
    """``--domain``, as every command that runs against a domain spells it."""
    from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

    p.add_argument("--domain", default=DEFAULT_DOMAIN,
                   help="the domain (a registered name, or 'package.module:factory'; `mtgrpo doctor` lists them) "
                        f"(default: {DEFAULT_DOMAIN})")


def add_commands(sub) -> None:
    """Add all four workflow sub-commands (imports each module, the demo's torch included)."""
    from openrlhf_mtgrpo.workflows import data, demo, eval_cmd, train

    demo.add_command(sub)
    data.add_command(sub)
    train.add_command(sub)
    eval_cmd.add_command(sub)
