"""tau2's database in the form its tools see and dump it.

tau2 loads its database into pydantic models (``FlightDB.load``): values are
coerced, defaults filled in, and a dump lists fields in model order.  Those rules
decide both what the agent sees and what the final-state hash compares, so the
loaded database is normalised by validating it with models of the same shape
(:mod:`.tau2_models`) and dumping it.  tau1 stores raw dicts and needs none of this.
"""

from __future__ import annotations

from typing import Any, Dict


def normalise_db_tau2(raw: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """tau2's ``FlightDB.load`` followed by ``model_dump``: every record in model form."""
    from openrlhf_mtgrpo.benchmarks.airline.tau2_models import FlightDB

    return FlightDB.model_validate(raw).model_dump()
