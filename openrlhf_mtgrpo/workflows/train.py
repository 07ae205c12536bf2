"""``mtgrpo train --recipe FILE [--set key=value ...] [--dry-run]``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys


def check_recipe(recipe: str, overrides=()):
    """(the launch command of a recipe, the args ``train(args)`` would get), after OpenRLHF's own parser and
    post-parse checks and the plugin's checks have accepted it (:class:`RecipeError` otherwise)."""
    from openrlhf_mtgrpo.integration.launcher_parser import expand_recipe, post_parse_checks

    argv, ns = expand_recipe(recipe, overrides)
    args = post_parse_checks(ns)
    return [sys.executable, "-m", "openrlhf.cli.train_ppo_ray"] + argv, args


def build_command(recipe: str, overrides=()) -> list:
    """The launch command of a recipe, after every check has accepted it (:func:`check_recipe`)."""
    return check_recipe(recipe, overrides)[0]


def add_command(sub) -> None:
    p = sub.add_parser("train", help="expand a recipe into the OpenRLHF launch command and run it")
    p.add_argument("--recipe", required=True, metavar="FILE",
                   help="recipe YAML: a flat mapping of OpenRLHF options to values (required), e.g. "
                        "recipes/qwen3.5-4b.yaml of this repository")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set rollout.n_samples_per_prompt=8")
    p.add_argument("--dry-run", action="store_true",
                   help="check everything the run would check (OpenRLHF's post-parse checks and the plugin's: "
                        "paths, the prompt datasets' labels and the domains, versions and tasks they name, benchmark "
                        "data, calibration and its component set, parser, GPUs, batch sizes), print what was "
                        "checked (stderr) and the command (stdout) without running it")

    def fn(ns):
        from openrlhf_mtgrpo.integration.launcher_parser import RecipeError

        from openrlhf_mtgrpo.integration.launch_checks import launch_summary

        try:
            cmd, args = check_recipe(ns.recipe, ns.overrides)
        except RecipeError as e:
            print(f"mtgrpo train: error: {e}", file=sys.stderr)
            return 2
        for line in launch_summary(args):
            print(f"mtgrpo train: checked {line}", file=sys.stderr)
        if os.environ.get("OPENRLHF_MTGRPO_DISABLE", "").lower() in ("1", "true", "yes", "on"):
            print("mtgrpo train: error: OPENRLHF_MTGRPO_DISABLE is set; the plugin must be active", file=sys.stderr)
            return 2
        print(" ".join(shlex.quote(c) for c in cmd))
        if ns.dry_run:
            return 0
        return subprocess.call(cmd)

    p.set_defaults(fn=fn)
