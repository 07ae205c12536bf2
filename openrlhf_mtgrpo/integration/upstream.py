"""Entry points for an OpenRLHF that carries our upstream patch (patches/).

The patched ``RemoteExperienceMaker.compute_advantages_and_returns`` looks up the
``openrlhf.advantage_estimators`` entry-point group and calls
``fn(experience_maker, experiences) -> experiences``; these are ours.  They run the
same code as the runtime hook, so patched and hooked OpenRLHF give identical results.
"""

from __future__ import annotations


def _entry(maker, experiences):
    from openrlhf.trainer.ppo_utils import experience_maker as em

    from openrlhf_mtgrpo.integration.openrlhf_hooks import plugin_compute_advantages

    return plugin_compute_advantages(maker, experiences, getattr(em, "apply_length_penalties", None))


def gtpo_hybrid(maker, experiences):
    return _entry(maker, experiences)


def mt_grpo(maker, experiences):
    return _entry(maker, experiences)


def grpo_outcome(maker, experiences):
    return _entry(maker, experiences)
