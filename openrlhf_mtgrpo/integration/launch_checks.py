"""What a run of ``train_ppo_ray`` with our estimator or our agent would reject after it had started.

Each check returns messages; the launcher's ``hierarchize`` hook (and ``mtgrpo train --dry-run``)
refuses to start when there is any.  Checks that reproduce one upstream makes later say where
(``train_ppo_ray.py`` is ``openrlhf/cli/train_ppo_ray.py`` of OpenRLHF 0.11.2).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

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
    timeout = getattr(m, "domain_timeout", None)
    if timeout is not None and not timeout >= 0:
        out.append(f"--mtgrpo.domain_timeout must be >= 0 seconds (0: no limit), got {timeout}")
    judge_url = getattr(m, "judge_base_url", None)
    if judge_url and not judge_url.startswith(("http://", "https://")):
        out.append(f"--mtgrpo.judge_base_url must be an http(s) URL of an OpenAI-compatible endpoint "
                   f"(got {judge_url!r})")
    if not getattr(m, "judge_timeout", 1.0) > 0 or getattr(m, "judge_max_retries", 0) < 0:
        out.append(f"--mtgrpo.judge_timeout must be > 0 seconds and --mtgrpo.judge_max_retries >= 0 (got "
                   f"{getattr(m, 'judge_timeout', None)}, {getattr(m, 'judge_max_retries', None)})")
    from openrlhf_mtgrpo.rewards.gating import option_problems

    edg = option_problems(getattr(m, "edg_window", 512), getattr(m, "edg_confidence", 0.999),
                          getattr(m, "edg_hysteresis", None), getattr(m, "edg_threshold", None))
    # the removed options are refused whether or not EDG is on; the others matter where it is
    out += [p for p in edg if getattr(m, "edg_enable", False) or "was removed" in p]
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


# -- the prompt datasets' labels: what each rollout will load ---------------------------------------------------

#: at most this many lines named per problem (then "and N more")
_SHOWN = 3


def _places(where: List[str]) -> str:
    more = f" and {len(where) - _SHOWN} more" if len(where) > _SHOWN else ""
    return ", ".join(where[:_SHOWN]) + more


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _dataset_paths(value) -> List[str]:
    """The datasets of a ``--data.prompt_dataset`` value, as ``blending_datasets`` splits it (comma-separated,
    ``path@data_dir``)."""
    return [d.split("@")[0].strip() for d in str(value or "").split(",") if d.split("@")[0].strip()]


def _json_rows(path: str):
    """(place, row or the JSON error) of a JSON Lines file, or of a .json file holding one array of rows."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # JSON Lines after all (the datasets library reads both)
        if isinstance(data, list):
            return [(f"{path} row {i}", row) for i, row in enumerate(data, 1)]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as e:
                out.append((f"{path}:{n}", e))
    return out


