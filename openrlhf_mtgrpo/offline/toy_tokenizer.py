"""A small byte-level BPE tokenizer with a Qwen-style chat template, built offline in ~1 s.

Qwen conventions: ``<|im_start|>role ... <|im_end|>`` turns, tools listed in the
system turn inside ``<tools></tools>``, calls as JSON inside ``<tool_call>``, tool
results grouped in one user turn inside ``<tool_response>`` blocks.  The template
text is ours.
"""

from __future__ import annotations

import functools
import json
from typing import Optional

CHAT_TEMPLATE = (
    "{%- set sys = messages[0]['content'] if messages and messages[0]['role'] == 'system' else '' -%}"
    "{{- '<|im_start|>system\\n' + sys -}}"
    "{%- if tools -%}"
    "{{- '\\n\\n# Tools\\n\\nYou can call these functions. Each is described by a JSON schema in "
    "<tools></tools>:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nTo call a function, write a JSON object with its name and arguments inside "
    "<tool_call></tool_call>:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}"
    "\\n</tool_call>' -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}{{- '<|im_start|>user\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- elif m['role'] == 'assistant' -%}{{- '<|im_start|>assistant\\n' + (m['content'] or '') -}}"
    "{%- for tc in m.get('tool_calls') or [] -%}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + tc['function']['name'] + '\", \"arguments\": ' "
    "+ (tc['function']['arguments'] | tojson) + '}\\n</tool_call>' -}}"
    "{%- endfor -%}{{- '<|im_end|>\\n' -}}"
    "{%- elif m['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + m['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus(data_dir=None, version=None, domain=None):
    texts = ["<tool_call>\n{\"name\": \"get_user_details\", \"arguments\": {\"user_id\": \"x\"}}\n</tool_call>",
             "<tool_response>\n</tool_response> Error: not found", "###STOP### ###TRANSFER###"]
    from openrlhf_mtgrpo.envs.base import DataNotFound

    try:
        from openrlhf_mtgrpo.envs import load_domain

        from openrlhf_mtgrpo.envs import available_version

        version = available_version(domain, data_dir, version)
        env = load_domain(domain, version, data_dir)
        texts.append(env.policy)
        texts.append(json.dumps(env.tool_schemas()))
        for t in env.tasks("base"):
            texts.append(t.user_instructions)
            texts.append(json.dumps([{"name": a.name, "arguments": a.arguments} for a in t.actions]))
        extra = getattr(env, "tokenizer_corpus", None)  # a domain's own texts (e.g. database records)
        if extra is not None:
            texts.extend(extra())
    except DataNotFound:  # no benchmark data at all: a generic corpus is enough for a byte-level tokenizer
        texts.append("The quick brown fox jumps over the lazy dog. " * 50)
    return texts


@functools.lru_cache(maxsize=8)
def build_toy_tokenizer(vocab_size: int = 3000, data_dir=None, version=None, domain: Optional[str] = None):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE, Qwen-style specials and chat template), trained on the
    texts of the domain's ``version`` (None: the default domain; its first preferred version this machine has)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(data_dir, version, domain), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL)
    fast.chat_template = CHAT_TEMPLATE
    return fast
