"""Every tool's error paths: the benchmark's message, and the database left unchanged.

tau2's versions run tau2-bench's own ``AirlineTools`` through the tau2-native layer, so these check that
layer (copy-on-access records, its ``get_response`` path, the state digest, the bounded ``calculate``) with
tau2's code behind it: every text below is what tau2's own code says.  tau1 runs our tools.  Every call goes
through the domain interface, one call per agent message."""

import copy
import json

import pytest

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

USER = "mei_hernandez_8984"  # gift card 98.0, two certificates 250.0, two credit cards
RES = "R9QDGB"  # economy, 3 passengers, 4 flights, 0 paid bags
FLIGHT = "HAT001"  # PHL -> LGA, available 2024-05-20, economy 137


@pytest.fixture(scope="module")
def env(tau2_family):
    return AirlineEnv(*tau2_family)  # the tools and the database are the same in both tau2 task versions


@pytest.fixture
def ep(env):
    return env.reset(env.tasks("base")[0])


def call(ep, name, arguments):
    """One agent message with one tool call; its result."""
    (result,) = ep.assistant_message("", [(name, arguments)]).results
    return result


def state(ep):
    """The episode's database state (tau2: the agent's and customer's hashes; tau1: its state hash)."""
    return ep.state_hashes() if hasattr(ep, "state_hashes") else ep.state_hash()


def unchanged(ep):
    """No record differs from a fresh episode's."""
    domain = getattr(ep, "domain", None) or ep.env
    return state(ep) == state(domain.reset(ep.task))


def record(ep, table, key):
    """The episode's current record (as tau2 dumps it; tau1's dict), read without copying it."""
    if hasattr(ep, "state_hashes"):
        value = dict.get(getattr(ep.env.tools.db, table), key)
        return None if value is None else value.model_dump()
    return ep.db.read(table, key)


def book_args(**over):
    a = dict(user_id=USER, origin="PHL", destination="LGA", flight_type="one_way", cabin="economy",
             flights=[{"flight_number": FLIGHT, "date": "2024-05-20"}],
             passengers=[{"first_name": "Mei", "last_name": "Hernandez", "dob": "1981-01-01"}],
             payment_methods=[{"payment_id": "credit_card_2140654", "amount": 137}],
             total_baggages=0, nonfree_baggages=0, insurance="no")
    a.update(over)
    return a


def refused(ep, name, args, expected):
    before = state(ep)
    res = call(ep, name, args)
    assert res.error, res.content
    assert expected in res.content, res.content
    assert res.content.startswith("Error: ")
    assert state(ep) == before and unchanged(ep)
    return res


def test_unknown_tool(ep):
    refused(ep, "fly_me_home", {}, "Tool 'fly_me_home' not found.")


def test_missing_and_unexpected_arguments(ep):
    args = book_args()
    del args["insurance"]
    res = refused(ep, "book_reservation", args, "missing 1 required positional argument: 'insurance'")
    assert res.content == "Error: AirlineTools.book_reservation() missing 1 required positional argument: 'insurance'"
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
    res = call(ep, "book_reservation", book_args(
        payment_methods=[{"payment_id": "certificate_7502997", "amount": 100.0},
                         {"payment_id": "gift_card_5309492", "amount": "37"}]))
    assert not res.error, res.content
    r = json.loads(res.content)
    assert r["reservation_id"] == "HATHAT" and r["payment_history"][0] == {"payment_id": "certificate_7502997", "amount": 100}
    assert r["payment_history"][1]["amount"] == 37 and r["status"] is None
    user = record(ep, "users", USER)
    assert "certificate_7502997" not in user["payment_methods"]
    assert user["payment_methods"]["gift_card_5309492"]["amount"] == pytest.approx(61.0)
    assert user["reservations"][-1] == "HATHAT"
    seats = record(ep, "flights", FLIGHT)["dates"]["2024-05-20"]["available_seats"]["economy"]
    assert seats == env.data.db["flights"][FLIGHT]["dates"]["2024-05-20"]["available_seats"]["economy"] - 1
    # the shared base is untouched
    assert "certificate_7502997" in env.data.db["users"][USER]["payment_methods"]


def test_cancel_errors(ep):
    refused(ep, "cancel_reservation", {"reservation_id": "ZZZZZZ"}, "Reservation ZZZZZZ not found")


