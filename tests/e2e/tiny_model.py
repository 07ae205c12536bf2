"""A tiny Qwen3-style causal LM with random weights, built at test time (no download).

Hidden size 64, 2 layers, 4 query / 2 key-value heads, the toy byte-level BPE tokenizer
(3000 tokens, Qwen-style specials and chat template; openrlhf_mtgrpo/offline/toy_tokenizer.py).

As in Qwen's tokenizers, ``<tool_call>`` and ``</tool_call>`` are single (added) tokens.

Random weights alone would end a turn with ``<|im_end|>`` about once in 3000 tokens, so every
turn would run into the per-turn token cap and every episode would be one turn long, and no
turn would ever open a tool call.  A few weights are set so that, at every position,
``<|im_end|>`` has a probability of roughly ``stop_prob`` and ``<tool_call>`` of roughly
``call_prob``: embedding dimension 0 is a constant (after RMSNorm it dominates the hidden
state) and the ``lm_head`` rows of those two tokens read it.  Episodes then differ in their
number of turns, and some turns open a (malformed) tool call -- a tool error, a different
per-turn reward -- which is what gives the turn-level estimators something to compare.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Optional


def build_tiny_qwen3(out_dir: str, data_dir, *, version: str = "tau2", stop_prob: float = 0.08, call_prob: float = 0.015,
                     seed: int = 0, max_positions: int = 8192, domain: Optional[str] = None) -> str:
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer

    tok = build_toy_tokenizer(data_dir=data_dir, version=version, domain=domain)
    tok = copy.deepcopy(tok)  # the builder's result is cached and shared
    tok.add_tokens(["<tool_call>", "</tool_call>"])
    call = tok.convert_tokens_to_ids("<tool_call>")
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    cfg = Qwen3Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=max_positions,
        tie_word_embeddings=False, eos_token_id=eos, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 3.0
        model.lm_head.weight[:, 0] = 0.0
        # measure the normalised hidden state's dimension 0, then give each boosted token the logit that
        # makes its probability ~p against V-2 other tokens of logit ~0
        ids = torch.randint(3, len(tok), (1, 64), generator=torch.Generator().manual_seed(seed))
        h = model.model(input_ids=ids).last_hidden_state[0, :, 0].mean().item()
        rest = 1.0 - stop_prob - call_prob
        for token, p in ((eos, stop_prob), (call, call_prob)):
            model.lm_head.weight[token, 0] = math.log(p * (len(tok) - 2) / rest) / h
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
