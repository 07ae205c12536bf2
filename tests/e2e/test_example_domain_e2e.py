"""A third-party domain trained end to end: the example package (examples/mtgrpo_example_crm), pip-installed,
driven by the unmodified ``python -m openrlhf.cli.train_ppo_ray`` with ``--mtgrpo.domain example_crm``, its
component set ``crm`` (through the calibration) and its estimator ``--advantage_estimator outcome_first``.

Nothing of the example is imported by the launcher before it starts: the launcher, the Ray workers and the
rollout actors each find the domain, the component set and the estimator through the example's entry points
(the installed folder is on PYTHONPATH, as a user's site-packages would be).  One synchronous run of two
steps, as in test_train_ppo_ray_e2e.py; the advantages the trainer used are recomputed from the run's rollout
log with the estimator written out again in plain Python.
"""

import os
import sys

import pytest
import torch

from e2e_run import RunSpec, run_training
from reference import _informative, gtpo_hybrid, normalise, token_advantages
from test_train_ppo_ray_e2e import _match_records, _samples, _steps

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOMAIN, VERSION, COMPONENTS, ESTIMATOR = "example_crm", "v1", "crm", "outcome_first"

#: a random model makes no useful tool call: a message earns 0.2 (as the airline run's calibration), so the
#: episodes' turn returns differ; the weights are of the example's set, its own component included
CALIBRATION = """schema_version: 2
component_set: crm
name: e2e-crm-message-reward
provenance:
  source: "tests/e2e: a message turn earns 0.2 so that a random model's episodes get different returns"
clip: [-1.0, 1.0]
components:
  message: {weight: 0.2, tier: untested}
  tool_error: {weight: -0.1, tier: anti_discriminative}
  unnamed_target_write: {weight: -0.5, tier: untested}
"""


def outcome_first(group, gamma, lam, eps, outcome_weight):
    """``A_ik = outcome_weight * A^O_i + lam * GN(R_ik)`` (the example's estimator), from the reference GN of GTPO
    hybrid: with ``lam=0`` that is ``GN(R_ik)`` alone; a group with no difference gets 0 (its outcomes are equal:
    A^O = 0)."""
    gn = gtpo_hybrid(group, gamma=gamma, lam=0.0, eps=eps, pool="turn")
    if not _informative(group):
        return gn
    a_o = normalise([g["outcome"] for g in group], eps)
    return [[outcome_weight * a_o[i] + lam * x for x in row] for i, row in enumerate(gn)]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from test_example_domain import install_example  # tests/ is on sys.path (e2e_run puts it there)

    from openrlhf_mtgrpo import registry

    info = install_example(str(tmp_path_factory.mktemp("example_crm_e2e")))
    if info["target"] not in sys.path:
        sys.path.append(info["target"])
    # this process read the entry points before the example was on its path (the launcher's processes find
    # them); for the checks here, the example's set is registered as its entry point names it
    registry.register_reward_components(COMPONENTS, "mtgrpo_example_crm.components:crm_components")
    return info


@pytest.fixture(scope="module")
def run(example, tmp_path_factory, tau2_family):
    from mtgrpo_example_crm.domain import make_domain
    from openrlhf_mtgrpo.offline.scripted import make_rule_based_user
    from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
    from test_example_domain import _check, mtgrpo
    from tiny_model import build_tiny_qwen3

    workdir = str(tmp_path_factory.mktemp("e2e_crm"))
    # what e2e_run.prepare_inputs would build for the airline: the tiny model (its toy tokenizer is trained on
    # airline texts, which is only a tokenizer) and the prompt dataset, here the example's test split (t12 needs
    # no write: an agent that does nothing and lets the customer stop succeeds there)
    build_tiny_qwen3(os.path.join(workdir, "tiny-qwen3"), tau2_family[1], version=tau2_family[0], stop_prob=0.08)
    prompts = os.path.join(workdir, f"{VERSION}_train.jsonl")
    _check(mtgrpo(example, "data", "prepare", "--domain", DOMAIN, "--split", "test", "--out", prompts))
    calibration = os.path.join(workdir, "e2e-crm-calibration.yaml")
    with open(calibration, "w") as f:
        f.write(CALIBRATION)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([example["target"]] + ([old] if old else []))
    try:
        with LocalChatServer(make_rule_based_user(make_domain(), max_user_turns=2)) as srv:
            # the later --calibration replaces the airline run's one (argparse: the last value wins)
            # the estimator's own option (OutcomeFirstOptions), not its default: the advantages below prove it arrived
            spec = RunSpec(estimator=ESTIMATOR, extra=["--mtgrpo.domain", DOMAIN, "--calibration", calibration,
                                                       "--outcome_first.outcome_weight", "2.0"])
            r = run_training(workdir, "crm_outcome_first", spec, None, srv.base_url, timeout=900, version=VERSION)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    if r.returncode != 0:
        pytest.fail(f"train_ppo_ray exited with {r.returncode} after {r.seconds:.0f} s; log tail:\n"
                    + r.log_text()[-6000:])
    r.paths["crm_calibration"] = calibration
    return r


