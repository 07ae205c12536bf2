"""Soft matches need a real overlap and the gold target; deep equality keeps ids and booleans apart;
negated confirmations are not confirmations (issue #13, points 1 and 8)."""

from types import SimpleNamespace

import pytest

from openrlhf_mtgrpo.benchmarks.airline.data import Action
from openrlhf_mtgrpo.benchmarks.airline.tools_tau1 import TABLE
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.matching import GoldMatcher, argument_overlap, deep_equal
from openrlhf_mtgrpo.rewards.tau import is_confirmation, tau_components
from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput

YES = "Yes, please go ahead."
#: the tau component set for the airline's tools (tau1's table: the same kinds, writes and targets as tau2's)
TAU = tau_components(TABLE.tool_kinds())


def scorer(gold):
    return TAU.new_episode(SimpleNamespace(actions=gold))


def classify(gold, name, args, user=YES):
    return scorer(gold).features(TurnInput([CallRecord(name, args, False)], last_user_message=user))


def test_cancelling_the_wrong_reservation_is_a_non_gold_write():
    gold = [Action("cancel_reservation", {"reservation_id": "ABC123"})]
    f = classify(gold, "cancel_reservation", {"reservation_id": "ZZZ999"})
    assert f["soft_match"] == 0.0 and f["state_change"] == 1.0
    cal = load_calibration("paper-irc")
    wrong = cal.turn_reward(f)
    non_gold_write = cal.turn_reward(classify(gold, "update_reservation_baggages",
                                              {"reservation_id": "ZZZ999", "total_baggages": 1,
                                               "nonfree_baggages": 0, "payment_id": "gift_card_1"}))
    assert wrong == non_gold_write == pytest.approx(-0.1)


def test_wrong_target_write_with_matching_other_arguments_is_not_soft():
    gold = [Action("update_reservation_baggages", {"reservation_id": "ABC123", "total_baggages": 2,
                                                   "nonfree_baggages": 0, "payment_id": "credit_card_7"})]
    f = classify(gold, "update_reservation_baggages", {"reservation_id": "OTHER1", "total_baggages": 2,
                                                       "nonfree_baggages": 0, "payment_id": "credit_card_7"})
    assert f["soft_match"] == 0.0 and f["state_change"] == 1.0
    # the right reservation with one wrong value is the paper's soft match: 0.5 + 0.5 * 3/4
    f = classify(gold, "update_reservation_baggages", {"reservation_id": "ABC123", "total_baggages": 3,
                                                       "nonfree_baggages": 0, "payment_id": "credit_card_7"})
    assert f["soft_match"] == pytest.approx(0.875) and f["state_change"] == 0.0


def test_lookup_of_another_user_or_reservation_is_read_only():
    gold = [Action("get_user_details", {"user_id": "mia_li_3668"}),
            Action("get_reservation_details", {"reservation_id": "NO6JO3"})]
    assert classify(gold, "get_user_details", {"user_id": "someone_else_1"})["read_only"] == 1.0
    f = classify(gold, "get_reservation_details", {"reservation_id": "XXXXXX"})
    assert f["read_only"] == 1.0 and f["soft_match"] == 0.0


def test_extra_argument_scores_below_exact_and_keeps_the_gold_action():
    gold = [Action("search_direct_flight", {"origin": "JFK", "destination": "SFO", "date": "2024-05-16"})]
    cl = scorer(gold)
    extra = {"origin": "JFK", "destination": "SFO", "date": "2024-05-16", "cabin": "economy"}
    f = cl.features(TurnInput([CallRecord("search_direct_flight", extra, False)]))
    assert f["soft_match"] == pytest.approx(0.5 + 0.5 * 3 / 4) and f["gold_exact"] == 0.0
    f = cl.features(TurnInput([CallRecord("search_direct_flight", dict(gold[0].arguments), False)]))
    assert f["gold_exact"] == 1.0  # the gold action was not used up by the soft match


