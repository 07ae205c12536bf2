"""Domains that break in the ways the commands must catch, as ``package.module:factory`` specs (``tests`` is on
the path of the test process and of the subprocesses that put it there).

They are the example support desk (``examples/mtgrpo_example_crm``, imported from its source folder: no install)
with one thing wrong (``fake_domains:make_domain`` is the example as it is):

* :func:`gold_calls_unknown_tool`: task ``t02``'s gold ends with a call of ``refund_everything``, which neither
  the agent nor the customer has (every episode of that task would score 0 for a correct agent);
* :func:`factory_raises`: the factory fails (at a known line of this file);
* :func:`data_missing`: the factory raises ``DataNotFound`` naming the command that gets the data.
"""

from __future__ import annotations

import dataclasses
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "mtgrpo_example_crm")
if EXAMPLE not in sys.path:
    sys.path.append(EXAMPLE)

from mtgrpo_example_crm.domain import CrmDomain, make_domain  # noqa: E402,F401 (make_domain: the example as it is)

from openrlhf_mtgrpo.envs.base import DataNotFound, GoldAction  # noqa: E402

HERE = os.path.abspath(__file__)
BAD_TASK, UNKNOWN_TOOL = "t02", "refund_everything"
GOLD_SPEC = "fake_domains:gold_calls_unknown_tool"
RAISES_SPEC = "fake_domains:factory_raises"
MISSING_SPEC = "fake_domains:data_missing"
RAISE_MESSAGE = "cannot open the back office's database"


class GoldCallsUnknownTool(CrmDomain):
    def _spoil(self, task):
        if task.id != BAD_TASK:
            return task
        return dataclasses.replace(task, actions=tuple(task.actions) + (GoldAction(UNKNOWN_TOOL, {"ticket_id": "T-1"}),))

    def task(self, task_id):
        return self._spoil(super().task(task_id))

    def tasks(self, split="base"):
        return [self._spoil(t) for t in super().tasks(split)]


def gold_calls_unknown_tool(version=None, data_dir=None):
    return GoldCallsUnknownTool()


def _open_database():
    raise RuntimeError(RAISE_MESSAGE)  # RAISE_LINE


RAISE_LINE = next(i for i, line in enumerate(open(HERE), 1) if line.rstrip().endswith("# RAISE_LINE"))


def factory_raises(version=None, data_dir=None):
    _open_database()


def data_missing(version=None, data_dir=None):
    raise DataNotFound("the toy benchmark's files are not on this machine; get them with `toy-bench fetch`")


for _f in (gold_calls_unknown_tool, factory_raises, data_missing):
    _f.versions, _f.default_version = ("v1",), "v1"