class LabelCheck:
    """The labels of the run's prompt datasets (``--data.prompt_dataset``, and ``--eval.dataset``, which our agent
    rolls out too), parsed exactly as the rollout parses them (:func:`~openrlhf_mtgrpo.rollout.executor.parse_label`
    with the run's ``--mtgrpo.version`` and ``--mtgrpo.domain``), each domain and version they name loaded as the
    rollout loads it, each task looked up, and the calibration's component set built for each domain's tools and
    each labelled task.  ``problems``: what the run would reject inside the rollout actors; ``checked``: what was
    checked, for people (``mtgrpo train`` prints it)."""

    def __init__(self, args):
        self.args, self.m = args, getattr(args, "mtgrpo", None)
        self.problems: List[str] = []
        self.checked: List[str] = []
        #: (domain, version) -> task id -> the places whose label names it
        self.labels: Dict[Tuple[str, Optional[str]], Dict[str, List[str]]] = {}
        self.envs: Dict[Tuple[str, Optional[str]], Any] = {}
        if self.m is not None and uses_our_agent(args):
            self._run()

    # -- reading
    def _datasets(self) -> List[Tuple[str, str, Optional[int]]]:
        """(flag, path, the most rows the run reads of it)."""
        data, ev = self.args.data, getattr(self.args, "eval", None)
        cap = int(getattr(data, "max_samples", None) or 10 ** 12)
        out = [("--data.prompt_dataset", p, cap) for p in _dataset_paths(getattr(data, "prompt_dataset", None))]
        out += [("--eval.dataset", p, cap) for p in _dataset_paths(getattr(ev, "dataset", None))]
        return out

    def _read(self) -> None:
        from openrlhf_mtgrpo.rollout.executor import parse_label

        data = self.args.data
        label_key, input_key = getattr(data, "label_key", None), getattr(data, "input_key", None)
        domain, version = getattr(self.m, "domain", None) or DEFAULT_DOMAIN, getattr(self.m, "version", None)
        concatenated = getattr(data, "prompt_probs", None) is None  # then max_samples caps them all together
        left = None
        for flag, path, cap in self._datasets():
            local = os.path.exists(os.path.expanduser(path))
            if not local:
                if not (path.endswith(DATA_SUFFIXES) or path.startswith(("/", "./", "../", "~"))):
                    self.checked.append(f"{flag} {path}: not a local file (a Hugging Face hub dataset, read only in "
                                        "the actors): its labels are not checked here")
                continue  # a missing local file: file_problems names it
            path = os.path.expanduser(path)
            if not path.endswith((".jsonl", ".json")):
                self.checked.append(f"{flag} {path}: labels not checked (only .jsonl and .json files are read here)")
                continue
            if label_key is None:
                self.problems.append(f"--data.label_key is not set: every label of {path} would be empty, and the "
                                     "openrlhf-mtgrpo agent reads the task from it (`mtgrpo data prepare` writes "
                                     "--data.label_key label)")
                return
            if flag == "--data.prompt_dataset" and concatenated:
                left = cap if left is None else left
                cap = min(cap, left)
            bad: Dict[str, List[str]] = {}
            counted: Dict[Tuple[str, Optional[str]], set] = {}
            rows = _json_rows(path)[:cap]
            if flag == "--data.prompt_dataset" and concatenated:
                left -= len(rows)
            for where, row in rows:
                if isinstance(row, Exception):
                    bad.setdefault(f"not valid JSON ({row.msg})", []).append(where)
                    continue
                if not isinstance(row, dict):
                    bad.setdefault("not a JSON object", []).append(where)
                    continue
                if input_key is not None and input_key not in row:
                    bad.setdefault(f"no {input_key!r} (--data.input_key)", []).append(where)
                if label_key not in row:
                    bad.setdefault(f"no {label_key!r} (--data.label_key)", []).append(where)
                    continue
                try:
                    ids = parse_label(row[label_key], version, domain)
                except ValueError as e:
                    bad.setdefault(f"a label the rollout cannot read: {_short(e)}", []).append(where)
                    continue
                key = (ids["domain"], ids["version"])
                self.labels.setdefault(key, {}).setdefault(ids["task_id"], []).append(where)
                counted.setdefault(key, set()).add(ids["task_id"])
            for what, where in bad.items():
                self.problems.append(f"{flag} {_places(where)}: {what}")
            named = "; ".join(f"{d} {v or '(default version)'}: {len(t)} task(s)" for (d, v), t in counted.items())
            self.checked.append(f"{flag} {path}: {len(rows)} row(s), labels of {named or 'no task'}")

    # -- loading what the labels name, as the rollout does
    def _configured(self) -> Tuple[str, Optional[str]]:
        return getattr(self.m, "domain", None) or DEFAULT_DOMAIN, getattr(self.m, "version", None)

    def _load(self) -> None:
        from openrlhf_mtgrpo.envs import DomainError, load_domain
        from openrlhf_mtgrpo.envs.base import DataNotFound
        from openrlhf_mtgrpo.rollout.prompt_choice import with_prompts

        configured = self._configured()
        for (domain, version), tasks in self.labels.items():
            first = _places([w for ws in tasks.values() for w in ws])
            try:
                env = load_domain(domain, version, self.m.data_dir)
            except (DomainError, DataNotFound) as e:
                if (domain, version) != configured:  # else agent_problems has said it (--mtgrpo.domain)
                    self.problems.append(f"labels at {first} name domain {domain!r} version "
                                         f"{version or '(its default)'}, which the rollout cannot load: {e}")
                continue
            self.envs[(domain, version)] = env
            missing: Dict[str, List[str]] = {}
            for task_id, where in tasks.items():
                try:
                    env.task(task_id)
                except Exception as e:  # noqa: BLE001 - the rollout fails the same way
                    missing[task_id] = where
                    reason = _short(e.args[0] if isinstance(e, KeyError) and e.args else e, 160)
                    self.problems.append(f"label at {_places(where)} names task {task_id!r}, which domain "
                                         f"{domain!r} version {env.version} does not have ({reason})")
            if (domain, version) != configured:
                try:
                    with_prompts(env, agent=getattr(self.m, "agent_prompt", "benchmark"),
                                 customer=getattr(self.m, "user_prompt", "benchmark"))
                except ValueError as e:
                    self.problems.append(f"labels at {first} name domain {domain!r} version {env.version}: {e}")
            found = len(tasks) - len(missing)
            self.checked.append(f"domain {domain} version {env.version}: {len(env.tasks('base'))} tasks, "
                                f"{len(env.tool_schemas())} tools; {found} of the labels' {len(tasks)} task(s) found")
            self._judge(domain, env, [t for t in tasks if t not in missing])
        self._customers()

    def _judge(self, domain: str, env: Any, task_ids: List[str]) -> None:
        """Labelled tasks whose outcome needs an LLM judge (NL assertions) need one configured, or the judge off
        (--mtgrpo.nl_assertions off: the rest of the reward alone), as the rollout's executor would refuse."""
        from openrlhf_mtgrpo.evaluation.judge import OFF, JudgeSettings, judge_needed

        needing = [t for t in task_ids if judge_needed(env, env.task(t))]
        if not needing:
            return
        mode = getattr(self.m, "nl_assertions", "judge") or "judge"
        what = f"{len(needing)} labelled task(s) of domain {domain!r} version {env.version} (e.g. {needing[0]})"
        if mode == OFF:
            self.checked.append(f"{what}: NL assertions not judged (--mtgrpo.nl_assertions off): trained on the rest "
                                "of their reward alone, recorded in the rollout log")
            return
        settings = JudgeSettings(base_url=getattr(self.m, "judge_base_url", None),
                                 model=getattr(self.m, "judge_model", None),
                                 api_key_env=getattr(self.m, "judge_api_key_env", None) or "OPENAI_API_KEY")
        model = settings.model or getattr(env, "judge_default_model", None)
        if not settings.available() or not model:
            why = settings.missing() or "no judge model (set --mtgrpo.judge_model)"
            self.problems.append(f"{what} need an NL-assertion judge: {why}. Set the key (the benchmark's own "
                                 "judge), or --mtgrpo.judge_base_url and --mtgrpo.judge_model, or "
                                 "--mtgrpo.nl_assertions off to train on the rest of their reward (the database) "
                                 "alone")
            return
        self.checked.append(f"{what}: NL assertions judged by {model} at {settings.url}"
                            + ("" if settings.base_url else f" (the benchmark's own judge; key from "
                                                            f"${settings.api_key_env})"))

    def _customers(self) -> None:
        """A label domain with a customer needs the user simulator even where the configured one has none."""
        if self.m.user_base_url and self.m.user_model:
            return
        from openrlhf_mtgrpo.envs import DomainError, load_domain
        from openrlhf_mtgrpo.envs.base import DataNotFound

        try:
            if load_domain(*self._configured(), self.m.data_dir).customer_prompt is not None:
                return  # agent_problems asks for the user simulator
        except (DomainError, DataNotFound):
            return
        for (domain, version), env in self.envs.items():
            if env.customer_prompt is not None:
                where = _places([w for ws in self.labels[(domain, version)].values() for w in ws])
                self.problems.append(f"labels at {where} name domain {domain!r} version {env.version}, which has a "
                                     "customer: set --mtgrpo.user_base_url and --mtgrpo.user_model")

    def _components(self) -> None:
        """The calibration's component set, built for each domain's tool kinds, and a scorer for each labelled
        task, as every episode builds them (rollout/episode.py)."""
        from openrlhf_mtgrpo.envs import DomainError, load_domain
        from openrlhf_mtgrpo.envs.base import DataNotFound
        from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration
        from openrlhf_mtgrpo.rewards.sets import ComponentSetError, build_component_set

        try:
            cal = load_calibration(self.m.calibration)
        except CalibrationError:
            return  # agent_problems names it
        envs = dict(self.envs)
        try:
            envs.setdefault(self._configured(), load_domain(*self._configured(), self.m.data_dir))
        except (DomainError, DataNotFound):
            pass
        built = []
        for (domain, version), env in envs.items():
            what = f"--mtgrpo.calibration {cal.name}: its component set {cal.component_set!r}"
            try:
                components = build_component_set(cal.component_set, env.tool_kinds)
            except ComponentSetError as e:
                self.problems.append(f"{what} cannot be built for domain {domain!r} version {env.version}'s tools: {e}")
                continue
            for task_id, where in self.labels.get((domain, version), {}).items():
                try:
                    components.new_episode(env.task(task_id))
                except KeyError:
                    continue  # named above
                except Exception as e:  # noqa: BLE001 - every episode of the task would fail the same way
                    self.problems.append(f"{what} cannot score task {task_id!r} of domain {domain!r} version "
                                         f"{env.version} (labels at {_places(where)}): {type(e).__name__}: {_short(e)}")
            built.append(f"{domain} {env.version}")
        if built:
            self.checked.append(f"calibration {cal.name}: component set {cal.component_set} "
                                f"({len(cal.components)} components) builds for the tools of {', '.join(built)}")

    def _run(self) -> None:
        self._read()
        self._load()
        self._components()


