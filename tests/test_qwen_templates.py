"""Full airline episodes through the real Qwen chat templates, thinking on and off: on-policy and token-exact."""

import pytest

from qwen_fixtures import MORE_SETUPS, REAL_SETUPS, qwen_tokenizer, run_scripted

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.rollout.chat import ChatRenderer, resolve_chat_template, training_variant

WRITE_TASK = "7"  # 2 reads (one turn, two calls), update_reservation_flights, 2 cancellations
TYPED_TASK = "20"  # book_reservation: integers, arrays of objects with numbers


@pytest.fixture(scope="module")
def env(tau2_family):
    return AirlineEnv(*tau2_family)  # gold episodes of either tau2 task version


@pytest.mark.parametrize("template,thinking,generation_prompt,prefill", [
    ("qwen3", True, "<|im_start|>assistant\n", ""),  # the model opens <think> itself
    ("qwen3", False, "<|im_start|>assistant\n<think>\n\n</think>\n\n", "<think>\n\n</think>\n\n"),
    ("qwen3_5_think", True, "<|im_start|>assistant\n<think>\n", "<think>\n"),
    ("qwen3_5_think", False, "<|im_start|>assistant\n<think>\n\n</think>\n\n", "<think>\n\n</think>\n\n"),
    ("qwen3_5_nothink", True, "<|im_start|>assistant\n<think>\n", "<think>\n"),
    ("qwen3_instruct_2507", False, "<|im_start|>assistant\n", ""),
])
def test_generation_prompt_and_prefill(env, template, thinking, generation_prompt, prefill):
    r = ChatRenderer(qwen_tokenizer(template), env.tool_schemas(), thinking)
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text, ids = r.prompt(msgs)
    assert text.endswith(generation_prompt) and r.prefill == prefill
    assert r.tok.decode(ids) == text


def test_thinking_needs_a_template_that_thinks(env):
    with pytest.raises(ValueError, match="no thinking mode"):
        ChatRenderer(qwen_tokenizer("qwen3_instruct_2507"), env.tool_schemas(), enable_thinking=True)


def test_stock_templates_drop_earlier_reasoning_and_training_variants_keep_it(env):
    """Why stock templates drift: after the customer's next message, an earlier turn re-renders without its
    reasoning, so the conversation is no longer a prefix of what the engine saw."""
    turn = {"role": "assistant", "content": "<think>\nI should ask.\n</think>\n\nWhich flight?"}
    convo = [{"role": "system", "content": "S"}, {"role": "user", "content": "Change my flight."}, turn]
    for stock, training in [("qwen3", "qwen3_training"), ("qwen3_5_think", "qwen3_5_think_training")]:
        for name, drifts in [(stock, True), (training, False)]:
            r = ChatRenderer(qwen_tokenizer(name), env.tool_schemas(), True)
            seen = r.render(convo, add_generation_prompt=False)[:-1]  # up to the generated <|im_end|>
            assert "I should ask." in seen
            reply = [{"role": "user", "content": "HAT001."}]
            assert ("I should ask." not in r.render(convo + reply, True)) is drifts
            delta = r.observation(seen, convo, reply)
            assert delta.drift is drifts, name
            expected = "\n<|im_start|>user\nHAT001.<|im_end|>\n<|im_start|>assistant\n" + r.prefill
            assert delta.text == expected and r.encode(expected) == delta.tokens


def test_chat_template_option(env, tmp_path):
    for stock in ["qwen3", "qwen3_5_think", "qwen3_5_nothink", "qwen3_instruct_2507"]:
        tok = qwen_tokenizer(stock)
        assert resolve_chat_template("training", tok) == qwen_tokenizer(stock + "_training").chat_template
        assert resolve_chat_template(None, tok) == resolve_chat_template("model", tok) == tok.chat_template
    trained = qwen_tokenizer("qwen3_training").chat_template
    assert training_variant(trained) == trained
    path = tmp_path / "t.jinja"
    path.write_text(trained)
    assert resolve_chat_template(str(path), qwen_tokenizer("qwen3")) == trained
    with pytest.raises(ValueError, match="none of the templates trl ships"):
        training_variant("{{ messages }}")
    with pytest.raises(ValueError, match="neither 'model', 'training' nor a template file"):
        resolve_chat_template(str(tmp_path / "missing.jinja"), qwen_tokenizer("qwen3"))


