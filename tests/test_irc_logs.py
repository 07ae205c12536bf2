"""IRC reads the logs as training produced them (issue #13 point 3): groups, calibration, estimator
settings and benchmark identity come from the log lines; mixed settings are refused."""

import json

import numpy as np
import pytest
import torch

from irc_logs import OPTIONS, line, structured, write
from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze, turn_rewards
from openrlhf_mtgrpo.irc.logs import LogError, read_logs
from openrlhf_mtgrpo.rewards.calibration import load_calibration

PROBS = {"gold_exact": (0.8, 0.2), "read_only": (0.5, 0.5), "tool_error": (0.2, 0.7), "state_change": (0.1, 0.4)}


def test_group_size_is_read_from_the_logs(tmp_path):
    p = write(tmp_path / "rollouts-g8.jsonl", structured(400, seed=1, probs=PROBS, group_size=8))
    batch = read_logs([p])
    assert batch.meta.group_sizes == {8: 50} and len(np.unique(batch.group)) == 50
    assert read_logs([p], group_size=4).group.tolist() == batch.group.tolist()  # ids win over the option
    # the advantage check uses the groups of 8: same turn misalignment as computing it by hand on them
    cal = load_calibration("paper-dense")
    res = analyze(batch, cal, IRCOptions(bootstrap=200, pool=batch.meta.estimator_options["pool"]))
    assert res.options.pool == "group"
    r = torch.from_numpy(turn_rewards(batch, cal.weights, cal.clip))
    k, o = torch.from_numpy(batch.num_turns), torch.from_numpy(batch.outcome)
    g8 = torch.arange(400) // 8
    live = torch.ones(400, dtype=torch.bool)
    adv, a_o, _ = core.gtpo_hybrid_turn_advantages(r, k, o, g8, live, gamma=0.9, lam=0.3, eps=1e-6, std_norm=True,
                                                   ddof=1, pool="group", turn_indexing="zero")
    want = core.alignment_diagnostics(adv, a_o, o, torch.from_numpy(batch.turn_valid()), g8)["misalignment_rate"]
    assert res.misalignment_before == pytest.approx(want)


def test_logs_without_group_ids_need_the_group_size(tmp_path):
    recs = structured(40, seed=2, probs=PROBS)
    for r in recs:
        del r["group"]
    p = write(tmp_path / "rollouts-old.jsonl", recs)
    with pytest.raises(LogError, match="--group-size"):
        read_logs([p])
    batch = read_logs([p], group_size=4)
    assert "consecutive episodes" in batch.meta.grouping and batch.meta.warnings
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o")]) == 2


def _task_lines(infra_at, with_ids):
    out = []
    for i in range(8):
        group = (f"g{i // 4}", 4, i % 4) if with_ids else None
        out.append(line("A", i % 2 == 0, [{"message": 1.0}], group=group, infra=(i == infra_at)))
    return out


@pytest.mark.parametrize("with_ids", [False, True])
def test_an_infrastructure_failure_does_not_shift_later_groups(tmp_path, with_ids):
    p = write(tmp_path / "rollouts-infra.jsonl", _task_lines(infra_at=2, with_ids=with_ids))
    batch = read_logs([p], group_size=None if with_ids else 4)
    assert batch.excluded_infra == 1 and batch.n == 7
    assert batch.group.tolist() == [0, 0, 0, 1, 1, 1, 1]  # episodes 0, 1, 3 | 4, 5, 6, 7
    assert batch.meta.incomplete_groups == 0


def test_lost_lines_are_flagged(tmp_path):
    recs = structured(16, seed=3, probs=PROBS)
    del recs[5]
    batch = read_logs([write(tmp_path / "rollouts-lost.jsonl", recs)])
    assert batch.meta.incomplete_groups == 1 and batch.meta.missing_lines == 1
    assert any("miss 1 rollout line" in w for w in batch.meta.warnings)


