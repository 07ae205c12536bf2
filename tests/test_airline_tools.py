"""Every tool's error paths: the benchmark's message, and the database left unchanged."""

import json

import pytest

from openrlhf_mtgrpo.envs.airline import AirlineEnv

USER = "mei_hernandez_8984"  # gift card 98.0, two certificates 250.0, two credit cards
RES = "R9QDGB"  # economy, 3 passengers, 4 flights, 0 paid bags
FLIGHT = "HAT001"  # PHL -> LGA, available 2024-05-20, economy 137


@pytest.fixture(scope="module")
def env(data_dir):
    return AirlineEnv("tau2", data_dir)


@pytest.fixture
def ep(env):
    return env.reset(env.tasks("base")[0])


def book_args(**over):
    a = dict(user_id=USER, origin="PHL", destination="LGA", flight_type="one_way", cabin="economy",
             flights=[{"flight_number": FLIGHT, "date": "2024-05-20"}],
             passengers=[{"first_name": "Mei", "last_name": "Hernandez", "dob": "1981-01-01"}],
             payment_methods=[{"payment_id": "credit_card_2140654", "amount": 137}],
             total_baggages=0, nonfree_baggages=0, insurance="no")
    a.update(over)
    return a


def refused(ep, name, args, expected):
    before = ep.state_hash()
    res = ep.call_tool(name, args)
    assert res.error, res.content
    assert expected in res.content, res.content
    assert res.content.startswith("Error: ")
    assert ep.state_hash() == before and not ep.db.changes()
    return res


def test_unknown_tool(ep):
    refused(ep, "fly_me_home", {}, "Tool 'fly_me_home' not found.")


def test_missing_and_unexpected_arguments(ep):
    args = book_args()
    del args["insurance"]
    refused(ep, "book_reservation", args, "missing 1 required positional argument: 'insurance'")
    refused(ep, "get_user_details", {"user_id": USER, "verbose": True}, "unexpected keyword argument 'verbose'")
    refused(ep, "cancel_reservation", {}, "missing 1 required positional argument: 'reservation_id'")


def test_book_errors(ep):
    refused(ep, "book_reservation", book_args(user_id="nobody_1"), "User nobody_1 not found")
    refused(ep, "book_reservation", book_args(cabin="first"), "validation error for Reservation")
    refused(ep, "book_reservation", book_args(total_baggages="two"), "Input should be a valid integer")
    refused(ep, "book_reservation", book_args(passengers=[{"first_name": "A", "last_name": "B"}]),
            "validation error for Passenger\ndob\n  Field required")
    refused(ep, "book_reservation", book_args(flights=[{"flight_number": "HAT999", "date": "2024-05-20"}]),
            "Flight HAT999 not found")
    refused(ep, "book_reservation", book_args(flights=[{"flight_number": FLIGHT, "date": "2025-01-01"}]),
            f"Flight {FLIGHT} not found on date 2025-01-01")
    refused(ep, "book_reservation", book_args(flights=[{"flight_number": FLIGHT, "date": "2024-05-01"}]),
            f"Flight {FLIGHT} not available on date 2024-05-01")
    refused(ep, "book_reservation", book_args(passengers=[{"first_name": "P", "last_name": str(i), "dob": "1990-01-01"}
                                                          for i in range(20)],
                                              payment_methods=[{"payment_id": "credit_card_2140654", "amount": 2740}]),
            f"Not enough seats on flight {FLIGHT}")
    refused(ep, "book_reservation", book_args(payment_methods=[{"payment_id": "credit_card_1", "amount": 137}]),
            "Payment method credit_card_1 not found")
    refused(ep, "book_reservation", book_args(payment_methods=[{"payment_id": "gift_card_5309492", "amount": 137}]),
            "Not enough balance in payment method gift_card_5309492")
    refused(ep, "book_reservation", book_args(payment_methods=[{"payment_id": "credit_card_2140654", "amount": 100}]),
            "Payment amount does not add up, total price is 137, but paid 100")
    refused(ep, "book_reservation", book_args(insurance="yes"), "total price is 167, but paid 137")


