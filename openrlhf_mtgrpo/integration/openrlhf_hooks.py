"""Runtime hooks into an unmodified OpenRLHF 0.11.

Called by :mod:`openrlhf_mtgrpo._bootstrap` right after the matching OpenRLHF
module has executed, in whichever process imports it:

* ``openrlhf``: check the version; patch argparse so the ``train_ppo_ray`` parser
  accepts registered estimator names, flat aliases and the plugin's flags.
* ``openrlhf.utils.config``: wrap ``hierarchize`` for post-parse checks, to hand
  the agent config to the rollout workers and to add the carrier object.
* ``...ppo_utils.samples_generator``: copy the per-turn data of our agent's result
  into ``Experience.info``.
* ``...ppo_utils.experience_maker``: dispatch registered estimator names to our
  functions; always remove the per-turn tensors before experiences reach the actors.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from typing import Any, Dict, List

from openrlhf_mtgrpo.integration import cli_flags
from openrlhf_mtgrpo.integration.versions import (
    UnsupportedOpenRLHFVersion,
    check_openrlhf_version,
    installed_openrlhf_version,
)
from openrlhf_mtgrpo.rollout.sample_info import TURN_KEYS

PATCHED = "__mtgrpo_patched__"
AGENT_CONFIG_ENV = "OPENRLHF_MTGRPO_AGENT_CONFIG"
ESTIMATOR_FLAG = "--algo.advantage.estimator"


status: Dict[str, Any] = {"version": None, "version_error": None, "attach_errors": [], "attached": []}


# ----------------------------------------------------------------- argparse


class EstimatorChoices:
    """``choices`` of the estimator flag: OpenRLHF's own names plus the live registry."""

    def __init__(self, upstream):
        self.upstream = list(upstream)

    def _all(self) -> List[str]:
        from openrlhf_mtgrpo.registry import list_advantage_estimators

        return self.upstream + [n for n in list_advantage_estimators() if n not in self.upstream]

    def __contains__(self, item) -> bool:
        return item in self._all()

    def __iter__(self):
        return iter(self._all())

    def __len__(self):
        return len(self._all())

    def __repr__(self):
        return repr(self._all())


def _has_option(container, option: str) -> bool:
    return option in getattr(container, "_option_string_actions", {})


def _add_plugin_flags(container) -> None:
    container._mtgrpo_launcher = True
    if not _has_option(container, "--config"):
        _ORIGINAL_ADD_ARGUMENT(container, "--config", dest="mtgrpo.config", default=None,
                               help="openrlhf-mtgrpo recipe YAML; flags given on the command line override it")
    # the shared --gtpo.* and the --mtgrpo.* flags, then the options registered estimators declare
    # (--<estimator>.<field>; this loads the estimator registry, as the estimator flag's choices do)
    for dotted, flats, kwargs in cli_flags.PLUGIN_FLAGS + cli_flags.estimator_flags():
        if _has_option(container, dotted):
            continue
        names = [dotted] + [flat for flat in flats if not _has_option(container, flat)]
        _ORIGINAL_ADD_ARGUMENT(container, *names, **dict(kwargs))


def _patched_add_argument(self, *args, **kwargs):
    if args and isinstance(args[0], str) and args[0] in cli_flags.UPSTREAM_FLAT_ALIASES:
        for flat in cli_flags.flat_spellings(args[0]):
            if flat not in args and not _has_option(self, flat):
                args = args + (flat,)
        if args[0] == ESTIMATOR_FLAG and kwargs.get("choices") is not None:
            kwargs["choices"] = EstimatorChoices(kwargs["choices"])
            action = _ORIGINAL_ADD_ARGUMENT(self, *args, **kwargs)
            _add_plugin_flags(self)
            return action
    return _ORIGINAL_ADD_ARGUMENT(self, *args, **kwargs)


_ORIGINAL_ADD_ARGUMENT = argparse._ActionsContainer.add_argument


def _expand_config(parser, args):
    """``--config RECIPE``: the recipe's flags first, so that flags on the command line override them."""
    if "--config" not in args:
        return args
    from openrlhf_mtgrpo.integration.launcher_parser import RecipeError, load_recipe, recipe_to_argv

    i = args.index("--config")
    if i + 1 >= len(args):
        parser.error("argument --config: expected one argument")
    try:
        expanded = recipe_to_argv(load_recipe(args[i + 1]), parser)
    except RecipeError as e:
        parser.error(str(e))
    return expanded + args[:i] + args[i + 2:]