@pytest.mark.parametrize("field,value,message", [
    ("benchmark", {"version": "tau2-2025", "tasks_sha256": "x" * 64, "db_sha256": "d" * 64}, "benchmark"),
    ("calibration", "paper-irc", "calibrations"),
    ("estimator", "mt_grpo", "advantage estimators"),
    ("estimator_options", {**OPTIONS, "pool": "turn"}, "estimator settings"),
    ("group", None, "group ids"),
])
def test_logs_that_mix_settings_are_refused(tmp_path, field, value, message):
    a = structured(20, seed=4, probs=PROBS)
    b = structured(20, seed=5, probs=PROBS)
    for r in b:
        if field == "calibration":
            r.update({k: v for k, v in line("x", True, [], calibration=value).items() if k.startswith("calibration")})
        elif value is None:
            del r[field]
        else:
            r[field] = value
    p1, p2 = write(tmp_path / "rollouts-a.jsonl", a), write(tmp_path / "rollouts-b.jsonl", b)
    with pytest.raises(LogError, match=message):
        read_logs([p1, p2])
    assert cli(["irc", "analyze", p1, p2, "--out", str(tmp_path / "o")]) == 2


RULES = {"budget": 200, "unit": "steps", "max_errors": 10, "benchmark_defaults": True, "changed": {}}
PROMPTS = {"agent": {"source": "benchmark", "sha256": "a" * 64}, "customer": {"source": "benchmark", "sha256": "c" * 64}}


@pytest.mark.parametrize("field,other,message", [
    ("run_rules", {**RULES, "budget": 40, "benchmark_defaults": False, "changed": {"max_steps": 40}}, "run rules"),
    ("prompts", {**PROMPTS, "customer": {"source": "own-words", "sha256": "o" * 64}}, "agent or customer prompts"),
    ("user_model", "another-customer-model", "customer models"),
])
def test_logs_of_conversations_run_differently_are_refused(tmp_path, field, other, message):
    """Success rates under other ending rules, prompts or customers are other experiments (#22-#24)."""
    a, b = structured(20, seed=4, probs=PROBS), structured(20, seed=5, probs=PROBS)
    for r in a + b:
        r.update(run_rules=RULES, prompts=PROMPTS, user_model="customer-model", user_temperature=0.0)
    p1 = write(tmp_path / "rollouts-a.jsonl", a)
    assert read_logs([p1, write(tmp_path / "rollouts-same.jsonl", b)]).n == 40  # the same settings: one batch
    for r in b:
        r[field] = other
    p2 = write(tmp_path / "rollouts-b.jsonl", b)
    with pytest.raises(LogError, match=f"the logs mix {message}.*20 lines.*20 lines"):
        read_logs([p1, p2])
    assert cli(["irc", "analyze", p1, p2, "--out", str(tmp_path / "o")]) == 2


def test_starting_calibration_is_the_one_the_logs_record(tmp_path, capsys):
    p = write(tmp_path / "rollouts-dense.jsonl", structured(400, seed=6, probs=PROBS, calibration="paper-dense"))
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    new = load_calibration(str(out / "irc_calibration.yaml"))
    assert new.provenance["parent"] == "paper-dense"
    assert new.provenance["parent_sha256"] == load_calibration("paper-dense").sha256
    assert cli(["irc", "analyze", p, "--out", str(out), "--calibration", "paper-irc"]) == 2
    assert "scored with calibration 'paper-dense'" in capsys.readouterr().err


def test_calibration_file_moved_is_found_by_hash_or_refused(tmp_path, capsys):
    custom = tmp_path / "mine.yaml"
    custom.write_text(open(load_calibration("paper-dense").path).read().replace("name: paper-dense", "name: mine"))
    recs = structured(200, seed=7, probs=PROBS, calibration=str(custom))
    p = write(tmp_path / "rollouts-mine.jsonl", recs)
    moved = tmp_path / "moved.yaml"
    custom.rename(moved)
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o")]) == 2
    assert "no file with that hash was found" in capsys.readouterr().err
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o"), "--calibration", str(moved),
                "--bootstrap", "200"]) == 0


