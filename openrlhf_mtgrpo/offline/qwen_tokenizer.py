"""A real Qwen3 tokenizer and the real Qwen chat templates, assembled offline from registry packages.

The model hub is not needed: the package ``dashscope`` ships ``qwen.tiktoken``, the
byte-level BPE ranks of the Qwen vocabulary (151,643 regular tokens, the vocabulary of
Qwen2, Qwen2.5 and Qwen3), and the package ``trl`` ships the chat templates of the
Qwen models (``trl/chat_templates/*.jinja``).  Both files are read from the installed
distributions at run time (neither package is imported: ``trl``'s import pulls heavy
dependencies), nothing of theirs is copied into this repository.

The tokenizer is transformers' own ``Qwen2Tokenizer`` (the class Qwen3 checkpoints
name in their ``tokenizer_config.json``; it sets Qwen2's NFC normaliser and
pre-tokenisation rule) with

* the vocabulary: each rank-file line is ``base64(token bytes) rank``; the id is the rank;
* the merges: one per multi-byte token, the two parts BPE reaches when it may only use
  merges of lower rank (151,387 merges = 151,643 - 256 single bytes, as Qwen's merges.txt);
* Qwen3's added tokens with their published ids (``added_tokens_decoder`` of Qwen3's
  ``tokenizer_config.json``, 151643..151668, with the same ``special`` flags).

``build_qwen3_tokenizer(template)`` returns it with one of the templates set as its chat
template.  A missing package is a :class:`QwenFixturesMissing` error naming the install
command.  Building takes about 4 s; the result is cached per process and per template.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
from typing import Dict, List, Tuple

#: pip command that installs the two packages this module reads files from (no dependencies needed).
INSTALL_COMMAND = "pip install --no-deps dashscope==2.0.2 trl==1.16.0"

RANKS_FILE = ("dashscope", "dashscope/resources/qwen.tiktoken")
TEMPLATE_DIR = ("trl", "trl/chat_templates")

#: Qwen3's added tokens (tokenizer_config.json ``added_tokens_decoder``): id -> (content, special).
QWEN3_ADDED_TOKENS: Dict[int, Tuple[str, bool]] = {
    151643: ("<|endoftext|>", True),
    151644: ("<|im_start|>", True),
    151645: ("<|im_end|>", True),
    151646: ("<|object_ref_start|>", True),
    151647: ("<|object_ref_end|>", True),
    151648: ("<|box_start|>", True),
    151649: ("<|box_end|>", True),
    151650: ("<|quad_start|>", True),
    151651: ("<|quad_end|>", True),
    151652: ("<|vision_start|>", True),
    151653: ("<|vision_end|>", True),
    151654: ("<|vision_pad|>", True),
    151655: ("<|image_pad|>", True),
    151656: ("<|video_pad|>", True),
    151657: ("<tool_call>", False),
    151658: ("</tool_call>", False),
    151659: ("<|fim_prefix|>", False),
    151660: ("<|fim_middle|>", False),
    151661: ("<|fim_suffix|>", False),
    151662: ("<|fim_pad|>", False),
    151663: ("<|repo_name|>", False),
    151664: ("<|file_sep|>", False),
    151665: ("<tool_response>", False),
    151666: ("</tool_response>", False),
    151667: ("<think>", False),
    151668: ("</think>", False),
}
NUM_REGULAR_TOKENS = 151643

#: The real Qwen chat templates this package knows, by the name of their file in trl (without .jinja):
#: model family, tool-call format, and whether the template can think.
QWEN_TEMPLATES: Dict[str, Dict[str, object]] = {
    "qwen3": {"model": "Qwen3 (hybrid thinking, e.g. Qwen3-30B-A3B)", "tool_format": "hermes", "thinks": True},
    "qwen3_training": {"model": "Qwen3, prefix-preserving training variant", "tool_format": "hermes",
                       "thinks": True},
    "qwen3_instruct_2507": {"model": "Qwen3-Instruct-2507 (no thinking)", "tool_format": "hermes",
                            "thinks": False},
    "qwen3_instruct_2507_training": {"model": "Qwen3-Instruct-2507, training variant", "tool_format": "hermes",
                                     "thinks": False},
    "qwen3_5_think": {"model": "Qwen3.5 (4B and larger; thinks by default)", "tool_format": "qwen3_coder",
                      "thinks": True},
    "qwen3_5_think_training": {"model": "Qwen3.5 think, prefix-preserving training variant",
                               "tool_format": "qwen3_coder", "thinks": True},
    "qwen3_5_nothink": {"model": "Qwen3.5 (2B and smaller; thinking off by default)", "tool_format": "qwen3_coder",
                        "thinks": True},
    "qwen3_5_nothink_training": {"model": "Qwen3.5 nothink, prefix-preserving training variant",
                                 "tool_format": "qwen3_coder", "thinks": True},
}


class QwenFixturesMissing(RuntimeError):
    """A package this module reads files from is not installed."""


def _locate(dist: str, rel: str) -> str:
    import importlib.metadata as md
    import os

    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        raise QwenFixturesMissing(f"the package {dist!r} is not installed; install the Qwen fixtures with "
                                  f"`{INSTALL_COMMAND}`") from None
    path = str(d.locate_file(rel))
    if not os.path.exists(path):
        raise QwenFixturesMissing(f"{rel} is missing from the installed {dist} {d.version}; install the versions "
                                  f"this package was checked with: `{INSTALL_COMMAND}`")
    return path


def ranks_path() -> str:
    return _locate(*RANKS_FILE)


def trl_templates_dir() -> str:
    """The ``chat_templates`` folder of the installed trl (read as files; trl is not imported)."""
    return _locate(*TEMPLATE_DIR)


def template_path(name: str) -> str:
    """Path of trl's ``<name>.jinja``."""
    import os

    return os.path.join(trl_templates_dir(), f"{name}.jinja")