def test_update_flights_errors(ep):
    flights = [{"flight_number": f["flight_number"], "date": f["date"]}
               for f in record(ep, "reservations", RES)["flights"]]
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
    r = record(ep, "reservations", res_id)
    user = env.data.db["users"][r["user_id"]]
    card = next(k for k, m in user["payment_methods"].items() if m["source"] == "credit_card")
    out = call(ep, "update_reservation_flights", {
        "reservation_id": res_id, "cabin": "economy", "payment_id": card,
        "flights": [{"flight_number": f["flight_number"], "date": f["date"]} for f in r["flights"]]})
    if out.error:  # e.g. no seats: then nothing changed either
        assert unchanged(ep)
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
    ok = call(ep, "update_reservation_baggages", base)
    assert not ok.error and json.loads(ok.content)["payment_history"][-1] == {"payment_id": "credit_card_2140654",
                                                                              "amount": 100}


def test_update_passengers_errors(ep):
    refused(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": []},
            "Number of passengers does not match")
    refused(ep, "update_reservation_passengers", {"reservation_id": "Q", "passengers": []}, "Reservation Q not found")
    refused(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": 3},
            "'int' object is not iterable")
    refused(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": ["Mei", "Liam"]},
            "Number of passengers does not match")


@pytest.mark.parametrize("passengers", ["Mei", ["Mei", "Liam", "Anya"], [{"first_name": "A"}, "x", "y"]])
def test_update_passengers_stores_what_is_not_a_list_of_objects(env, passengers):
    """tau2 converts the items only when all are objects; otherwise it stores the raw value after
    the length check (RES has 3 passengers): a string or a list of strings is accepted."""
    ep = env.reset(env.tasks("base")[0])
    res = call(ep, "update_reservation_passengers", {"reservation_id": RES, "passengers": passengers})
    assert not res.error, res.content
    assert json.loads(res.content)["passengers"] == passengers
    assert record(ep, "reservations", RES)["passengers"] == passengers
    assert env.data.db["reservations"][RES]["passengers"][0]["first_name"] == "Mei"  # the shared base is untouched


def _pydantic_url(kind):
    import pydantic.version

    return f"    For further information visit https://errors.pydantic.dev/{pydantic.version.version_short()}/v/{kind}"


def test_fractional_bags_are_priced_and_stored_as_tau2_does(env):
    """2.5 paid bags: 50 * 2.5 = 125.0 becomes the integer payment 125, the count is stored as 2.5."""
    ep = env.reset(env.tasks("base")[0])
    res = call(ep, "update_reservation_baggages", dict(reservation_id=RES, total_baggages=3, nonfree_baggages=2.5,
                                                           payment_id="credit_card_2140654"))
    assert not res.error, res.content
    r = json.loads(res.content)
    assert r["payment_history"][-1] == {"payment_id": "credit_card_2140654", "amount": 125}
    assert '"amount": 125}' in res.content and r["nonfree_baggages"] == 2.5 and r["total_baggages"] == 3


def test_fractional_amount_fails_after_the_gift_card_debit(env):
    """1.25 bags on a gift card: tau2 debits 62.5, then its Payment model refuses the amount."""
    ep = env.reset(env.tasks("base")[0])
    res = call(ep, "update_reservation_baggages", dict(reservation_id=RES, total_baggages=2, nonfree_baggages=1.25,
                                                           payment_id="gift_card_5309492"))
    assert res.error
    assert res.content.split("\n") == [
        "Error: 1 validation error for Payment", "amount",
        "  Input should be a valid integer, got a number with a fractional part "
        "[type=int_from_float, input_value=62.5, input_type=float]", _pydantic_url("int_from_float")]
    assert record(ep, "users", USER)["payment_methods"]["gift_card_5309492"]["amount"] == 35.5  # 98.0 - 62.5
    assert record(ep, "reservations", RES) == env.data.db["reservations"][RES]  # reservation untouched


def test_pydantic_refusals_read_as_tau2s(ep):
    res = refused(ep, "book_reservation", book_args(flights=[{"flight_number": FLIGHT}]), "validation error")
    assert res.content.split("\n") == [
        "Error: 1 validation error for FlightInfo", "date",
        "  Field required [type=missing, input_value={'flight_number': 'HAT001'}, input_type=dict]",
        _pydantic_url("missing")]
    res = refused(ep, "send_certificate", {"user_id": USER, "amount": "ten"}, "validation error for Certificate")
    assert "[type=float_parsing, input_value='ten', input_type=str]" in res.content


