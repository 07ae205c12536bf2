"""What a run of ``train_ppo_ray`` with our estimator or our agent would reject after it had started.

Each check returns messages; the launcher's ``hierarchize`` hook (and ``mtgrpo train --dry-run``)
refuses to start when there is any.  Checks that reproduce one upstream makes later say where
(``train_ppo_ray.py`` is ``openrlhf/cli/train_ppo_ray.py`` of OpenRLHF 0.11.2).
"""

from __future__ import annotations

import os
from typing import List

from openrlhf_mtgrpo.rollout.config import DEFAULT_DOMAIN

#: suffixes ``openrlhf.datasets.utils.blending_datasets`` reads as local files
DATA_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv", ".arrow", ".txt")


class LaunchCheckError(ValueError):
    """One or more settings the run would reject after start-up."""


def _ours(args) -> bool:
    from openrlhf_mtgrpo.registry import is_plugin_estimator

    return is_plugin_estimator(args.algo.advantage.estimator)


def uses_our_agent(args) -> bool:
    path = getattr(getattr(args, "train", None), "agent_func_path", None)
    if not path:
        return False
    from openrlhf_mtgrpo.rollout import agent_func

    return os.path.realpath(path) == os.path.realpath(agent_func.__file__)


def estimator_problems(args) -> List[str]:
    """Our estimators need groups, and sane option values: the shared ``--gtpo.*`` ones and the estimator's own
    (``--<estimator>.*``), each checked as its field in the options dataclass declares."""
    if not _ours(args):
        return []
    est, out = args.algo.advantage.estimator, []
    n = args.rollout.n_samples_per_prompt
    if n < 2:
        out.append(f"--algo.advantage.estimator {est} needs groups: set --rollout.n_samples_per_prompt >= 2 (got {n})")
    if getattr(args, "gtpo", None) is not None:
        from openrlhf_mtgrpo.integration.cli_flags import estimator_option_problems

        out += estimator_option_problems(args)
    return out


def agent_problems(args) -> List[str]:
    """What the rollout actors will need when they load our agent file."""
    if not uses_our_agent(args):
        return []
    m = getattr(args, "mtgrpo", None)
    if m is None:
        return []
    out = []
    from openrlhf_mtgrpo.envs.base import DataNotFound
    from openrlhf_mtgrpo.envs import DomainError, load_domain

    domain = getattr(m, "domain", None) or DEFAULT_DOMAIN
    env = None
    try:  # the rollout workers load it the same way (the data by the lookup order: --mtgrpo.data_dir, ...)
        env = load_domain(domain, getattr(m, "version", None), m.data_dir)
    except DataNotFound as e:
        out.append(f"the openrlhf-mtgrpo agent needs the {domain} {getattr(m, 'version', None) or ''} benchmark "
                   f"data on every rollout node: {e} (or point --mtgrpo.data_dir at a folder that has it)")
    except DomainError as e:
        out.append(f"--mtgrpo.domain: {e}")
    else:
        from openrlhf_mtgrpo.rollout.prompt_choice import with_prompts

        try:
            with_prompts(env, agent=getattr(m, "agent_prompt", "benchmark"),
                         customer=getattr(m, "user_prompt", "benchmark"))
        except ValueError as e:
            out.append(str(e))
    if env is not None and env.customer_prompt is None:
        pass  # no customer (solo mode): no user simulator needed
    elif not m.user_base_url or not m.user_model:
        out.append("the openrlhf-mtgrpo agent needs a user simulator: set --mtgrpo.user_base_url and "
                   "--mtgrpo.user_model")
    elif not m.user_base_url.startswith(("http://", "https://")):
        out.append(f"--mtgrpo.user_base_url must be an http(s) URL of an OpenAI-compatible endpoint "
                   f"(got {m.user_base_url!r})")
    from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration

    try:
        load_calibration(m.calibration)
    except CalibrationError as e:
        out.append(f"--mtgrpo.calibration: {e}")
    from openrlhf_mtgrpo.registry import UnknownNameError, get_tool_call_parser

    try:
        get_tool_call_parser(m.tool_parser or "auto")
    except UnknownNameError as e:
        out.append(f"--mtgrpo.tool_parser: {e.args[0] if e.args else e}")
    if getattr(m, "max_turns", None) is not None:
        out.append("--mtgrpo.max_turns was removed: episodes end where the benchmark's own run ends them (its step "
                   "budget and error limit); to train with another budget set --mtgrpo.max_steps, in the "
                   "benchmark's unit (tau2: orchestrator steps, default 200; tau1: agent actions, default 30)")
    for key in ("max_steps", "max_errors"):
        value = getattr(m, key, None)
        if value is not None and value < 1:
            out.append(f"--mtgrpo.{key} must be >= 1 (got {value}; leave it unset for the benchmark's own)")
    if not (args.vllm.num_engines or 0) > 0:
        out.append("the openrlhf-mtgrpo agent runs inside the vLLM engines: set --vllm.num_engines >= 1")
    return out


