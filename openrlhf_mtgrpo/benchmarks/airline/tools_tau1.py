"""The original tau-bench (tau1) airline tools, reimplemented over :class:`EpisodeDB`.

tau1 validates little: records are stored as the agent sent them (no type
coercion), bad input fails with whatever Python raises, and several messages
differ from tau2 ("Error: user not found" for an unknown reservation, lower-case
texts).  Booking does not update seat counts; a flight change keeps the old cabin.
"""

from __future__ import annotations

import copy
import json

from openrlhf_mtgrpo.benchmarks.airline.tools import (
    AIRPORTS, CALCULATOR_CHARACTERS, CERTIFICATE_NUMBERS, GENERIC, NOW, READ, THINK, WRITE, RunFailure, ToolError,
    ToolSpec, ToolTable, calculator_result, outside_alphabet,
)


def _bookable(data, flight, cabin, n_passengers):
    """The flight record and its date instance if seats can be sold, else tau1's refusal."""
    number = flight["flight_number"]
    if not data.contains("flights", number):
        raise ToolError(f"flight {number} not found")
    fdata = data.read("flights", number)
    if flight["date"] not in fdata["dates"]:
        raise ToolError(f"flight {number} not found on date {flight['date']}")
    inst = fdata["dates"][flight["date"]]
    if inst["status"] != "available":
        raise ToolError(f"flight {number} not available on date {flight['date']}")
    if inst["available_seats"][cabin] < n_passengers:
        raise ToolError(f"not enough seats on flight {number}")
    return fdata, inst


def book_reservation(data, user_id, origin, destination, flight_type, cabin, flights, passengers, payment_methods,
                     total_baggages, nonfree_baggages, insurance):
    if not data.contains("users", user_id):
        raise ToolError("user not found")
    user = data.read("users", user_id)
    reservation_id = "HATHAT"
    if data.contains("reservations", reservation_id):
        reservation_id = "HATHAU"
        if data.contains("reservations", reservation_id):
            reservation_id = "HATHAV"
    reservation = {
        "reservation_id": reservation_id, "user_id": user_id, "origin": origin, "destination": destination,
        "flight_type": flight_type, "cabin": cabin, "flights": copy.deepcopy(flights), "passengers": passengers,
        "payment_history": payment_methods, "created_at": NOW, "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages, "insurance": insurance,
    }
    total_price = 0
    for flight in reservation["flights"]:
        fdata, inst = _bookable(data, flight, cabin, len(passengers))
        flight["price"] = inst["prices"][cabin]
        flight["origin"] = fdata["origin"]
        flight["destination"] = fdata["destination"]
        total_price += flight["price"] * len(passengers)
    if insurance == "yes":
        total_price += 30 * len(passengers)
    total_price += 50 * nonfree_baggages
    for pm in payment_methods:
        pid, amount = pm["payment_id"], pm["amount"]
        if pid not in user["payment_methods"]:
            raise ToolError(f"payment method {pid} not found")
        if user["payment_methods"][pid]["source"] in ("gift_card", "certificate"):
            if user["payment_methods"][pid]["amount"] < amount:
                raise ToolError(f"not enough balance in payment method {pid}")
    paid = sum(p["amount"] for p in payment_methods)
    if paid != total_price:
        raise ToolError(f"payment amount does not add up, total price is {total_price}, but paid {paid}")
    user = data.write("users", user_id)
    for pm in payment_methods:
        pid, amount = pm["payment_id"], pm["amount"]
        if user["payment_methods"][pid]["source"] == "gift_card":
            user["payment_methods"][pid]["amount"] -= amount
        elif user["payment_methods"][pid]["source"] == "certificate":
            del user["payment_methods"][pid]
    data.insert("reservations", reservation_id, reservation)
    user["reservations"].append(reservation_id)
    return json.dumps(reservation)


def calculate(data, expression):
    """tau-bench's ``calculate``: Python's eval of the expression, ``str(round(float(value), 2))``, bounded
    (:mod:`openrlhf_mtgrpo.benchmarks.calculator`: exact where the evaluation stays within its bounds, decided
    from sizes or refused, saying so, where it would not; for a text, the character check is a regex with the
    same verdict as tau-bench's loop)."""
    if isinstance(expression, str):
        refused = outside_alphabet(expression) is not None
    else:
        refused = not all(char in CALCULATOR_CHARACTERS for char in expression)
    if refused:
        raise ToolError("invalid characters in expression")
    return calculator_result(expression)  # tau-bench catches eval's errors: "Error: " + str(e), as we do


