"""Chat formatting through the model's chat template, token-exact and on-policy.

**The invariant.**  The sequence the trainer scores is built by appending only: the
prompt tokens, then for each turn the token ids the engine generated, then the
*observation* tokens (the template's rendering of the messages that follow: tool
results, the customer's reply, the next assistant header and the generation prompt).
Every generation call receives the whole sequence so far as its prompt.  So for every
turn, the tokens before its action span in the final sequence are exactly the prompt
the engine received for that turn, and the span holds exactly the ids it generated:
the trainer's log-probabilities are those of the policy that acted (on-policy), also
for a template that rewrites history.

**Thinking.**  The assistant message re-rendered for the next turn is the template's
reasoning prefill (what the generation prompt adds after the assistant header:
``<think>\\n`` for Qwen3.5 thinking, ``<think>\\n\\n</think>\\n\\n`` with thinking off)
followed by the generated text.  Earlier turns' reasoning therefore stays in the
sequence (the engine was conditioned on it).  Stock Qwen3 / Qwen3.5 templates drop
the reasoning of turns before the last user message when a conversation is rendered
again (and the empty think block of thinking-off turns), so their full render stops
being a prefix of what the engine saw: the observation is then rendered after a
sentinel turn instead, and the turn is flagged ``template_drift`` (the sequence is
still exact and on-policy, but it is no longer the stock template's rendering of the
conversation).  The prefix-preserving training variants of those templates
(``chat_template: training``, see :func:`resolve_chat_template`) keep every turn's
reasoning block, but they re-render it in their own layout, so they extend what the
engine saw only while the generated text is whitespace-exact in that layout:

* ``qwen3_training``: ``<think>\n`` + reasoning.strip("\n") + ``\n</think>\n\n`` +
  answer.lstrip("\n") (reasoning = between the last ``<think>`` and the first
  ``</think>``, answer = after the last ``</think>``);
* ``qwen3_5_think_training`` / ``qwen3_5_nothink_training``: the same, but the whole
  message and the reasoning are trimmed of all whitespace (so a trailing newline, or a
  space after ``<think>``, differs too);
* ``qwen3_instruct_2507_training`` (and stock ``qwen3_instruct_2507``): the content verbatim,
  which never drifts.

Any other spacing around the reasoning tags (``<think>R</think>A``, ``</think>\nA``,
``</think>\n\n\nA``, ``R</think>``, a second ``</think>``) or a leading newline in a
thinking-off answer, makes that turn's render differ from what the engine saw, and from
then on every later observation of the episode drifts.  A sampled policy does that now
and then, so the sentinel fallback stays: it keeps the sequence exact and on-policy in
either case (bench/template_drift.py gives the shares for exact and varied output).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

SENTINEL = "\u2063MTGRPO-TURN-SENTINEL\u2063"


@dataclass
class Delta:
    tokens: List[int]
    text: str
    drift: bool


def resolve_chat_template(spec: Optional[str], tokenizer) -> Optional[str]:
    """The chat template to render with.

    ``None`` / ``""`` / ``"model"``: the tokenizer's own; ``"training"``: the prefix-preserving
    training variant of the tokenizer's template, looked up among the templates the ``trl``
    package ships (its files only; trl is not imported); anything else: the path of a Jinja file.
    """
    own = getattr(tokenizer, "chat_template", None)
    if not spec or spec == "model":
        return own
    if spec == "training":
        return training_variant(own)
    if not os.path.isfile(spec):
        raise ValueError(f"--mtgrpo.chat_template: {spec!r} is neither 'model', 'training' nor a template file")
    with open(spec, encoding="utf-8") as f:
        return f.read()


def trl_templates_dir() -> str:
    """The ``chat_templates`` folder of the installed trl, which ships the prefix-preserving ``*_training``
    variants of the Qwen templates (read as files; trl is not imported)."""
    import importlib.metadata as md

    try:
        dist = md.distribution("trl")
    except md.PackageNotFoundError:
        raise ValueError("--mtgrpo.chat_template training reads the prefix-preserving templates trl ships: "
                         "install trl (pip install --no-deps trl) on every rollout node") from None
    path = str(dist.locate_file("trl/chat_templates"))
    if not os.path.isdir(path):
        raise ValueError(f"--mtgrpo.chat_template training: the installed trl {dist.version} has no "
                         f"chat_templates/ folder ({path}); install a trl that ships it (1.16.0 was checked)")
    return path


def training_variant(template: Optional[str]) -> str:
    """trl's ``<name>_training.jinja`` for the template trl ships as ``<name>.jinja`` (or the template itself
    when it already is a training variant)."""
    if not template:
        raise ValueError("--mtgrpo.chat_template training: the tokenizer has no chat template")
    folder = trl_templates_dir()
    names = sorted(n[:-len(".jinja")] for n in os.listdir(folder) if n.endswith(".jinja"))
    for name in names:
        with open(os.path.join(folder, name + ".jinja"), encoding="utf-8") as f:
            text = f.read()
        if text.strip() != template.strip():
            continue
        if name.endswith("_training"):
            return text
        if name + "_training" in names:
            with open(os.path.join(folder, name + "_training.jinja"), encoding="utf-8") as f:
                return f.read()
        raise ValueError(f"--mtgrpo.chat_template training: trl has no training variant of {name!r}")
    raise ValueError("--mtgrpo.chat_template training: the tokenizer's chat template is none of the templates trl "
                     "ships; give the path of a prefix-preserving template instead")


class ChatRenderer:
    def __init__(self, tokenizer, tools: Optional[List[Dict[str, Any]]] = None, enable_thinking: bool = False,
                 chat_template: Optional[str] = None):
        self.template = chat_template or getattr(tokenizer, "chat_template", None)
        if not self.template:
            raise ValueError("the tokenizer has no chat template; multi-turn rollouts need one")
        self.tok = tokenizer
        self.tools = tools
        #: the template has a reasoning block (<think>...</think>)
        self.thinks = "</think>" in self.template
        if enable_thinking and not self.thinks:
            raise ValueError("--mtgrpo.enable_thinking is set but the chat template has no thinking mode "
                             "(no <think> block); unset it for this model")
        self.enable_thinking = bool(enable_thinking)
        self._prefill: Optional[str] = None
        self.eos_ids = {i for i in [tokenizer.eos_token_id] if i is not None}
        vocab = tokenizer.get_vocab()
        for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            if t in vocab:
                self.eos_ids.add(tokenizer.convert_tokens_to_ids(t))
        self._end_markers = sorted({tokenizer.decode([i]) for i in self.eos_ids}, key=len, reverse=True)

    def render(self, messages: List[Dict[str, Any]], add_generation_prompt: bool) -> str:
        return self.tok.apply_chat_template(messages, tools=self.tools, tokenize=False,
                                            add_generation_prompt=add_generation_prompt,
                                            enable_thinking=self.enable_thinking, chat_template=self.template)

    def encode(self, text: str) -> List[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    @property
    def prefill(self) -> str:
        """What the generation prompt adds after the assistant header (the reasoning block it opens or closes)."""
        if self._prefill is None:
            self._prefill = self._generation_prefill([{"role": "user", "content": "-"}])
        return self._prefill

    def _generation_prefill(self, messages: List[Dict[str, Any]]) -> str:
        without = self.render(messages, add_generation_prompt=False)
        with_prompt = self.render(messages, add_generation_prompt=True)
        if not with_prompt.startswith(without):
            raise RuntimeError("the chat template's generation prompt rewrites the conversation")
        added = with_prompt[len(without):]
        i = added.find("<think>")
        return added[i:] if i >= 0 else ""

    def prompt(self, messages: List[Dict[str, Any]]) -> Tuple[str, List[int]]:
        text = self.render(messages, add_generation_prompt=True)
        if self._prefill is None:
            self._prefill = self._generation_prefill(messages)
        return text, self.encode(text)

    def content_of(self, generated: List[int]) -> Tuple[str, str, bool]:
        """(full text incl. special tokens, message content without the end-of-turn token, ended properly)."""
        full = self.tok.decode(generated, skip_special_tokens=False)
        ended = bool(generated) and generated[-1] in self.eos_ids
        content = self.tok.decode(generated[:-1] if ended else generated, skip_special_tokens=False)
        return full, content, ended

    def assistant_message(self, content: str) -> Dict[str, Any]:
        """The assistant message of a turn as the template re-renders it: the prefill the engine was
        conditioned on, then what it generated (reasoning, answer and call markup as generated)."""
        return {"role": "assistant", "content": self.prefill + content}

    def observation(self, seen_text: str, history: List[Dict[str, Any]], new_messages: List[Dict[str, Any]]) -> Delta:
        """Tokens that follow ``seen_text`` (the exact text so far) when ``new_messages`` are appended."""
        full = self.render(history + new_messages, add_generation_prompt=True)
        if full.startswith(seen_text):
            text = full[len(seen_text):]
            return Delta(self.encode(text), text, False)
        return self._observation_after_sentinel(seen_text, history, new_messages)

    def _observation_after_sentinel(self, seen_text: str, history: List[Dict[str, Any]],
                                    new_messages: List[Dict[str, Any]]) -> Delta:
        """The template rewrote history: render the new messages after a sentinel assistant turn (same system
        prompt and tools) and take the text after the sentinel, less the end-of-turn token already generated."""
        system = [m for m in history[:1] if m["role"] == "system"]
        anchor = system + [{"role": "user", "content": "-"}, {"role": "assistant", "content": SENTINEL}]
        rendered = self.render(anchor + new_messages, add_generation_prompt=True)
        at = rendered.find(SENTINEL)
        if at < 0 or rendered.find(SENTINEL, at + 1) >= 0:
            raise RuntimeError("the chat template does not render an assistant turn's content verbatim; cannot "
                               "build token-exact observations")
        tail = rendered[at + len(SENTINEL):]
        for marker in self._end_markers:
            if seen_text.endswith(marker) and tail.startswith(marker):
                tail = tail[len(marker):]
                break
        return Delta(self.encode(tail), tail, True)
