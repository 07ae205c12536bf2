"""The LLM-simulated customer, over any OpenAI-compatible chat endpoint.

The simulator plays the task's user scenario.  Its conversation is the agent's
with roles swapped (the agent's messages are its "user" turns).  It ends the
conversation with the benchmark's stop signals.  Failures are retried with
exponential back-off; after the last retry :class:`UserSimulatorError` is raised
and the rollout marks the episode as failed by infrastructure.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

STOP_SIGNALS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")


class UserSimulatorError(RuntimeError):
    """The user-simulator endpoint failed after all retries (an infrastructure failure)."""


@dataclass
class UserSimConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5  # seconds, doubled per retry, with jitter


def system_prompt(instructions: str) -> str:
    return (
        "You are playing a customer who contacts an airline's customer-service agent. Stay in character and "
        "follow the scenario below. Write only what the customer says, one message at a time, briefly and "
        "naturally. Do not invent information the scenario does not give you; if asked for something you do not "
        "know, say so. Reveal details only when they are needed.\n\n"
        f"Scenario:\n{instructions}\n\n"
        "When your goal is reached or cannot be reached, reply with exactly ###STOP###. If you are transferred to "
        "a human agent, reply with exactly ###TRANSFER###. If the scenario does not say what to do next, reply "
        "with exactly ###OUT-OF-SCOPE###."
    )


def is_stop(text: str) -> Optional[str]:
    for s in STOP_SIGNALS:
        if s in (text or ""):
            return s
    return None


@dataclass
class UserSimulator:
    config: UserSimConfig
    instructions: str
    history: List[Dict[str, str]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    _client: object = None

    def _get_client(self):
        if self._client is None:
            from openai import AsyncOpenAI

            key = os.environ.get(self.config.api_key_env) or "EMPTY"
            self._client = AsyncOpenAI(base_url=self.config.base_url, api_key=key, timeout=self.config.timeout,
                                       max_retries=0)
        return self._client

    async def _complete(self) -> str:
        messages = [{"role": "system", "content": system_prompt(self.instructions)}] + self.history
        last_error = None
        for attempt in range(self.config.max_retries + 1):
            t0 = time.perf_counter()
            try:
                out = await self._get_client().chat.completions.create(
                    model=self.config.model, messages=messages, temperature=self.config.temperature)
                self.calls += 1
                self.seconds += time.perf_counter() - t0
                text = out.choices[0].message.content
                if text is None:
                    raise ValueError("empty completion")
                return text
            except Exception as e:  # openai.APIError, timeouts, connection errors, bad payloads
                self.seconds += time.perf_counter() - t0
                last_error = e
                if attempt < self.config.max_retries:
                    await asyncio.sleep(self.config.backoff * (2 ** attempt) * (1 + 0.25 * random.random()))
        raise UserSimulatorError(
            f"user simulator at {self.config.base_url} (model {self.config.model}) failed after "
            f"{self.config.max_retries + 1} attempts: {type(last_error).__name__}: {last_error}")

    async def start(self, greeting: str) -> str:
        """The customer's first message, answering the agent's greeting."""
        self.history.append({"role": "user", "content": greeting})
        text = await self._complete()
        self.history.append({"role": "assistant", "content": text})
        return text

    async def reply(self, agent_text: str) -> str:
        self.history.append({"role": "user", "content": agent_text})
        text = await self._complete()
        self.history.append({"role": "assistant", "content": text})
        return text
