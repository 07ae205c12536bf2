"""Which OpenRLHF versions the hooks are written and tested against."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Optional, Tuple

SUPPORTED_MIN = (0, 11, 0)
SUPPORTED_BELOW = (0, 12, 0)
SUPPORTED_TEXT = ">=0.11.0,<0.12 (tested with 0.11.2)"


class UnsupportedOpenRLHFVersion(RuntimeError):
    pass


def parse_version(text: str) -> Tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        raise ValueError(f"cannot parse version {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def installed_openrlhf_version() -> Optional[str]:
    try:
        return metadata.version("openrlhf")
    except metadata.PackageNotFoundError:
        return None


def check_openrlhf_version(version: Optional[str] = None) -> str:
    """Return the version if supported, raise :class:`UnsupportedOpenRLHFVersion` naming the range otherwise."""
    version = version if version is not None else installed_openrlhf_version()
    if version is None:
        raise UnsupportedOpenRLHFVersion(f"OpenRLHF is not installed; openrlhf-mtgrpo supports OpenRLHF {SUPPORTED_TEXT}")
    v = parse_version(version)
    if not (SUPPORTED_MIN <= v < SUPPORTED_BELOW):
        raise UnsupportedOpenRLHFVersion(
            f"openrlhf-mtgrpo supports OpenRLHF {SUPPORTED_TEXT}, but OpenRLHF {version} is installed. "
            "Install a supported version (pip install 'openrlhf>=0.11,<0.12') or set OPENRLHF_MTGRPO_DISABLE=1."
        )
    return version