def test_book_success_writes_everything(ep, env):
    res = ep.call_tool("book_reservation", book_args(
        payment_methods=[{"payment_id": "certificate_7502997", "amount": 100.0},
                         {"payment_id": "gift_card_5309492", "amount": "37"}]))
    assert not res.error, res.content
    r = json.loads(res.content)
    assert r["reservation_id"] == "HATHAT" and r["payment_history"][0] == {"payment_id": "certificate_7502997", "amount": 100}
    assert r["payment_history"][1]["amount"] == 37 and r["status"] is None
    user = ep.db.read("users", USER)
    assert "certificate_7502997" not in user["payment_methods"]
    assert user["payment_methods"]["gift_card_5309492"]["amount"] == pytest.approx(61.0)
    assert user["reservations"][-1] == "HATHAT"
    seats = ep.db.read("flights", FLIGHT)["dates"]["2024-05-20"]["available_seats"]["economy"]
    assert seats == env.data.db["flights"][FLIGHT]["dates"]["2024-05-20"]["available_seats"]["economy"] - 1
    # the shared base is untouched
    assert "certificate_7502997" in env.data.db["users"][USER]["payment_methods"]


def test_cancel_errors(ep):
    refused(ep, "cancel_reservation", {"reservation_id": "ZZZZZZ"}, "Reservation ZZZZZZ not found")


def test_update_flights_errors(ep):
    flights = [{"flight_number": f["flight_number"], "date": f["date"]}
               for f in ep.db.read("reservations", RES)["flights"]]
    base = dict(reservation_id=RES, cabin="economy", flights=flights, payment_id="credit_card_2140654")
    refused(ep, "update_reservation_flights", dict(base, reservation_id="NOPE00"), "Reservation NOPE00 not found")
    refused(ep, "update_reservation_flights", dict(base, payment_id="credit_card_0"), "Payment method not found")
    refused(ep, "update_reservation_flights", dict(base, cabin="business", payment_id="certificate_7502997"),
            "Certificate cannot be used to update reservation")
    refused(ep, "update_reservation_flights", dict(base, cabin="business", payment_id="gift_card_5309492"),
            "Gift card balance is not enough")
    refused(ep, "update_reservation_flights",
            dict(base, flights=[{"flight_number": "HAT001", "date": "2024-05-01"}]),
            "Flight HAT001 not available on date 2024-05-01")
    refused(ep, "update_reservation_flights", dict(base, flights=[{"flight_number": 12, "date": "2024-05-20"}]),
            "Input should be a valid string")


def test_basic_economy_change_is_not_refused_by_the_tool(env):
    """The benchmark's tool does not enforce the no-change rule of basic economy (the policy does):
    the change goes through, and the DB check then scores a task whose gold does not make it 0."""
    res_id = next(k for k, r in env.data.db["reservations"].items()
                  if r["cabin"] == "basic_economy" and r["status"] is None)
    task = env.task("1")
    ep = env.reset(task)
    r = ep.db.read("reservations", res_id)
    user = env.data.db["users"][r["user_id"]]
    card = next(k for k, m in user["payment_methods"].items() if m["source"] == "credit_card")
    out = ep.call_tool("update_reservation_flights", {
        "reservation_id": res_id, "cabin": "economy", "payment_id": card,
        "flights": [{"flight_number": f["flight_number"], "date": f["date"]} for f in r["flights"]]})
    if out.error:  # e.g. no seats: then nothing changed either
        assert not ep.db.changes()
    else:
        assert json.loads(out.content)["cabin"] == "economy"
        assert ep.evaluate("user_stop").reward == 0.0


