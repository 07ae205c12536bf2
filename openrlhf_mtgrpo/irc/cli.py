"""``mtgrpo irc analyze`` and ``mtgrpo irc iterate``."""

from __future__ import annotations

import os
import sys
import time

from openrlhf_mtgrpo.rewards.components import COMPONENTS


def add_options(p):
    p.add_argument("--calibration", default=None, help="current calibration (file or built-in name; default paper-irc)")
    p.add_argument("--delta", type=float, default=0.05, help="|rho| threshold of a discriminative component")
    p.add_argument("--alpha", type=float, default=1.0, help="scale for new weights alpha * rho")
    p.add_argument("--rule", choices=["keep_flip_zero", "proportional"], default="keep_flip_zero")
    p.add_argument("--aggregate", choices=["any", "mean"], default="any")
    p.add_argument("--estimator", choices=["mt_grpo", "gtpo_hybrid", "grpo_outcome"], default="gtpo_hybrid",
                   help="estimator whose advantages IRC checks (train with it); mt_grpo is the paper's check")
    p.add_argument("--pin", nargs="*", default=["gold_exact"], help=f"components never changed ({', '.join(COMPONENTS)})")
    p.add_argument("--group-size", type=int, default=4, help="rollouts per group when grouping a task's episodes")
    p.add_argument("--bootstrap", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)


def _options(ns):
    from openrlhf_mtgrpo.irc.analyze import IRCOptions

    return IRCOptions(delta=ns.delta, alpha=ns.alpha, rule=ns.rule, aggregate=ns.aggregate, estimator=ns.estimator,
                      pin=tuple(ns.pin), bootstrap=ns.bootstrap, seed=ns.seed)


def _summary(result, paths, out=None):
    from openrlhf_mtgrpo.irc.report import table

    out = out or sys.stdout
    if result.no_signal:
        print(result.no_signal, file=out)
    print(table(result), file=out)
    print(f"misalignment ({result.options.estimator}): {result.misalignment_before:.3f} -> "
          f"{result.misalignment_after:.3f}; skipped lines: {len(result.skipped_lines)}", file=out)
    for s in result.skipped_lines[:10]:
        print(f"  skipped {s}", file=out)
    for k, v in paths.items():
        print(f"wrote {k}: {v}", file=out)


def cmd_analyze(ns) -> int:
    from openrlhf_mtgrpo.irc.analyze import analyze
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.irc.report import write_outputs
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration

    try:
        cal = load_calibration(ns.calibration)
        opts = _options(ns)
        batch = read_logs(ns.logs, group_size=ns.group_size)
    except (CalibrationError, FileNotFoundError, ValueError) as e:
        print(f"mtgrpo irc: error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = analyze(batch, cal, opts, sources=ns.logs)
    paths = write_outputs(result, ns.out)
    _summary(result, paths)
    print(f"analysed {batch.n} episodes in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_iterate(ns) -> int:
    from openrlhf_mtgrpo.irc.analyze import analyze
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.irc.report import write_outputs
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration
    from openrlhf_mtgrpo.rollout.jsonl import append_jsonl

    try:
        cal = load_calibration(ns.calibration)
        opts = _options(ns)
    except (CalibrationError, ValueError) as e:
        print(f"mtgrpo irc: error: {e}", file=sys.stderr)
        return 2
    history = os.path.join(ns.out, "history.jsonl")
    for i, logs in enumerate(ns.logs):
        try:
            batch = read_logs([logs], group_size=ns.group_size)
        except FileNotFoundError as e:
            print(f"mtgrpo irc: error: {e}", file=sys.stderr)
            return 2
        result = analyze(batch, cal, opts, sources=[logs])
        paths = write_outputs(result, ns.out, stem=f"iter{i + 1}")
        print(f"== iteration {i + 1}: {logs}")
        _summary(result, paths)
        append_jsonl(history, {"iteration": i + 1, "logs": logs, "rollouts": result.n_rollouts,
                               "calibration_in": cal.sha256, "calibration_out": result.calibration.sha256,
                               "weights": result.calibration.weights, "no_signal": result.no_signal,
                               "misalignment_before": result.misalignment_before,
                               "misalignment_after": result.misalignment_after})
        cal = result.calibration
    print(f"history: {history}")
    return 0


def add_commands(sub) -> None:
    irc = sub.add_parser("irc", help="Iterative Reward Calibration on rollout logs")
    isub = irc.add_subparsers(dest="irc_command", required=True)
    a = isub.add_parser("analyze", help="analyse logs, write a new calibration, report and chart")
    a.add_argument("logs", nargs="+", help="rollout log files or directories")
    a.add_argument("--out", default="irc_out")
    add_options(a)
    a.set_defaults(fn=cmd_analyze)
    it = isub.add_parser("iterate", help="analyse several log batches in order, carrying the calibration forward")
    it.add_argument("--logs", nargs="+", required=True, help="one file or directory per iteration, in order")
    it.add_argument("--out", default="irc_out")
    add_options(it)
    it.set_defaults(fn=cmd_iterate)
