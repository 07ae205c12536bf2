"""openrlhf-mtgrpo: multi-turn tool-calling agent RL for OpenRLHF.

The public registry API is re-exported here.  This module is imported by the
start-up hook in every Python process of the environment, so it imports nothing
heavy: the names below resolve lazily on first use.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "register_advantage_estimator": "openrlhf_mtgrpo.registry",
    "get_advantage_estimator": "openrlhf_mtgrpo.registry",
    "list_advantage_estimators": "openrlhf_mtgrpo.registry",
    "register_tool_call_parser": "openrlhf_mtgrpo.registry",
    "get_tool_call_parser": "openrlhf_mtgrpo.registry",
    "list_tool_call_parsers": "openrlhf_mtgrpo.registry",
    "EstimatorInput": "openrlhf_mtgrpo.advantages.types",
    "EstimatorOutput": "openrlhf_mtgrpo.advantages.types",
    "TurnInfo": "openrlhf_mtgrpo.advantages.types",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput, TurnInfo  # noqa: F401
    from openrlhf_mtgrpo.registry import (  # noqa: F401
        get_advantage_estimator,
        get_tool_call_parser,
        list_advantage_estimators,
        list_tool_call_parsers,
        register_advantage_estimator,
        register_tool_call_parser,
    )


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'openrlhf_mtgrpo' has no attribute {name!r}")
