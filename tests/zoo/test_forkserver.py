"""zoo.bench.forkserver: cells forked from a warm server report their exit status, log to their file and die with
the server. The grid-level behaviour (killed, hung, failed, diverged cells) is in test_bench_cells.py, which runs
through the same server."""

from __future__ import annotations

import os
import signal
import time

import pytest

from zoo.bench.forkserver import CellServer, fork_available
from zoo.bench.runner import LocalExecutor

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs os.fork on Linux")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_forked_cell_reports_its_exit_status_and_writes_to_its_log(tmp_path):
    server = CellServer()
    try:
        log = tmp_path / "cell.log"
        cell = server.start(str(tmp_path / "nothing"), resume=False, profile=None,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, log=str(log))
        assert cell.pid != server.proc.pid and cell.wait(timeout=120) == 1
        assert "cell.json is missing or unreadable" in log.read_text()  # the child's traceback, in its own log
        assert server.serves({**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "1"})
        assert not server.serves({**os.environ, "ZOO_DISABLE_PLUGINS": "unet"})  # imports differ: another server
    finally:
        server.close()
    assert server.proc.returncode is not None


def test_a_cell_dies_with_its_server_and_is_reported_as_killed(tmp_path):
    folder = tmp_path / "cell"
    folder.mkdir()
    os.mkfifo(folder / "cell.json")  # reading it blocks until a writer comes: a hung cell
    server = CellServer()
    try:
        cell = server.start(str(folder), resume=False, profile=None, env=None, log=str(tmp_path / "cell.log"))
        assert os.getpgid(cell.pid) == cell.pid  # its own session and process group, as a Popen'd cell
        server.proc.kill()
        assert cell.wait(timeout=60) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while not _gone(cell.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(cell.pid)
        assert not server.serves(None)
    finally:
        server.close()


def test_zoo_bench_fork_0_starts_fresh_interpreters(monkeypatch):
    monkeypatch.setenv("ZOO_BENCH_FORK", "0")
    assert not fork_available() and not LocalExecutor().fork
    assert not LocalExecutor(fork=False).fork and LocalExecutor(fork=True).fork


def test_a_warm_executor_starts_its_server_before_any_cell_and_closes_it_without_waiting():
    executor = LocalExecutor(warm=True)
    (server,) = executor._idle  # started at construction, so its imports overlap the harness's planning
    assert server.serves(None) and not server._ready
    started = time.monotonic()
    executor.close()  # a server that never ran a cell is killed, not waited for (its warm-up takes seconds)
    assert time.monotonic() - started < 2 and server.proc.poll() is not None and executor._idle == []
    assert LocalExecutor()._idle == [] and LocalExecutor(fork=False, warm=True)._idle == []
