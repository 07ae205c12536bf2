"""TEST ONLY (docs/testing.md): runs at start-up of every interpreter whose PYTHONPATH holds this
folder -- the e2e launcher and all its Ray workers.  It does nothing unless MTGRPO_E2E_STANDINS=1."""

import os

if os.environ.get("MTGRPO_E2E_STANDINS") == "1":
    import mtgrpo_e2e_shim

    mtgrpo_e2e_shim.install()
