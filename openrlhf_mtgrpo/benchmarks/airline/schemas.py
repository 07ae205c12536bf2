"""Our own-words function schemas of tau1's airline tools: the fallback tool list.

The agent normally sees tau-bench's own schemas, read from its tool modules (:mod:`.tau1_schemas`).  These
are used only when that source is not on the machine, and are then flagged (``schema_source``:
``own-words``, "schemas: own words, not comparable"): parameter names, types and required sets follow
tau-bench, but the descriptions are ours, so the policy's prompt is not the benchmark's.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List


def _s(desc):
    return {"type": "string", "description": desc}


def _i(desc):
    return {"type": "integer", "description": desc}


_FLIGHT_ITEM = {"type": "object", "properties": {
    "flight_number": _s("Flight number, e.g. 'HAT001'."),
    "date": _s("Flight date as 'YYYY-MM-DD', e.g. '2024-05-01'.")}, "required": ["flight_number", "date"]}
_PASSENGER_ITEM = {"type": "object", "properties": {
    "first_name": _s("First name of the passenger."), "last_name": _s("Last name of the passenger."),
    "dob": _s("Date of birth as 'YYYY-MM-DD'.")}, "required": ["first_name", "last_name", "dob"]}
_PAYMENT_ITEM = {"type": "object", "properties": {
    "payment_id": _s("Id of a payment method saved in the user profile, e.g. 'credit_card_7815826'."),
    "amount": {"type": "number", "description": "Amount charged to this payment method."}},
    "required": ["payment_id", "amount"]}
_CABIN = {"type": "string", "enum": ["basic_economy", "economy", "business"], "description": "Cabin class."}
_RES_ID = _s("Six-character reservation id, e.g. 'ZFA04Y'.")
_USER_ID = _s("User id, e.g. 'sara_doe_496'.")
_PAYMENT_ID = _s("Id of a payment method saved in the user profile, e.g. 'credit_card_7815826', "
                 "'gift_card_7815826' or 'certificate_7815826'.")


def _tool(name, desc, props, required):
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


_COMMON = [
    _tool("book_reservation", "Book a new reservation for a user.", {
        "user_id": _USER_ID, "origin": _s("IATA code of the trip origin, e.g. 'SFO'."),
        "destination": _s("IATA code of the trip destination, e.g. 'JFK'."),
        "flight_type": {"type": "string", "enum": ["one_way", "round_trip"], "description": "Trip type."},
        "cabin": _CABIN,
        "flights": {"type": "array", "items": _FLIGHT_ITEM, "description": "Every flight segment of the trip."},
        "passengers": {"type": "array", "items": _PASSENGER_ITEM, "description": "Every passenger."},
        "payment_methods": {"type": "array", "items": _PAYMENT_ITEM,
                            "description": "Payment split; amounts must add up to the total price."},
        "total_baggages": _i("Total number of checked bags."), "nonfree_baggages": _i("Number of paid bags."),
        "insurance": {"type": "string", "enum": ["yes", "no"], "description": "Whether to buy travel insurance."}},
        ["user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers", "payment_methods",
         "total_baggages", "nonfree_baggages", "insurance"]),
    _tool("calculate", "Evaluate an arithmetic expression with numbers, + - * /, parentheses and spaces.",
          {"expression": _s("The expression, e.g. '2 + 2'.")}, ["expression"]),
    _tool("cancel_reservation", "Cancel a whole reservation.", {"reservation_id": _RES_ID}, ["reservation_id"]),
    _tool("get_reservation_details", "Look up a reservation.", {"reservation_id": _RES_ID}, ["reservation_id"]),
    _tool("get_user_details", "Look up a user's profile, including payment methods and reservations.",
          {"user_id": _USER_ID}, ["user_id"]),
    _tool("list_all_airports", "List all airports with their cities.", {}, []),
    _tool("search_direct_flight", "Search direct flights between two airports on a date.", {
        "origin": _s("Origin airport, three letters, e.g. 'JFK'."),
        "destination": _s("Destination airport, three letters, e.g. 'LAX'."),
        "date": _s("Date as 'YYYY-MM-DD'.")}, ["origin", "destination", "date"]),
    _tool("search_onestop_flight", "Search flights with one stop between two airports on a date.", {
        "origin": _s("Origin airport, three letters, e.g. 'JFK'."),
        "destination": _s("Destination airport, three letters, e.g. 'LAX'."),
        "date": _s("Date as 'YYYY-MM-DD'.")}, ["origin", "destination", "date"]),
    _tool("send_certificate", "Send a travel certificate of the given amount to a user. Use with care.",
          {"user_id": _USER_ID, "amount": {"type": "number", "description": "Certificate amount."}},
          ["user_id", "amount"]),
    _tool("transfer_to_human_agents", "Hand the user over to a human agent with a summary of the issue. Only when "
          "the user asks for a human, or when policy and tools cannot resolve the request.",
          {"summary": _s("Summary of the user's issue.")}, ["summary"]),
    _tool("update_reservation_baggages", "Change the checked-bag counts of a reservation.", {
        "reservation_id": _RES_ID, "total_baggages": _i("New total number of bags."),
        "nonfree_baggages": _i("New number of paid bags."), "payment_id": _PAYMENT_ID},
        ["reservation_id", "total_baggages", "nonfree_baggages", "payment_id"]),
    _tool("update_reservation_flights", "Change the flights (and cabin) of a reservation.", {
        "reservation_id": _RES_ID, "cabin": _CABIN,
        "flights": {"type": "array", "items": _FLIGHT_ITEM,
                    "description": "ALL flight segments of the updated reservation, changed or not."},
        "payment_id": _PAYMENT_ID}, ["reservation_id", "cabin", "flights", "payment_id"]),
    _tool("update_reservation_passengers", "Replace the passenger details of a reservation (same count).", {
        "reservation_id": _RES_ID,
        "passengers": {"type": "array", "items": _PASSENGER_ITEM, "description": "All passengers."}},
        ["reservation_id", "passengers"]),
]

_TAU1_ONLY = [_tool("think", "Write down a thought. Changes nothing and fetches nothing.",
                    {"thought": _s("The thought.")}, ["thought"])]


def tool_schemas(version: str) -> List[Dict[str, Any]]:
    """Our own words for ``version``'s tools (tau1 only: tau2's versions show tau2's own schemas)."""
    if version != "tau1":
        raise ValueError(f"own-words schemas exist for tau1 only, not {version!r}")
    return copy.deepcopy(_COMMON + _TAU1_ONLY)