def test_each_gold_action_gives_one_soft_match():
    m = GoldMatcher([("search_direct_flight", {"origin": "JFK", "destination": "SFO", "date": "2024-05-16"})])
    assert m.match("search_direct_flight", {"origin": "JFK", "destination": "SFO", "date": "2024-05-17"})[0] == "soft"
    assert m.match("search_direct_flight", {"origin": "JFK", "destination": "SFO", "date": "2024-05-18"}) == \
        ("none", 0.0)
    assert m.match("search_direct_flight", {"origin": "JFK", "destination": "SFO", "date": "2024-05-16"}) == \
        ("exact", 1.0)


def test_overlap_counts_extra_arguments():
    assert argument_overlap({"a": 1, "b": 2, "z": 0}, {"a": 1, "b": 2}) == pytest.approx(2 / 3)
    assert argument_overlap({"z": 1}, {}) == 0.0
    assert argument_overlap({}, {}) == 1.0


def test_deep_equal_keeps_leading_zeros_and_booleans_apart():
    assert not deep_equal({"zip": "01234"}, {"zip": "1234"})
    assert not deep_equal({"zip": "01234"}, {"zip": 1234})
    assert not deep_equal({"insurance": True}, {"insurance": 1})
    assert not deep_equal([False], [0])
    assert deep_equal({"amount": "100"}, {"amount": 100}) and deep_equal({"x": "-2.50"}, {"x": -2.5})
    assert deep_equal({"flag": True}, {"flag": True})


@pytest.mark.parametrize("text,want", [
    ("Yes, please go ahead.", True), ("yes", True), ("Sure.", True), ("Yes, that is correct.", True),
    ("I'm not sure.", False), ("Please don't proceed.", False), ("No, do not proceed yet.", False),
    ("That is not correct.", False), ("Sure, but don't proceed yet.", False), ("Wait, do not do it.", False),
    ("Please cancel it.", False), ("", False),
    # a curly apostrophe is an apostrophe
    ("Hmm, I don\u2019t want to proceed.", False), ("I don\u2019t know, sure?", False),
    ("Yes, I can\u2019t wait.", True),
    # a negation or hesitation after the confirming word, in its sentence
    ("Yes, but not now.", False), ("yes please don't", False), ("Yes \u2014 hold on", False),
    ("Yes, go ahead. Wait!", False),
    ("Yes. Actually, no - wait.", False), ("OK, let me think about it first.", False), ("Sure, not yet.", False),
    # ... and what still confirms
    ("Yes, please go ahead. I don't have any other questions.", True), ("Yes, no problem, go ahead.", True),
    ("Wait, let me check. Yes, go ahead.", True), ("I don't mind, go ahead.", True),
    ("Absolutely, please proceed with the cancellation.", True), ("Yes, can you also add insurance?", True),
    ("Is that correct?", False)])
def test_negated_confirmations_do_not_confirm(text, want):
    assert is_confirmation(text) is want
    gold = [Action("cancel_reservation", {"reservation_id": "R"})]
    f = classify(gold, "cancel_reservation", {"reservation_id": "R"}, user=text)
    assert f["unconfirmed_write"] == (0.0 if want else 1.0)


def test_tau2_lookups_of_every_reservation_give_no_soft_match(data_dir):
    """The issue's count: looking up every reservation of the task's user gave 17 soft matches in 4 tasks."""
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    env = AirlineEnv("tau2", data_dir)
    soft, exact, gold_lookups = 0, 0, 0
    for task in env.tasks("base"):
        user = env.data.db["users"].get(task.user_id or "")
        if not user:
            continue
        cl = TAU.new_episode(task)
        wanted = {a.arguments.get("reservation_id") for a in task.actions if a.name == "get_reservation_details"}
        gold_lookups += len(wanted & set(user["reservations"]))
        for rid in user["reservations"]:
            f = cl.features(TurnInput([CallRecord("get_reservation_details", {"reservation_id": rid}, False)]))
            soft += f["soft_match"] > 0
            exact += f["gold_exact"] > 0
    assert soft == 0
    assert exact == gold_lookups > 0


BOOKING = {"user_id": "u1", "origin": "JFK", "destination": "SFO", "flight_type": "one_way", "cabin": "economy",
           "flights": [{"flight_number": "HAT1", "date": "2024-05-01"}],
           "passengers": [{"first_name": "A", "last_name": "B", "dob": "1990-01-01"}],
           "payment_methods": [{"payment_id": "gc_1", "amount": 100}], "total_baggages": 0, "nonfree_baggages": 0,
           "insurance": "no"}