@pytest.mark.parametrize("name,args,expected", [
    ("get_user_details", {"user_id": [USER]}, "Error: unhashable type: 'list'"),
    ("get_reservation_details", {"reservation_id": {"id": RES}}, "Error: unhashable type: 'dict'"),
    ("get_flight_status", {"flight_number": FLIGHT, "date": ["2024-05-20"]}, "Error: unhashable type: 'list'"),
    ("book_reservation", book_args(flights=["HAT001"]), "Error: 'str' object has no attribute 'flight_number'"),
    ("book_reservation", book_args(flights={"flight_number": FLIGHT, "date": "2024-05-20"}),
     "Error: 'str' object has no attribute 'flight_number'"),
    ("book_reservation", book_args(nonfree_baggages="1"), "Error: unsupported operand type(s) for +=: 'int' and 'str'"),
    ("update_reservation_flights", dict(reservation_id=RES, cabin="first", flights=[{"flight_number": FLIGHT,
                                        "date": "2024-05-20"}], payment_id="credit_card_2140654"), "Error: 'first'"),
    ("get_user_details", {"user_id": USER, "requestor": "user"},
     "Error: tau2.environment.environment.Environment.make_tool_call() got multiple values for keyword argument "
     "'requestor'"),
    ("get_user_details", {"tool_name": "x"}, "Error: Environment.make_tool_call() got multiple values for argument "
                                             "'tool_name'"),
    ("get_user_details", {"user_id": USER, "db": 1},
     "Error: AirlineTools.get_user_details() got an unexpected keyword argument 'db'"),
])
def test_error_texts_are_pythons_as_in_tau2(ep, name, args, expected):
    before = state(ep)
    res = call(ep, name, args)
    assert res.error and res.content == expected
    assert state(ep) == before


def test_wrong_container_fails_in_the_reservation_model(ep):
    res = refused(ep, "book_reservation", book_args(passengers="Mei"), "1 validation error for Reservation")
    assert "passengers\n  Input should be a valid list [type=list_type, input_value='Mei', input_type=str]" in res.content


@pytest.mark.parametrize("expression,expected", [
    ("10 // 3", "3.0"), ("2**1000", "1.0715086071862673e+301"), (" 1+1", "2.0"), ("7/2*2", "7.0"),
    ("2**10000", "Error: int too large to convert to float"), ("2.0**10000", "Error: (34, 'Numerical result out of range')"),
    ("1 2", "Error: invalid syntax (<string>, line 1)"), ("", "Error: invalid syntax (<string>, line 0)"),
    ("()", "Error: float() argument must be a string or a real number, not 'tuple'"),
    ("(-8)**(1/3)", "Error: float() argument must be a string or a real number, not 'complex'"),
    ("1/0", "Error: division by zero"), ("abc", "Error: Invalid characters in expression"),
    (5, "Error: 'int' object is not iterable"), (["1", "+", "2"], "Error: eval() arg 1 must be a string, bytes or code object"),
    ([1], "Error: 'in <string>' requires string as left operand, not int"),
])
def test_calculate_evaluates_as_python_does(ep, expression, expected):
    assert call(ep, "calculate", {"expression": expression}).content == expected


def test_calculate_answers_runaway_powers_quickly(ep):
    """The benchmark computes these for minutes (9**9**9 has 1.2 Gbit) and then fails in float(); we give
    that answer at once (tests/test_tau2_calculator.py has the rest, and what remains different)."""
    import time

    t0 = time.perf_counter()
    for e in ("9**9**9", "-" * 990 + "9**9**9", "(9**300000)" + "*(9**300000)" * 80, "2**1048577"):
        res = call(ep, "calculate", {"expression": e})
        assert res.error and res.content == "Error: int too large to convert to float"
    for e, value in (("2**1048577-2**1048577", "0.0"), ("2**1048576//2**1048575", "2.0"),
                     ("(-1)**(10**400000)", "1.0"), ("-7/10**400000", "-0.0")):
        assert call(ep, "calculate", {"expression": e}).content == value
    assert time.perf_counter() - t0 < 3.0


DEEP = {"neg999": "-" * 999 + "1", "neg300pow": "-" * 300 + "2**3", "mul499": "2*" * 499 + "1",
        "paren300": "(" * 300 + "1" + ")" * 300, "paren199pow": "(" * 199 + "9**9" + ")" * 199}
