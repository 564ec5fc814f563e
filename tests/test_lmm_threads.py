"""BLAS threads of a fit: the present load of the machine, read from the kernel's count of
runnable threads less this process's own (:func:`mixedbridge.lmm.threads.others_running`)."""
from __future__ import annotations

import os

import pytest

from mixedbridge.lmm import api, threads


def _fake_proc(tmp, runnable: int, own_states: list[str]):
    loadavg = tmp / "loadavg"
    loadavg.write_text(f"3.10 2.50 1.20 {runnable}/412 98765\n")
    tasks = tmp / "task"
    for i, state in enumerate(own_states):
        (tasks / str(100 + i)).mkdir(parents=True)
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (py thread) {state} 1 2 3 4\n")
    tasks.mkdir(exist_ok=True)
    return loadavg, tasks


def test_others_running_is_the_runnable_count_less_our_own(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "SAMPLE_GAP_S", 0.0)
    loadavg, tasks = _fake_proc(tmp_path, 3, ["R", "S", "R"])
    assert threads.others_running(loadavg, tasks) == 1.0  # 3 runnable, 2 of them ours


def test_a_past_load_average_is_not_a_present_load(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "SAMPLE_GAP_S", 0.0)
    loadavg, tasks = _fake_proc(tmp_path, 1, ["R", "S"])  # load average 3.1, but only we run now
    assert threads.others_running(loadavg, tasks) == 0.0


def test_without_proc_files_the_load_average_is_used(tmp_path, monkeypatch):
    if not hasattr(os, "getloadavg"):
        pytest.skip("no load average on this system")
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 1.0, 1.0))
    assert threads.others_running(tmp_path / "none", tmp_path / "none") == 1.5


def test_auto_threads_follows_the_present_load(monkeypatch):
    monkeypatch.setattr(api, "usable_cpus", lambda: 2)
    monkeypatch.setattr(api, "others_running", lambda: 0.0)
    assert api.auto_threads(1156) is None  # a large fill-in, a core idle: the library's threads
    assert api.auto_threads(100) == 1  # a small one: always one
    monkeypatch.setattr(api, "others_running", lambda: 1.0)
    assert api.auto_threads(1156) == 1