_ORIGINAL_PARSE_KNOWN_ARGS = argparse.ArgumentParser.parse_known_args


def _patched_parse_known_args(self, args=None, namespace=None):
    if getattr(self, "_mtgrpo_launcher", False):
        args = _expand_config(self, list(sys.argv[1:] if args is None else args))
    return _ORIGINAL_PARSE_KNOWN_ARGS(self, args, namespace)


def patch_argparse() -> None:
    if getattr(argparse._ActionsContainer.add_argument, PATCHED, False):
        return
    setattr(_patched_add_argument, PATCHED, True)
    argparse._ActionsContainer.add_argument = _patched_add_argument
    argparse.ArgumentParser.parse_known_args = _patched_parse_known_args


def on_openrlhf_import(module) -> None:
    version = installed_openrlhf_version()
    status["version"] = version
    try:
        check_openrlhf_version(version)
    except UnsupportedOpenRLHFVersion as e:
        status["version_error"] = str(e)
    # argparse is patched even on an unsupported version so that selecting one of
    # our estimators reaches the post-parse check and its clear message.
    patch_argparse()


# ----------------------------------------------------------------- post-parse


class PluginCarrier:
    """Travels inside OpenRLHF's ``args``; unpickling it activates the plugin in that process.

    Covers Ray actors whose interpreter did not run our start-up hook (``python -S``,
    code shipped with ``py_modules``) as long as the package is importable there.
    """

    def __reduce__(self):
        return (_carrier_arrived, ())

    def __repr__(self):
        return "PluginCarrier()"


def _carrier_arrived() -> PluginCarrier:
    from openrlhf_mtgrpo import _bootstrap

    _bootstrap.install()
    return PluginCarrier()


def _fail(message: str) -> None:
    sys.stderr.write(f"train_ppo_ray.py: error: {message}\n")
    raise SystemExit(2)


#: ``mtgrpo train --dry-run`` sets this: problems raise LaunchCheckError instead of exiting, and
#: nothing is handed to Ray (no agent config in the environment, no ray.init wrapper).
_checking_only = {"on": False}


@contextlib.contextmanager
def checking_only():
    _checking_only["on"] = True
    try:
        yield
    finally:
        _checking_only["on"] = False


def check_parsed_args(args) -> None:
    """Post-parse checks of a run that uses our estimator or our agent; exits like argparse on error."""
    from openrlhf_mtgrpo.integration.launch_checks import LaunchCheckError, launch_problems
    from openrlhf_mtgrpo.registry import is_plugin_estimator

    estimator = args.algo.advantage.estimator
    problems = []
    if is_plugin_estimator(estimator):
        for mod in ("openrlhf.trainer.ppo_utils.experience_maker", "openrlhf.trainer.ppo_utils.samples_generator"):
            try:
                __import__(mod)
            except ImportError as e:  # e.g. vLLM missing on the driver: checked again in the workers
                status.setdefault("import_warnings", []).append(f"{mod}: {e}")
        # an unsupported OpenRLHF, or hooks that could not attach: nothing else is worth checking
        problems = [status["version_error"]] if status["version_error"] else list(status["attach_errors"])
    if not problems:
        problems = launch_problems(args)
    if problems:
        if _checking_only["on"]:
            raise LaunchCheckError("; ".join(problems))
        _fail("; ".join(problems))
    if is_plugin_estimator(estimator) and not getattr(args.train, "agent_func_path", None):
        print(
            f"[openrlhf-mtgrpo] warning: {estimator} needs per-turn data; pass our agent with "
            "--train.agent_func_path $(mtgrpo agent-path)",
            file=sys.stderr,
        )


def _absolute_paths(mtgrpo_args) -> None:
    """Relative paths are the driver's: make them absolute before they travel to Ray workers (other cwd)."""
    from openrlhf_mtgrpo.rewards.calibration import BUILTIN

    for key in ("data_dir", "rollout_log_dir", "calibration"):
        value = getattr(mtgrpo_args, key, None)
        if isinstance(value, str) and value and not (key == "calibration" and value in BUILTIN):
            setattr(mtgrpo_args, key, os.path.abspath(value))


