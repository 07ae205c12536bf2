"""The tau2-bench airline tools (``AirlineTools``), reimplemented over :class:`EpisodeDB`.

Same checks in the same order, same records, same state changes and the same
texts as tau2's own code, including its quirks:

* records built from the agent's arguments go through pydantic models of the
  same shape (:mod:`.tau2_models`), so coercion and refusals are pydantic's own
  (``"2"`` bags -> 2; 2.5 bags -> ``int_from_float``);
* a list argument is converted only when all its items are objects; otherwise
  the raw value is used (``update_reservation_passengers`` stores a string or a
  list of strings of the right length; ``book_reservation`` then fails on the
  first attribute access);
* values assigned to a stored record are not validated (2.5 bags are stored as 2.5);
* ``update_reservation_baggages`` / ``_flights`` debit a gift card before the
  payment record is built, so a fractional amount fails after the debit;
* cancelling releases no seats, a flight change updates no seat counts, a
  cancelled reservation can be cancelled again, one-stop search builds the next
  day's date without zero padding;
* ids given as a list or dict fail with Python's ``unhashable type: 'list'``;
* ``calculate`` evaluates with Python (see :mod:`.calculator`, also for integers too large to build).

Outputs are the JSON of the model dump (``Environment.to_json_str``); a failing
call reads ``"Error: " + str(exception)`` (``Environment.get_response``).
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.benchmarks.airline import tau2_models as M
from openrlhf_mtgrpo.benchmarks.airline.tools import (
    AIRPORTS, CALCULATOR_CHARACTERS, CERTIFICATE_NUMBERS, GENERIC, NOW, READ, RESERVATION_IDS, WRITE, ToolSpec,
    ToolTable, calculator_result,
)


def _dump(obj) -> str:
    """``Environment.to_json_str`` for what our tools return (a str, or the dump of a model / list of them)."""
    return obj if isinstance(obj, str) else json.dumps(obj, default=str)


class AirlineTools:
    """tau2's airline toolkit over one episode's database.

    Named like the benchmark's class, with the same parameters, so that Python words a
    bad call the same way (``AirlineTools.book_reservation() missing 1 required positional
    argument: 'insurance'``).  Records read from the database are the shared base
    (never modified); ``write=True`` gives the episode's own copy."""

    def __init__(self, db) -> None:
        self.db = db

    # -- lookups (tau2's private helpers)
    def _get_user(self, user_id, write=False) -> Dict[str, Any]:
        if not self.db.contains("users", user_id):
            raise ValueError(f"User {user_id} not found")
        return self.db.write("users", user_id) if write else self.db.read("users", user_id)

    def _get_reservation(self, reservation_id, write=False) -> Dict[str, Any]:
        if not self.db.contains("reservations", reservation_id):
            raise ValueError(f"Reservation {reservation_id} not found")
        return self.db.write("reservations", reservation_id) if write else self.db.read("reservations", reservation_id)

    def _get_flight(self, flight_number) -> Dict[str, Any]:
        if not self.db.contains("flights", flight_number):
            raise ValueError(f"Flight {flight_number} not found")
        return self.db.read("flights", flight_number)

    def _get_flight_instance(self, flight_number, date) -> Dict[str, Any]:
        flight = self._get_flight(flight_number)
        if date not in flight["dates"]:
            raise ValueError(f"Flight {flight_number} not found on date {date}")
        return flight["dates"][date]

    def _get_new_reservation_id(self) -> str:
        for reservation_id in RESERVATION_IDS:
            if not self.db.contains("reservations", reservation_id):
                return reservation_id
        raise ValueError("Too many reservations")

    def _search_direct_flight(self, date, origin=None, destination=None, leave_after=None) -> List[Dict[str, Any]]:
        results = []
        for flight in self.db.values("flights"):
            check = (
                (origin is None or flight["origin"] == origin)
                and (destination is None or flight["destination"] == destination)
                and (date in flight["dates"])
                and (flight["dates"][date]["status"] == "available")
                and (leave_after is None or flight["scheduled_departure_time_est"] >= leave_after)
            )
            if check:
                instance = flight["dates"][date]
                results.append({  # DirectFlight, in field order
                    "flight_number": flight["flight_number"], "origin": flight["origin"],
                    "destination": flight["destination"], "status": "available",
                    "scheduled_departure_time_est": flight["scheduled_departure_time_est"],
                    "scheduled_arrival_time_est": flight["scheduled_arrival_time_est"], "date": None,
                    "available_seats": dict(instance["available_seats"]), "prices": dict(instance["prices"])})
        return results

    def _payment_for_update(self, user_id, payment_id, total_price) -> Optional[Dict[str, Any]]:
        user = self._get_user(user_id)
        if payment_id not in user["payment_methods"]:
            raise ValueError("Payment method not found")
        method = user["payment_methods"][payment_id]
        if method["source"] == "certificate":
            raise ValueError("Certificate cannot be used to update reservation")
        elif method["source"] == "gift_card" and method["amount"] < total_price:
            raise ValueError("Gift card balance is not enough")
        if method["source"] == "gift_card":  # debited before the payment record is built (which may still fail)
            self._get_user(user_id, write=True)["payment_methods"][payment_id]["amount"] -= total_price
        payment = None
        if total_price != 0:
            payment = M.Payment(payment_id=payment_id, amount=total_price).model_dump()
        return payment

    # -- the tools
    def book_reservation(self, user_id, origin, destination, flight_type, cabin, flights, passengers,
                         payment_methods, total_baggages, nonfree_baggages, insurance):
        if all(isinstance(flight, dict) for flight in flights):
            flights = [M.FlightInfo(**flight) for flight in flights]
        if all(isinstance(passenger, dict) for passenger in passengers):
            passengers = [M.Passenger(**passenger) for passenger in passengers]
        if all(isinstance(payment_method, dict) for payment_method in payment_methods):
            payment_methods = [M.Payment(**payment_method) for payment_method in payment_methods]
        user = self._get_user(user_id)
        reservation_id = self._get_new_reservation_id()
        reservation = M.Reservation(
            reservation_id=reservation_id, user_id=user_id, origin=origin, destination=destination,
            flight_type=flight_type, cabin=cabin, flights=[], passengers=deepcopy(passengers),
            payment_history=deepcopy(payment_methods), created_at=NOW, total_baggages=total_baggages,
            nonfree_baggages=nonfree_baggages, insurance=insurance)
        total_price = 0
        instances: List[Tuple[str, str]] = []
        for flight_info in flights:
            flight_number = flight_info.flight_number
            flight = self._get_flight(flight_number)
            instance = self._get_flight_instance(flight_number=flight_number, date=flight_info.date)
            if instance["status"] != "available":
                raise ValueError(f"Flight {flight_number} not available on date {flight_info.date}")
            if instance["available_seats"][cabin] < len(passengers):
                raise ValueError(f"Not enough seats on flight {flight_number}")
            price = instance["prices"][cabin]
            reservation.flights.append(M.ReservationFlight(
                origin=flight["origin"], destination=flight["destination"], flight_number=flight_number,
                date=flight_info.date, price=price))
            instances.append((flight_number, flight_info.date))
            total_price += price * len(passengers)
        if insurance == "yes":
            total_price += 30 * len(passengers)
        total_price += 50 * nonfree_baggages  # the raw argument: "2" bags fail here, after validation accepted them
        for payment_method in payment_methods:
            payment_id = payment_method.payment_id
            amount = payment_method.amount
            if payment_id not in user["payment_methods"]:
                raise ValueError(f"Payment method {payment_id} not found")
            method = user["payment_methods"][payment_id]
            if method["source"] in {"gift_card", "certificate"}:
                if method["amount"] < amount:
                    raise ValueError(f"Not enough balance in payment method {payment_id}")
        total_payment = sum(payment.amount for payment in payment_methods)
        if total_payment != total_price:
            raise ValueError(
                f"Payment amount does not add up, total price is {total_price}, but paid {total_payment}")
        user = self._get_user(user_id, write=True)
        for payment_method in payment_methods:
            payment_id = payment_method.payment_id
            method = user["payment_methods"][payment_id]  # a certificate named twice: KeyError, after partial writes
            if method["source"] == "gift_card":
                method["amount"] -= payment_method.amount
            elif method["source"] == "certificate":
                user["payment_methods"].pop(payment_id)
        for flight_number, date in instances:
            self.db.write("flights", flight_number)["dates"][date]["available_seats"][cabin] -= len(passengers)
        record = reservation.model_dump()
        self.db.insert("reservations", reservation_id, record)
        user["reservations"].append(reservation_id)
        return record

    def calculate(self, expression):
        """tau2's ``calculate``: Python's eval of the expression, ``str(round(float(value), 2))``.

        Integers too large to build here (over 2**24 bits, or too costly) are decided from their sign and
        size, which gives Python's own answer (``2**10**10`` -> ``int too large to convert to float``).
        Deviation from the benchmark: where size alone cannot decide (``2**10**10 - 2**10**10``), the
        observation is ``Error: int too large to compute exactly here: ...`` (or ``expression too costly
        to evaluate here``) where tau2 would compute for minutes and answer; for values beyond its
        machine's memory, tau2 would end in a MemoryError (see :mod:`.calculator`)."""
        if not all(char in CALCULATOR_CHARACTERS for char in expression):
            raise ValueError("Invalid characters in expression")
        return calculator_result(expression)

    def cancel_reservation(self, reservation_id):
        reservation = self._get_reservation(reservation_id)
        refunds = [M.Payment(payment_id=payment["payment_id"], amount=-payment["amount"]).model_dump()
                   for payment in reservation["payment_history"]]
        reservation = self._get_reservation(reservation_id, write=True)
        reservation["payment_history"].extend(refunds)
        reservation["status"] = "cancelled"
        return reservation

    def get_reservation_details(self, reservation_id):
        return self._get_reservation(reservation_id)

    def get_user_details(self, user_id):
        return self._get_user(user_id)

    def list_all_airports(self):
        return [{"iata": code, "city": city} for code, city in AIRPORTS]

    def search_direct_flight(self, origin, destination, date):
        return self._search_direct_flight(date=date, origin=origin, destination=destination)

    def search_onestop_flight(self, origin, destination, date):
        results = []
        for first in self._search_direct_flight(date=date, origin=origin, destination=None):
            first["date"] = date
            date2 = f"2024-05-{int(date[-2:]) + 1}" if "+1" in first["scheduled_arrival_time_est"] else date
            for second in self._search_direct_flight(date=date2, origin=first["destination"], destination=destination,
                                                     leave_after=first["scheduled_arrival_time_est"]):
                second["date"] = date2
                results.append([first, second])
        return results

    def send_certificate(self, user_id, amount):
        user = self._get_user(user_id)
        for payment_id in [f"certificate_{number}" for number in CERTIFICATE_NUMBERS]:
            if payment_id not in user["payment_methods"]:
                new_payment = M.Certificate(id=payment_id, amount=amount, source="certificate").model_dump()
                self._get_user(user_id, write=True)["payment_methods"][payment_id] = new_payment
                return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
        raise ValueError("Too many certificates")

    def transfer_to_human_agents(self, summary):
        return "Transfer successful"

    def update_reservation_baggages(self, reservation_id, total_baggages, nonfree_baggages, payment_id):
        reservation = self._get_reservation(reservation_id)
        self._get_user(reservation["user_id"])
        total_price = 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"])
        payment = self._payment_for_update(reservation["user_id"], payment_id, total_price)
        reservation = self._get_reservation(reservation_id, write=True)
        if payment is not None:
            reservation["payment_history"].append(payment)
        reservation["total_baggages"] = total_baggages  # stored as given: no validation on assignment
        reservation["nonfree_baggages"] = nonfree_baggages
        return reservation

    def update_reservation_flights(self, reservation_id, cabin, flights, payment_id):
        if all(isinstance(flight, dict) for flight in flights):
            flights = [M.FlightInfo(**flight) for flight in flights]
        reservation = self._get_reservation(reservation_id)
        self._get_user(reservation["user_id"])
        total_price = 0
        new_flights = []
        for flight_info in flights:
            matching = next((kept for kept in reservation["flights"]
                             if kept["flight_number"] == flight_info.flight_number
                             and kept["date"] == flight_info.date and cabin == reservation["cabin"]), None)
            if matching:
                total_price += matching["price"] * len(reservation["passengers"])
                new_flights.append(dict(matching))
                continue
            flight = self._get_flight(flight_info.flight_number)
            instance = self._get_flight_instance(flight_number=flight_info.flight_number, date=flight_info.date)
            if instance["status"] != "available":
                raise ValueError(f"Flight {flight_info.flight_number} not available on date {flight_info.date}")
            if instance["available_seats"][cabin] < len(reservation["passengers"]):
                raise ValueError(f"Not enough seats on flight {flight_info.flight_number}")
            new = M.ReservationFlight(flight_number=flight_info.flight_number, date=flight_info.date,
                                      price=instance["prices"][cabin], origin=flight["origin"],
                                      destination=flight["destination"]).model_dump()
            total_price += new["price"] * len(reservation["passengers"])
            new_flights.append(new)
        total_price -= sum(flight["price"] for flight in reservation["flights"]) * len(reservation["passengers"])
        payment = self._payment_for_update(reservation["user_id"], payment_id, total_price)
        reservation = self._get_reservation(reservation_id, write=True)
        if payment is not None:
            reservation["payment_history"].append(payment)
        reservation["flights"] = new_flights
        reservation["cabin"] = cabin
        return reservation

    def update_reservation_passengers(self, reservation_id, passengers):
        converted = all(isinstance(passenger, dict) for passenger in passengers)
        if converted:
            passengers = [M.Passenger(**passenger) for passenger in passengers]
        reservation = self._get_reservation(reservation_id)
        if len(passengers) != len(reservation["passengers"]):
            raise ValueError("Number of passengers does not match")
        stored = [p.model_dump() for p in passengers] if converted else deepcopy(passengers)
        self._get_reservation(reservation_id, write=True)["passengers"] = stored
        return self._get_reservation(reservation_id)

    def get_flight_status(self, flight_number, date):
        return self._get_flight_instance(flight_number, date)["status"]


