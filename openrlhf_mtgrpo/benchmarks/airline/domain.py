"""The airline domain's factory, registered as ``airline``: ``tau2`` and ``tau2-2025`` on tau2-bench's own
classes (:mod:`.tau2`), ``tau1`` on our implementation of tau-bench (:mod:`.env`; no package ships its code)."""

from __future__ import annotations

from typing import Optional

from openrlhf_mtgrpo.benchmarks.airline.versions import DEFAULT_VERSION, VERSION_NAMES, get_version


def make_airline(version: Optional[str] = None, data_dir: Optional[str] = None):
    """The airline domain of ``version`` (default: tau2, the current tasks)."""
    spec = get_version(version or DEFAULT_VERSION)
    if spec.family == "tau1":
        from openrlhf_mtgrpo.benchmarks.airline.env import Tau1Airline

        return Tau1Airline(spec.name, data_dir)
    from openrlhf_mtgrpo.benchmarks.airline.tau2 import Tau2Airline

    return Tau2Airline(spec.name, data_dir)


make_airline.versions = VERSION_NAMES
make_airline.default_version = DEFAULT_VERSION
#: the versions commands without a version try, in order (the current tasks, then the 2025 release the install brings)
make_airline.preferred_versions = ("tau2", "tau2-2025")


def _available_version(data_dir: Optional[str] = None) -> str:
    """The first preferred version whose files are here, by the data lookup order, without loading it."""
    from openrlhf_mtgrpo.benchmarks.data.locate import default_available_version

    return default_available_version(data_dir, preferred=make_airline.preferred_versions)


make_airline.available_version = _available_version