def agent_config_from_args(args) -> Dict[str, Any]:
    cfg = dict(vars(getattr(args, "mtgrpo", argparse.Namespace())))
    cfg["estimator"] = args.algo.advantage.estimator
    # logged per episode, so that IRC reads the group size and the estimator's settings from the logs
    cfg["n_samples_per_prompt"] = args.rollout.n_samples_per_prompt
    cfg["estimator_options"] = cli_flags.estimator_option_values(args)
    return cfg


def _forward_agent_config_to_ray(config_json: str) -> None:
    """Make ``ray.init`` carry the agent config to every worker (all nodes) as an env var."""
    os.environ[AGENT_CONFIG_ENV] = config_json
    import ray

    if getattr(ray.init, PATCHED, False):
        return
    original = ray.init

    @functools.wraps(original)
    def init(*a, **kw):
        runtime_env = dict(kw.get("runtime_env") or {})
        env_vars = dict(runtime_env.get("env_vars") or {})
        env_vars.setdefault(AGENT_CONFIG_ENV, os.environ[AGENT_CONFIG_ENV])
        runtime_env["env_vars"] = env_vars
        kw["runtime_env"] = runtime_env
        return original(*a, **kw)

    setattr(init, PATCHED, True)
    ray.init = init


def on_config_import(module) -> None:
    original = module.hierarchize
    if getattr(original, PATCHED, False):
        return

    @functools.wraps(original)
    def hierarchize(flat_args):
        args = original(flat_args)
        algo = getattr(args, "algo", None)
        if algo is None or not hasattr(getattr(algo, "advantage", None), "estimator"):
            return args  # not the PPO launcher
        check_parsed_args(args)
        args.mtgrpo_carrier = PluginCarrier()
        if getattr(args, "mtgrpo", None) is not None:
            _absolute_paths(args.mtgrpo)
            if not _checking_only["on"]:
                try:
                    _forward_agent_config_to_ray(json.dumps(agent_config_from_args(args)))
                except ImportError:
                    pass
        return args

    setattr(hierarchize, PATCHED, True)
    module.hierarchize = hierarchize


# ----------------------------------------------------------------- samples generator


def sample_info_to_tensors(sample_info: Dict[str, Any]) -> Dict[str, Any]:
    """What the upstream patch does with ``response["sample_info"]``: one (1, ...) tensor per key."""
    import torch

    return {k: torch.tensor([v]) for k, v in sample_info.items()}


def on_samples_generator_import(module) -> None:
    cls = getattr(module, "SamplesGenerator", None)
    fn = getattr(cls, "_process_response_into_experience", None) if cls is not None else None
    if fn is None:
        status["attach_errors"].append(
            f"openrlhf-mtgrpo could not attach to SamplesGenerator._process_response_into_experience in "
            f"openrlhf.trainer.ppo_utils.samples_generator (OpenRLHF {installed_openrlhf_version()})"
        )
        return
    if getattr(fn, PATCHED, False):
        return

    @functools.wraps(fn)
    def _process_response_into_experience(self, response, **kwargs):
        experience = fn(self, response, **kwargs)
        sample_info = response.get("sample_info") if isinstance(response, dict) else None
        if sample_info:
            experience.info.update(sample_info_to_tensors(sample_info))
        return experience

    setattr(_process_response_into_experience, PATCHED, True)
    cls._process_response_into_experience = _process_response_into_experience
    status["attached"].append("SamplesGenerator._process_response_into_experience")


# ----------------------------------------------------------------- experience maker


def pop_turn_keys(experiences) -> List[Dict[str, Any]]:
    """Remove our per-turn tensors from every experience's info (they would break the actors)."""
    return [{k: e.info.pop(k) for k in TURN_KEYS if k in e.info} for e in experiences]


