"""Per-cell locks: one process runs a cell at a time, also across hosts sharing an output folder."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from zoo.bench.records import read_json

__all__ = ["CellLock", "LOCK_HEARTBEAT_S", "LOCK_STALE_S"]

log = logging.getLogger(__name__)
LOCK_HEARTBEAT_S = 30.0
LOCK_STALE_S = 600.0  # a lock from another host whose heartbeat is this old is abandoned


class CellLock:
    """An exclusive lock on one cell: a ``<cell_id>.lock`` file created with ``O_CREAT | O_EXCL``.

    The file names the holder (host, pid) and its modification time is a heartbeat (:meth:`touch`). A lock is
    stale, and taken over, when its holder is a dead process on this host, or when its heartbeat is older than
    ``LOCK_STALE_S`` (a holder on another host sharing the folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False

    def holder(self) -> dict[str, Any] | None:
        return read_json(self.path)

    def _stale(self) -> bool:
        info = self.holder()
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if info is None:  # being written right now, or garbage
            return age > 5.0
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError, KeyError, TypeError):
                return False
            return False
        return age > LOCK_STALE_S

    def acquire(self) -> bool:
        """Take the lock; ``False`` when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale():
                    return False
                log.warning("removing stale lock %s (holder %s)", self.path, self.holder())
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, f)
            self.held = True
            return True
        return False

    def touch(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
