"""``mtgrpo irc analyze`` and ``mtgrpo irc iterate``."""

from __future__ import annotations

import os
import sys
import time

from openrlhf_mtgrpo.advantages.options import EstimatorOptions, flag_name, option_fields, option_type

#: advantage-check settings read from the logs (an explicit flag must agree with them): the estimator and every
#: shared option (EstimatorOptions' fields, eps included); an estimator's own options come with --estimator-option
FROM_LOGS = ("estimator",) + tuple(f.name for f in option_fields(EstimatorOptions))


def _estimator_flags(g) -> None:
    """One flag per shared estimator option, generated from EstimatorOptions (``--gamma``, ``--eps``,
    ``--no-std-norm``, ...), each default None: the logs' value."""
    for f in option_fields(EstimatorOptions):
        name = "--" + flag_name(f).replace("_", "-")
        tail = " (default: the logs' value; a different value is refused)"
        if f.name == "pool":
            tail = "; required for gtpo_hybrid logs that do not record it (never guessed)" + tail
        if f.metadata.get("flag"):  # a bool that defaults to True: the flag turns it off
            g.add_argument(name, dest=f.name, action="store_const", const=not f.default, default=None,
                           help=f.metadata["help"] + tail)
            continue
        kw = {"choices": list(f.metadata["choices"])} if f.metadata.get("choices") else {}
        g.add_argument(name, dest=f.name, type=option_type(EstimatorOptions, f.name), default=None,
                       help=f.metadata["help"] + tail, **kw)


def add_options(p):
    p.add_argument("--calibration", default=None,
                   help="the calibration that scored the rollouts (default: read from the logs; a file or built-in "
                        "name given here must have the hash the logs record)")
    p.add_argument("--delta", type=float, default=0.05, help="|rho| a discriminative component must exceed")
    p.add_argument("--alpha", type=float, default=1.0, help="scale for new weights alpha * rho (> 0)")
    p.add_argument("--rule", choices=["keep_flip_zero", "proportional"], default="keep_flip_zero",
                   help="how evidence sets a weight: keep_flip_zero keeps a weight of the right sign, flips a wrong "
                        "one and zeroes a non-discriminative one; proportional sets alpha * rho (docs/irc.md)")
    p.add_argument("--aggregate", choices=["any", "mean"], default="any",
                   help="a component's per-rollout value: any = fired in some turn (the paper's presence test), "
                        "mean = its mean over the rollout's turns")
    p.add_argument("--confidence", type=float, default=0.99,
                   help="family-wise confidence: a weight changes only if its p-value (Fisher's exact test; a t-test "
                        "for --aggregate mean) times the number of "
                        "tested components is below 1 - this and its interval at 1 - (1 - this) / m excludes 0")
    p.add_argument("--min-rollouts", type=int, default=10,
                   help="test a component only if it fired in at least this many rollouts and was absent in as many")
    p.add_argument("--eta", type=float, default=0.2,
                   help="stopping rule: Corr(mean per-turn reward, outcome) must exceed this")
    p.add_argument("--pin", nargs="*", default=None,
                   help="components never changed, by name (of the logs' component set; default: the set's own "
                        "pins, gold_exact for tau; --pin alone: none)")
    p.add_argument("--group-size", type=int, default=None,
                   help="only for logs without group ids (an eval's rollouts-eval.jsonl, logs of older versions): "
                        "rollouts per group, consecutive episodes of a task in a file (an eval's --trials; a "
                        "training run's --rollout.n_samples_per_prompt)")
    p.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap resamples per interval, at least (more where the corrected level needs them)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    g = p.add_argument_group("advantage check (default: the run's settings, read from the logs)")
    g.add_argument("--estimator", default=None,
                   help="a registered advantage estimator whose advantages are checked (default: the one the logs "
                        "record; needed for logs of a run trained with one IRC cannot recompute, e.g. OpenRLHF's own)")
    _estimator_flags(g)
    g.add_argument("--estimator-option", action="append", default=None, metavar="NAME=VALUE",
                   help="an option the estimator declares itself (its --<estimator>.NAME in training), for logs that "
                        "do not record it; repeatable (default: the logs' value; a different value is refused)")


def _options(ns, batch=None):
    """(IRCOptions, notes) for these flags and logs."""
    from openrlhf_mtgrpo.irc.analyze import IRCOptions
    from openrlhf_mtgrpo.irc.settings import options_from_logs

    explicit = {k: getattr(ns, k, None) for k in FROM_LOGS}
    for item in getattr(ns, "estimator_option", None) or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--estimator-option {item!r}: expected NAME=VALUE")
        explicit[key.strip()] = value  # text: typed by the estimator's options class (irc/settings.py)
    notes = []
    resolved = {k: v for k, v in explicit.items() if v is not None and k in FROM_LOGS}
    if batch is not None:
        resolved, notes = options_from_logs(batch.meta, explicit)
    return IRCOptions(delta=ns.delta, alpha=ns.alpha, rule=ns.rule, aggregate=ns.aggregate,
                      confidence=ns.confidence, min_rollouts=ns.min_rollouts, eta=ns.eta,
                      pin=None if ns.pin is None else tuple(ns.pin),
                      bootstrap=ns.bootstrap, seed=ns.seed, **resolved), notes


