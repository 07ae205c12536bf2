"""The mtgrpo command starts fast (imports only what the sub-command needs), prints its version,
and every --help shows the defaults.  Timings themselves: bench/cli_start.py."""

import argparse
import os
import subprocess
import sys

import pytest

from helpers import pythonpath

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "ray", "openrlhf", "transformers", "deepspeed", "vllm", "numpy")

PROBE = r"""
import contextlib, io, sys
from openrlhf_mtgrpo.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
ours = sorted(m for m in sys.modules if m.startswith("openrlhf_mtgrpo.workflows.") or m == "openrlhf_mtgrpo.irc.cli")
print("HEAVY", ",".join(heavy))
print("OURS", ",".join(ours))
"""


def _imports(argv):
    env = dict(os.environ, PYTHONPATH=pythonpath(REPO))
    p = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True, text=True,
                       env=env, timeout=120, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in p.stdout.splitlines())
    return [x for x in lines["HEAVY"].split(",") if x], [x for x in lines["OURS"].split(",") if x]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["doctor"], ["data", "list"], ["data", "fetch", "--help"]])
def test_fast_commands_import_no_heavy_module(argv):
    heavy, _ = _imports(argv)
    assert heavy == []


def test_only_the_named_sub_command_module_is_imported():
    _, ours = _imports(["data", "list"])
    assert ours == ["openrlhf_mtgrpo.workflows.data"]
    _, ours = _imports(["--help"])
    assert ours == []


def test_version_prints_the_package_version(capsys):
    import openrlhf_mtgrpo
    from openrlhf_mtgrpo.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"openrlhf-mtgrpo {openrlhf_mtgrpo.__version__}"
    # the benchmark selector of the sub-commands is not shadowed by it
    from openrlhf_mtgrpo.cli import build_parser

    ns = build_parser(["data", "prepare"]).parse_args(["data", "prepare", "--version", "tau2-2025"])
    assert ns.version == "tau2-2025"


def test_help_lists_every_sub_command_without_importing_them(capsys):
    from openrlhf_mtgrpo.cli import main
    from openrlhf_mtgrpo.cli_extra import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, help_text in COMMANDS:
        assert f"    {name}" in out and help_text.split()[0] in out
    with pytest.raises(SystemExit) as e:
        main(["nonsense"])
    assert e.value.code == 2 and "invalid choice: 'nonsense'" in capsys.readouterr().err


def _parsers(parser, path=("mtgrpo",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_every_help_shows_the_defaults(monkeypatch):
    from openrlhf_mtgrpo.cli import DefaultsHelpFormatter, build_parser

    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: each option's help on one line
    checked = 0
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if DefaultsHelpFormatter._shows_default(action):
                assert f"default: {action.default}" in text, (" ".join(path), action.dest)
                checked += 1
    assert checked >= 35  # every sub-command's options were walked
    # an option without help text still shows its default
    demo = dict(_parsers(build_parser()))[("mtgrpo", "demo")].format_help()
    assert "--seed SEED" in demo and "default: 0" in demo


def test_doctor_reports_data_and_does_not_claim_hooks_it_did_not_check(capsys, monkeypatch, tmp_path):
    from openrlhf_mtgrpo.cli import main

    monkeypatch.delenv("MTGRPO_DATA_DIR", raising=False)
    monkeypatch.setenv("MTGRPO_CACHE_DIR", str(tmp_path / "empty"))
    main(["doctor"])
    out = capsys.readouterr().out
    assert "data tau1         missing (get it with `mtgrpo data fetch tau1`)" in out
    assert "hooks fired       not checked" in out and "estimators        grpo_outcome, gtpo_hybrid, mt_grpo" in out


def _help_paths():
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import cli_start

    return cli_start.help_commands()


HELP_PATHS = _help_paths()


def test_the_help_paths_are_every_sub_command():
    from openrlhf_mtgrpo.cli_extra import COMMANDS

    names = [p[0] for p in HELP_PATHS if len(p) == 1]
    assert names == [n for n, _ in COMMANDS]
    assert {" ".join(p) for p in HELP_PATHS if len(p) == 2} >= {"data fetch", "data list", "data prepare",
                                                                 "irc analyze", "irc iterate"}


@pytest.mark.parametrize("path", HELP_PATHS, ids=[" ".join(p) for p in HELP_PATHS])
def test_every_sub_commands_help_is_fast_and_imports_no_heavy_module(path):
    """`mtgrpo COMMAND --help` builds only that command's parser: no torch, Ray, OpenRLHF, ...  and well
    under 0.5 s (the best of three fresh interpreters; bench/cli_start.py prints the medians)."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import cli_start

    heavy, ours = _imports(path + ["--help"])
    assert heavy == [], (f"`mtgrpo {' '.join(path)} --help` imports {heavy}, through the module(s) {ours} "
                         f"(openrlhf_mtgrpo/cli_extra.py MODULES names the module that registers each command)")
    best = min(cli_start.time_once(path + ["--help"]) for _ in range(3))
    assert best < cli_start.GOAL_S, f"`mtgrpo {' '.join(path)} --help` took {best:.2f} s"


def test_the_command_table_imports_nothing_but_itself():
    code = ("import sys; before = set(sys.modules); import openrlhf_mtgrpo.cli, openrlhf_mtgrpo.cli_extra; "
            "print(sorted(m for m in set(sys.modules) - before if not m.startswith(('encodings', '_'))))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=pythonpath(REPO)))
    assert p.returncode == 0, p.stderr[-2000:]
    new = eval(p.stdout.strip().splitlines()[-1])
    assert {m.split(".")[0] for m in new} & set(HEAVY) == set()
    assert [m for m in new if m.startswith("openrlhf_mtgrpo.") and m not in (
        "openrlhf_mtgrpo.cli", "openrlhf_mtgrpo.cli_extra")] == []


def _every_parser():
    from openrlhf_mtgrpo.cli import build_parser

    return [(" ".join(path[1:]), parser) for path, parser in _parsers(build_parser())]


@pytest.mark.parametrize("name", [" ".join(p) for p in [[]] + HELP_PATHS])
def test_every_option_has_a_description(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    parser = dict(_every_parser())[name]
    bare = [a.option_strings[0] if a.option_strings else a.dest for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert bare == [], f"`mtgrpo {name} --help`: no description for {bare}"


def test_doctor_names_a_broken_set_of_tool_sources(capsys, monkeypatch, tmp_path):
    from openrlhf_mtgrpo.cli import main

    (tmp_path / "data" / "tau1" / "tools").mkdir(parents=True)
    (tmp_path / "data" / "tau1" / "tools" / "__init__.py").write_text("ALL_TOOLS = []\n")
    monkeypatch.setenv("MTGRPO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MTGRPO_CACHE_DIR", str(tmp_path / "empty"))
    main(["doctor"])
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("tools tau1"))
    assert "PROBLEM" in line and f"{tmp_path / 'data' / 'tau1' / 'tools'} is not a complete set" in line
    assert "lacks book_reservation.py" in line


def test_bench_script_runs():
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "cli_start.py"), "--runs", "1",
                        "--only", "mtgrpo --help", "--only", "data fetch"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=pythonpath(REPO)))
    assert "mtgrpo --help" in p.stdout and "vs python -c pass" in p.stdout, p.stderr[-2000:]
    assert "mtgrpo data fetch --help" in p.stdout and "mtgrpo doctor" not in p.stdout  # --only picks