def check_on_policy(res, renderer, engine):
    """The invariant: for every turn, the tokens before its action span are exactly the prompt the engine got for
    that turn, and the span is exactly what it generated; tokens between spans are observations."""
    calls = [c for c in engine.log]
    assert len(calls) == len(res.turns) == len(res.action_ranges)
    for (s, e), call in zip(res.action_ranges, calls):
        assert res.tokens[:s] == call["prompt"]
        assert res.tokens[s:e] == call["output"]
    # between two spans: the observation, which is the template's rendering of the messages in between, placed
    # after the generated end-of-turn: the text the template renders for the conversation up to there ends with it
    ends = [e for _, e in res.action_ranges]
    starts = [s for s, _ in res.action_ranges[1:]]
    for k, (e, s) in enumerate(zip(ends, starts)):
        obs = renderer.tok.decode(res.tokens[e:s])
        assert renderer.encode(obs) == res.tokens[e:s]
        upto = _messages_through_turn(res.messages, k + 1)
        rendered = renderer.render(upto, add_generation_prompt=True)
        assert rendered.endswith(obs) and rendered[:-len(obs)].endswith("<|im_end|>"), (k, obs)


def _messages_through_turn(messages, k):
    """Messages up to (excluding) the k-th generated assistant turn (0-based; the greeting is not a turn)."""
    seen = -1
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            if seen == k:
                return messages[:i]
            seen += 1
    raise AssertionError(k)


@pytest.mark.parametrize("template,thinking", REAL_SETUPS + MORE_SETUPS,
                         ids=[f"{t}-{'think' if th else 'nothink'}" for t, th in REAL_SETUPS + MORE_SETUPS])
@pytest.mark.parametrize("task_id", [WRITE_TASK, TYPED_TASK])
def test_gold_episode_with_real_template(env, template, thinking, task_id):
    task = env.task(task_id)
    res, renderer, engine, user = run_scripted(env, task, template, thinking)
    assert res.reward == 1.0 and res.termination == "user_stop", res.outcome
    check_on_policy(res, renderer, engine)
    # the calls ran with the gold names and typed arguments (the DB hash matches only if every type is right)
    ran = [(c["name"], c["arguments"]) for t in res.turns for c in t.tool_calls]
    assert ran == [(a.name, a.arguments) for a in task.actions]
    if task_id == WRITE_TASK:  # two reads in the first turn: two calls in one message
        assert len(res.turns[0].tool_calls) == 2
    # the customer and the benchmark saw the answers only: no reasoning, no call markup
    assert user.received and all("<" not in m and "I should" not in m and "The customer" not in m
                                 for m in user.received)
    assert user.received == [t.answer for t in res.turns if not t.tool_calls]
    generated = [renderer.tok.decode(c["output"]) for c in engine.log]
    assert any("</think>" in g for g in generated) is (thinking and template != "qwen3_instruct_2507")
    # where the template is a training variant or has no history rewriting, nothing drifts and the whole
    # sequence is the template's rendering of the conversation
    drifted = [t.template_drift for t in res.turns]
    stock_thinking = template in ("qwen3", "qwen3_5_think", "qwen3_5_nothink")
    if stock_thinking:
        assert any(drifted)
    else:
        assert not any(drifted)
        full = renderer.render(res.messages, add_generation_prompt=False)
        assert full == renderer.tok.decode(res.tokens) + "\n"
        assert res.tokens == renderer.encode(full[:-1])


@pytest.mark.parametrize("stock,thinking", [("qwen3", True), ("qwen3", False), ("qwen3_5_think", True),
                                            ("qwen3_5_think", False)])
