"""A results file that ends in half a record (a kill or a full disk mid-write) keeps the next record intact:
the partial line stays one corrupt line (reported), the record appended after it is read."""

import json

import pytest

from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.jsonl import JsonlReadReport, append_jsonl, iter_jsonl
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from test_eval import A, eval_args, results


def test_append_after_a_partial_last_line_starts_a_new_line(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(str(path), {"n": 1})
    with open(path, "ab") as f:
        f.write(b'{"n": 2, "half')  # the process died here
    append_jsonl(str(path), {"n": 3})
    report = JsonlReadReport()
    assert [r["n"] for r in iter_jsonl([str(path)], report)] == [1, 3]
    assert [b.line for b in report.bad] == [2] and report.records == 2  # the partial line, reported
    assert path.read_bytes().split(b"\n")[1] == b'{"n": 2, "half'  # kept as it was, on its own line
    # a file that ends properly gets no blank line, an empty file no leading newline
    append_jsonl(str(path), {"n": 4})
    assert path.read_bytes().endswith(b'{"n":3}\n{"n":4}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    append_jsonl(str(empty), {"n": 5})
    assert empty.read_bytes() == b'{"n":5}\n'


@pytest.mark.slow
def test_rerun_after_a_truncated_results_file_reads_the_new_record(data_dir, tmp_path, capsys):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    env = AirlineEnv("tau2", data_dir)
    out = tmp_path / "eval"
    with LocalChatServer(make_scripted_policy_responder(env)) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        usr.die()  # first run: the customer is down, the episode fails by infrastructure
        args = eval_args(pol, usr, out, data_dir, tasks=(A,), trials=1)
        assert cli(args) == 3
        capsys.readouterr()
        with open(out / "results.jsonl", "ab") as f:  # a result line cut off by a kill
            f.write(b'{"task_id": "8", "trial": 0, "attempt": 2, "sta')
        usr.revive()
        rc = cli(args)
        stdout = capsys.readouterr().out
    assert rc == 0, stdout
    lines = (out / "results.jsonl").read_bytes().split(b"\n")
    assert lines[1].startswith(b'{"task_id": "8", "trial": 0, "attempt": 2, "sta') and lines[1].endswith(b"sta")
    latest = json.loads(lines[2])
    assert (latest["task_id"], latest["trial"], latest["status"], latest["attempt"]) == (A, 0, "scored", 2)
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] and summary["skipped_corrupt_result_lines"] == [f"{out}/results.jsonl:2"]
    assert f"skipped corrupt result lines: {out}/results.jsonl:2" in stdout
    with pytest.raises(json.JSONDecodeError):
        results(out)  # the corrupt line is still there, never silently dropped