def label_problems(args) -> List[str]:
    """What the rollout would reject in the labels of the run's prompt datasets (:class:`LabelCheck`)."""
    return LabelCheck(args).problems


def launch_summary(args) -> List[str]:
    """What the checks of a run that uses our estimator or our agent looked at, one line each (the run passed)."""
    if not (_ours(args) or uses_our_agent(args)):
        return []
    out = []
    if _ours(args):
        out.append(f"estimator {args.algo.advantage.estimator}: groups of {args.rollout.n_samples_per_prompt}, "
                   "its options in range")
    m = getattr(args, "mtgrpo", None)
    if uses_our_agent(args) and m is not None:
        from openrlhf_mtgrpo.envs import load_domain

        env = load_domain(getattr(m, "domain", None) or DEFAULT_DOMAIN, getattr(m, "version", None), m.data_dir)
        out.append(f"--mtgrpo.domain {env.name} version {env.version} loads and meets the domain interface; prompts: "
                   f"agent {getattr(m, 'agent_prompt', 'benchmark')}, customer {getattr(m, 'user_prompt', 'benchmark')}")
        out += LabelCheck(args).checked
        out.append(f"tool-call parser {m.tool_parser or 'auto'}; " + (
            f"user simulator {m.user_model} at {m.user_base_url}" if env.customer_prompt is not None and m.user_base_url
            else "no user simulator (the domain has no customer)" if env.customer_prompt is None else ""))
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
    return (estimator_problems(args) + agent_problems(args) + file_problems(args) + label_problems(args)
            + placement_problems(args) + batch_problems(args))
