"""Support-desk mistakes of the offline scripted policy (``mtgrpo demo``).

Two kinds are the desk's own; every other kind returns None, and the scripted policy then makes the
package's generic mistake of that kind (``openrlhf_mtgrpo.offline.scripted.generic_mistake``).

* ``extra_read``: a look at one of the customer's tickets the task does not need;
* ``wrong_write``: a status change of one of the customer's *other* open tickets, one the customer never
  named, or, for a customer without such tickets, a plan change of the account.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Optional

from openrlhf_mtgrpo.offline.scripted import tool_call_text

from mtgrpo_example_crm.data import Task
from mtgrpo_example_crm.tools import TICKET_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from mtgrpo_example_crm.domain import CrmDomain


def _other_tickets(domain: "CrmDomain", task: Task):
    customer = domain.data.db["customers"].get(task.customer_id) or {"ticket_ids": []}
    named = {a.arguments.get("ticket_id") for a in task.actions} | {
        t for t in customer["ticket_ids"] if t in task.user_instructions}
    return [t for t in customer["ticket_ids"] if t not in named]


def mistake(domain: "CrmDomain", kind: str, task: Task, done: int, rng: random.Random) -> Optional[str]:
    """The text of the scripted policy's mistake of ``kind`` in ``task``, or None for the generic one."""
    others = _other_tickets(domain, task)
    if kind == "extra_read" and others:
        return tool_call_text("get_ticket", {"ticket_id": rng.choice(others)})
    if kind == "wrong_write":
        tickets = domain.data.db["tickets"]
        open_others = [t for t in others if tickets[t]["status"] != "closed"]
        if open_others:  # a real change: a status the ticket does not have
            ticket = rng.choice(open_others)
            status = rng.choice([s for s in TICKET_STATUSES if s != tickets[ticket]["status"]])
            return tool_call_text("update_ticket", {"ticket_id": ticket, "status": status})
        plan = domain.data.db["customers"].get(task.customer_id, {}).get("plan")
        other_plans = sorted(p for p in domain.data.db["plans"] if p != plan)
        if task.customer_id and other_plans:
            return tool_call_text("change_plan", {"customer_id": task.customer_id, "plan_id": rng.choice(other_plans)})
    return None