def read_template(name: str) -> str:
    import os

    path = template_path(name)
    if not os.path.exists(path):
        raise QwenFixturesMissing(f"no chat template {name!r} in the installed trl ({path}); install "
                                  f"`{INSTALL_COMMAND}`")
    with open(path, encoding="utf-8") as f:
        return f.read()


@functools.lru_cache(maxsize=1)
def load_ranks() -> Dict[bytes, int]:
    """token bytes -> rank (= token id) of ``qwen.tiktoken``."""
    ranks: Dict[bytes, int] = {}
    with open(ranks_path(), "rb") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != NUM_REGULAR_TOKENS or sorted(ranks.values()) != list(range(NUM_REGULAR_TOKENS)):
        raise ValueError(f"{ranks_path()}: expected ranks 0..{NUM_REGULAR_TOKENS - 1}, got {len(ranks)} tokens")
    return ranks


def ranks_sha256() -> str:
    with open(ranks_path(), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _merge_of(token: bytes, rank: int, ranks: Dict[bytes, int]) -> List[bytes]:
    """The parts byte-level BPE reaches for ``token`` using only merges of rank < ``rank``."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return parts


def _byte_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@functools.lru_cache(maxsize=1)
def vocab_and_merges() -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    ranks = load_ranks()
    b2u = _byte_to_unicode()

    def text(b: bytes) -> str:
        return "".join(b2u[c] for c in b)

    vocab = {text(t): r for t, r in ranks.items()}
    merges: List[Tuple[str, str]] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = _merge_of(token, rank, ranks)
        if len(parts) != 2:
            raise ValueError(f"token {token!r} (rank {rank}) is not reachable by lower-rank merges")
        merges.append((text(parts[0]), text(parts[1])))
    return vocab, merges


@functools.lru_cache(maxsize=1)
def _base_tokenizer():
    from tokenizers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    vocab, merges = vocab_and_merges()
    vocab = dict(vocab)
    for i, (content, _) in QWEN3_ADDED_TOKENS.items():
        vocab[content] = i
    specials = [c for i, (c, s) in sorted(QWEN3_ADDED_TOKENS.items()) if s and c not in ("<|endoftext|>",
                                                                                            "<|im_end|>")]
    tok = Qwen2Tokenizer(vocab=vocab, merges=list(merges), unk_token=None, bos_token=None,
                         eos_token="<|im_end|>", pad_token="<|endoftext|>", errors="replace",
                         additional_special_tokens=specials, clean_up_tokenization_spaces=False,
                         model_max_length=262144)
    tok.add_tokens([AddedToken(c, special=False, normalized=False)
                    for i, (c, s) in sorted(QWEN3_ADDED_TOKENS.items()) if not s])
    for i, (content, special) in QWEN3_ADDED_TOKENS.items():
        got = tok.convert_tokens_to_ids(content)
        if got != i:
            raise AssertionError(f"added token {content} got id {got}, Qwen3 publishes {i}")
    return tok


@functools.lru_cache(maxsize=16)
def build_qwen3_tokenizer(template: str = "qwen3"):
    """The Qwen3 tokenizer with trl's ``<template>.jinja`` as its chat template (a fresh copy per template)."""
    if template not in QWEN_TEMPLATES:
        raise ValueError(f"unknown Qwen template {template!r}; known: {', '.join(QWEN_TEMPLATES)}")
    chat_template = read_template(template)
    tok = copy.deepcopy(_base_tokenizer())
    tok.chat_template = chat_template
    return tok
