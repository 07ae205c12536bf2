"""Sub-commands added by later parts of the package (irc, train, data, eval, demo)."""


def add_commands(sub) -> None:
    return None