def test_the_run_trained_two_steps_on_the_example_domain(run):
    from mtgrpo_example_crm.components import NAMES
    from mtgrpo_example_crm.domain import make_domain
    from openrlhf_mtgrpo.rewards.calibration import load_calibration

    assert len(_steps(run)) == run.spec.steps
    text = run.log_text()
    assert "Global step 2" in text and "Global step 3" not in text
    assert [s["estimator"] for s in run.step_records()] == [ESTIMATOR] * run.spec.steps
    records = run.rollout_records()
    assert len(records) == run.spec.steps * run.spec.n_samples * run.spec.prompts_per_step
    domain = make_domain()
    cal = load_calibration(run.paths["crm_calibration"])
    test_ids = {t.id for t in domain.tasks("test")}
    for r in records:
        assert (r["domain"], r["component_set"], r["estimator"]) == (DOMAIN, COMPONENTS, ESTIMATOR)
        assert r["calibration_sha256"] == cal.sha256 and r["benchmark"] == domain.identity
        assert r["task_id"] in test_ids and r["components"] == list(NAMES)
        assert all(set(t["features"]) == set(NAMES) for t in r["turns"])
        for t in r["turns"]:  # each turn's reward is the crm calibration's weights on its features
            assert t["reward"] == pytest.approx(cal.turn_reward(t["features"]), abs=1e-9)


def test_advantages_are_outcome_first_recomputed_from_the_rollout_log(run):
    records = run.rollout_records()
    nonzero = 0
    for step in _steps(run):
        samples = list(_samples(step["batches"]))
        assert len(samples) == run.spec.n_samples * run.spec.prompts_per_step
        groups = {}
        for s, r in zip(samples, _match_records(samples, records)):
            assert not r["infra_failed"] and s["reward"] == r["reward"]
            groups.setdefault(s["label"], []).append((s, r))
        assert sorted(len(g) for g in groups.values()) == [run.spec.n_samples] * run.spec.prompts_per_step
        for members in groups.values():
            o = members[0][1]["estimator_options"]
            # what the reference computes: GN per turn index, sample std, every turn's own reward counted
            assert (o["pool"], o["std_norm"], o["std_ddof"], o["turn_indexing"]) == ("turn", True, 1, "zero")
            assert o["outcome_weight"] == 2.0  # --outcome_first.outcome_weight, logged with the shared options
            want = outcome_first([{"outcome": r["reward"], "rewards": [t["reward"] for t in r["turns"]]}
                                  for _, r in members], gamma=o["gamma"], lam=o["lam"], eps=o["eps"],
                                 outcome_weight=o["outcome_weight"])
            for (s, r), a in zip(members, want):
                tokens = torch.tensor(token_advantages(a, r["action_ranges"], s["mask"].shape[0]))
                torch.testing.assert_close(s["adv"].double(), tokens.double(), atol=2e-5, rtol=1e-5)
                nonzero += bool(tokens.abs().sum() > 0)
    assert nonzero > 0, "no sample had a non-zero advantage: the run proves nothing about training"
