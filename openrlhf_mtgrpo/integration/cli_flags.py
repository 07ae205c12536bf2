"""The command-line flags the plugin adds to ``openrlhf.cli.train_ppo_ray`` and the flat aliases.

OpenRLHF 0.10.2+ spells flags hierarchically (``--algo.advantage.estimator``);
users still type the flat names of older releases, so every flag our recipes use
gets its flat spelling as an alias of the same argparse action.
"""

from __future__ import annotations

from openrlhf_mtgrpo.advantages import options
from openrlhf_mtgrpo.rollout.config import flag_specs

#: hierarchical upstream flag -> its flat spelling(s) in OpenRLHF <= 0.10.1 (the release before the
#: dotted CLI, commit ed62d0e2); a tuple lists several spellings of the same flag.  Every flag a
#: recipe in recipes/ uses is here (tests/test_plugin_cli.py checks it).
UPSTREAM_FLAT_ALIASES = {
    # algorithm
    "--algo.advantage.estimator": "--advantage_estimator",
    "--algo.advantage.gamma": "--gamma",
    "--algo.advantage.lambd": "--lambd",
    "--algo.advantage.no_std_norm": "--no_advantage_std_norm",
    "--algo.kl.init_coef": "--init_kl_coef",
    "--algo.kl.use_loss": "--use_kl_loss",
    "--algo.kl.estimator": "--kl_estimator",
    "--algo.dynamic_filtering_enable": "--dynamic_filtering",
    "--actor.eps_clip": "--eps_clip",
    "--reward.clip_range": "--reward_clip_range",
    # agent, reward, data
    "--train.agent_func_path": "--agent_func_path",
    "--reward.remote_url": "--remote_rm_url",
    "--actor.model_name_or_path": "--pretrain",
    "--data.prompt_dataset": "--prompt_data",
    "--data.input_key": "--input_key",
    "--data.label_key": "--label_key",
    "--data.apply_chat_template": "--apply_chat_template",
    "--data.max_len": "--max_len",
    "--data.max_samples": "--max_samples",
    # rollout and batch sizes
    "--rollout.n_samples_per_prompt": "--n_samples_per_prompt",
    "--rollout.batch_size": "--rollout_batch_size",
    "--rollout.micro_batch_size": "--micro_rollout_batch_size",
    "--rollout.max_new_tokens": ("--max_new_tokens", "--generate_max_len"),
    "--rollout.temperature": "--temperature",
    "--rollout.max_tokens_per_gpu": "--rollout_max_tokens_per_gpu",
    "--train.batch_size": "--train_batch_size",
    "--train.micro_batch_size": "--micro_train_batch_size",
    "--train.dynamic_batch_enable": "--use_dynamic_batch",
    "--train.max_tokens_per_gpu": "--train_max_tokens_per_gpu",
    "--train.async_enable": "--async_train",
    "--train.colocate_all": "--colocate_all_models",
    "--train.max_epochs": "--max_epochs",
    "--train.num_episodes": "--num_episodes",
    "--train.seed": "--seed",
    # optimisation and DeepSpeed
    "--actor.adam.lr": "--actor_learning_rate",
    "--actor.lr_warmup_ratio": "--lr_warmup_ratio",
    "--actor.gradient_checkpointing_enable": "--gradient_checkpointing",
    "--ds.zero_stage": "--zero_stage",
    "--ds.param_dtype": "--param_dtype",
    "--ds.packing_samples": "--packing_samples",
    "--ds.adam_offload": "--adam_offload",
    "--ds.attn_implementation": "--attn_implementation",
    "--ds.ring_attn_size": "--ring_attn_size",
    "--ds.enable_sleep": "--deepspeed_enable_sleep",
    # placement and engines
    "--actor.num_nodes": "--actor_num_nodes",
    "--actor.num_gpus_per_node": "--actor_num_gpus_per_node",
    "--ref.num_nodes": "--ref_num_nodes",
    "--ref.num_gpus_per_node": "--ref_num_gpus_per_node",
    "--vllm.num_engines": "--vllm_num_engines",
    "--vllm.tensor_parallel_size": "--vllm_tensor_parallel_size",
    "--vllm.gpu_memory_utilization": "--vllm_gpu_memory_utilization",
    "--vllm.enable_sleep": "--vllm_enable_sleep",
    # checkpoints and logging
    "--ckpt.output_dir": "--save_path",
    "--ckpt.path": "--ckpt_path",
    "--ckpt.save_steps": "--save_steps",
    "--logger.tensorboard_dir": "--use_tensorboard",
    "--logger.wandb.key": "--use_wandb",
}


def flat_spellings(dotted: str):
    """The flat spellings of an upstream flag (empty when it has none)."""
    value = UPSTREAM_FLAT_ALIASES.get(dotted, ())
    return (value,) if isinstance(value, str) else tuple(value)


#: (hierarchical flag, flat aliases, argparse kwargs) of the plugin's own options: the shared --gtpo.* estimator
#: options, generated from :class:`~openrlhf_mtgrpo.advantages.options.EstimatorOptions`, then every --mtgrpo.*
#: option, generated from :class:`~openrlhf_mtgrpo.rollout.config.AgentConfig`.  The options a registered
#: estimator declares (``--<estimator>.<field>``) come from :func:`estimator_flags`.
PLUGIN_FLAGS = options.flag_specs() + flag_specs()


def estimator_flags():
    """(hierarchical flag, flat aliases, argparse kwargs) of the options the registered estimators declare
    (``--<estimator>.<field>``, flat ``--<estimator>_<field>``).  Loads the estimator registry (its entry
    points, torch): the launcher's parser calls it, never a fast command."""
    from openrlhf_mtgrpo.registry import PluginError, advantage_estimator_options, list_advantage_estimators

    out = []
    for name in list_advantage_estimators():
        try:
            cls = advantage_estimator_options(name)
        except (PluginError, ImportError):
            continue  # a broken plugin: its error is reported where it is chosen, not while the parser is built
        out += options.flag_specs(cls, estimator=name)
    return out


def _options_class(args, estimator=None):
    """(the options dataclass of the run's estimator -- the shared one for OpenRLHF's own --, its name)."""
    from openrlhf_mtgrpo.registry import advantage_estimator_options, is_plugin_estimator

    name = estimator or args.algo.advantage.estimator
    return advantage_estimator_options(name) if is_plugin_estimator(name) else options.EstimatorOptions, name


def estimator_option_values(args, estimator=None):
    """The run's estimator options by field name (``std_norm``, not ``no_std_norm``), from the parsed
    (hierarchized) OpenRLHF args, unchecked: what the rollout and step logs record.  ``estimator``: the
    run's estimator (default: ``args.algo.advantage.estimator``)."""
    cls, name = _options_class(args, estimator)
    return options.values_from_namespaces(cls, getattr(args, options.SHARED_NAMESPACE, None), getattr(args, name, None))


def estimator_option_problems(args):
    """The run's estimator options that fail their checks, each naming its flag (``--gtpo.gamma must be ...``)."""
    cls, name = _options_class(args)
    return options.option_problems(estimator_option_values(args), cls, options.flag_label(name))


def estimator_options_from_args(args):
    """The options the run's estimator receives in ``EstimatorInput.options``: an instance of the class it
    registered (:class:`~openrlhf_mtgrpo.advantages.options.EstimatorOptions` unless it declared its own)."""
    cls, _ = _options_class(args)
    return cls(**estimator_option_values(args))
