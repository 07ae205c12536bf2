"""Crash-safe JSON-lines appends: a reader never sees half a line (rollout logs, eval results, IRC history).

Each record is serialised first, then written with a single ``os.write`` on a file
opened with ``O_APPEND`` and fsync'ed.  POSIX appends of one buffer from several
processes do not interleave on local file systems, so Ray workers can share a log.
Readers still skip (and count) a truncated line, e.g. after a kill or a full disk.
A file that ends in such a partial line (no newline at its end) gets a newline in
front of the next record, in the same write: the partial line stays one corrupt
line that readers report, and the new record is not glued onto it and lost.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List

_lock = threading.Lock()


def _ends_mid_line(fd: int) -> bool:
    """The open file is non-empty and its last byte is not a newline (a record was cut off)."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def append_jsonl(path: str, record: Dict[str, Any], fsync: bool = True) -> None:
    """Append ``record`` as one JSON line to ``path`` (created if missing), in a single write, fsync'ed."""
    data = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _lock:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_mid_line(fd):
                data = b"\n" + data
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - only on a full disk
                raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class BadLine:
    path: str
    line: int
    reason: str


@dataclass
class JsonlReadReport:
    records: int = 0
    bad: List[BadLine] = field(default_factory=list)


def iter_jsonl(paths, report: JsonlReadReport | None = None) -> Iterator[Dict[str, Any]]:
    """Records of every file in ``paths``; corrupt or truncated lines are skipped and reported."""
    report = report if report is not None else JsonlReadReport()
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        with open(path, "rb") as f:
            for i, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("truncated line (no newline at end of file)")
                    obj = json.loads(raw)
                    if not isinstance(obj, dict):
                        raise ValueError("not a JSON object")
                except (ValueError, UnicodeDecodeError) as e:
                    report.bad.append(BadLine(str(path), i, str(e)[:200]))
                    continue
                report.records += 1
                yield obj
