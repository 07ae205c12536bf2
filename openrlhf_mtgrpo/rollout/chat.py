"""Chat formatting through the model's own chat template, token-exact.

The sequence the trainer sees is built incrementally: the prompt tokens, then for
each turn the tokens the policy generated, then the *observation* tokens -- the
template's rendering of the messages that follow (tool results, the user's reply,
the next assistant header).  The observation text is cut out of a render of the
whole conversation, right after the text of what was generated, so the final
sequence is the template's rendering of the conversation while every assistant
span is exactly the generated ids.  If a template rewrites earlier turns (so the
render no longer starts with what the model saw), the delta is rendered against a
minimal anchor conversation instead and the turn is flagged ``template_drift``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple


@dataclass
class Delta:
    tokens: List[int]
    text: str
    drift: bool


class ChatRenderer:
    def __init__(self, tokenizer, tools: Optional[List[Dict[str, Any]]] = None, enable_thinking: bool = False):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template; multi-turn rollouts need one")
        self.tok = tokenizer
        self.tools = tools
        self.enable_thinking = enable_thinking
        self.eos_ids = {i for i in [tokenizer.eos_token_id] if i is not None}
        for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            i = tokenizer.convert_tokens_to_ids(t) if t in tokenizer.get_vocab() else None
            if i is not None:
                self.eos_ids.add(i)

    def render(self, messages: List[Dict[str, Any]], add_generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(messages, tools=self.tools, tokenize=False,
                                            add_generation_prompt=add_generation_prompt,
                                            enable_thinking=self.enable_thinking)

    def encode(self, text: str) -> List[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def prompt(self, messages: List[Dict[str, Any]]) -> Tuple[str, List[int]]:
        text = self.render(messages, add_generation_prompt=True)
        return text, self.encode(text)

    def content_of(self, generated: List[int]) -> Tuple[str, str, bool]:
        """(full text incl. special tokens, message content without the end-of-turn token, ended properly)."""
        full = self.tok.decode(generated, skip_special_tokens=False)
        ended = bool(generated) and generated[-1] in self.eos_ids
        content = self.tok.decode(generated[:-1] if ended else generated, skip_special_tokens=False)
        return full, content, ended

    def observation(self, seen_text: str, history: List[Dict[str, Any]], new_messages: List[Dict[str, Any]]) -> Delta:
        """Tokens that follow ``seen_text`` (the exact text so far) when ``new_messages`` are appended."""
        full = self.render(history + new_messages, add_generation_prompt=True)
        if full.startswith(seen_text):
            text = full[len(seen_text):]
            return Delta(self.encode(text), text, False)
        # the template rewrote history: render the new messages after a minimal anchor
        last_assistant = next(m for m in reversed(history) if m["role"] == "assistant")
        anchor = [m for m in history if m["role"] == "system"][:1] + [{"role": "user", "content": "-"}, last_assistant]
        a_text = self.render(anchor, add_generation_prompt=False)
        f_text = self.render(anchor + new_messages, add_generation_prompt=True)
        if not f_text.startswith(a_text):
            raise RuntimeError("chat template is not append-only even for a minimal conversation; cannot build "
                               "token-exact observations")
        # the anchor's text after the assistant content: the end-of-turn marker and what follows it
        content = last_assistant.get("content") or ""
        tail = a_text[a_text.rfind(content) + len(content):] if content else ""
        end_markers = [self.tok.decode([i]) for i in self.eos_ids]
        for marker in end_markers:
            if seen_text.endswith(marker) and tail.startswith(marker):
                tail = tail[len(marker):]
                break
        text = tail + f_text[len(a_text):]
        return Delta(self.encode(text), text, True)