TOO_LONG = {"neg2000": "-" * 2000 + "1", "mul3000": "2*" * 3000 + "1", "neg10000": "-" * 10000 + "1",
            "neg1000": "-" * 1000 + "1"}


@pytest.mark.parametrize("expression", list(DEEP.values()), ids=list(DEEP))
def test_calculate_deep_expressions_as_eval(ep, expression):
    """Deep nesting within the calculator's length bound: the same result or the same compiler error as eval."""
    try:
        expected = str(round(float(eval(expression, {"__builtins__": None}, {})), 2))
    except Exception as e:  # noqa: BLE001
        expected = f"Error: {e}"
    assert call(ep, "calculate", {"expression": expression}).content == expected


@pytest.mark.parametrize("expression", list(TOO_LONG.values()), ids=list(TOO_LONG))
def test_calculate_refuses_expressions_beyond_its_length_bound(ep, expression):
    """Longer than MAX_LENGTH (1000 characters): refused, saying so (Python's compiler alone would spend
    milliseconds on them; products of long literals, seconds)."""
    from openrlhf_mtgrpo.benchmarks.calculator import MAX_LENGTH

    res = call(ep, "calculate", {"expression": expression})
    assert res.error and res.content == (f"Error: expression too long to evaluate here: {len(expression)} characters "
                                         f"(at most {MAX_LENGTH})")


def test_calculator_matches_eval_on_random_expressions(ep):
    """The calculate the agent calls against Python's own eval on the benchmark's alphabet (small numbers, so
    that no power runs away)."""
    import random

    def text(fn, e):
        try:
            return fn(e)
        except Exception as exc:  # noqa: BLE001
            return f"Error: {exc}"

    rng = random.Random(0)
    alphabet = "0123456789+-*/(). "
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        for _ in range(3000):
            e = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
            if "**" in e:
                continue
            theirs = text(lambda x: str(round(float(eval(x, {"__builtins__": None}, {})), 2)), e)
            assert call(ep, "calculate", {"expression": e}).content == theirs, e


def test_read_tool_errors(ep):
    refused(ep, "get_user_details", {"user_id": "ghost_0"}, "User ghost_0 not found")
    refused(ep, "get_reservation_details", {"reservation_id": "ABCDEF"}, "Reservation ABCDEF not found")
    refused(ep, "get_flight_status", {"flight_number": "HAT001", "date": "2030-01-01"},
            "Flight HAT001 not found on date 2030-01-01")
    refused(ep, "send_certificate", {"user_id": "ghost_0", "amount": 50}, "User ghost_0 not found")
    refused(ep, "calculate", {"expression": "__import__('os')"}, "Invalid characters in expression")


def test_read_tool_outputs(ep):
    assert call(ep, "calculate", {"expression": "(100 * 3) / 7"}).content == "42.86"
    assert call(ep, "get_flight_status", {"flight_number": "HAT001", "date": "2024-05-01"}).content == "landed"
    airports = json.loads(call(ep, "list_all_airports", {}).content)
    assert len(airports) == 20 and airports[0] == {"iata": "SFO", "city": "San Francisco"}
    direct = json.loads(call(ep, "search_direct_flight", {"origin": "PHL", "destination": "LGA",
                                                              "date": "2024-05-20"}).content)
    assert direct and all(f["status"] == "available" and f["date"] is None for f in direct)
    onestop = json.loads(call(ep, "search_onestop_flight", {"origin": "JFK", "destination": "SEA",
                                                                "date": "2024-05-20"}).content)
    assert onestop and all(a["destination"] == b["origin"] for a, b in onestop)
    assert unchanged(ep)


def test_send_certificate_limit(ep):
    for n in (3221322, 3221323, 3221324):
        assert f"certificate_{n}" in call(ep, "send_certificate", {"user_id": USER, "amount": 10}).content
    refused_hash = state(ep)
    res = call(ep, "send_certificate", {"user_id": USER, "amount": 10})
    assert res.error and "Too many certificates" in res.content and state(ep) == refused_hash


def test_tau1_messages_differ_as_in_the_benchmark(require_version):
    env = AirlineEnv("tau1", require_version("tau1"))
    ep = env.reset(env.tasks("base")[0])
    assert call(ep, "get_reservation_details", {"reservation_id": "NOPE"}).content == "Error: user not found"
    assert call(ep, "cancel_reservation", {"reservation_id": "NOPE"}).content == "Error: reservation not found"
    assert call(ep, "fly", {}).content == "Unknown action fly"
    assert call(ep, "think", {"thought": "x"}).content == ""
    assert "get_flight_status" not in {s["function"]["name"] for s in env.tool_schemas()}
    assert unchanged(ep)


