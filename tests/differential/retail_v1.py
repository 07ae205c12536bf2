"""tau2-bench v1.0.1's own retail code on what tests/test_tau2_retail_v1_differential.py gives it; prints JSON.

Run under the Python that has tau2-bench v1.0.1 installed from source (Python >= 3.12)::

    PYTHONPATH=tests <python3.12> -m differential.retail_v1 < request.json

The request is one JSON object with ``mode``:

* ``config``: tau2-bench's judge defaults (``DEFAULT_LLM_NL_ASSERTIONS``, ``DEFAULT_LLM_NL_ASSERTIONS_ARGS``);
* ``schemas``: the agent's tools of its retail environment (``get_environment().get_tools()``, openai schemas);
* ``items`` (``ids``: item ids, any JSON values): each as one ``get_item_details`` call through its
  ``Environment.get_response`` on a fresh retail environment: ``[content, error]``;
* ``judge`` (``conversations``: ``{"messages": [tau2 message dicts], "nl_assertions": [...]}``): its
  ``NLAssertionsEvaluator.evaluate_nl_assertions`` on each, its LLM call going through litellm to the OpenAI
  endpoint ``$OPENAI_BASE_URL`` (the test's capturing server): the verdicts;
* ``grade`` (``simulations``: ``{"task_id", "messages"}``): its ``evaluate_simulation`` (``EvaluationType.ALL``,
  strict replay, as its runner calls it) of each as a ``user_stop`` simulation of its own retail task, the judge
  again through ``$OPENAI_BASE_URL``: reward, breakdown, DB verdict, the NL checks' verdicts.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _quiet() -> None:
    from loguru import logger

    logger.remove()


def _messages(dicts):
    from tau2.data_model.message import AssistantMessage, ToolMessage, UserMessage

    cls = {"assistant": AssistantMessage, "user": UserMessage, "tool": ToolMessage}
    return [cls[d["role"]].model_validate(d) for d in dicts]


def main() -> None:
    _quiet()
    req = json.load(sys.stdin)
    mode = req["mode"]
    if mode == "config":
        from tau2 import config

        out = {"model": config.DEFAULT_LLM_NL_ASSERTIONS, "args": config.DEFAULT_LLM_NL_ASSERTIONS_ARGS}
    elif mode == "schemas":
        from tau2.domains.retail.environment import get_environment

        out = [t.openai_schema for t in get_environment().get_tools()]
    elif mode == "items":
        from tau2.data_model.message import ToolCall
        from tau2.domains.retail.environment import get_environment

        out = []
        for i, item_id in enumerate(req["ids"]):
            env = get_environment()
            msg = env.get_response(ToolCall(id=f"c{i}", name="get_item_details", arguments={"item_id": item_id}))
            out.append([msg.content, bool(msg.error)])
    elif mode == "judge":
        from tau2.evaluator.evaluator_nl_assertions import NLAssertionsEvaluator

        out = []
        for conv in req["conversations"]:
            checks = NLAssertionsEvaluator.evaluate_nl_assertions(_messages(conv["messages"]), conv["nl_assertions"])
            out.append([bool(c.met) for c in checks])
    elif mode == "grade":
        from tau2.data_model.simulation import SimulationRun
        from tau2.domains.retail.environment import get_tasks
        from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

        tasks = {t.id: t for t in get_tasks(None)}
        out = []
        for sim in req["simulations"]:
            run = SimulationRun(id=f"s{len(out)}", task_id=sim["task_id"], timestamp="", start_time="", end_time="",
                                duration=0.0, termination_reason="user_stop", messages=_messages(sim["messages"]))
            info = evaluate_simulation(run, tasks[sim["task_id"]], EvaluationType.ALL, False, "retail")
            out.append({"reward": info.reward,
                        "breakdown": {getattr(k, "value", k): v for k, v in (info.reward_breakdown or {}).items()},
                        "db_match": info.db_check.db_match if info.db_check else None,
                        "nl": [bool(c.met) for c in info.nl_assertions or []]})
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