def file_problems(args) -> List[str]:
    """The agent file and local prompt datasets, which upstream opens only inside Ray actors."""
    out = []
    path = getattr(args.train, "agent_func_path", None)
    if path:
        if not path.endswith(".py"):  # train_ppo_ray.py -> vllm_engine.py:20 asserts it in every engine
            out.append(f"--train.agent_func_path must be a .py file (got {path})")
        elif not os.path.isfile(path):
            out.append(f"--train.agent_func_path {path} does not exist (it must exist at this path on every node)")
    for ds in str(getattr(args.data, "prompt_dataset", "") or "").split(","):
        ds = ds.strip()
        local = ds.endswith(DATA_SUFFIXES) or ds.startswith(("/", "./", "../", "~"))
        if ds and local and not os.path.exists(os.path.expanduser(ds)):
            hint = " (write it with `mtgrpo data prepare`)" if ds.endswith(".jsonl") else ""
            out.append(f"--data.prompt_dataset {ds} does not exist{hint}")
    return out


def placement_problems(args) -> List[str]:
    """Upstream's checks at the start of ``train()`` and DeepSpeed's batch check, before Ray starts."""
    out = []
    actor_gpus = args.actor.num_nodes * args.actor.num_gpus_per_node
    colocated = args.train.colocate_actor_ref or args.train.colocate_all
    if colocated and args.algo.kl.init_coef > 0 and (
            args.actor.num_nodes, args.actor.num_gpus_per_node) != (args.ref.num_nodes, args.ref.num_gpus_per_node):
        out.append("colocated actor and reference need the same --actor/--ref num_nodes and num_gpus_per_node "
                   "(OpenRLHF asserts it at train_ppo_ray.py:42)")
    engines = args.vllm.num_engines or 0
    if engines > 0 and args.train.colocate_all and not args.train.async_enable:
        need = engines * args.vllm.tensor_parallel_size
        if need != actor_gpus:
            out.append(f"with --train.colocate_all the vLLM engines share the actor's GPUs: --vllm.num_engines x "
                       f"--vllm.tensor_parallel_size = {need} must equal --actor.num_nodes x "
                       f"--actor.num_gpus_per_node = {actor_gpus} (OpenRLHF asserts it at train_ppo_ray.py:56)")
    if not args.train.dynamic_batch_enable:
        ring, tp = args.ds.ring_attn_size, args.ds.tensor_parallel_size
        world, micro = actor_gpus, args.train.micro_batch_size
        total = args.train.batch_size * ring * tp
        if total < micro * world or total % (micro * world):
            out.append(f"--train.batch_size {args.train.batch_size} (x ring {ring} x tp {tp}) must be a multiple of "
                       f"--train.micro_batch_size {micro} x {world} actor GPUs (DeepSpeed rejects it when the "
                       "actor starts: deepspeed/runtime/config.py _batch_assertion)")
    return out


def _jsonl_rows(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def batch_problems(args) -> List[str]:
    """Batches that do not fill whole optimiser steps.  DeepSpeed steps only at a gradient-accumulation
    boundary, so the micro-batches of a partial step stay accumulated into the next training step
    (openrlhf/utils/loss_utils.py iter_grad_accum_global_norm, "trailing partial step") -- steps that
    silently mix two rollout batches, and a last one never applied."""
    if args.train.dynamic_batch_enable or args.algo.dynamic_filtering_enable:
        return []  # sizes then vary per step by design
    out = []
    per_step = args.rollout.batch_size * args.rollout.n_samples_per_prompt
    if per_step % args.train.batch_size:
        out.append(f"--rollout.batch_size {args.rollout.batch_size} x --rollout.n_samples_per_prompt "
                   f"{args.rollout.n_samples_per_prompt} = {per_step} samples per step is not a multiple of "
                   f"--train.batch_size {args.train.batch_size}: the remainder's gradient would be applied with "
                   "the next step's")
    ds = str(getattr(args.data, "prompt_dataset", "") or "")
    if ds.endswith(".jsonl") and "," not in ds and os.path.isfile(ds):
        rows = min(_jsonl_rows(ds), int(getattr(args.data, "max_samples", 10 ** 12) or 10 ** 12))
        if rows % args.rollout.batch_size:
            out.append(f"{ds} has {rows} prompts, not a multiple of --rollout.batch_size {args.rollout.batch_size}: "
                       "the last rollout batch of every episode would be short and its gradient carried into the "
                       "next episode's first step (use `mtgrpo data prepare --repeat K` or --data.max_samples)")
    return out


def launch_problems(args) -> List[str]:
    """Every problem of a run that uses our estimator or our agent (nothing for other runs)."""
    if not (_ours(args) or uses_our_agent(args)):
        return []
    return (estimator_problems(args) + agent_problems(args) + file_problems(args) + placement_problems(args)
            + batch_problems(args))