@pytest.mark.parametrize("content", ["", "all-infra"])
def test_empty_log_writes_no_calibration(tmp_path, capsys, content):
    p = tmp_path / "rollouts-empty.jsonl"
    if content:
        write(p, [line("A", False, [], group=("g", 2, i), infra=True) for i in range(2)])
    else:
        p.write_text("")
    out = tmp_path / "o"
    assert cli(["irc", "analyze", str(p), "--out", str(out)]) == 2
    assert "no rollouts" in capsys.readouterr().err
    assert not (out / "irc_calibration.yaml").exists()


def test_pooling_and_estimator_settings_are_read_from_the_logs(tmp_path, capsys):
    recs = structured(400, seed=8, probs=PROBS, turns=5, options={**OPTIONS, "pool": "turn", "lam": 0.5})
    p = write(tmp_path / "rollouts-turn.jsonl", recs)
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--out", str(out), "--bootstrap", "200"]) == 0
    assert "(pool=turn, gamma=0.9, lam=0.5" in capsys.readouterr().out
    opts = load_calibration(str(out / "irc_calibration.yaml")).provenance["options"]
    assert opts["pool"] == "turn" and opts["lam"] == 0.5
    batch = read_logs([p])
    turn = analyze(batch, load_calibration("paper-dense"), IRCOptions(pool="turn", lam=0.5, bootstrap=200))
    group = analyze(batch, load_calibration("paper-dense"), IRCOptions(pool="group", lam=0.5, bootstrap=200))
    assert json.loads((out / "irc_result.json").read_text())["before"]["turn_misalignment"] == \
        pytest.approx(turn.misalignment_before)
    assert turn.misalignment_before != pytest.approx(group.misalignment_before)
    assert cli(["irc", "analyze", p, "--out", str(out), "--pool", "group"]) == 2
    assert "used pool='turn'" in capsys.readouterr().err


def test_edg_gates_of_each_episode_score_the_before_rewards(tmp_path):
    recs = structured(40, seed=9, probs={"read_only": (0.9, 0.9)}, calibration="paper-dense")
    for r in recs[:20]:
        r["edg"] = {"closed": ["read_only"], "stale": False, "failures": {"gates": 0, "record": 0}}
    batch = read_logs([write(tmp_path / "rollouts-edg.jsonl", recs)])
    assert batch.meta.edg_gated_episodes == 20
    cal = load_calibration("paper-dense")
    gated = turn_rewards(batch, cal.weights, cal.clip, batch.gates)
    plain = turn_rewards(batch, cal.weights, cal.clip)
    ro = batch.features[:, :, 2] > 0  # read_only
    assert np.all(gated[:20][ro[:20]] == 0) and np.all(plain[:20][ro[:20]] == pytest.approx(0.3))
    assert np.array_equal(gated[20:], plain[20:])


