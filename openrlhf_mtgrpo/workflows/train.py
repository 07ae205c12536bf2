"""Placeholder until implemented in this series."""


def add_command(sub) -> None:
    return None