def test_tau1_logged_arguments_do_not_change_with_later_calls(require_version):
    """tau-bench's book_reservation stores the payment list it is given; a later cancel extends
    that list.  Our tools get a copy: the database is tau1's, the first call's arguments stay as sent."""
    env = AirlineEnv("tau1", require_version("tau1"))
    ep = env.reset(env.tasks("base")[0])
    user = "mia_li_3668"
    card = next(k for k, m in env.data.db["users"][user]["payment_methods"].items() if m["source"] == "credit_card")
    flight = next(n for n, f in env.data.db["flights"].items()
                  if f["dates"].get("2024-05-20", {}).get("status") == "available")
    f = env.data.db["flights"][flight]
    price = f["dates"]["2024-05-20"]["prices"]["economy"]
    args = dict(user_id=user, origin=f["origin"], destination=f["destination"], flight_type="one_way",
                cabin="economy", flights=[{"flight_number": flight, "date": "2024-05-20"}],
                passengers=[{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
                payment_methods=[{"payment_id": card, "amount": price}], total_baggages=0, nonfree_baggages=0,
                insurance="no")
    sent = copy.deepcopy(args)
    booked = call(ep, "book_reservation", args)
    assert not booked.error, booked.content
    cancelled = call(ep, "cancel_reservation", {"reservation_id": "HATHAT"})
    assert json.loads(cancelled.content)["payment_history"] == [{"payment_id": card, "amount": price},
                                                                {"payment_id": card, "amount": -price}]
    assert booked.arguments == sent and args == sent


def test_tau1_fourth_certificate_fails_the_run_as_in_tau_bench(require_version):
    """tau-bench's SendCertificate.invoke falls off its end once certificates 3221322-3221324 exist and
    returns None; its Env.step then cannot build an EnvResponse (``observation: str``), the exception
    leaves agent.solve and run.py records the task with reward 0.  Our result says so (run_failure, for
    the episode to end), never the text "None" as if it were an observation; nothing is written."""
    env = AirlineEnv("tau1", require_version("tau1"))
    ep = env.reset(env.tasks("base")[0])
    user = "mia_li_3668"
    for n in (3221322, 3221323, 3221324):
        res = call(ep, "send_certificate", {"user_id": user, "amount": 10})
        assert not res.error and res.run_failure is None
        assert res.content == f"Certificate certificate_{n} added to user {user} with amount 10."
    before = state(ep)
    res = call(ep, "send_certificate", {"user_id": user, "amount": 10})
    assert res.error and res.run_failure and "send_certificate returns None" in res.run_failure
    assert res.content == "Error: " + res.run_failure and res.to_dict()["run_failure"] == res.run_failure
    assert state(ep) == before
    assert "run_failure" not in ep.tool_results[0].to_dict()
    # an unknown user is still tau-bench's own refusal, before the loop
    assert call(ep, "send_certificate", {"user_id": "ghost", "amount": 1}).content == "Error: user not found"


def test_tau1_argument_errors_read_as_tau_benchs(require_version):
    env = AirlineEnv("tau1", require_version("tau1"))
    ep = env.reset(env.tasks("base")[0])
    assert call(ep, "get_user_details", {"user_id": "x", "verbose": 1}).content == \
        "Error: GetUserDetails.invoke() got an unexpected keyword argument 'verbose'"
    assert call(ep, "get_user_details", {"user_id": "x", "data": 1}).content == (
        "Error: tau_bench.envs.airline.tools.get_user_details.GetUserDetails.invoke() got multiple values for "
        "keyword argument 'data'")
    assert call(ep, "get_user_details", {"user_id": ["x"]}).content == "Error: unhashable type: 'list'"
    assert call(ep, "calculate", {"expression": "10 // 3"}).content == "3.0"


@pytest.mark.parametrize("version", ["tau2", "tau2-2025", "tau1"])
def test_schemas_cover_every_tool(require_version, version):
    for env in [AirlineEnv(version, require_version(version))]:
        names = {s["function"]["name"] for s in env.tool_schemas()}
        assert names == set(env.tool_kinds.kinds)
        for s in env.tool_schemas():
            params = s["function"]["parameters"]
            assert set(params.get("required", [])) <= set(params["properties"])