def _summary(result, paths, notes=(), out=None):
    from openrlhf_mtgrpo.irc.report import summary_lines, table

    out = out or sys.stdout
    print(table(result), file=out)
    print("", file=out)
    for n in notes:
        print(f"note: {n}", file=out)
    for line in summary_lines(result):
        print(line, file=out)
    for s in result.skipped_lines[:10]:
        print(f"  skipped {s}", file=out)
    if not result.writable:
        print("no calibration written", file=out)
    for k, v in paths.items():
        print(f"wrote {k}: {v}", file=out)


def _load(ns, logs, explicit_calibration):
    """(batch, calibration, options, notes) or raise."""
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.irc.settings import resolve_calibration

    batch = read_logs(logs, group_size=ns.group_size)
    if batch.n == 0:
        raise ValueError(f"no rollouts in {', '.join(logs)} ({batch.excluded_infra} infrastructure failures, "
                         f"{len(batch.report.bad)} unreadable lines): nothing to calibrate, no calibration written")
    cal, notes = resolve_calibration(batch.meta, explicit_calibration)
    opts, more = _options(ns, batch)
    return batch, cal, opts, notes + more


def cmd_analyze(ns) -> int:
    from openrlhf_mtgrpo.irc.analyze import analyze
    from openrlhf_mtgrpo.irc.report import write_outputs
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError

    try:
        batch, cal, opts, notes = _load(ns, ns.logs, ns.calibration)
    except (CalibrationError, FileNotFoundError, ValueError) as e:
        print(f"mtgrpo irc: error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        result = analyze(batch, cal, opts, sources=ns.logs)
    except ValueError as e:  # CalibrationError included: a calibration IRC cannot write
        print(f"mtgrpo irc: error: {e}", file=sys.stderr)
        return 2
    paths = write_outputs(result, ns.out)
    _summary(result, paths, notes)
    print(f"analysed {batch.n} episodes in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_iterate(ns) -> int:
    """Each batch is analysed with the calibration that scored it (from its logs); the chain is checked:
    batch i+1 should have been scored with the calibration batch i produced.  Stops at the paper's rule."""
    from openrlhf_mtgrpo.irc.analyze import analyze
    from openrlhf_mtgrpo.irc.report import write_outputs
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError
    from openrlhf_mtgrpo.jsonl import append_jsonl

    history = os.path.join(ns.out, "history.jsonl")
    previous = None
    for i, logs in enumerate(ns.logs):
        try:
            batch, cal, opts, notes = _load(ns, [logs], ns.calibration if i == 0 else None)
        except (CalibrationError, FileNotFoundError, ValueError) as e:
            print(f"mtgrpo irc: error: iteration {i + 1} ({logs}): {e}", file=sys.stderr)
            return 2
        if previous is not None and (previous.weights != cal.weights or tuple(previous.clip) != tuple(cal.clip)):
            notes.append(f"WARNING: these rollouts were scored with {cal.name} (sha256 {cal.sha256[:12]}), whose "
                         f"weights differ from those iteration {i} produced: the batches are not one IRC chain")
        try:
            result = analyze(batch, cal, opts, sources=[logs])
        except ValueError as e:
            print(f"mtgrpo irc: error: iteration {i + 1} ({logs}): {e}", file=sys.stderr)
            return 2
        paths = write_outputs(result, ns.out, stem=f"iter{i + 1}")
        print(f"== iteration {i + 1}: {logs}")
        _summary(result, paths, notes)
        append_jsonl(history, {"iteration": i + 1, "logs": logs, "rollouts": result.n_rollouts,
                               "component_set": cal.component_set, "calibration_in": cal.sha256,
                               "calibration_out": result.calibration.sha256 if result.writable else None,
                               "weights": result.calibration.weights, "no_signal": result.no_signal,
                               "changes": result.changes, "warnings": result.warnings, "converged": result.converged,
                               "misalignment_before": result.misalignment_before,
                               "misalignment_after": result.misalignment_after})
        previous = result.calibration if result.writable else cal
        if result.converged:
            left = len(ns.logs) - i - 1
            print(f"converged at iteration {i + 1} (the paper's stopping rule)"
                  + (f"; {left} later batch(es) not analysed" if left else ""))
            break
    print(f"history: {history}")
    return 0


def add_commands(sub) -> None:
    irc = sub.add_parser("irc", help="Iterative Reward Calibration on rollout logs")
    isub = irc.add_subparsers(dest="irc_command", required=True)
    a = isub.add_parser("analyze", help="analyse logs, write a new calibration, report and chart")
    a.add_argument("logs", nargs="+", help="rollout log files or directories")
    a.add_argument("--out", default="irc_out",
                   help="folder for irc_calibration.yaml, irc_report.md, irc_chart.png and irc_result.json")
    add_options(a)
    a.set_defaults(fn=cmd_analyze)
    it = isub.add_parser("iterate", help="analyse the log batches of successive calibrations in order")
    it.add_argument("--logs", nargs="+", required=True, help="one file or directory per iteration, in order")
    it.add_argument("--out", default="irc_out",
                    help="folder for each iteration's outputs (iter1_*, iter2_*, ...) and history.jsonl")
    add_options(it)
    it.set_defaults(fn=cmd_iterate)