def cancel_reservation(data, reservation_id):
    if not data.contains("reservations", reservation_id):
        raise ToolError("reservation not found")
    r = data.write("reservations", reservation_id)
    r["payment_history"].extend([{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in r["payment_history"]])
    r["status"] = "cancelled"
    return json.dumps(r)


def get_reservation_details(data, reservation_id):
    if data.contains("reservations", reservation_id):
        return json.dumps(data.read("reservations", reservation_id))
    raise ToolError("user not found")  # sic: tau1's message


def get_user_details(data, user_id):
    if data.contains("users", user_id):
        return json.dumps(data.read("users", user_id))
    raise ToolError("user not found")


def list_all_airports(data):
    return json.dumps(dict(AIRPORTS))


def _flight_view(f, date):
    out = {k: v for k, v in f.items() if k != "dates"}
    out.update(f["dates"][date])
    return out


def search_direct_flight(data, origin, destination, date):
    results = []
    for f in data.values("flights"):
        if f["origin"] == origin and f["destination"] == destination:
            if date in f["dates"] and f["dates"][date]["status"] == "available":
                results.append(_flight_view(f, date))
    return json.dumps(results)


def search_onestop_flight(data, origin, destination, date):
    results = []
    flights = list(data.values("flights"))
    for f1 in flights:
        if f1["origin"] != origin:
            continue
        for f2 in flights:
            if f2["destination"] == destination and f1["destination"] == f2["origin"]:
                date2 = f"2024-05-{int(date[-2:]) + 1}" if "+1" in f1["scheduled_arrival_time_est"] else date
                if f1["scheduled_arrival_time_est"] > f2["scheduled_departure_time_est"]:
                    continue
                if date in f1["dates"] and date2 in f2["dates"]:
                    if f1["dates"][date]["status"] == "available" and f2["dates"][date2]["status"] == "available":
                        r1 = _flight_view(f1, date)
                        r1["date"] = date
                        r2 = _flight_view(f2, date)  # sic: tau1 reads the second leg's status at `date`
                        r2["date"] = date2
                        results.append([r1, r2])
    return json.dumps(results)


SEND_CERTIFICATE_FOURTH = ("tau-bench's run fails here: send_certificate returns None once the user holds "
                           "certificate_3221322, _3221323 and _3221324, and Env.step cannot make an observation "
                           "of None (the task is recorded with reward 0)")


def send_certificate(data, user_id, amount):
    if not data.contains("users", user_id):
        raise ToolError("user not found")
    for n in CERTIFICATE_NUMBERS:
        pid = f"certificate_{n}"
        if pid not in data.read("users", user_id)["payment_methods"]:
            data.write("users", user_id)["payment_methods"][pid] = {"source": "certificate", "amount": amount, "id": pid}
            return f"Certificate {pid} added to user {user_id} with amount {amount}."
    # tau-bench's tool falls off its end and returns None; Env.step then fails to build its EnvResponse
    # (pydantic: observation must be a string), the exception leaves agent.solve, and run.py records the
    # task with reward 0 and no trajectory
    raise RunFailure(SEND_CERTIFICATE_FOURTH)


def think(data, thought):
    return ""


def transfer_to_human_agents(data, summary):
    return "Transfer successful"


def _payment_check(data, reservation, payment_id, total_price):
    methods = data.read("users", reservation["user_id"])["payment_methods"]
    if payment_id not in methods:
        raise ToolError("payment method not found")
    m = methods[payment_id]
    if m["source"] == "certificate":
        raise ToolError("certificate cannot be used to update reservation")
    if m["source"] == "gift_card" and m["amount"] < total_price:
        raise ToolError("gift card balance is not enough")
    return m["source"]


def update_reservation_baggages(data, reservation_id, total_baggages, nonfree_baggages, payment_id):
    if not data.contains("reservations", reservation_id):
        raise ToolError("reservation not found")
    r = data.read("reservations", reservation_id)
    total_price = 50 * max(0, nonfree_baggages - r["nonfree_baggages"])
    source = _payment_check(data, r, payment_id, total_price)
    r = data.write("reservations", reservation_id)
    r["total_baggages"] = total_baggages
    r["nonfree_baggages"] = nonfree_baggages
    if source == "gift_card":
        data.write("users", r["user_id"])["payment_methods"][payment_id]["amount"] -= total_price
    if total_price != 0:
        r["payment_history"].append({"payment_id": payment_id, "amount": total_price})
    return json.dumps(r)


def update_reservation_flights(data, reservation_id, cabin, flights, payment_id):
    if not data.contains("reservations", reservation_id):
        raise ToolError("reservation not found")
    r = data.read("reservations", reservation_id)
    n_pax = len(r["passengers"])
    total_price = 0
    flights = copy.deepcopy(flights)
    for flight in flights:
        same = [f for f in r["flights"] if f["flight_number"] == flight["flight_number"]
                and f["date"] == flight["date"] and cabin == r["cabin"]]
        if same:
            total_price += same[0]["price"] * n_pax
            flight["price"] = same[0]["price"]
            flight["origin"] = same[0]["origin"]
            flight["destination"] = same[0]["destination"]
            continue
        fdata, inst = _bookable(data, flight, cabin, n_pax)
        flight["price"] = inst["prices"][cabin]
        flight["origin"] = fdata["origin"]
        flight["destination"] = fdata["destination"]
        total_price += flight["price"] * n_pax
    total_price -= sum(f["price"] for f in r["flights"]) * n_pax
    source = _payment_check(data, r, payment_id, total_price)
    if source == "gift_card":
        data.write("users", r["user_id"])["payment_methods"][payment_id]["amount"] -= total_price
    r = data.write("reservations", reservation_id)
    r["flights"] = flights
    if total_price != 0:
        r["payment_history"].append({"payment_id": payment_id, "amount": total_price})
    return json.dumps(r)


def update_reservation_passengers(data, reservation_id, passengers):
    if not data.contains("reservations", reservation_id):
        raise ToolError("reservation not found")
    if len(passengers) != len(data.read("reservations", reservation_id)["passengers"]):
        raise ToolError("number of passengers does not match")
    data.write("reservations", reservation_id)["passengers"] = passengers
    return json.dumps(data.read("reservations", reservation_id))


def _camel(name):
    return "".join(p.capitalize() for p in name.split("_"))


TOOLS = [
    (book_reservation, WRITE), (calculate, GENERIC), (cancel_reservation, WRITE), (get_reservation_details, READ),
    (get_user_details, READ), (list_all_airports, READ), (search_direct_flight, READ),
    (search_onestop_flight, READ), (send_certificate, WRITE), (think, THINK), (transfer_to_human_agents, GENERIC),
    (update_reservation_baggages, WRITE), (update_reservation_flights, WRITE), (update_reservation_passengers, WRITE),
]  # tau-bench's ALL_TOOLS order

# tau-bench calls ``ToolClass.invoke(data=..., **kwargs)``.  Our functions take the same parameters
# and carry the names Python prints in an argument error (``BookReservation.invoke() got an
# unexpected keyword argument 'x'``; an argument named ``data`` fails with the module's name).
for _fn, _ in TOOLS:
    _fn.__qualname__ = f"{_camel(_fn.__name__)}.invoke"
    _fn.__module__ = f"tau_bench.envs.airline.tools.{_fn.__name__}"
_BY_NAME = {fn.__name__: fn for fn, _ in TOOLS}


def dispatch(data, name, arguments):
    """tau-bench's ``Env.step`` for one tool action: its tools return their refusals as text
    (we raise :class:`ToolError` with that text); any other exception reads ``Error: ...``."""
    fn = _BY_NAME.get(name)
    if fn is None:
        return f"Unknown action {name}", True
    try:
        return fn(data=data, **arguments), False
    except RunFailure:
        raise
    except Exception as e:  # noqa: BLE001 -- tau-bench reports every exception of a tool this way
        return f"Error: {e}", True


TABLE = ToolTable("tau1", [ToolSpec(fn.__name__, kind) for fn, kind in TOOLS], dispatch)
