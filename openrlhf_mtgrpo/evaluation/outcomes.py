"""What an eval episode's end counts as: a scored result, or a failure of the infrastructure.

*Scored* (status ``scored``): the episode ended in a way the policy is responsible
for, and its benchmark reward counts, success or not.  Policy failures end early
and score 0 (tau2-bench gives 0 to any episode not ended by the agent or the user):

* ``context_overflow``: the policy endpoint refused the conversation, once the policy
  has replied at least once, as longer than the model's context (vLLM: HTTP 400 "This model's maximum context length is ...",
  "'max_tokens' is too large ...", or from its v1 engine "The decoder prompt (length M)
  is longer than the maximum model length of N"; the full list is in
  :func:`openrlhf_mtgrpo.rollout.user_sim.classify_http_error`);
* ``turn_too_long``: a reply hit the per-call token cap (``finish_reason: length``);
  ``length_budget``: it hit the smaller cap of what the context had left (the training
  rollout's name for a turn cut at the remaining budget);
* ``max_steps``: the run's budget (tau2: orchestrator steps; tau-bench: agent actions);
  ``too_many_errors``: tau2's limit of failed tool calls (the run rules, :class:`~openrlhf_mtgrpo.envs.base.RunRules`);
* everything the benchmark scores 0 (wrong or missing actions, missing information).
* ``agent_error``: a message the benchmark's run fails at (a tool call whose
  arguments are not a JSON object; tau2: an empty message), as in training
  (:meth:`Episode.assistant_message`).

*Infrastructure* (status ``infra``): not the policy's doing, not scored, retried by
the next run of the same command:

* the user simulator failed, for any reason (its own context overflow included,
  which is not retried within the run: the same request gets the same answer);
* the policy endpoint could not be reached, timed out, answered 5xx/429, or sent a
  reply that is not a chat completion (an HTML page, JSON without ``choices``),
  after all retries;
* the policy endpoint refused an episode's *first* prompt as too long: nothing of the
  policy's own is in it yet; the served context cannot hold the first prompt plus
  ``--max-tokens`` (a setup error, as below);
* the policy endpoint refused the request for a reason other than context length
  (HTTP 400/404/422/401/403: wrong model name, authentication, server options);
  not retried.  401/403/404 and a first-prompt overflow are setup errors that every
  episode would hit: the run stops starting new episodes (:func:`is_setup_error`);
* the NL-assertion judge failed;
* a call into the domain (a tool, a reset, the evaluation) ran past its time limit
  (``--domain-timeout``; kind ``domain_timeout``).

*Unscored* (status ``unscored``): the reward is not final (NL assertions in the
task's reward basis and no judge).  Not retried; the task is incomplete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

#: Episode statuses (the ``status`` of a result record).
SCORED, INFRA, UNSCORED = "scored", "infra", "unscored"

POLICY_ENDPOINT = "policy endpoint"
USER_SIMULATOR = "user simulator"
JUDGE = "NL judge"
DOMAIN = "domain"

#: The ``kind`` of a context overflow (the user simulator's own, or the policy endpoint's on a first prompt).
CONTEXT_OVERFLOW_KIND = "context_overflow"


_KIND_WORDS = {
    "unreachable": "unreachable",
    "timeout": "timed out",
    "server_error": "server error",
    "bad_reply": "bad reply",
    "context_overflow": "context overflow",
    "rejected": "rejected the request",
    "error": "failed",
    "domain_timeout": "call past its time limit (domain_timeout)",
}
SETUP_ERROR_STATUS = (401, 403, 404)


@dataclass
class InfraFailure:
    """Why an episode failed by infrastructure."""

    source: str  # POLICY_ENDPOINT, USER_SIMULATOR, JUDGE or DOMAIN
    kind: str  # unreachable, timeout, server_error, bad_reply, context_overflow, rejected, error
    message: str
    status: Optional[int] = None  # HTTP status, if any
    attempts: int = 0

    @property
    def cause(self) -> str:
        """Short label the summary groups by, e.g. ``user simulator unreachable``."""
        words = _KIND_WORDS.get(self.kind, self.kind)
        if self.kind == "rejected" and self.status:
            words = f"rejected the request (HTTP {self.status})"
        return f"{self.source} {words}"

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["cause"] = self.cause
        return d


def is_setup_error(failure: Optional[InfraFailure]) -> bool:
    """A refusal every episode would get (authentication, unknown model or path, a served context too small for
    a first prompt plus the reply cap): stop the run."""
    if failure is None:
        return False
    if failure.source == POLICY_ENDPOINT and failure.kind == CONTEXT_OVERFLOW_KIND:
        return True  # only on a first prompt: later overflows are the policy's (chat_episode)
    return failure.kind == "rejected" and failure.status in SETUP_ERROR_STATUS