def test_update_baggages_errors(ep):
    base = dict(reservation_id=RES, total_baggages=2, nonfree_baggages=2, payment_id="credit_card_2140654")
    refused(ep, "update_reservation_baggages", dict(base, reservation_id="X"), "Reservation X not found")
    refused(ep, "update_reservation_baggages", dict(base, payment_id="certificate_3321326"),
            "Certificate cannot be used to update reservation")
    refused(ep, "update_reservation_baggages", dict(base, nonfree_baggages=3, payment_id="gift_card_5309492"),
            "Gift card balance is not enough")
    ok = ep.call_tool("update_reservation_baggages", base)
    assert not ok.error and json.loads(ok.content)["payment_history"][-1] == {"payment_id": "credit_card_2140654",
                                                                              "amount": 100}


def test_update_passengers_errors(ep):
    refused(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": []},
            "Number of passengers does not match")
    refused(ep, "update_reservation_passengers", {"reservation_id": "Q", "passengers": []}, "Reservation Q not found")
    refused(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": "Mei"},
            "Input should be a valid list")


def test_read_tool_errors(ep):
    refused(ep, "get_user_details", {"user_id": "ghost_0"}, "User ghost_0 not found")
    refused(ep, "get_reservation_details", {"reservation_id": "ABCDEF"}, "Reservation ABCDEF not found")
    refused(ep, "get_flight_status", {"flight_number": "HAT001", "date": "2030-01-01"},
            "Flight HAT001 not found on date 2030-01-01")
    refused(ep, "send_certificate", {"user_id": "ghost_0", "amount": 50}, "User ghost_0 not found")
    refused(ep, "calculate", {"expression": "__import__('os')"}, "Invalid characters in expression")
    refused(ep, "calculate", {"expression": "1/0"}, "division by zero")


def test_read_tool_outputs(ep):
    assert ep.call_tool("calculate", {"expression": "(100 * 3) / 7"}).content == "42.86"
    assert ep.call_tool("get_flight_status", {"flight_number": "HAT001", "date": "2024-05-01"}).content == "landed"
    airports = json.loads(ep.call_tool("list_all_airports", {}).content)
    assert len(airports) == 20 and airports[0] == {"iata": "SFO", "city": "San Francisco"}
    direct = json.loads(ep.call_tool("search_direct_flight", {"origin": "PHL", "destination": "LGA",
                                                              "date": "2024-05-20"}).content)
    assert direct and all(f["status"] == "available" and f["date"] is None for f in direct)
    onestop = json.loads(ep.call_tool("search_onestop_flight", {"origin": "JFK", "destination": "SEA",
                                                                "date": "2024-05-20"}).content)
    assert onestop and all(a["destination"] == b["origin"] for a, b in onestop)
    assert not ep.db.changes()


def test_send_certificate_limit(ep):
    for n in (3221322, 3221323, 3221324):
        assert f"certificate_{n}" in ep.call_tool("send_certificate", {"user_id": USER, "amount": 10}).content
    refused_hash = ep.state_hash()
    res = ep.call_tool("send_certificate", {"user_id": USER, "amount": 10})
    assert res.error and "Too many certificates" in res.content and ep.state_hash() == refused_hash


def test_tau1_messages_differ_as_in_the_benchmark(data_dir):
    env = AirlineEnv("tau1", data_dir)
    ep = env.reset(env.tasks("base")[0])
    assert ep.call_tool("get_reservation_details", {"reservation_id": "NOPE"}).content == "Error: user not found"
    assert ep.call_tool("cancel_reservation", {"reservation_id": "NOPE"}).content == "Error: reservation not found"
    assert ep.call_tool("fly", {}).content == "Unknown action fly"
    assert ep.call_tool("think", {"thought": "x"}).content == ""
    assert "get_flight_status" not in {s["function"]["name"] for s in env.tool_schemas()}
    assert not ep.db.changes()


def test_schemas_cover_every_tool(data_dir):
    for version in ("tau1", "tau2"):
        env = AirlineEnv(version, data_dir)
        names = {s["function"]["name"] for s in env.tool_schemas()}
        assert names == set(env.table.names())
        for s in env.tool_schemas():
            params = s["function"]["parameters"]
            assert set(params["required"]) <= set(params["properties"])
