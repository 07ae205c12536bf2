"""Moved to :mod:`openrlhf_mtgrpo.jsonl` (rollout, eval and IRC share it); these names stay importable here."""

from openrlhf_mtgrpo.jsonl import BadLine, JsonlReadReport, append_jsonl, iter_jsonl  # noqa: F401

__all__ = ["BadLine", "JsonlReadReport", "append_jsonl", "iter_jsonl"]
