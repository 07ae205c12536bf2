"""Tau-Bench airline domain (tau1 and tau2 data versions), written for fast RL rollouts."""

from openrlhf_mtgrpo.benchmarks.airline.data import Action, AirlineData, Task, load_airline  # noqa: F401
from openrlhf_mtgrpo.benchmarks.airline.env import AirlineEnv, AssistantTurn, Episode  # noqa: F401
from openrlhf_mtgrpo.benchmarks.airline.versions import DEFAULT_VERSION, VERSION_NAMES, family_of  # noqa: F401
from openrlhf_mtgrpo.benchmarks.airline.evaluation import RewardResult  # noqa: F401
