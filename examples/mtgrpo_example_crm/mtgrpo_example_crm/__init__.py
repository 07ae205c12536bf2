"""mtgrpo-example-crm: a small support-desk domain for openrlhf-mtgrpo, written as a third-party package.

What it registers, by entry point only (``pyproject.toml``; nothing here imports openrlhf-mtgrpo's
registry):

* domain ``example_crm`` (``openrlhf_mtgrpo.domains``): :func:`mtgrpo_example_crm.domain.make_domain`;
* component set ``crm`` (``openrlhf_mtgrpo.reward_components``): the ``tau`` components plus
  ``unnamed_target_write`` (:mod:`mtgrpo_example_crm.components`);
* advantage estimator ``outcome_first`` (``openrlhf_mtgrpo.advantage_estimators``):
  :mod:`mtgrpo_example_crm.estimator`.

The walk-through is openrlhf-mtgrpo's docs/domains.md.
"""

__version__ = "0.1.0"
