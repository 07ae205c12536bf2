"""IRC outputs: the new calibration YAML, a Markdown report, a PNG chart, a JSON result, and a
plain-language summary of what changed and why."""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List

from openrlhf_mtgrpo.irc.analyze import IRCResult


def _f(v, fmt="{:+.3f}"):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _p(v):
    return "n/a" if v is None else (f"{v:.2g}" if v >= 1e-4 else "<1e-4")


def _count(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "0/0"


def table(result: IRCResult) -> str:
    head = ("| component | weight before | fired: rollouts | fired: turns | rho any | rho mean | p (adj.) | interval "
            "| evidence | tier after | weight after | mean adv. before -> after | opposing turns before -> after |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in result.components.values():
        ci = "n/a" if c.ci is None else f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] at {c.ci_level:.1%}"
        p = "n/a" if c.p_value is None else f"{_p(c.p_value)} ({_p(c.p_adjusted)})"
        opp = "not judged" if c.opposing_before is None else \
            f"{c.opposing_before}/{c.judged_turns_before} -> {c.opposing_after}/{c.judged_turns_after}"
        evidence = c.evidence.replace("_", " ") + (" (pinned)" if c.pinned else "")
        rows.append(f"| {c.name} | {c.weight_before:+g} | {_count(c.fired_rollouts, c.n_rollouts)} | "
                    f"{_count(c.fired_turns, c.n_turns)} | {_f(c.rho_any)} | {_f(c.rho_mean)} | {p} | {ci} | "
                    f"{evidence} | {c.tier} | {c.weight_after:+g} | {_f(c.mean_advantage_before)} -> "
                    f"{_f(c.mean_advantage_after)} | {opp} |")
    return head + "\n" + "\n".join(rows)


def summary_lines(result: IRCResult) -> List[str]:
    """What a user should conclude, in plain language."""
    o, meta = result.options, result.meta
    out = []
    n, s = result.n_rollouts, result.n_success
    src = ""
    if meta is not None:
        b = meta.benchmark
        bench = (f"benchmark {b.get('version')} (tasks sha256 {str(b.get('tasks_sha256'))[:12]}, db sha256 "
                 f"{str(b.get('db_sha256'))[:12]})") if b else "benchmark not recorded in the logs"
        sizes = ", ".join(f"{k} group(s) of {sz}" for sz, k in sorted(meta.group_sizes.items())) or "no groups"
        src = f"; {bench}; {sizes} ({meta.grouping})"
    out.append(f"Analysed {n} rollouts: {s} succeeded, {n - s} failed ({result.success_rate:.1%} success); "
               f"{result.excluded_infra} infrastructure failure(s) excluded{src}.")
    if result.no_signal:
        out.append(result.no_signal + ".")
        return out
    out.append(f"Advantage check with the run's estimator {o.estimator} (pool={o.pool}, gamma={o.gamma}, "
               f"lam={o.lam}, turn_indexing={o.turn_indexing}).")
    level = next((c.ci_level for c in result.components.values() if c.ci_level), None)
    tested = [c.name for c in result.components.values() if c.evidence in ("positive", "anti", "null", "inconclusive")
              and not c.pinned]
    out.append(f"{len(tested)} component(s) tested (fired in at least {o.min_rollouts} rollouts and absent from at "
               f"least {o.min_rollouts}); each interval is at {_f(level, '{:.2%}')} so that all of them together hold "
               f"at {o.confidence:.0%}. A weight changes only when its interval excludes 0 with |rho| > {o.delta} "
               f"(discriminative) or lies within +-{o.delta} (not discriminative: weight 0).")
    if result.changes:
        out.append("Changed: " + "; ".join(result.changes) + ".")
    else:
        out.append("No weight changed: no component showed evidence strong enough for a change.")
    kept = [f"{c.name} ({c.evidence.replace('_', ' ')}, fired in {c.fired_rollouts} of {c.n_rollouts})"
            for c in result.components.values() if c.evidence in ("inconclusive", "too_few") and not c.pinned]
    if kept:
        out.append("Kept for lack of evidence (more rollouts would decide them): " + ", ".join(kept) + ".")
    b, a = result.before, result.after
    out.append(f"Per-component misalignment (the paper's measure: turns of a component whose advantage opposes the "
               f"direction the evidence gives it): {b.component_opposing}/{b.component_turns} "
               f"({b.component_opposing_rate:.1%}) -> {a.component_opposing}/{a.component_turns} "
               f"({a.component_opposing_rate:.1%}); components against their direction: "
               f"{', '.join(b.misaligned_components) or 'none'} -> {', '.join(a.misaligned_components) or 'none'}.")
    out.append(f"Algorithm 1 (mean advantage against the weight's sign): {', '.join(b.tier_mismatches) or 'none'} -> "
               f"{', '.join(a.tier_mismatches) or 'none'}. Turn misalignment (turns whose advantage opposes their "
               f"rollout's outcome): {b.misaligned_turns}/{b.judged_turns} ({b.turn_misalignment:.1%}) -> "
               f"{a.misaligned_turns}/{a.judged_turns} ({a.turn_misalignment:.1%}).")
    out.append(f"Stopping rule (paper): Corr(mean per-turn reward, outcome) {_f(b.reward_outcome_corr)} "
               f"(p {_p(b.reward_outcome_p)}) -> {_f(a.reward_outcome_corr)} (p {_p(a.reward_outcome_p)}), "
               f"threshold eta = {o.eta}, and no Algorithm 1 mismatch: "
               + ("MET - the calibration has converged; stop iterating." if result.converged else
                  "NOT MET - train with the new calibration, collect rollouts and run IRC again."))
    for w in result.warnings:
        out.append("WARNING: " + w)
    return out


def markdown(result: IRCResult) -> str:
    o = result.options
    lines = ["# Iterative Reward Calibration report", "", "## Summary", ""]
    lines += [f"- {s}" for s in summary_lines(result)]
    lines += ["", f"Options: aggregate `{o.aggregate}`, delta = {o.delta}, alpha = {o.alpha}, rule `{o.rule}`, "
                  f"confidence {o.confidence} (family-wise), min rollouts {o.min_rollouts}, bootstrap {o.bootstrap}, "
                  f"eta = {o.eta}, pinned: {', '.join(o.pin) or 'none'}; unreadable log lines skipped: "
                  f"{len(result.skipped_lines)}.", ""]
    lines += [table(result), "", "## Every component: decision and reason", ""]
    for c in result.components.values():
        change = "unchanged" if c.weight_after == c.weight_before else f"{c.weight_before:+g} -> {c.weight_after:+g}"
        lines.append(f"- **{c.name}** ({change}): " + ("; ".join(c.reasons) or "no change needed"))
    if result.skipped_lines:
        lines += ["", "## Skipped log lines", ""] + [f"- {s}" for s in result.skipped_lines[:50]]
    if result.writable:
        lines += ["", f"New calibration: `{result.calibration.name}` (parent sha256 "
                      f"`{result.calibration.provenance.get('parent_sha256', '')[:12]}`)."]
    else:
        lines += ["", "No calibration written."]
    return "\n".join(lines) + "\n"


EVIDENCE_COLORS = {"positive": "tab:green", "anti": "tab:red", "null": "tab:blue"}


def chart(result: IRCResult, path: str) -> str:
    import matplotlib.pyplot as plt

    fig = chart_figure(result)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_figure(result: IRCResult):
    """The chart: correlations with their intervals coloured by evidence, weights before/after; both legended."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    comps = list(result.components.values())
    names = [f"{c.name} ({c.fired_rollouts}/{c.n_rollouts})" for c in comps]
    rho = [(c.rho_any if result.options.aggregate == "any" else c.rho_mean) or 0.0 for c in comps]
    err_lo = [max(0.0, r - c.ci[0]) if c.ci else 0 for r, c in zip(rho, comps)]
    err_hi = [max(0.0, c.ci[1] - r) if c.ci else 0 for r, c in zip(rho, comps)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 6.2), sharey=True)
    y = list(range(len(names)))
    a1.barh(y, rho, xerr=[err_lo, err_hi], color=[EVIDENCE_COLORS.get(c.evidence, "tab:gray") for c in comps],
            capsize=3)
    a1.axvline(result.options.delta, ls="--", c="k", lw=0.8)
    a1.axvline(-result.options.delta, ls="--", c="k", lw=0.8)
    a1.axvline(0, c="k", lw=0.5)
    a1.set_yticks(y, names)
    level = next((c.ci_level for c in comps if c.ci_level), None)
    a1.set_xlabel(f"point-biserial rho ({result.options.aggregate}) with bootstrap interval"
                  + (f" at {level:.1%}" if level else ""))
    a1.set_title("discriminative power (label: rollouts where it fired)")
    a1.legend(handles=[Patch(color="tab:green", label="positive evidence"),
                       Patch(color="tab:red", label="anti evidence"),
                       Patch(color="tab:blue", label="evidence of no effect"),
                       Patch(color="tab:gray", label="no decision (inconclusive, too few, pinned)"),
                       plt.Line2D([], [], ls="--", c="k", lw=0.8, label=f"+-delta = {result.options.delta}")],
              loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)
    h = 0.38
    a2.barh([i - h / 2 for i in y], [c.weight_before for c in comps], h, label="weight before", color="tab:blue")
    a2.barh([i + h / 2 for i in y], [c.weight_after for c in comps], h, label="weight after", color="tab:orange")
    a2.axvline(0, c="k", lw=0.8)
    a2.set_title("weights")
    a2.set_xlabel("per-turn reward weight")
    a2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    b, a = result.before, result.after
    sub = "" if b is None else (f": per-component misalignment {b.component_opposing_rate:.1%} -> "
                                f"{a.component_opposing_rate:.1%}, {len(result.changes)} weight(s) changed")
    fig.suptitle(f"IRC on {result.n_rollouts} rollouts ({result.n_success} successes){sub}")
    fig.tight_layout()
    return fig


def write_outputs(result: IRCResult, out_dir: str, stem: str = "irc") -> Dict[str, str]:
    """Report, chart and JSON always; the calibration only from rollouts with both outcomes."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"report": os.path.join(out_dir, f"{stem}_report.md"),
             "chart": os.path.join(out_dir, f"{stem}_chart.png"),
             "json": os.path.join(out_dir, f"{stem}_result.json")}
    if result.writable:
        paths["calibration"] = os.path.join(out_dir, f"{stem}_calibration.yaml")
        result.calibration.save(paths["calibration"])
    with open(paths["report"], "w") as f:
        f.write(markdown(result))
    chart(result, paths["chart"])
    with open(paths["json"], "w") as f:
        json.dump({"n_rollouts": result.n_rollouts, "n_success": result.n_success,
                   "success_rate": result.success_rate, "no_signal": result.no_signal,
                   "converged": result.converged, "changes": result.changes, "warnings": result.warnings,
                   "before": None if result.before is None else result.before.__dict__,
                   "after": None if result.after is None else result.after.__dict__,
                   "skipped_lines": result.skipped_lines, "summary": summary_lines(result),
                   "components": {c.name: dict(c.__dict__) for c in result.components.values()},
                   "calibration_sha256": result.calibration.sha256 if result.writable else None}, f, indent=1,
                  default=str)
    return paths
