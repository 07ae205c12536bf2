"""Record shapes of tau2's airline data model, and pydantic-style coercion.

tau2 keeps its database in pydantic models: values are coerced on construction
(``"2"`` -> 2 for an int field, 100 -> 100.0 for a float field), unknown keys are
dropped, defaults are filled in, and a dump lists fields in model order.  Those
rules decide both what the agent sees and what the final-state hash compares,
so they are reproduced here for the models the tools build.  tau1 stores raw
dicts and needs none of this.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

FLIGHT_TYPES = ("round_trip", "one_way")
CABINS = ("business", "economy", "basic_economy")
INSURANCE = ("yes", "no")


class ModelError(ValueError):
    """Mimics the text of a pydantic ValidationError."""

    def __init__(self, model: str, problems: List[Tuple[str, str, str]]):
        lines = [f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} for {model}"]
        for loc, msg, kind in problems:
            lines.append(loc)
            lines.append(f"  {msg} [type={kind}]")
        super().__init__("\n".join(lines))


_MISSING = object()


def _coerce(kind, value) -> Tuple[Any, Tuple[str, str] | None]:
    """(value, None) or (None, (message, type)) following pydantic v2 lax mode for our field kinds."""
    if kind == "str":
        if isinstance(value, str):
            return value, None
        return None, ("Input should be a valid string", "string_type")
    if kind == "int":
        if isinstance(value, bool):
            return int(value), None
        if isinstance(value, int):
            return value, None
        if isinstance(value, float):
            if value.is_integer():
                return int(value), None
            return None, ("Input should be a valid integer, got a number with a fractional part",
                          "int_from_float")
        if isinstance(value, str):
            try:
                return int(value.strip()), None
            except ValueError:
                return None, ("Input should be a valid integer, unable to parse string as an integer", "int_parsing")
        return None, ("Input should be a valid integer", "int_type")
    if kind == "float":
        if isinstance(value, (int, float)):
            return float(value), None
        if isinstance(value, str):
            try:
                return float(value), None
            except ValueError:
                return None, ("Input should be a valid number, unable to parse string as a number", "float_parsing")
        return None, ("Input should be a valid number", "float_type")
    if isinstance(kind, tuple):  # Literal[...]
        if value in kind:
            return value, None
        options = " or ".join(", ".join(f"'{k}'" for k in kind).rsplit(", ", 1))
        return None, (f"Input should be {options}", "literal_error")
    raise AssertionError(kind)


def build(model: str, fields: Sequence[Tuple[str, Any, Any]], data: Any) -> Dict[str, Any]:
    """Construct a record of ``model`` from ``data`` (a dict), as pydantic would.

    fields: (name, kind, default) in model order; default ``_MISSING`` = required."""
    if not isinstance(data, dict):
        raise ModelError(model, [("", f"Input should be a valid dictionary or instance of {model}", "model_type")])
    out, problems = {}, []
    for name, kind, default in fields:
        if name not in data or (data[name] is None and default is not _MISSING and default is None):
            if default is _MISSING:
                problems.append((name, "Field required", "missing"))
            else:
                out[name] = default
            continue
        value, err = _coerce(kind, data[name])
        if err:
            problems.append((name, err[0], err[1]))
        else:
            out[name] = value
    if problems:
        raise ModelError(model, problems)
    return out


FLIGHT_INFO = [("flight_number", "str", _MISSING), ("date", "str", _MISSING)]
PASSENGER = [("first_name", "str", _MISSING), ("last_name", "str", _MISSING), ("dob", "str", _MISSING)]
PAYMENT = [("payment_id", "str", _MISSING), ("amount", "int", _MISSING)]


def build_list(model: str, fields, items: Any, field_name: str) -> List[Dict[str, Any]]:
    if not isinstance(items, list):
        raise ModelError(model, [(field_name, "Input should be a valid list", "list_type")])
    return [build(model, fields, x) for x in items]


# ----------------------------------------------------------- normalising the stored database


def _ordered(d: Dict[str, Any], order: Sequence[str], defaults: Dict[str, Any] | None = None) -> Dict[str, Any]:
    defaults = defaults or {}
    out = {k: d[k] if k in d else defaults.get(k) for k in order if k in d or k in defaults}
    return out


def reservation_flight(f: Dict[str, Any]) -> Dict[str, Any]:
    return {"flight_number": f["flight_number"], "origin": f["origin"], "destination": f["destination"],
            "date": f["date"], "price": int(f["price"])}


def payment(p: Dict[str, Any]) -> Dict[str, Any]:
    return {"payment_id": p["payment_id"], "amount": int(p["amount"])}


def passenger(p: Dict[str, Any]) -> Dict[str, Any]:
    return {"first_name": p["first_name"], "last_name": p["last_name"], "dob": p["dob"]}


RESERVATION_ORDER = ("reservation_id", "user_id", "origin", "destination", "flight_type", "cabin", "flights",
                     "passengers", "payment_history", "created_at", "total_baggages", "nonfree_baggages",
                     "insurance", "status")


def reservation(r: Dict[str, Any]) -> Dict[str, Any]:
    r = dict(r)
    r["flights"] = [reservation_flight(f) for f in r["flights"]]
    r["passengers"] = [passenger(p) for p in r["passengers"]]
    r["payment_history"] = [payment(p) for p in r["payment_history"]]
    return _ordered(r, RESERVATION_ORDER, {"status": None})


def payment_method(m: Dict[str, Any]) -> Dict[str, Any]:
    if m["source"] == "credit_card":
        return {"source": "credit_card", "id": m["id"], "brand": m["brand"], "last_four": m["last_four"]}
    return {"source": m["source"], "id": m["id"], "amount": float(m["amount"])}


def user(u: Dict[str, Any]) -> Dict[str, Any]:
    a = u["address"]
    return {
        "user_id": u["user_id"],
        "name": {"first_name": u["name"]["first_name"], "last_name": u["name"]["last_name"]},
        "address": {"address1": a["address1"], "address2": a.get("address2"), "city": a["city"],
                    "country": a["country"], "state": a["state"], "zip": a["zip"]},
        "email": u["email"], "dob": u["dob"],
        "payment_methods": {k: payment_method(v) for k, v in u["payment_methods"].items()},
        "saved_passengers": [passenger(p) for p in u["saved_passengers"]],
        "membership": u["membership"],
        "reservations": list(u["reservations"]),
    }


def flight(f: Dict[str, Any]) -> Dict[str, Any]:
    return {"flight_number": f["flight_number"], "origin": f["origin"], "destination": f["destination"],
            "scheduled_departure_time_est": f["scheduled_departure_time_est"],
            "scheduled_arrival_time_est": f["scheduled_arrival_time_est"], "dates": f["dates"]}


def normalise_db_tau2(raw: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """tau2's ``FlightDB.load``: every record in model form (field order, defaults, coerced types)."""
    return {
        "flights": {k: flight(v) for k, v in raw["flights"].items()},
        "users": {k: user(v) for k, v in raw["users"].items()},
        "reservations": {k: reservation(v) for k, v in raw["reservations"].items()},
    }