def _collect_turns(popped, experiences, device=None):
    """(TurnInfo, excluded) of the batch, on ``device`` (None: where the per-turn tensors are)."""
    import torch

    from openrlhf_mtgrpo.advantages.types import TurnInfo

    if not all(TURN_KEYS[0] in p for p in popped):
        return None, None
    counts, spans, rewards, excluded = [], [], [], []
    for p, e in zip(popped, experiences):
        a_len = e.action_mask.shape[1]
        n = p["mtgrpo_num_turns"].to(device).reshape(-1).long()
        flat = p["mtgrpo_turn_spans"].to(device).long()
        s = flat.reshape(flat.shape[0], -1, 2)
        counts.append(n)
        spans.append((s - 1).clamp(0, a_len))  # sequence space -> action space
        rewards.append(p["mtgrpo_turn_rewards"].to(device=device, dtype=torch.float64).reshape(flat.shape[0], -1))
        excluded.append(p["mtgrpo_excluded"].to(device).reshape(-1).bool())
    kmax = max(max(r.shape[1] for r in rewards), max(s.shape[1] for s in spans))
    pad = lambda t, k: torch.nn.functional.pad(t, (0, 0, 0, k - t.shape[1])) if t.dim() == 3 else \
        torch.nn.functional.pad(t, (0, k - t.shape[1]))
    turns = TurnInfo(
        spans=torch.cat([pad(s, kmax) for s in spans]),
        num_turns=torch.cat(counts),
        rewards=torch.cat([pad(r, kmax) for r in rewards]),
    )
    return turns, torch.cat(excluded)


def record_trainer_groups(popped, group_index, n: int, args) -> None:
    """Append the batch's groups, as this trainer formed them, to ``trainer_groups.jsonl`` beside the rollout logs
    (IRC groups by them; :mod:`openrlhf_mtgrpo.trainer_groups`).  Nothing without a rollout-log folder or where a
    sample carries no episode key (an agent that sends none)."""
    import os

    from openrlhf_mtgrpo import trainer_groups
    from openrlhf_mtgrpo.rollout.step_log import step_log_path

    path = step_log_path(args)
    if path is None or not popped or not all("mtgrpo_episode" in p for p in popped):
        return
    episodes = [int(x) for p in popped for x in p["mtgrpo_episode"].reshape(-1).tolist()]
    if len(episodes) != len(group_index):
        return
    trainer_groups.append_step(os.path.dirname(path), trainer_groups.groups_of(episodes, group_index.tolist()), n)


def group_std(values, group_index):
    """Unbiased std of ``values`` within each group, given back per element (as upstream's group_reward_std)."""
    import torch

    uniq, inv = torch.unique(group_index, return_inverse=True)
    v = values.to(torch.float64)
    kw = dict(dtype=torch.float64, device=v.device)
    count = torch.zeros(len(uniq), **kw).index_add_(0, inv, torch.ones_like(v))
    mean = torch.zeros(len(uniq), **kw).index_add_(0, inv, v) / count
    sq = torch.zeros(len(uniq), **kw).index_add_(0, inv, (v - mean[inv]) ** 2)
    std = (sq / (count - 1).clamp(min=1)).sqrt()
    return std[inv].to(values.dtype)


