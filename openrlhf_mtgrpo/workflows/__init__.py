"""End-user workflows behind the ``mtgrpo`` sub-commands: demo, data, train, eval."""


def add_commands(sub) -> None:
    from openrlhf_mtgrpo.workflows import data, demo, eval_cmd, train

    demo.add_command(sub)
    data.add_command(sub)
    train.add_command(sub)
    eval_cmd.add_command(sub)