def test_a_run_with_another_estimator_needs_an_explicit_check(tmp_path, capsys):
    p = write(tmp_path / "rollouts-gn.jsonl", structured(200, seed=10, probs=PROBS, estimator="group_norm"))
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o")]) == 2
    assert "'group_norm'" in capsys.readouterr().err
    assert cli(["irc", "analyze", p, "--out", str(tmp_path / "o"), "--estimator", "grpo_outcome",
                "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "note: the logged run used estimator 'group_norm': checking with 'grpo_outcome'" in out


def _old_lines(**kw):
    """Lines as a version before estimator settings, group ids and benchmark identity were logged wrote them."""
    recs = structured(200, seed=3, probs={"gold_exact": (0.8, 0.2), "tool_error": (0.2, 0.7)}, **kw)
    for r in recs:
        del r["group"], r["estimator_options"], r["benchmark"]
    return recs


def test_logs_that_do_not_record_the_pool_need_pool(tmp_path, capsys):
    """Such runs trained with the old default pool=group; the current default is turn: never guessed."""
    p = write(tmp_path / "rollouts-old.jsonl", _old_lines())
    out = tmp_path / "o"
    assert cli(["irc", "analyze", p, "--group-size", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "do not record which turns gtpo_hybrid pooled over" in err and "--pool group or --pool turn" in err
    assert not (out / "irc_calibration.yaml").exists()
    assert cli(["irc", "analyze", p, "--group-size", "4", "--pool", "group", "--out", str(out),
                "--bootstrap", "200"]) == 0
    text = capsys.readouterr().out
    assert "(pool=group, gamma=0.9" in text and "note: pool='group' as given (not recorded in the logs)" in text
    assert load_calibration(str(out / "irc_calibration.yaml")).provenance["options"]["pool"] == "group"
    # settings recorded without the pool (a partial record) are not a guess either
    recs = structured(40, seed=4, probs=PROBS, options={k: v for k, v in OPTIONS.items() if k != "pool"})
    assert cli(["irc", "analyze", write(tmp_path / "rollouts-nopool.jsonl", recs), "--out", str(out)]) == 2
    assert "--pool group or --pool turn" in capsys.readouterr().err


def test_an_estimator_without_pooling_needs_no_pool(tmp_path, capsys):
    p = write(tmp_path / "rollouts-old-mt.jsonl", _old_lines(estimator="mt_grpo"))
    assert cli(["irc", "analyze", p, "--group-size", "4", "--out", str(tmp_path / "o"), "--bootstrap", "200"]) == 0
    assert "Advantage check with the run's estimator mt_grpo" in capsys.readouterr().out


def test_a_check_with_other_settings_than_the_logs_says_so(tmp_path):
    """The API does not refuse (a study may ask for another pool), but the result warns."""
    batch = read_logs([write(tmp_path / "rollouts-g.jsonl", structured(200, seed=5, probs=PROBS))])
    assert batch.meta.estimator_options["pool"] == "group"
    res = analyze(batch, load_calibration("paper-dense"), IRCOptions(pool="turn", bootstrap=200))
    assert any("does not use the settings the logs record (pool: logs 'group', check 'turn')" in w
               for w in res.warnings)
    same = analyze(batch, load_calibration("paper-dense"), IRCOptions(pool="group", bootstrap=200))
    assert not any("settings the logs record" in w for w in same.warnings)


def test_before_and_after_are_checked_with_the_same_edg_gates(tmp_path):
    """The episodes' EDG gates apply to both sets of weights: when IRC changes nothing, before == after."""
    from openrlhf_mtgrpo.irc.analyze import run_checks

    recs = structured(200, seed=11, probs={"read_only": (0.9, 0.4), "state_change": (0.1, 0.6)}, turns=4,
                      calibration="paper-dense")
    for r in recs[::2]:
        r["edg"] = {"closed": ["read_only"], "stale": False, "failures": {"gates": 0, "record": 0}}
    batch = read_logs([write(tmp_path / "rollouts-edg.jsonl", recs)])
    assert batch.gates is not None and int((~batch.gates).sum()) == 100
    cal = load_calibration("paper-dense")
    nothing = analyze(batch, cal, IRCOptions(min_rollouts=1000, pool="group", bootstrap=200))  # nothing tested
    assert not nothing.changes
    assert nothing.before.__dict__ == nothing.after.__dict__
    res = analyze(batch, cal, IRCOptions(pool="group", bootstrap=200))
    assert "state_change: +0.1 -> -0.1 (anti evidence)" in res.changes
    direction = np.array([float(c.direction) for c in res.components.values()])
    want, _, _ = run_checks(batch, res.calibration.weights, cal.clip, res.options, direction, batch.gates)
    assert res.after.__dict__ == want.__dict__
    assert res.calibration.provenance["edg_gated_episodes"] == 100
