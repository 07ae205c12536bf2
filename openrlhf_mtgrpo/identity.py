"""A domain's ``identity`` in words, as the reports print it (the IRC summary, eval's table title).

A domain's ``identity`` (docs/domains.md, "What identity holds") is a flat dict of text: ``version``, and
whatever says which data the runs played: the sha256 of each file or in-code table the tasks and the outcome
depend on (keys ending in ``_sha256``, or a file's name with its sha256 as the value), a package's name and
version.  Reports print every key it holds, not a fixed few: a key a domain does not have is never shown as
``None``.  Stdlib only.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

_HEX = re.compile(r"[0-9a-f]{40,}")
SUFFIX = "_sha256"


def _name(key: str) -> str:
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key


def identity_parts(identity: Optional[Mapping[str, Any]], digits: int = 12) -> list:
    """Every key of ``identity`` but ``version``, in its order, as ``"<name> sha256 <first digits>"`` for a digest
    (``tasks_sha256`` -> ``tasks sha256 2f13c1e6fac6``; ``tasks.json`` -> ``tasks.json sha256 ...``) and
    ``"<key> <value>"`` otherwise; keys with the same digest are named together (``tasks.json = tasks sha256 ...``)."""
    if not identity:
        return []
    entries: list = []  # [names, shown value, is a digest]
    digests: dict = {}  # digest -> its entry
    for key, value in identity.items():
        if key == "version":
            continue
        text = str(value)
        if key.endswith(SUFFIX) or _HEX.fullmatch(text):
            if text in digests:
                digests[text][0].append(_name(key))
                continue
            digests[text] = [[_name(key)], text[:digits], True]
            entries.append(digests[text])
        else:
            entries.append([[key], text, False])
    return [f"{' = '.join(names)} sha256 {shown}" if digest else f"{names[0]} {shown}"
            for names, shown, digest in entries]


def identity_text(identity: Optional[Mapping[str, Any]], digits: int = 12) -> str:
    """``"v1 (data sha256 0123456789ab, package my-domain==0.1)"``: the version, then every other key
    (:func:`identity_parts`); ``"not recorded"`` for an empty or missing identity."""
    if not identity:
        return "not recorded"
    parts = identity_parts(identity, digits)
    version = identity.get("version")
    head = str(version) if version is not None else "(no version recorded)"
    return head + (f" ({', '.join(parts)})" if parts else "")