def plugin_compute_advantages(maker, experiences, length_penalty_fn=None):
    """Our replacement of ``RemoteExperienceMaker.compute_advantages_and_returns`` for registered names.

    Keeps what upstream (0.11.2, experience_maker.py:238-340) does around the estimator: fp32
    rewards, length penalties, ``group_reward_std`` of the raw rewards, then the shaping step --
    here the registered estimator, there the group baseline -- and after it, as upstream's
    ``compute_reward`` does with the *normalised* reward, ``--reward.clip_range`` on the shaped
    value (our per-turn advantages), then the KL-in-reward term.  ``info["return"]`` is what
    upstream logs, the sample's return at its first action token: the clipped shaped value of the
    first turn plus the KL reward summed over the sample (``reward.sum(-1)`` upstream)."""
    import torch

    from openrlhf_mtgrpo.advantages.core import reverse_cumsum
    from openrlhf_mtgrpo.advantages.types import EstimatorInput, checked_output
    from openrlhf_mtgrpo.registry import get_advantage_estimator

    args = maker.strategy.args
    name = args.algo.advantage.estimator
    fn = get_advantage_estimator(name)
    popped = pop_turn_keys(experiences)

    for e in experiences:
        e.rewards = e.rewards.to(torch.promote_types(e.rewards.dtype, torch.float32))
    if length_penalty_fn is not None:
        length_penalty_fn(experiences, args)

    n = args.rollout.n_samples_per_prompt
    rewards = torch.cat([e.rewards.reshape(-1) for e in experiences])
    device = rewards.device  # everything is computed where the experiences are (the CPU or a GPU)
    index = torch.tensor([i for e in experiences for i in e.index], dtype=torch.long, device=device)
    clip = getattr(args.reward, "clip_range", None)
    group_index = torch.div(index, n, rounding_mode="floor")

    record_trainer_groups(popped, group_index, n, args)
    lengths = [e.action_mask.shape[1] for e in experiences]
    a_max = max(lengths)
    mask = torch.cat([torch.nn.functional.pad(e.action_mask.bool(), (0, a_max - e.action_mask.shape[1]))
                      for e in experiences]).to(device)
    turns, excluded = _collect_turns(popped, experiences, device)

    inp = EstimatorInput(
        rewards=rewards, group_index=group_index, action_mask=mask, turns=turns, excluded=excluded,
        options=cli_flags.estimator_options_from_args(args), extra={"args": args},
    )
    out = checked_output(name, fn(inp), tuple(mask.shape))

    stds = group_std(rewards, group_index) if n > 1 else None
    offset = 0
    kl_coef = max(float(getattr(maker.kl_ctl, "value", 0.0) or 0.0), 0.0)
    for e, a_len in zip(experiences, lengths):
        b = e.action_mask.shape[0]
        m = e.action_mask.to(torch.float32)
        adv = out.advantages[offset:offset + b, :a_len].to(torch.float32)
        ret = out.returns[offset:offset + b, :a_len].to(torch.float32)
        if clip:  # upstream clips the shaped (normalised) reward, not the raw one (models/utils.py:compute_reward)
            adv, ret = adv.clamp(min=clip[0], max=clip[1]) * m, ret.clamp(min=clip[0], max=clip[1]) * m
        if e.kl is not None and kl_coef > 0:
            kl_ret = reverse_cumsum(-kl_coef * e.kl.to(torch.float32) * m) * m
            adv, ret = adv + kl_ret, ret + kl_ret
        e.advantages, e.returns = adv, ret
        first = m.argmax(dim=1, keepdim=True)  # first action token (0 for a sample without any: its row is 0)
        e.info["return"] = ret.gather(1, first).squeeze(1)
        if stds is not None:
            e.info["group_reward_std"] = stds[offset:offset + b]
        for key, value in out.metrics.items():
            e.info[f"mtgrpo/{key}"] = torch.full((b,), float(value), device=device)
        e.kl = None
        offset += b
    from openrlhf_mtgrpo.rollout.step_log import log_training_step

    log_training_step(out.metrics, estimator=name, args=args, rollouts=int(rewards.numel()),
                      excluded=int(excluded.sum()) if excluded is not None else 0)
    return experiences


def on_experience_maker_import(module) -> None:
    cls = getattr(module, "RemoteExperienceMaker", None)
    fn = getattr(cls, "compute_advantages_and_returns", None) if cls is not None else None
    if fn is None:
        status["attach_errors"].append(
            "openrlhf-mtgrpo could not attach to RemoteExperienceMaker.compute_advantages_and_returns in "
            f"openrlhf.trainer.ppo_utils.experience_maker (OpenRLHF {installed_openrlhf_version()})"
        )
        return
    if getattr(fn, PATCHED, False):
        return
    length_penalty_fn = getattr(module, "apply_length_penalties", None)
    from openrlhf_mtgrpo.registry import list_advantage_estimators

    list_advantage_estimators()  # populate the registry (built-ins + entry points) in this process now

    @functools.wraps(fn)
    def compute_advantages_and_returns(self, experiences):
        from openrlhf_mtgrpo.registry import is_plugin_estimator

        if is_plugin_estimator(self.advantage_estimator):
            return plugin_compute_advantages(self, experiences, length_penalty_fn)
        pop_turn_keys(experiences)
        return fn(self, experiences)

    setattr(compute_advantages_and_returns, PATCHED, True)
    setattr(compute_advantages_and_returns, "__mtgrpo_original__", fn)
    cls.compute_advantages_and_returns = compute_advantages_and_returns
    status["attached"].append("RemoteExperienceMaker.compute_advantages_and_returns")