WRONG_BOOKING = {"user_id": "u1", "origin": "LAX", "destination": "ORD", "flight_type": "round_trip",
                 "cabin": "business", "flights": [{"flight_number": "HAT9", "date": "2024-06-01"}],
                 "passengers": [{"first_name": "C", "last_name": "D", "dob": "1980-01-01"}],
                 "payment_methods": [{"payment_id": "cc_9", "amount": 900}], "total_baggages": 3,
                 "nonfree_baggages": 2, "insurance": "yes"}
FLIGHTS = {"reservation_id": "R1", "cabin": "economy", "flights": [{"flight_number": "HAT1", "date": "2024-05-01"}],
           "payment_id": "gc_1"}


def _non_gold_write(gold, user=YES):
    """A write the gold does not have at all: the baseline no wrong write may beat."""
    return classify(gold, "update_reservation_passengers", {"reservation_id": "OTHER9", "passengers": []}, user)


@pytest.mark.parametrize("calibration", ["paper-irc", "paper-dense"])
def test_a_write_with_only_its_target_right_is_a_non_gold_write(calibration):
    """A booking for the right user with every other argument wrong scored soft 0.545 (+0.55 under paper-irc,
    against -0.1 for a non-gold write); the right reservation with wrong flights, cabin and payment 0.625."""
    cal = load_calibration(calibration)
    gold = [Action("book_reservation", BOOKING)]
    f = classify(gold, "book_reservation", WRONG_BOOKING)
    assert f["soft_match"] == 0.0 and f["state_change"] == 1.0
    assert cal.turn_reward(f) == cal.turn_reward(_non_gold_write(gold)) == cal.weights["state_change"]
    gold = [Action("update_reservation_flights", FLIGHTS)]
    wrong = {"reservation_id": "R1", "cabin": "business", "flights": [{"flight_number": "HAT9", "date": "2024-06-01"}],
             "payment_id": "cc_2"}
    f = classify(gold, "update_reservation_flights", wrong)
    assert f["soft_match"] == 0.0 and f["state_change"] == 1.0
    # one argument besides the target right: the paper's partial overlap, 0.5 + 0.5 * 2/4
    f = classify(gold, "update_reservation_flights", {**wrong, "cabin": "economy"})
    assert f["soft_match"] == pytest.approx(0.75) and f["state_change"] == 0.0


@pytest.mark.parametrize("calibration", ["paper-irc", "paper-dense"])
def test_no_write_without_a_real_overlap_earns_more_than_a_non_gold_write(calibration):
    """Every write tool, 300 seeded argument sets each (target right, wrong, missing or differently typed;
    other arguments right or wrong), confirmed or not: a call whose target is wrong, or whose other
    arguments are all wrong, never earns more than a write the gold does not have."""
    import random

    from openrlhf_mtgrpo.benchmarks.airline.tools import WRITE_TARGETS

    cal = load_calibration(calibration)
    rng = random.Random(0)
    checked = soft = 0
    for tool, (target,) in WRITE_TARGETS.items():
        gargs = {target: "GOLD1", "a": 1, "b": "x", "c": [1, 2]}
        gold = [Action(tool, gargs)]
        for _ in range(300):
            args = {target: rng.choice(["GOLD1", "OTHER", "gold1", 5, None])}
            args.update({k: (gargs[k] if rng.random() < 0.5 else "wrong") for k in "abc" if rng.random() < 0.8})
            if rng.random() < 0.3:
                args["extra"] = 1
            args = {k: v for k, v in args.items() if v is not None}
            for user in (YES, "hmm"):
                f = classify(gold, tool, args, user)
                real = args.get(target) == "GOLD1" and any(args.get(k) == gargs[k] for k in "abc")
                soft += f["soft_match"] > 0
                if not real and f["gold_exact"] == 0:
                    checked += 1
                    assert f["soft_match"] == 0.0, (tool, args)
                    assert cal.turn_reward(f) <= cal.turn_reward(_non_gold_write(gold, user)) + 1e-12, (tool, args)
    assert checked > 1500 and soft > 500  # both kinds were drawn