def test_training_option_removes_the_drift(env, stock, thinking):
    tok = qwen_tokenizer(stock)
    res, renderer, _, _ = run_scripted(env, env.task(WRITE_TASK), stock, thinking)
    assert any(t.template_drift for t in res.turns)
    res2, renderer2, engine2, _ = run_scripted(env, env.task(WRITE_TASK), stock, thinking,
                                               chat_template=resolve_chat_template("training", tok))
    assert res2.reward == 1.0 and not any(t.template_drift for t in res2.turns)
    check_on_policy(res2, renderer2, engine2)
    # the engine saw the same turns and observations either way: from the first action on, the sequences are
    # identical (the observations the drift fallback rendered equal those cut from the training template's
    # full render); only the prompt differs (the training variant gives the greeting an empty think block)
    assert res.tokens[res.action_ranges[0][0]:] == res2.tokens[res2.action_ranges[0][0]:]


def test_reasoning_only_turn_is_an_agent_error_in_tau2(env):
    """A turn that never leaves its reasoning says nothing to the customer: tau2 ends the episode (agent_error)."""
    import asyncio

    from qwen_fixtures import Params, RecordingUser

    from openrlhf_mtgrpo.rewards.calibration import load_calibration
    from openrlhf_mtgrpo.rollout.episode import Generation, run_episode
    from openrlhf_mtgrpo.rollout.tool_parsers import parser_for

    tok = qwen_tokenizer("qwen3_5_think")
    r = ChatRenderer(tok, env.tool_schemas(), True)

    class ThinkOnly:
        async def generate(self, token_ids, max_tokens):
            return Generation(tok("Hmm, let me think.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id])

    user = RecordingUser(env.task(WRITE_TASK))
    res = asyncio.run(run_episode(env, env.task(WRITE_TASK), ThinkOnly(), r,
                                  parser_for("auto", env.tool_schemas(), r.template), user, load_calibration()))
    assert res.termination == "agent_error" and res.reward == 0.0 and user.received == []
    assert len(res.turns) == 1 and res.turns[0].answer == ""


@pytest.mark.parametrize("stock", ["qwen3", "qwen3_5_think"])
def test_executor_with_real_template_and_training_option(env, tau2_family, tmp_path, stock):
    """OpenRLHF's entry point (the agent executor) with the model's stock template, the recipe options
    (thinking on, chat_template training, parser auto) and the real HTTP customer."""
    import asyncio

    from qwen_fixtures import Params
    from rollout_helpers import LocalChatServer, make_executor, make_rule_based_user, read_log

    from openrlhf_mtgrpo.offline.scripted_qwen import ScriptedQwenEngine

    tok = qwen_tokenizer(stock)
    with LocalChatServer(make_rule_based_user(env)) as srv:
        ex = make_executor(tau2_family[1], srv.base_url, tmp_path, enable_thinking=True, chat_template="training",
                           tool_parser="auto", tau_version=env.version)
        engine = ScriptedQwenEngine(tok, env, chat_template=resolve_chat_template("training", tok),
                                    enable_thinking=True)
        out = asyncio.run(ex.execute(prompt="", label=WRITE_TASK, sampling_params=Params(), max_length=60000,
                                     hf_tokenizer=tok, llm_engine=engine))
    log = read_log(tmp_path)[0]
    assert out["reward"] == 1.0 and log["termination"] == "user_stop"
    assert out["extra_logs"]["mtgrpo_template_drift"] == 0.0 and out["extra_logs"]["mtgrpo_template_drift_turns"] == 0
    for (s, e), call in zip(out["action_ranges"], engine.log):
        assert out["observation_tokens"][:s] == call["prompt"] and out["observation_tokens"][s:e] == call["output"]
    assert all("</think>" in m["content"] for m in log["messages"][3:] if m["role"] == "assistant")
    assert all("</think>" not in t["answer"] and "<tool_call>" not in t["answer"] for t in log["turns"])


#: (training template, thinking, generated text, drifts): when a training template's full render stops
#: extending what the engine saw.  The training templates re-render an assistant turn in their own layout:
#: qwen3_training ``<think>\n`` + reasoning.strip("\n") + ``\n</think>\n\n`` + answer.lstrip("\n"); the Qwen3.5
#: training templates trim the whole message and the reasoning (all whitespace) and lstrip("\n") the answer;
#: qwen3_instruct_2507_training renders the content verbatim.  Output in exactly that layout never drifts;
#: other whitespace around the reasoning tags (or, for Qwen3.5, at the end of the turn) does.
DRIFT_CASES = [
    ("qwen3_training", True, "<think>\nR\n</think>\n\nHi there", False),
    ("qwen3_training", True, "<think>R</think>Hi there", True),
    ("qwen3_training", True, "<think>\nR\n</think>\nHi there", True),
    ("qwen3_training", True, "<think>\nR\n</think>\n\n\nHi there", True),
    ("qwen3_training", True, "<think>\nR</think>\n\nHi there", True),
    ("qwen3_training", True, "<think>\nR\n</think>\n\nHi there\n", False),  # trailing whitespace is kept
    ("qwen3_training", False, "Hi there  ", False),
    ("qwen3_training", False, "\nHi there", True),  # the answer's leading newline is stripped
    ("qwen3_5_think_training", True, "R\n</think>\n\nHi there", False),
    ("qwen3_5_think_training", True, "R</think>Hi there", True),
    ("qwen3_5_think_training", True, "R\n</think>\nHi there", True),
    ("qwen3_5_think_training", True, " R\n</think>\n\nHi there", True),  # reasoning is trimmed of all whitespace
    ("qwen3_5_think_training", True, "R\n</think>\n\nHi there\n", True),  # so is the end of the message
    ("qwen3_5_think_training", False, "Hi there", False),
    ("qwen3_5_think_training", False, "Hi there\n", True),
    ("qwen3_5_nothink_training", True, "R\n</think>\n\nHi there", False),
    ("qwen3_5_nothink_training", True, "R\n</think>\n\n\nHi there", True),
    ("qwen3_5_nothink_training", False, "\nHi there", True),
    ("qwen3_instruct_2507_training", False, "\n Hi there \n", False),  # verbatim: never drifts
]


@pytest.mark.parametrize("template,thinking,generated,drifts", DRIFT_CASES)
def test_when_a_training_template_still_drifts(env, template, thinking, generated, drifts):
    tok = qwen_tokenizer(template)
    r = ChatRenderer(tok, env.tool_schemas(), thinking)
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    seen, ids = r.prompt(msgs)
    gen = tok(generated, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    full, content, _ = r.content_of(gen)
    history = msgs + [r.assistant_message(content)]
    delta = r.observation(seen + full, history, [{"role": "user", "content": "next"}])
    assert delta.drift is drifts
    # either way the observation is the same text: the fallback keeps the sequence exact
    expected = "\n<|im_start|>user\nnext<|im_end|>\n<|im_start|>assistant\n" + r.prefill
    assert delta.text == expected and delta.tokens == r.encode(expected)


@pytest.mark.parametrize("template,thinking", [("qwen3_training", True), ("qwen3_5_think_training", True),
                                               ("qwen3_5_think_training", False), ("qwen3_instruct_2507", False)])
def test_sampled_spacing_drifts_on_training_templates_and_stays_on_policy(env, template, thinking):
    """Output that is not whitespace-exact in the template's layout (here every turn deviates, cycling through
    the scripted engine's spacing variants) drifts on the training templates too; the sentinel fallback keeps
    every turn's prompt exactly what the engine saw, and the episode plays out as with exact output."""
    from openrlhf_mtgrpo.offline.scripted_qwen import variants_for

    spacing = variants_for(thinking and template != "qwen3_instruct_2507")
    res, renderer, engine, _ = run_scripted(env, env.task(WRITE_TASK), template, thinking, spacing=spacing)
    assert res.reward == 1.0 and res.termination == "user_stop", res.outcome
    check_on_policy(res, renderer, engine)
    exact, _, _, _ = run_scripted(env, env.task(WRITE_TASK), template, thinking)
    assert [[(c["name"], c["arguments"]) for c in t.tool_calls] for t in res.turns] == \
        [[(c["name"], c["arguments"]) for c in t.tool_calls] for t in exact.turns]
    assert not any(t.template_drift for t in exact.turns)
    assert any(t.template_drift for t in res.turns) is (template != "qwen3_instruct_2507")
