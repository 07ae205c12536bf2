"""IRC outputs: the new calibration YAML, a Markdown report and a PNG chart."""

from __future__ import annotations

import json
import math
import os
from typing import Dict

from openrlhf_mtgrpo.irc.analyze import IRCResult


def _f(v, fmt="{:+.3f}"):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def table(result: IRCResult) -> str:
    head = ("| component | weight before | fires (turns) | fires (rollouts) | rho any | rho mean | 95% CI | tier "
            "| mean adv. before | weight after |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in result.components.values():
        ci = "n/a" if c.ci is None else f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]"
        rows.append(f"| {c.name} | {c.weight_before:+g} | {c.turn_rate:.1%} | {c.rollout_rate:.1%} | "
                    f"{_f(c.rho_any)} | {_f(c.rho_mean)} | {ci} | {c.tier} | {_f(c.mean_advantage_before)} | "
                    f"{c.weight_after:+g} |")
    return head + "\n" + "\n".join(rows)


def markdown(result: IRCResult) -> str:
    o = result.options
    lines = ["# Iterative Reward Calibration report", "",
             f"- rollouts analysed: {result.n_rollouts} (success rate {result.success_rate:.1%}); "
             f"excluded infrastructure failures: {result.excluded_infra}; unreadable log lines skipped: "
             f"{len(result.skipped_lines)}",
             f"- decision aggregate: `{o.aggregate}`, delta = {o.delta}, alpha = {o.alpha}, rule = `{o.rule}`, "
             f"pinned: {', '.join(o.pin) or 'none'}",
             f"- advantage check with `{o.estimator}`: turn misalignment rate {_f(result.misalignment_before, '{:.3f}')}"
             f" -> {_f(result.misalignment_after, '{:.3f}')}; components whose mean advantage points against their "
             f"weight: {', '.join(result.tier_mismatches_before) or 'none'} -> "
             f"{', '.join(result.tier_mismatches_after) or 'none'} ({result.rounds} round(s))", ""]
    if result.no_signal:
        lines += [f"**{result.no_signal}**", ""]
    lines += [table(result), "", "## Changes and reasons", ""]
    for c in result.components.values():
        change = "unchanged" if c.weight_after == c.weight_before else f"{c.weight_before:+g} -> {c.weight_after:+g}"
        lines.append(f"- **{c.name}** ({change}): " + ("; ".join(c.reasons) or "no change needed"))
    if result.skipped_lines:
        lines += ["", "## Skipped log lines", ""] + [f"- {s}" for s in result.skipped_lines[:50]]
    lines += ["", f"New calibration: `{result.calibration.name}` (parent sha256 "
                  f"`{result.calibration.provenance.get('parent_sha256', '')[:12]}`)."]
    return "\n".join(lines) + "\n"


def chart(result: IRCResult, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = list(result.components.values())
    names = [c.name for c in comps]
    rho = [(c.rho_any if result.options.aggregate == "any" else c.rho_mean) or 0.0 for c in comps]
    err_lo = [max(0.0, r - c.ci[0]) if c.ci else 0 for r, c in zip(rho, comps)]
    err_hi = [max(0.0, c.ci[1] - r) if c.ci else 0 for r, c in zip(rho, comps)]
    colors = {"discriminative_positive": "tab:green", "anti_discriminative": "tab:red"}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    y = range(len(names))
    a1.barh(y, rho, xerr=[err_lo, err_hi], color=[colors.get(c.tier, "tab:gray") for c in comps])
    a1.axvline(result.options.delta, ls="--", c="k", lw=0.8)
    a1.axvline(-result.options.delta, ls="--", c="k", lw=0.8)
    a1.set_yticks(list(y), names)
    a1.set_xlabel(f"point-biserial rho ({result.options.aggregate}) with {int(result.options.confidence * 100)}% CI")
    a1.set_title("discriminative power")
    h = 0.38
    a2.barh([i - h / 2 for i in y], [c.weight_before for c in comps], h, label="before", color="tab:blue")
    a2.barh([i + h / 2 for i in y], [c.weight_after for c in comps], h, label="after", color="tab:orange")
    a2.axvline(0, c="k", lw=0.8)
    a2.set_title("weights")
    a2.legend()
    fig.suptitle(f"IRC on {result.n_rollouts} rollouts: misalignment ({result.options.estimator}) "
                 f"{_f(result.misalignment_before, '{:.3f}')} -> {_f(result.misalignment_after, '{:.3f}')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: IRCResult, out_dir: str, stem: str = "irc") -> Dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = {"calibration": os.path.join(out_dir, f"{stem}_calibration.yaml"),
             "report": os.path.join(out_dir, f"{stem}_report.md"),
             "chart": os.path.join(out_dir, f"{stem}_chart.png"),
             "json": os.path.join(out_dir, f"{stem}_result.json")}
    result.calibration.save(paths["calibration"])
    with open(paths["report"], "w") as f:
        f.write(markdown(result))
    chart(result, paths["chart"])
    with open(paths["json"], "w") as f:
        json.dump({"n_rollouts": result.n_rollouts, "success_rate": result.success_rate,
                   "misalignment_before": result.misalignment_before, "misalignment_after": result.misalignment_after,
                   "no_signal": result.no_signal, "skipped_lines": result.skipped_lines,
                   "components": {c.name: {k: v for k, v in c.__dict__.items()} for c in result.components.values()},
                   "calibration_sha256": result.calibration.sha256}, f, indent=1, default=str)
    return paths
