"""A warm parent for benchmark cells: one process pays ``import torch``, the plugins and the registry once, and
each cell runs in a process forked from it.

A cell in a fresh interpreter (``python -m zoo bench-cell``) spends seconds starting Python, importing torch and
the plugins and building the registry before it trains; on a grid of short cells that is a large part of the
wall time (issue 21). :class:`CellServer` starts ``python -m zoo.bench.forkserver`` once per cell slot. The
server imports what a cell needs and builds the registry *without running any torch computation*, so no
OpenMP or intra-op thread pool exists when it forks. For each request it forks a child that starts a new session,
asks Linux to SIGKILL it when the server dies (the server dies with the harness the same way), applies the cell's
environment and thread count, sends its output to ``cell.log``, runs :func:`zoo.bench.cell.execute_cell` and
leaves with ``os._exit``. The server reports the child's pid, then its exit status (``-SIGNAL`` when killed,
as ``subprocess.Popen.returncode`` says), so :func:`zoo.bench.cell.launch_cell` keeps one timeout, heartbeat and
record-from-exit-status logic for both ways of starting a cell.

Isolation is what it was: each cell is its own process and session, a crash, ``SIGKILL``, OOM or hang takes
down only that process, and the harness kills a hung cell's whole process group. The server runs one cell at a
time; the harness keeps one server per concurrent slot. ``ZOO_BENCH_FORK=0`` (or a platform without
``os.fork``) starts every cell as a fresh interpreter instead.

Protocol (one JSON object per line): the server says ``{"ready": pid}``; a request ``{"directory", "resume",
"profile", "env", "log"}`` is answered with ``{"pid": N}`` and, once the child is gone, ``{"returncode": N}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

__all__ = ["CellServer", "ForkedCell", "ServerGone", "fork_available", "SLOT_VARIABLES"]

#: what differs between the concurrent slots of one grid; the child applies these, the rest must match the server's
SLOT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


def fork_available() -> bool:
    """Whether cells may be forked from a warm server (Linux with ``os.fork``, not turned off by
    ``ZOO_BENCH_FORK=0``)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux") and os.environ.get("ZOO_BENCH_FORK", "1") != "0"


class ServerGone(RuntimeError):
    """The fork server exited (killed, or it failed to import what a cell needs)."""


def _base(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in SLOT_VARIABLES}


class ForkedCell:
    """A cell process forked by a :class:`CellServer`: ``pid``, ``wait(timeout)`` and ``returncode`` as a
    ``subprocess.Popen`` has them (``wait`` raises ``subprocess.TimeoutExpired``)."""

    def __init__(self, server: CellServer, pid: int) -> None:
        self.server, self.pid, self.returncode = server, pid, None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                reply = self.server.read(timeout)
            except ServerGone:  # the child got SIGKILL with it (PR_SET_PDEATHSIG); make sure, and say so
                self.kill()
                self.returncode = -signal.SIGKILL
                return self.returncode
            if reply is None:
                raise subprocess.TimeoutExpired(f"cell {self.pid}", timeout or 0.0)
            self.returncode = int(reply["returncode"])
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class CellServer:
    """The harness's end of one fork server, started on first use with the cells' environment.

    Args:
        env: the environment of the cells it will run (``None``: this process's). Cells whose environment
            differs in anything but :data:`SLOT_VARIABLES` need another server (:meth:`serves`).
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        from zoo.bench.cell import _die_with_parent

        self.env = dict(os.environ if env is None else env)
        self.proc = subprocess.Popen([sys.executable, "-m", "zoo.bench.forkserver"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=None, env=self.env,
                                     preexec_fn=_die_with_parent)
        self._buffer = b""
        self._ready = False

    def serves(self, env: Mapping[str, str] | None) -> bool:
        """Whether a cell with environment ``env`` can be forked from this server (and it is alive)."""
        return self.proc.poll() is None and _base(os.environ if env is None else env) == _base(self.env)

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The server's next message, or ``None`` after ``timeout`` seconds."""
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ServerGone(f"the cell fork server (pid {self.proc.pid}) exited with "
                                 f"status {self.proc.wait()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, directory: str, *, resume: bool, profile: str | None, env: Mapping[str, str] | None,
              log: str) -> ForkedCell:
        """Fork the cell in ``directory``; its output is appended to ``log``."""
        if not self._ready:
            self.read(None)  # {"ready": pid}: imports and registry done
            self._ready = True
        request = {"directory": directory, "resume": resume, "profile": profile, "log": log,
                   "env": dict(os.environ if env is None else env)}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return ForkedCell(self, int(self.read(None)["pid"]))  # type: ignore[index]

    def close(self) -> None:
        """Stop the server (its stdin closes; a server stuck anyway, or still warming up, is killed)."""
        if not self._ready:  # never served a cell (e.g. the plan failed or every cell was recorded): no waiting
            self.proc.kill()
            self.proc.wait()
            return
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ----------------------------------------------------------------------------------------------------------------
# The server process


def _warm() -> None:
    """Import what a cell imports (also what it imports lazily) and build the registry, running no torch
    computation, so no OpenMP or intra-op thread pool exists when a cell is forked."""
    import torch
    import torchvision.transforms.v2  # zoo.data.transforms imports these on first use
    import tqdm.auto  # noqa: F401
    from torchvision import tv_tensors  # noqa: F401

    import zoo.bench.cell  # noqa: F401
    import zoo.training  # noqa: F401
    from zoo import allocator, budget, checkpoint, costs, memory, registry, scoring  # noqa: F401
    from zoo.data import make_loader  # noqa: F401

    # the first call imports torch's symbolic-shape stack (about 2 s); the setting itself is left as it was
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled(),
                                       warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
    registry.default_registry()


def _child(request: Mapping[str, Any], started: int) -> None:  # pragma: no cover - runs in the fork
    """The forked cell: its own session, dies with the server, the cell's environment, output to ``cell.log``
    (fds 0-2 are replaced, so the server's pipes stay the server's). Closing ``started`` tells the server that
    the session exists, so the harness can kill the cell's whole group as soon as it knows the pid."""
    import torch

    from zoo.bench.cell import _die_with_parent, execute_cell

    code = 1
    try:
        _die_with_parent()
        os.close(started)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        threads = os.environ.get("OMP_NUM_THREADS")
        torch.set_num_threads(int(threads) if threads else _DEFAULT_THREADS)
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        code = execute_cell(request["directory"], resume=bool(request["resume"]), profile=request["profile"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_DEFAULT_THREADS = 1


def _reply(out: IO[bytes], message: Mapping[str, Any]) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def main() -> None:  # pragma: no cover - a subprocess (tests/zoo/test_forkserver.py runs it)
    """Serve fork requests on stdin until it closes."""
    global _DEFAULT_THREADS
    import logging

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness handles Ctrl-C and kills the cells
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("zoo: %(levelname)s: %(message)s"))
    logging.getLogger("zoo").addHandler(handler)
    logging.getLogger("zoo").setLevel(logging.INFO)
    _warm()
    _DEFAULT_THREADS = torch.get_num_threads()  # read before any cell's environment changes it
    requests, out = sys.stdin.buffer, sys.stdout.buffer
    _reply(out, {"ready": os.getpid()})
    for line in requests:
        request = json.loads(line)
        ready, started = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready)
            _child(request, started)
        os.close(started)
        os.read(ready, 1)  # EOF once the child has its session (or has died)
        os.close(ready)
        _reply(out, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _reply(out, {"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
