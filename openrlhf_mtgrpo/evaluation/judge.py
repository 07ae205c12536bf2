"""An NL-assertion judge over any OpenAI-compatible endpoint (tasks whose reward basis holds NL assertions)."""

from __future__ import annotations

import json
from typing import Dict, List, Optional


class OpenAIJudge:
    """NL-assertion judge over any OpenAI-compatible endpoint; answers one JSON list of booleans."""

    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, timeout: float = 60.0):
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout)
        self.model = model

    def __call__(self, assertions: List[str], messages: List[Dict]) -> List[bool]:
        convo = "\n".join(f"{m.get('role')}: {m.get('content') or ''}" for m in messages)
        prompt = ("Below is a conversation between a customer-service agent and a user, then numbered statements "
                  "about the agent's behaviour. Reply with only a JSON list of true/false, one per statement.\n\n"
                  f"{convo}\n\nStatements:\n" + "\n".join(f"{i + 1}. {a}" for i, a in enumerate(assertions)))
        out = self.client.chat.completions.create(model=self.model, temperature=0.0,
                                                  messages=[{"role": "user", "content": prompt}])
        text = out.choices[0].message.content or ""
        start, end = text.find("["), text.rfind("]")
        values = json.loads(text[start:end + 1])
        if len(values) != len(assertions):
            raise ValueError(f"judge returned {len(values)} verdicts for {len(assertions)} assertions")
        return [bool(v) for v in values]
