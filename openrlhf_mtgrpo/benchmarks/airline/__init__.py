"""Tau-Bench's airline domain: tau2's versions on tau2-bench's own classes, tau1 on ours.

``AirlineEnv(version, data_dir)`` is the domain of a version (:func:`.domain.make_airline`), the name the
package's callers have always used.  Importing this package imports no tau2 module.
"""

from openrlhf_mtgrpo.benchmarks.airline.data import Action, AirlineData, Task, load_airline  # noqa: F401
from openrlhf_mtgrpo.benchmarks.airline.domain import make_airline
from openrlhf_mtgrpo.benchmarks.airline.versions import DEFAULT_VERSION, VERSION_NAMES, family_of  # noqa: F401
from openrlhf_mtgrpo.envs.base import AssistantTurn  # noqa: F401

AirlineEnv = make_airline
