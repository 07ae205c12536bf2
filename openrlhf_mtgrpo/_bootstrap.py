"""Start-up hook: activates the plugin in every process that imports OpenRLHF.

Executed from ``openrlhf_mtgrpo.pth`` (and ``openrlhf_mtgrpo.start`` on Pythons
that read PEP 829 start files) at interpreter start, in the driver and in every
Ray worker of the environment.  It must stay cheap and stdlib-only: it installs
a ``sys.meta_path`` finder and nothing else.  The finder does the real work only
when the process imports one of the OpenRLHF modules we hook, by running the
matching function of :mod:`openrlhf_mtgrpo.integration.openrlhf_hooks` right
after that module has executed.

``OPENRLHF_MTGRPO_DISABLE=1`` turns everything off.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import threading

DISABLE_ENV = "OPENRLHF_MTGRPO_DISABLE"

#: OpenRLHF module -> name of the hook function in integration.openrlhf_hooks
HOOKED_MODULES = {
    "openrlhf": "on_openrlhf_import",
    "openrlhf.utils.config": "on_config_import",
    "openrlhf.trainer.ppo_utils.experience_maker": "on_experience_maker_import",
    "openrlhf.trainer.ppo_utils.samples_generator": "on_samples_generator_import",
}

_state = {"installed": False, "fired": []}


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _run_hook(module_name: str, module) -> None:
    from openrlhf_mtgrpo.integration import openrlhf_hooks

    getattr(openrlhf_hooks, HOOKED_MODULES[module_name])(module)
    _state["fired"].append(module_name)


class _HookLoader(importlib.abc.Loader):
    def __init__(self, inner, name):
        self._inner = inner
        self._name = name

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _run_hook(self._name, module)

    def __getattr__(self, item):  # get_source, is_package, ... of the real loader
        return getattr(self._inner, item)


class _HookFinder(importlib.abc.MetaPathFinder):
    """Finds a hooked module with the rest of ``sys.meta_path`` and wraps its loader.

    Other post-import-hook finders (wrapt, ddtrace, OpenTelemetry, ...) do the same: asked for a
    module, they ask the whole meta path, which includes us.  While we are looking a module up,
    a nested request for the same module (on the same thread) answers None, so that the nested
    finder moves on to the real one instead of recursing until RecursionError.
    """

    def __init__(self):
        self._busy = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in HOOKED_MODULES:
            return None
        busy = getattr(self._busy, "names", None)
        if busy is None:
            busy = self._busy.names = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module") \
                            and not isinstance(spec.loader, _HookLoader):
                        spec.loader = _HookLoader(spec.loader, fullname)
                    return spec
            return None
        finally:
            busy.discard(fullname)


def install() -> bool:
    """Install the import hook (idempotent).  Returns whether the plugin is active."""
    if disabled():
        return False
    if _state["installed"]:
        return True
    sys.meta_path.insert(0, _HookFinder())
    _state["installed"] = True
    # Modules imported before the hook existed (e.g. the hook installed by hand
    # in an interactive session) are patched right away.
    for name in HOOKED_MODULES:
        if name in sys.modules:
            _run_hook(name, sys.modules[name])
    return True


def is_installed() -> bool:
    return _state["installed"]


def fired_hooks() -> list:
    return list(_state["fired"])


def activate(*_args, **_kwargs) -> bool:
    """Entry for Ray's ``worker_process_setup_hook`` ("openrlhf_mtgrpo._bootstrap.activate")."""
    return install()


install()
