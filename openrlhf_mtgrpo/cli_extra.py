"""Sub-commands beyond doctor / agent-path: irc, train, data, eval, demo."""


def add_commands(sub) -> None:
    from openrlhf_mtgrpo.irc import cli as irc_cli

    irc_cli.add_commands(sub)
    try:
        from openrlhf_mtgrpo import workflows
    except ImportError:  # pragma: no cover
        return
    workflows.add_commands(sub)
