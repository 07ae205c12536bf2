"""Calls into a domain from the rollout's event loop: never blocking it, never hanging.

A domain's episode methods (``reset``, ``assistant_message``, ``user_tool_calls``, ``probes``, ``evaluate``) may
be coroutines or plain functions.  A user's tools often do I/O (a database, an HTTP API, a sandbox), and one
rollout process runs many episodes on one event loop (OpenRLHF starts every sample of a prompt, and many
prompts, concurrently): a plain function called on the loop would stall all of them.  :class:`DomainCalls`
therefore awaits a coroutine where the domain gives one and runs a plain function in a thread of a shared pool,
in training and eval alike.  Consequences for a domain's author (docs/domains.md): episodes of one process run
their plain methods concurrently in threads, so state shared between episodes must be thread-safe (one
episode's own calls never overlap).

Every call has a time limit (``--mtgrpo.domain_timeout``, eval's ``--domain-timeout``), counted from when it
starts running: a call past it ends the episode as an infrastructure failure with cause ``domain_timeout`` (not
the policy's doing: excluded from training, retried by eval), never a hang.  An evaluation that asks a judge
endpoint (:mod:`openrlhf_mtgrpo.evaluation.judge`) gets the judge's own budget on top (:meth:`DomainCalls.longer`:
every request timing out, with its retries), so a slow judge fails as the judge's failure, not as the domain's
timeout.  Python cannot stop a thread, so the
call itself runs on in its thread until it returns; and a single C-level operation that holds the GIL (an
astronomically large ``10**10**10``) stalls every thread and the loop alike, which is why the benchmark domains
bound their ``calculate`` before evaluating anything.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from openrlhf_mtgrpo.rollout.failures import DomainTimeout

#: the default limit of one domain call, in seconds (a tool that has not answered in two minutes is broken)
DEFAULT_TIMEOUT = 120.0
#: threads of the shared pool: enough for every episode of a rollout process to be inside a domain call at once
#: (threads start only as they are needed)
POOL_THREADS = 256

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="mtgrpo-domain")
        return _pool


class DomainCalls:
    """Runs a domain's methods for the episode loop (see the module docstring).

    timeout: seconds one call may run (None: no limit); pool: the executor of plain methods (default: one
    shared pool per process)."""

    def __init__(self, timeout: Optional[float] = DEFAULT_TIMEOUT, pool: Optional[ThreadPoolExecutor] = None):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"the domain call time limit must be > 0 seconds (or None), got {timeout!r}")
        self.timeout = timeout
        self._pool = pool

    def longer(self, seconds: float) -> "DomainCalls":
        """These calls with ``seconds`` more of time limit (the same pool): for a call that also waits on an
        endpoint of its own, e.g. an evaluation that asks a judge (with its retries)."""
        if not seconds or self.timeout is None:
            return self
        return DomainCalls(self.timeout + seconds, self._pool)

    async def __call__(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``'s result, awaited where it is a coroutine; ``what`` names the call in the
        :class:`DomainTimeout` it raises past the limit."""
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
            result = await self._limited(fn(*args, **kwargs), what)
        else:
            result = await self._in_thread(what, fn, args, kwargs)
        if inspect.isawaitable(result):  # a plain function that hands back an awaitable
            result = await self._limited(result, what)
        return result

    async def _limited(self, awaitable: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            raise self._timeout(what) from None

    async def _in_thread(self, what: str, fn: Callable[..., Any], args, kwargs) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.create_future()

        def run():
            loop.call_soon_threadsafe(lambda: started.done() or started.set_result(None))
            return fn(*args, **kwargs)

        done = loop.run_in_executor(self._pool or _shared_pool(), functools.partial(run))
        # the limit counts from when the call starts running, not while it waits for a free thread
        await asyncio.wait({started, done}, return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        try:
            return await asyncio.wait_for(asyncio.shield(done), self.timeout)
        except asyncio.TimeoutError:
            raise self._timeout(what) from None

    def _timeout(self, what: str) -> DomainTimeout:
        return DomainTimeout(f"the domain's {what} did not return within {self.timeout:g} s (the domain call limit, "
                             "--mtgrpo.domain_timeout / eval's --domain-timeout): the episode is not scored")
