"""The tau2-bench airline tools (``AirlineTools``), reimplemented over :class:`EpisodeDB`.

Same checks in the same order, same messages, same state changes, including the
benchmark's quirks: cancelling releases no seats, a flight change updates no seat
counts, a cancelled reservation can be cancelled again, one-stop search builds
the next day's date without zero padding.  Outputs are the JSON of the model dump.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.airline import records as R
from openrlhf_mtgrpo.envs.airline.tools import (
    AIRPORTS, CERTIFICATE_NUMBERS, GENERIC, NOW, READ, RESERVATION_IDS, WRITE, ToolError, ToolSpec, ToolTable,
    safe_arithmetic,
)


def _dump(obj) -> str:
    return obj if isinstance(obj, str) else json.dumps(obj, default=str)


def _user(db, user_id, write=False):
    if not db.contains("users", user_id):
        raise ToolError(f"User {user_id} not found")
    return db.write("users", user_id) if write else db.read("users", user_id)


def _reservation(db, reservation_id, write=False):
    if not db.contains("reservations", reservation_id):
        raise ToolError(f"Reservation {reservation_id} not found")
    return db.write("reservations", reservation_id) if write else db.read("reservations", reservation_id)


def _flight(db, flight_number):
    if not db.contains("flights", flight_number):
        raise ToolError(f"Flight {flight_number} not found")
    return db.read("flights", flight_number)


def _instance(db, flight_number, date):
    f = _flight(db, flight_number)
    if not isinstance(date, str) or date not in f["dates"]:
        raise ToolError(f"Flight {flight_number} not found on date {date}")
    return f["dates"][date]


def _direct(db, date, origin=None, destination=None, leave_after=None) -> List[Dict[str, Any]]:
    out = []
    for f in db.values("flights"):
        inst = f["dates"].get(date) if isinstance(date, str) else None
        if ((origin is None or f["origin"] == origin) and (destination is None or f["destination"] == destination)
                and inst is not None and inst["status"] == "available"
                and (leave_after is None or f["scheduled_departure_time_est"] >= leave_after)):
            out.append({"flight_number": f["flight_number"], "origin": f["origin"], "destination": f["destination"],
                        "status": "available", "scheduled_departure_time_est": f["scheduled_departure_time_est"],
                        "scheduled_arrival_time_est": f["scheduled_arrival_time_est"], "date": None,
                        "available_seats": dict(inst["available_seats"]), "prices": dict(inst["prices"])})
    return out


def _payment_for_update(user, payment_id, total_price) -> Optional[Dict[str, Any]]:
    methods = user["payment_methods"]
    if payment_id not in methods:
        raise ToolError("Payment method not found")
    m = methods[payment_id]
    if m["source"] == "certificate":
        raise ToolError("Certificate cannot be used to update reservation")
    if m["source"] == "gift_card" and m["amount"] < total_price:
        raise ToolError("Gift card balance is not enough")
    return {"payment_id": payment_id, "amount": total_price} if total_price != 0 else None


def _bookable(db, flight_number, date, cabin, n_passengers):
    """(flight, date instance) if ``n_passengers`` seats of ``cabin`` can be sold, else the benchmark's refusal."""
    fl = _flight(db, flight_number)
    inst = _instance(db, flight_number, date)
    if inst["status"] != "available":
        raise ToolError(f"Flight {flight_number} not available on date {date}")
    if inst["available_seats"][cabin] < n_passengers:
        raise ToolError(f"Not enough seats on flight {flight_number}")
    return fl, inst


def _charge_for_update(db, reservation_id, payment_id, total_price):
    """Check the payment of a change (may refuse), then deduct a gift card and record the payment.

    Returns the reservation, writable."""
    r = _reservation(db, reservation_id)
    payment = _payment_for_update(_user(db, r["user_id"]), payment_id, total_price)
    user = _user(db, r["user_id"], write=True)
    if user["payment_methods"][payment_id]["source"] == "gift_card":
        user["payment_methods"][payment_id]["amount"] -= total_price
    r = _reservation(db, reservation_id, write=True)
    if payment is not None:
        r["payment_history"].append(payment)
    return r


