"""IRC outputs: the new calibration YAML, a Markdown report, a PNG chart, a JSON result, and a
plain-language summary of what changed and why."""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional

from openrlhf_mtgrpo.identity import identity_text
from openrlhf_mtgrpo.irc.analyze import IRCResult, format_p


def _f(v, fmt="{:+.3f}"):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


_p = format_p


def _count(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "0/0"


def cell(k: int, n: int) -> str:
    """``k/n (p%)``, one decimal."""
    return f"{k}/{n} ({k / n:.1%})" if n else "0/0 (n/a)"


def change_p_value(k1: int, n1: int, k2: int, n2: int) -> Optional[float]:
    """Two-sided p-value of "the share k1/n1 equals k2/n2" (Fisher's exact test of the 2x2 table); None when
    either count has no turns.  It treats the two counts as independent samples: before and after judge
    (mostly) the same turns, so it is a rough guide to whether a change is beyond noise."""
    if not n1 or not n2:
        return None
    from scipy import stats

    return float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])


def change_text(k1: int, n1: int, k2: int, n2: int, level: float = 0.05) -> str:
    """``k1/n1 (..%) -> k2/n2 (..%)`` and whether the change is within noise (:func:`change_p_value`)."""
    p = change_p_value(k1, n1, k2, n2)
    if not n1 and not n2:
        verdict = "no turns judged"
    elif p is None:
        verdict = "not comparable"
    elif p >= level:
        verdict = f"within noise, exact p = {_p(p)}"
    else:
        verdict = f"beyond noise, exact p = {_p(p)}"
    return f"{cell(k1, n1)} -> {cell(k2, n2)} ({verdict})"


def evidence_text(c) -> str:
    """rho, its interval, p-values and firing counts of one component, in words."""
    rho = c.rho_any if c.p_method == "fisher_exact" or c.rho_mean is None else c.rho_mean
    method = {"fisher_exact": "Fisher exact", "pointbiserial_t": "t-test"}.get(c.p_method, "")
    parts = [f"rho {_f(rho)}"]
    if c.ci is not None:
        parts.append(f"{c.ci_level:.2%} interval [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]")
    if c.p_value is not None:
        parts.append(f"p {_p(c.p_value)} ({method}; Bonferroni-adjusted {_p(c.p_adjusted)})")
    parts.append(f"fired in {c.fired_rollouts} of {c.n_rollouts} rollouts ({c.fired_in_success} successes, "
                 f"{c.fired_in_failure} failures)")
    return ", ".join(parts)


def kept_text(c, min_rollouts: int) -> str:
    """Why a component's weight was kept for lack of evidence, in words."""
    if c.evidence == "too_few":
        k, n = c.fired_rollouts, c.n_rollouts
        side = (f"fired in only {k} rollouts" if k < min_rollouts else f"was absent from only {n - k} rollouts")
        return (f"{c.name} ({side} of {n}, fewer than --min-rollouts {min_rollouts}: its rho {_f(c.rho_any)} "
                f"rests on too few to test)")
    return f"{c.name} ({evidence_text(c)})"


def evidence_label(c) -> str:
    """A component's evidence in words, for the table: ``no_variation`` says which way it did not vary."""
    if c.evidence == "no_variation":
        return "never fired" if c.fired_rollouts == 0 else "fired in every rollout"
    return c.evidence.replace("_", " ")


def untestable_lines(result: IRCResult) -> List[str]:
    """One sentence per component that never fired, or fired in every rollout: no evidence either way."""
    n, out = result.n_rollouts, []
    for c in result.components.values():
        if c.fired_rollouts == 0:
            out.append(f"`{c.name}` never fired in these {n} rollouts: no evidence either way (weight "
                       f"{c.weight_after:+g} kept).")
        elif n and c.fired_rollouts == n:
            out.append(f"`{c.name}` fired in every one of these {n} rollouts: no evidence either way (weight "
                       f"{c.weight_after:+g} kept).")
    return out


