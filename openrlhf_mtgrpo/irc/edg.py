"""Moved to :mod:`openrlhf_mtgrpo.rewards.gating` (the rollout's online gating); these names stay importable here."""

from openrlhf_mtgrpo.rewards.gating import (  # noqa: F401
    ACTOR_NAME, DEFAULT_CONFIDENCE, DEFAULT_WINDOW, NAMESPACE, EDGClient, EDGState, GateSet, edg_actor_class,
    effective_pins, fired_names, fired_vector, irc_pins, option_problems,
)

__all__ = ["ACTOR_NAME", "DEFAULT_CONFIDENCE", "DEFAULT_WINDOW", "NAMESPACE", "EDGClient", "EDGState", "GateSet",
           "edg_actor_class", "effective_pins", "fired_names", "fired_vector", "irc_pins", "option_problems"]
