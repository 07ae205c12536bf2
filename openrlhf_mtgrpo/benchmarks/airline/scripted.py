"""The airline's realistic mistakes for the offline scripted policy (``mtgrpo demo`` and the tests).

The generic mistakes (:func:`openrlhf_mtgrpo.offline.scripted.generic_mistake`) work for any domain;
these know the airline: a lookup of one of the customer's own reservations, a cancellation of another
of their reservations, a hand-off to a human agent.
"""

from __future__ import annotations

import copy


def airline_mistake(db, user_id, kind, task, done, last_call, rng) -> str:
    """The scripted policy's mistake of ``kind`` in an airline task (``done`` gold actions so far), over the
    version's database records ``db`` (read only) and the task's user (``user_id``, None: the first user)."""
    from openrlhf_mtgrpo.offline.scripted import tool_call_text

    uid = user_id or next(iter(db["users"]))
    user = db["users"].get(uid) or {"reservations": []}
    if kind == "extra_read":
        if user["reservations"] and rng.random() < 0.5:
            return tool_call_text("get_reservation_details", {"reservation_id": rng.choice(user["reservations"])})
        return tool_call_text("get_user_details", {"user_id": uid})
    if kind == "wrong_argument" and done < len(task.actions) and task.actions[done].arguments:
        a = copy.deepcopy(task.actions[done].arguments)
        key = rng.choice(sorted(a))
        a[key] = (a[key] + "X") if isinstance(a[key], str) else ("1" if not isinstance(a[key], str) else a[key])
        return tool_call_text(task.actions[done].name, a)
    if kind == "malformed":
        return "<tool_call>\n{\"name\": \"get_user_details\", \"arguments\": {\"user_id\": \n</tool_call>"
    if kind == "duplicate" and last_call and last_call.get("name"):
        return tool_call_text(last_call["name"], last_call["arguments"])
    if kind == "wrong_write" and user["reservations"]:
        return tool_call_text("cancel_reservation", {"reservation_id": rng.choice(user["reservations"])})
    if kind == "unconfirmed" and done < len(task.actions):
        return tool_call_text(task.actions[done].name, copy.deepcopy(task.actions[done].arguments))
    if kind == "transfer":
        return tool_call_text("transfer_to_human_agents", {"summary": "The customer needs help I cannot give."})
    return "I have done what I can. Is there anything else I can help you with?"

