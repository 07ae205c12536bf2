"""The per-turn record a rollout hands to the trainer, as ``sample_info`` of the agent result.

The format is shared by the rollout (which writes it) and the OpenRLHF glue in
``integration/`` (which reads it into ``Experience.info`` and removes it again
before training), so it lives here, with the rollout.
"""

from __future__ import annotations

from typing import Any, Dict

#: Experience.info keys the samples-generator hook adds (all removed again before training).
TURN_KEYS = ("mtgrpo_num_turns", "mtgrpo_turn_spans", "mtgrpo_turn_rewards", "mtgrpo_excluded", "mtgrpo_episode")


def turn_sample_info(action_ranges, turn_rewards, excluded: bool = False, episode: int = 0) -> Dict[str, Any]:
    """Per-turn data of one rollout as the ``sample_info`` of an agent result (plain lists).

    ``Experience.concat_experiences`` right-pads lists of different length with
    zeros; the count makes the padding unambiguous.  Spans are flattened
    (s0, e0, s1, e1, ...) in sequence space, like ``action_ranges``.  ``episode``: the episode's integer key
    (:func:`openrlhf_mtgrpo.trainer_groups.episode_key`), with which the trainer records its groups for IRC."""
    ranges = [[int(a), int(b)] for a, b in action_ranges]
    rewards = [float(x) for x in turn_rewards]
    if len(rewards) != len(ranges):
        raise ValueError(f"{len(ranges)} action ranges but {len(rewards)} turn rewards")
    return {
        "mtgrpo_num_turns": len(ranges),
        "mtgrpo_turn_spans": [x for r in ranges for x in r] or [0, 0],
        "mtgrpo_turn_rewards": rewards or [0.0],
        "mtgrpo_excluded": bool(excluded),
        "mtgrpo_episode": int(episode),
    }
