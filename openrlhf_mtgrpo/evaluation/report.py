"""The printed form of a pass^k report: the table, the episode counts, and why it is incomplete."""

from __future__ import annotations

from typing import List, Mapping, Optional

from openrlhf_mtgrpo.evaluation.passk import PassKReport


def _num(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _by_count(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def pass_k_table(rep: PassKReport, title: str = "") -> str:
    """pass^k for k = 1..trials, each with its bootstrap interval and the tasks and trials it covers."""
    ci = f"{round(rep.confidence * 100)}% CI (bootstrap over tasks)"
    lines = [title] if title else []
    lines.append(f"{'k':<3}{'pass^k':<9}{ci:<34}{'tasks':<8}trials/task")
    for r in rep.rows:
        interval = "n/a" if r.ci_low is None else f"[{r.ci_low:.4f}, {r.ci_high:.4f}]"
        lines.append(f"{r.k:<3}{_num(r.value):<9}{interval:<34}{f'{r.tasks}/{r.tasks_requested}':<8}{r.trials}")
    return "\n".join(lines)


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and the noun in the number it takes: ``1 episode``, ``2 episodes`` (``plural``: irregular forms)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def episode_line(rep: PassKReport) -> str:
    """One line: the (task, trial) episodes requested, scored, failed by infrastructure, unscored, not run."""
    e = rep.episodes
    successes = sum(rep.successes_per_task.values())
    parts = [f"{counted(e['requested'], 'episode')} requested", f"{e['scored']} scored ({successes} succeeded"
             + (f"; policy failures scored 0: {_by_count(rep.policy_failures)}" if rep.policy_failures else "") + ")"]
    if e["infra"]:
        parts.append(counted(e["infra"], "infrastructure failure"))
    if e["unscored"]:
        parts.append(f"{e['unscored']} unscored")
    if e["not_run"]:
        parts.append(f"{e['not_run']} not run")
    return ", ".join(parts)


def endings_line(rep: PassKReport, rules: str = "") -> str:
    """One line: how the scored episodes ended, by kind, most first (``rules``: the run rules, described)."""
    if not rep.endings:
        return ""
    line = f"endings of the scored episodes: {_by_count(rep.endings)}"
    return line + (f" (run rules: {rules})" if rules else "")


def incomplete_line(rep: PassKReport) -> str:
    """One line: which tasks lack scored trials and why, by cause ("" when complete)."""
    if rep.complete:
        return ""
    e = rep.episodes
    why: List[str] = []
    if e["infra"]:
        why.append(f"{counted(e['infra'], 'infrastructure failure')} ({_by_count(rep.infra_causes)})")
    if e["unscored"]:
        reasons = sorted({m[2] for m in rep.missing if m[2] not in rep.infra_causes and m[2] != "not run"})
        why.append(f"{e['unscored']} unscored ({'; '.join(reasons)})")
    if e["not_run"]:
        why.append(f"{e['not_run']} not run")
    tasks = rep.incomplete_tasks
    shown = ", ".join(tasks[:10]) + (", ..." if len(tasks) > 10 else "")
    n_complete = len(rep.task_ids) - len(tasks)
    return (f"INCOMPLETE: {len(tasks)} of {counted(len(rep.task_ids), 'task')} ({shown}) "
            f"{'lacks' if len(tasks) == 1 else 'lack'} scored trials: {'; '.join(why)}. pass^k above covers the "
            f"{counted(n_complete, 'complete task')} only; rerun the same command to retry.")