def table(result: IRCResult) -> str:
    head = ("| component | weight before | fired: rollouts | fired: turns | rho any | rho mean | p (Bonferroni) "
            "| interval | evidence | tier after | weight after | mean adv. before -> after "
            "| opposing turns before -> after |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in result.components.values():
        ci = "n/a" if c.ci is None else f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] at {c.ci_level:.1%}"
        p = "n/a" if c.p_value is None else f"{_p(c.p_value)} ({_p(c.p_adjusted)})"
        opp = "not judged" if c.opposing_before is None else \
            f"{c.opposing_before}/{c.judged_turns_before} -> {c.opposing_after}/{c.judged_turns_after}"
        evidence = evidence_label(c) + (" (pinned)" if c.pinned else "")
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
        bench = f"benchmark {identity_text(b)}" if b else "benchmark not recorded in the logs"
        sizes = ", ".join(f"{k} group(s) of {sz}" for sz, k in sorted(meta.group_sizes.items())) or "no groups"
        src = f"; {bench}; domain {meta.domain}, component set {meta.component_set}; {sizes} ({meta.grouping})"
    out.append(f"Analysed {n} rollouts: {s} succeeded, {n - s} failed ({result.success_rate:.1%} success); "
               f"{result.excluded_infra} infrastructure failure(s) excluded{src}.")
    if result.no_signal:
        out.append(result.no_signal + ".")
        return out + untestable_lines(result)
    out.append(f"Advantage check with the run's estimator {o.estimator} (pool={o.pool}, gamma={o.gamma}, "
               f"lam={o.lam}, turn_indexing={o.turn_indexing}).")
    level = next((c.ci_level for c in result.components.values() if c.ci_level), None)
    tested = [c.name for c in result.components.values() if c.evidence in ("positive", "anti", "null", "inconclusive")
              and not c.pinned]
    m = len(tested)
    if m:
        out.append(f"{m} component(s) tested (fired in at least {o.min_rollouts} rollouts and absent from at least "
                   f"{o.min_rollouts}). A weight changes only on evidence, at {o.confidence:.0%} for all {m} "
                   f"together: its p-value (Fisher's exact test of the 2x2 table; the t-test for the mean aggregate) "
                   f"times {m} below {1 - o.confidence:g}, its bootstrap interval at {_f(level, '{:.2%}')} "
                   f"({result.bootstrap_draws} resamples) beyond 0, and |rho| > {o.delta} (discriminative); or the "
                   f"interval within +-{o.delta} (not discriminative: weight 0).")
    else:
        out.append(f"No component could be tested: none fired in at least {o.min_rollouts} rollouts and was absent "
                   f"from at least {o.min_rollouts} (--min-rollouts), so no weight can change on these "
                   f"{result.n_rollouts} rollouts.")
    if result.changes:
        out.append("Changed: " + "; ".join(result.changes) + ".")
        for c in result.components.values():
            if c.weight_after != c.weight_before:
                out.append(f"Why {c.name} {c.weight_before:+g} -> {c.weight_after:+g}: {c.evidence} evidence, "
                           f"{evidence_text(c)}.")
    else:
        out.append("No weight changed: no component showed evidence strong enough for a change.")
    agreed = [f"{c.name} {c.weight_after:+g}, tier {c.tier} ({evidence_text(c)})" for c in result.components.values()
              if c.evidence in ("positive", "anti", "null") and not c.pinned and c.weight_after == c.weight_before]
    if agreed:
        out.append("Kept because the evidence agrees with the weight: " + "; ".join(agreed) + ".")
    few = [kept_text(c, o.min_rollouts) for c in result.components.values() if c.evidence == "too_few"
           and not c.pinned]
    unsure = [kept_text(c, o.min_rollouts) for c in result.components.values() if c.evidence == "inconclusive"
              and not c.pinned]
    if unsure:
        out.append("Kept for lack of evidence (inconclusive; more rollouts would decide them): " + "; ".join(unsure)
                   + ".")
    if few:
        out.append("Kept for lack of evidence (too few rollouts to test): " + "; ".join(few) + ".")
    out += untestable_lines(result)
    b, a = result.before, result.after
    out.append(f"Per-component misalignment (the paper's measure: turns of a component whose advantage opposes the "
               f"direction the evidence gives it): "
               f"{change_text(b.component_opposing, b.component_turns, a.component_opposing, a.component_turns)}; "
               f"components against their direction: {', '.join(b.misaligned_components) or 'none'} -> "
               f"{', '.join(a.misaligned_components) or 'none'}.")
    out.append(f"Algorithm 1 (mean advantage against the weight's sign): {', '.join(b.tier_mismatches) or 'none'} -> "
               f"{', '.join(a.tier_mismatches) or 'none'}. Turn misalignment (turns whose advantage opposes their "
               f"rollout's outcome): "
               f"{change_text(b.misaligned_turns, b.judged_turns, a.misaligned_turns, a.judged_turns)}.")
    if meta is not None and meta.edg_gated_episodes:
        out.append(f"EDG: {meta.edg_gated_episodes} of {n} episodes were scored with some gate closed; both checks "
                   "apply each episode's gates, so the weights are the only difference between before and after.")
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
                  f"confidence {o.confidence} (family-wise), min rollouts {o.min_rollouts}, bootstrap {o.bootstrap} "
                  f"(at least; {result.bootstrap_draws} used), "
                  f"eta = {o.eta}, pinned: {', '.join(o.pin) or 'none'}; unreadable log lines skipped: "
                  f"{len(result.skipped_lines)}.", ""]
    lines += [table(result), "", "## Every component: decision and reason", ""]
    for c in result.components.values():
        change = "unchanged" if c.weight_after == c.weight_before else f"{c.weight_before:+g} -> {c.weight_after:+g}"
        reasons = list(c.reasons)
        if c.evidence == "no_variation":  # in words: which way it did not vary
            reasons = [("pinned: " if c.pinned else "") + ("never fired in" if c.fired_rollouts == 0 else
                                                           "fired in every one of")
                       + f" these {c.n_rollouts} rollouts: no evidence either way, weight kept"]
        lines.append(f"- **{c.name}** ({change}): " + ("; ".join(reasons) or "no change needed"))
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
    names = [f"{c.name}{' [pinned]' if c.pinned else ''} ({c.fired_rollouts}/{c.n_rollouts})" for c in comps]
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
                  + (f" at {level:.2%}" if level else ""))
    a1.set_title("discriminative power (label: rollouts where it fired)")
    a1.legend(handles=[Patch(color="tab:green", label="positive evidence"),
                       Patch(color="tab:red", label="anti evidence"),
                       Patch(color="tab:blue", label="evidence of no effect"),
                       Patch(color="tab:gray", label="no decision (inconclusive, too few, never fired)"),
                       plt.Line2D([], [], ls="--", c="k", lw=0.8, label=f"+-delta = {result.options.delta}")],
              loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)
    h = 0.38
    # colours of their own: the left panel's colours mean evidence
    a2.barh([i - h / 2 for i in y], [c.weight_before for c in comps], h, label="weight before", color="white",
            edgecolor="black", hatch="//")
    a2.barh([i + h / 2 for i in y], [c.weight_after for c in comps], h, label="weight after", color="tab:purple")
    a2.axvline(0, c="k", lw=0.8)
    a2.set_title("weights")
    a2.set_xlabel("per-turn reward weight")
    a2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    b, a = result.before, result.after
    sub = "" if b is None else (
        "\nper-component misalignment (turns against their component's direction) "
        + change_text(b.component_opposing, b.component_turns, a.component_opposing, a.component_turns)
        + f"; {len(result.changes)} of {len(comps)} weights changed")
    fig.suptitle(f"IRC on {result.n_rollouts} rollouts ({result.n_success} successes, "
                 f"{result.n_rollouts - result.n_success} failures){sub}", fontsize=10)
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
    meta = result.meta
    with open(paths["json"], "w") as f:
        json.dump({"benchmark": meta.benchmark if meta is not None else None,
                   "domain": meta.domain if meta is not None else None,
                   "component_set": result.calibration.component_set,
                   "components": list(result.components),
                   "logs": list(result.calibration.provenance.get("logs") or []),
                   "grouping": meta.grouping if meta is not None else None,
                   "calibration_in": {"name": result.calibration.provenance.get("parent"),
                                      "sha256": result.calibration.provenance.get("parent_sha256")},
                   "options": result.calibration.provenance.get("options"), "tested_components": result.tested,
                   "bootstrap_draws": result.bootstrap_draws,
                   "n_rollouts": result.n_rollouts, "n_success": result.n_success,
                   "success_rate": result.success_rate, "no_signal": result.no_signal,
                   "converged": result.converged, "changes": result.changes, "warnings": result.warnings,
                   "before": None if result.before is None else result.before.__dict__,
                   "after": None if result.after is None else result.after.__dict__,
                   "skipped_lines": result.skipped_lines, "summary": summary_lines(result),
                   "components": {c.name: dict(c.__dict__) for c in result.components.values()},
                   "calibration_sha256": result.calibration.sha256 if result.writable else None}, f, indent=1,
                  default=str)
    return paths
