"""A real local Ray (CPU): the plugin is active in worker processes that never import it by hand."""

import os
import pickle

import pytest

from helpers import pythonpath

pytestmark = pytest.mark.slow
TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath(TESTS)}})
    yield ray
    ray.shutdown()


def test_registry_and_hooks_live_in_a_worker(ray_local):
    ray = ray_local

    @ray.remote(num_cpus=1)
    def probe():
        import os
        import sys

        import stubs  # test-only stand-ins for vllm / flash_attn_2_cuda

        stubs.install_into()
        from openrlhf.trainer.ppo_utils import experience_maker, samples_generator

        fn = experience_maker.RemoteExperienceMaker.compute_advantages_and_returns
        gen = samples_generator.SamplesGenerator._process_response_into_experience
        reg = sys.modules.get("openrlhf_mtgrpo.registry")
        return {
            "pid": os.getpid(),
            "maker_patched": getattr(fn, "__mtgrpo_patched__", False),
            "generator_patched": getattr(gen, "__mtgrpo_patched__", False),
            "estimators": reg.list_advantage_estimators() if reg else None,
        }

    got = ray.get(probe.remote())
    assert got["pid"] != os.getpid()
    assert got["maker_patched"] and got["generator_patched"]
    assert {"gtpo_hybrid", "mt_grpo", "grpo_outcome"} <= set(got["estimators"])


def test_worker_computes_gtpo_through_upstream_maker(ray_local):
    ray = ray_local

    @ray.remote(num_cpus=1)
    def run():
        import stubs

        stubs.install_into()
        from openrlhf_fixtures import make_maker, response, to_experiences

        rs = [response(2, [2, 1], reward=r, turn_rewards=[1.0, 0.0]) for r in (1.0, 0.0, 1.0, 0.0)]
        out = make_maker("gtpo_hybrid", n=4).compute_advantages_and_returns(to_experiences(rs))
        return [float(e.advantages[i, 1]) for e in out for i in range(len(e.advantages))]

    first_token_adv = ray.get(run.remote())
    assert first_token_adv[0] > 0 and first_token_adv[1] < 0
    assert first_token_adv[0] == pytest.approx(first_token_adv[2]) and first_token_adv[1] == pytest.approx(first_token_adv[3])


def test_carrier_reactivates_on_unpickle():
    from openrlhf_mtgrpo import _bootstrap
    from openrlhf_mtgrpo.integration.openrlhf_hooks import PluginCarrier

    obj = pickle.loads(pickle.dumps(PluginCarrier()))
    assert isinstance(obj, PluginCarrier) and _bootstrap.is_installed()


def test_doctor_checks_a_ray_worker(ray_local, capsys):
    from openrlhf_mtgrpo.doctor import run_doctor

    assert run_doctor(check_ray=True) == 0
    out = capsys.readouterr().out
    assert "ray worker" in out and "hook active, estimators grpo_outcome, gtpo_hybrid, mt_grpo" in out
