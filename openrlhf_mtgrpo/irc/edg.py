"""Moved to :mod:`openrlhf_mtgrpo.rewards.gating` (the rollout's online gating); these names stay importable here."""

from openrlhf_mtgrpo.rewards.gating import (  # noqa: F401
    ACTOR_NAME, DEFAULT_HYSTERESIS, NAMESPACE, EDGClient, EDGState, GateSet, edg_actor_class, effective_pins,
    fired_names, fired_vector, irc_pins,
)

__all__ = ["ACTOR_NAME", "DEFAULT_HYSTERESIS", "NAMESPACE", "EDGClient", "EDGState", "GateSet", "edg_actor_class",
           "effective_pins", "fired_names", "fired_vector", "irc_pins"]
