"""The supervised worker answers every request, whatever happens to the process doing the work,
and stops with everything under it when told to (issue #19, items 1, 5, 7, 10 and the request size,
through real processes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import EXAMPLES, TENTHIRTY_LEGPRESS, require_r

pytestmark = pytest.mark.subprocess

LM = {"analysis": "lm", "formula": "load ~ time * group", **TENTHIRTY_LEGPRESS}


def serve(lines: list[str], *args: str, faults: bool = True) -> list[dict]:
    env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1" if faults else "0"}
    proc = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve", *args], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_crash_hang_and_error_leave_the_worker_answering():
    good = json.dumps({"id": "ok", "spec": LM})
    answers = serve([
        good,
        json.dumps({"id": "crash", "fault": "crash", "spec": LM}),
        good,
        json.dumps({"id": "hang", "fault": "hang", "timeout": 2, "spec": LM}),
        good,
        json.dumps({"id": "raise", "fault": "raise", "spec": LM}),
        good,
    ])
    assert [a.get("id") for a in answers] == ["ok", "crash", "ok", "hang", "ok", "raise", "ok"]
    assert answers[1]["error"]["code"] == "crash"
    assert answers[3]["error"]["code"] == "timeout" and "2 s" in answers[3]["error"]["message"]
    assert answers[5]["error"]["code"] == "internal"
    fresh = answers[0]["tables"]
    assert all(a["tables"] == fresh for a in answers[2::2])


def test_faults_are_inert_without_the_test_switch():
    answers = serve([json.dumps({"id": 1, "fault": "crash", "spec": LM})], faults=False)
    assert answers[0]["id"] == 1 and "tables" in answers[0]


def serve_bytes(lines: list[bytes], *args: str) -> list[dict]:
    env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve", *args], input=b"\n".join(lines) + b"\n",
                          capture_output=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    return [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n")[:-1]]


GOOD = json.dumps({"id": "ok", "spec": LM}).encode()
BIG = json.dumps({"id": "big", "spec": {**LM, "data": {"records": [{"x": i} for i in range(2000)]}}}).encode()
#: (line, what its answer must show) for both modes; a good request follows each.
HOSTILE = [
    (json.dumps({"id": "n", "fault": "noise", "spec": LM}).encode(), lambda a: a["id"] == "n" and a["tables"]),
    (b'{"id": 3, "x": "\xff"}', lambda a: a["id"] == 3 and "not UTF-8" in a["error"]["message"]),
    (b'{"id": NaN, "spec": {}}', lambda a: "id" not in a and a["error"]["path"] == "/id"),
    (b"[" * 1000, lambda a: "id" not in a and "nested" in a["error"]["message"]),
    (b'{"id": 4, "timeout": 1' + b"0" * 400 + b', "spec": {}}',
     lambda a: a["id"] == 4 and a["error"]["path"] == "/timeout"),
    (BIG, lambda a: a["id"] == "big" and "longer than the limit of 10485 bytes" in a["error"]["message"]),
]


def check_hostile(answers: list[dict]) -> None:
    assert len(answers) == 2 * len(HOSTILE)
    for (line, expect), answer, after in zip(HOSTILE, answers[::2], answers[1::2]):
        assert expect(answer), (line[:80], answer)
        assert after["id"] == "ok" and after["tables"] == answers[1]["tables"]


@pytest.mark.subprocess
def test_hostile_lines_through_the_supervisor():
    """Also: a truncated answer is not forwarded; a JASP request past its limit keeps id and shape."""
    jasp = json.loads((EXAMPLES / "jasp" / "fhch2010-lmm.json").read_text())
    lines = [x for line, _ in HOSTILE for x in (line, GOOD)]
    lines += [json.dumps({"id": "cut", "fault": "truncate", "spec": LM}).encode(), GOOD,
              json.dumps({**jasp, "id": "j", "timeout": 0.05}).encode(), GOOD]
    answers = serve_bytes(lines, "--max-request-mb", "0.01")
    check_hostile(answers[:-4])
    assert answers[-4]["id"] == "cut" and answers[-4]["error"]["code"] == "crash"
    assert answers[-2]["id"] == "j" and answers[-2]["status"] == "error"
    assert answers[-2]["error"]["type"] == "fatalError" and "0.05 s" in answers[-2]["error"]["errorMessage"]
    assert answers[-3]["tables"] == answers[-1]["tables"] == answers[1]["tables"]


@pytest.mark.subprocess
def test_hostile_lines_unsupervised():
    check_hostile(serve_bytes([x for line, _ in HOSTILE for x in (line, GOOD)], "--max-request-mb", "0.01",
                              "--unsupervised"))


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = set(), [pid]
    while frontier:
        kids = parents.get(frontier.pop(), [])
        found.update(kids)
        frontier += kids
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.r
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_the_worker_and_r(sig):
    env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if sig == signal.SIGTERM:  # start R in the worker first
        require_r()
        proc.stdin.write((json.dumps({"id": 1, "spec": {**LM, "engine": "lme4"}}) + "\n").encode())
        proc.stdin.flush()
        assert "tables" in json.loads(proc.stdout.readline())
    proc.stdin.write((json.dumps({"id": 2, "fault": "hang", "spec": LM}) + "\n").encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while not descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    below = descendants(proc.pid)
    assert len(below) >= (2 if sig == signal.SIGTERM else 1), "the worker (and its R process)"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig
    deadline = time.monotonic() + 10
    while any(alive(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in below)


@pytest.mark.subprocess
def test_cli_piped_into_head_stops_quietly(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(LM))
    proc = subprocess.Popen([sys.executable, "-m", "mixedbridge.cli", "run", *[str(spec)] * 20, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=300) == 141
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_the_memory_of_the_worker_and_what_it_started_counts():
    """The supervisor's memory figure covers the worker's whole process tree (its R worker too)."""
    from mixedbridge.supervisor import _process_tree, _rss_kb

    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(80 * 2**20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while _rss_kb(child.pid) < 70 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        tree = _process_tree(os.getpid())
        assert child.pid in tree
        assert sum(_rss_kb(p) for p in tree) >= _rss_kb(os.getpid()) + 70 * 1024
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_a_request_past_the_memory_limit_is_stopped_while_it_runs():
    env = {**os.environ, "MIXEDBRIDGE_FAULTS": "1"}
    lines = [json.dumps({"id": "big", "fault": "grow", "spec": LM}), json.dumps({"id": "next", "spec": LM})]
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mixedbridge.cli", "serve", "--max-rss-mb", "700"],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=180, env=env)
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["big", "next"]
    assert answers[0]["error"]["code"] == "memory" and "700 MiB" in answers[0]["error"]["message"]
    assert "tables" in answers[1]
    assert time.monotonic() - t0 < 120  # stopped while growing, long before the 4 GiB it would take