def book_reservation(db, user_id, origin, destination, flight_type, cabin, flights, passengers, payment_methods,
                     total_baggages, nonfree_baggages, insurance):
    flights = R.build_list("FlightInfo", R.FLIGHT_INFO, flights, "flights")
    passengers = R.build_list("Passenger", R.PASSENGER, passengers, "passengers")
    payment_methods = R.build_list("Payment", R.PAYMENT, payment_methods, "payment_methods")
    user = _user(db, user_id)
    reservation_id = next((r for r in RESERVATION_IDS if not db.contains("reservations", r)), None)
    if reservation_id is None:
        raise ToolError("Too many reservations")
    head = R.build("Reservation", [
        ("user_id", "str", R._MISSING), ("origin", "str", R._MISSING), ("destination", "str", R._MISSING),
        ("flight_type", R.FLIGHT_TYPES, R._MISSING), ("cabin", R.CABINS, R._MISSING),
        ("total_baggages", "int", R._MISSING), ("nonfree_baggages", "int", R._MISSING),
        ("insurance", R.INSURANCE, R._MISSING)],
        dict(user_id=user_id, origin=origin, destination=destination, flight_type=flight_type, cabin=cabin,
             total_baggages=total_baggages, nonfree_baggages=nonfree_baggages, insurance=insurance))
    cabin = head["cabin"]
    total_price, res_flights, instances = 0, [], []
    for info in flights:
        fl, inst = _bookable(db, info["flight_number"], info["date"], cabin, len(passengers))
        price = inst["prices"][cabin]
        res_flights.append({"flight_number": info["flight_number"], "origin": fl["origin"],
                            "destination": fl["destination"], "date": info["date"], "price": price})
        instances.append((info["flight_number"], info["date"]))
        total_price += price * len(passengers)
    if insurance == "yes":
        total_price += 30 * len(passengers)
    total_price += 50 * nonfree_baggages  # the raw argument, as the benchmark does (a string fails here)
    for p in payment_methods:
        if p["payment_id"] not in user["payment_methods"]:
            raise ToolError(f"Payment method {p['payment_id']} not found")
        m = user["payment_methods"][p["payment_id"]]
        if m["source"] in ("gift_card", "certificate") and m["amount"] < p["amount"]:
            raise ToolError(f"Not enough balance in payment method {p['payment_id']}")
    paid = sum(p["amount"] for p in payment_methods)
    if paid != total_price:
        raise ToolError(f"Payment amount does not add up, total price is {total_price}, but paid {paid}")
    # all checks passed: write
    user = _user(db, user_id, write=True)
    for p in payment_methods:
        m = user["payment_methods"].get(p["payment_id"])
        if m is None:  # a certificate named twice: the benchmark's pop fails the same way
            raise ToolError(f"'{p['payment_id']}'")
        if m["source"] == "gift_card":
            m["amount"] -= p["amount"]
        elif m["source"] == "certificate":
            user["payment_methods"].pop(p["payment_id"])
    for number, date in instances:
        db.write("flights", number)["dates"][date]["available_seats"][cabin] -= len(passengers)
    reservation = {"reservation_id": reservation_id, "user_id": head["user_id"], "origin": head["origin"],
                   "destination": head["destination"], "flight_type": head["flight_type"], "cabin": cabin,
                   "flights": res_flights, "passengers": passengers, "payment_history": payment_methods,
                   "created_at": NOW, "total_baggages": head["total_baggages"],
                   "nonfree_baggages": head["nonfree_baggages"], "insurance": head["insurance"], "status": None}
    db.insert("reservations", reservation_id, reservation)
    user["reservations"].append(reservation_id)
    return _dump(reservation)


def calculate(db, expression):
    if not isinstance(expression, str) or not all(c in "0123456789+-*/(). " for c in expression):
        raise ToolError("Invalid characters in expression")
    return str(round(float(safe_arithmetic(expression)), 2))


