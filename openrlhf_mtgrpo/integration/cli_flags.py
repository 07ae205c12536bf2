"""The command-line flags the plugin adds to ``openrlhf.cli.train_ppo_ray`` and the flat aliases.

OpenRLHF 0.10.2+ spells flags hierarchically (``--algo.advantage.estimator``);
users still type the flat names of older releases, so every flag our recipes use
gets its flat spelling as an alias of the same argparse action.
"""

from __future__ import annotations

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


#: (hierarchical flag, flat aliases, argparse kwargs) of the plugin's own options: the --gtpo.* estimator
#: options, then every --mtgrpo.* option, generated from :class:`~openrlhf_mtgrpo.rollout.config.AgentConfig`
PLUGIN_FLAGS = [
    # turn-level estimators
    ("--gtpo.gamma", ("--gtpo_gamma",), dict(type=float, default=0.9, help="GTPO hybrid discount (paper: 0.9)")),
    ("--gtpo.lam", ("--gtpo_lam",), dict(type=float, default=0.3, help="weight of the outcome advantage (paper: 0.3)")),
    ("--gtpo.eps", ("--gtpo_eps",), dict(type=float, default=1e-6, help="epsilon of group normalisation")),
    ("--gtpo.no_std_norm", ("--gtpo_no_std_norm",), dict(action="store_true", default=False,
                                                       help="mean-centre only (Dr. GRPO style)")),
    ("--gtpo.std_ddof", ("--gtpo_std_ddof",), dict(type=int, default=1, choices=[0, 1],
                                                 help="std degrees of freedom: 1 as OpenRLHF group_norm, 0 population")),
    ("--gtpo.pool", ("--gtpo_pool",), dict(type=str, default="turn", choices=["group", "turn"],
                                         help="GN per turn index (default) or over all turns of a group; see "
                                              "docs/method.md for the study behind the default")),
    ("--gtpo.turn_indexing", ("--gtpo_turn_indexing",), dict(type=str, default="zero", choices=["zero", "one"],
                                                           help="read Eq. 2 with turns counted from 0 (default) or 1")),
] + flag_specs()


def estimator_options_from_args(args):
    """EstimatorOptions from the parsed (hierarchized) OpenRLHF args."""
    from openrlhf_mtgrpo.advantages.types import EstimatorOptions

    g = getattr(args, "gtpo", None)
    if g is None:
        return EstimatorOptions()
    return EstimatorOptions(
        gamma=g.gamma, lam=g.lam, eps=g.eps, std_norm=not g.no_std_norm, std_ddof=g.std_ddof,
        pool=g.pool, turn_indexing=g.turn_indexing,
    )