#: The tools in the order tau2 lists them to the agent (definition order in its class).
TOOLS = [
    ("book_reservation", WRITE), ("calculate", GENERIC), ("cancel_reservation", WRITE),
    ("get_reservation_details", READ), ("get_user_details", READ), ("list_all_airports", READ),
    ("search_direct_flight", READ), ("search_onestop_flight", READ), ("send_certificate", WRITE),
    ("transfer_to_human_agents", GENERIC), ("update_reservation_baggages", WRITE),
    ("update_reservation_flights", WRITE), ("update_reservation_passengers", WRITE), ("get_flight_status", READ),
]
_NAMES = frozenset(name for name, _ in TOOLS)


def _make_tool_call(self, tool_name, requestor="assistant", **kwargs):
    """Stands for ``Environment.make_tool_call``, through which tau2 passes the arguments as
    ``**kwargs``: arguments named ``self``, ``tool_name`` or ``requestor`` fail there, and
    Python words that failure with this function's module and name."""
    return kwargs


_make_tool_call.__module__ = "tau2.environment.environment"
_make_tool_call.__qualname__ = "Environment.make_tool_call"


def dispatch(db, name: str, arguments: Dict[str, Any]) -> Tuple[str, bool]:
    """tau2's ``Environment.get_response`` for one assistant tool call."""
    try:
        kwargs = _make_tool_call(None, name, requestor="assistant", **arguments)
        if name not in _NAMES:
            raise ValueError(f"Tool '{name}' not found.")
        out = getattr(AirlineTools(db), name)(**kwargs)
    except Exception as e:  # noqa: BLE001 -- the benchmark reports every exception of a tool this way
        return f"Error: {e}", True
    return _dump(out), False


TABLE = ToolTable("tau2", [ToolSpec(name, kind) for name, kind in TOOLS], dispatch)
