"""Failures that are not the policy's: the conversation ends as ``infrastructure_error``, is not scored, and is
retried (eval) or excluded from training, counted by its ``cause``."""

from __future__ import annotations

from typing import Optional

#: the cause of a domain call past its time limit (:mod:`.domain_calls`)
DOMAIN_TIMEOUT = "domain_timeout"


class InfrastructureFailure(RuntimeError):
    """A failure that is not the policy's (the customer simulator, an endpoint, a judge, a domain call that
    hangs): the conversation ends as ``infrastructure_error``, is not scored, and is retried (eval) or excluded
    (training).

    cause: a short kind (unreachable, timeout, server_error, bad_reply, context_overflow, rejected,
    domain_timeout, ...); status: the HTTP status if there was one; attempts: calls made."""

    def __init__(self, message: str, cause: str = "", status: Optional[int] = None, attempts: int = 0):
        super().__init__(message)
        self.cause = cause
        self.status = status
        self.attempts = attempts


class CustomerFailure(InfrastructureFailure):
    """The simulated customer failed."""


class DomainTimeout(InfrastructureFailure):
    """A call into the domain ran past its time limit."""

    def __init__(self, message: str):
        super().__init__(message, DOMAIN_TIMEOUT)
