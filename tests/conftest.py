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


def missing_data(what: str, command: str) -> None:
    """Skip (or, where data is required, fail) a test that needs benchmark data this machine lacks."""
    message = f"{what} not available on this machine; get it with `{command}`"
    if os.environ.get(REQUIRE_DATA_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(message + f" ({REQUIRE_DATA_ENV} is set: nothing may be skipped for missing data)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir():
    if not os.path.isdir(os.path.join(DATA_DIR, "tau2")):
        missing_data(f"benchmark data (tau2 airline) at {os.path.abspath(DATA_DIR)}", "mtgrpo data fetch")
    return os.path.abspath(DATA_DIR)


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