def cancel_reservation(db, reservation_id):
    r = _reservation(db, reservation_id, write=True)
    r["payment_history"].extend([{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in r["payment_history"]])
    r["status"] = "cancelled"
    return _dump(r)


def get_reservation_details(db, reservation_id):
    return _dump(_reservation(db, reservation_id))


def get_user_details(db, user_id):
    return _dump(_user(db, user_id))


def list_all_airports(db):
    return _dump([{"iata": code, "city": city} for code, city in AIRPORTS])


def search_direct_flight(db, origin, destination, date):
    return _dump(_direct(db, date=date, origin=origin, destination=destination))


def search_onestop_flight(db, origin, destination, date):
    results = []
    for first in _direct(db, date=date, origin=origin):
        first["date"] = date
        date2 = f"2024-05-{int(date[-2:]) + 1}" if "+1" in first["scheduled_arrival_time_est"] else date
        for second in _direct(db, date=date2, origin=first["destination"], destination=destination,
                              leave_after=first["scheduled_arrival_time_est"]):
            second["date"] = date2
            results.append([first, second])
    return _dump(results)


def send_certificate(db, user_id, amount):
    user = _user(db, user_id)
    amount_value = R.build("Certificate", [("amount", "float", R._MISSING)], {"amount": amount})["amount"]
    for n in CERTIFICATE_NUMBERS:
        pid = f"certificate_{n}"
        if pid not in user["payment_methods"]:
            user = _user(db, user_id, write=True)
            user["payment_methods"][pid] = {"source": "certificate", "id": pid, "amount": amount_value}
            return f"Certificate {pid} added to user {user_id} with amount {amount}."
    raise ToolError("Too many certificates")


def transfer_to_human_agents(db, summary):
    return "Transfer successful"


def update_reservation_baggages(db, reservation_id, total_baggages, nonfree_baggages, payment_id):
    r = _reservation(db, reservation_id)
    _user(db, r["user_id"])
    total_price = 50 * max(0, nonfree_baggages - r["nonfree_baggages"])
    r = _charge_for_update(db, reservation_id, payment_id, total_price)
    r["total_baggages"] = total_baggages
    r["nonfree_baggages"] = nonfree_baggages
    return _dump(r)


def update_reservation_flights(db, reservation_id, cabin, flights, payment_id):
    flights = R.build_list("FlightInfo", R.FLIGHT_INFO, flights, "flights")
    r = _reservation(db, reservation_id)
    _user(db, r["user_id"])
    n_pax = len(r["passengers"])
    total_price, new_flights = 0, []
    for info in flights:
        same = next((f for f in r["flights"] if f["flight_number"] == info["flight_number"]
                     and f["date"] == info["date"] and cabin == r["cabin"]), None)
        if same is not None:
            total_price += same["price"] * n_pax
            new_flights.append(dict(same))
            continue
        fl, inst = _bookable(db, info["flight_number"], info["date"], cabin, n_pax)
        f = {"flight_number": info["flight_number"], "origin": fl["origin"], "destination": fl["destination"],
             "date": info["date"], "price": inst["prices"][cabin]}
        total_price += f["price"] * n_pax
        new_flights.append(f)
    total_price -= sum(f["price"] for f in r["flights"]) * n_pax
    r = _charge_for_update(db, reservation_id, payment_id, total_price)
    r["flights"] = new_flights
    r["cabin"] = cabin
    return _dump(r)


def update_reservation_passengers(db, reservation_id, passengers):
    passengers = R.build_list("Passenger", R.PASSENGER, passengers, "passengers")
    r = _reservation(db, reservation_id)
    if len(passengers) != len(r["passengers"]):
        raise ToolError("Number of passengers does not match")
    r = _reservation(db, reservation_id, write=True)
    r["passengers"] = passengers
    return _dump(r)


def get_flight_status(db, flight_number, date):
    return _instance(db, flight_number, date)["status"]


def _spec(fn, kind):
    return ToolSpec(fn.__name__, fn, kind, f"AirlineTools.{fn.__name__}")


TABLE = ToolTable("tau2", [
    _spec(book_reservation, WRITE), _spec(calculate, GENERIC), _spec(cancel_reservation, WRITE),
    _spec(get_reservation_details, READ), _spec(get_user_details, READ), _spec(list_all_airports, READ),
    _spec(search_direct_flight, READ), _spec(search_onestop_flight, READ), _spec(send_certificate, WRITE),
    _spec(transfer_to_human_agents, GENERIC), _spec(update_reservation_baggages, WRITE),
    _spec(update_reservation_flights, WRITE), _spec(update_reservation_passengers, WRITE),
    _spec(get_flight_status, READ),
], unknown_message=lambda name: f"Error: Tool '{name}' not found.")
