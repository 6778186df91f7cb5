"""Running benchmark cells as Ray tasks: a grid across the nodes of a Ray cluster, with no shared filesystem.

``zoo bench --executor ray`` hands each cell to :class:`RayExecutor`. The driver (the ``zoo bench`` process)
keeps everything the local executor does: the plan, the per-cell locks, the skip/resume decisions, ``runs.csv``
and the tables, all in its own output folder. Each cell becomes one Ray task whose resources come from the
recipe (``num_gpus=1`` for a GPU cell, ``num_cpus=threads`` for a CPU cell), so Ray places it on whichever node
has them free. The task (:func:`_run_cell_task`, in a Ray worker) writes the cell's ``cell.json`` into a
temporary folder of its own node and runs it exactly as the local executor does, in a ``python -m zoo
bench-cell`` subprocess (:func:`zoo.bench.cell.launch_cell`): a crash, a timeout, an OOM or a divergence is that
cell's record, never the worker's or the driver's. The worker then returns the cell's files as bytes (record,
per-image CSV, samples, log, and the weights the checkpoint policy keeps) and deletes its folder; the driver
writes them atomically into ``OUT/cells/<cell_id>/``, rewriting the worker's paths in the JSON files to its own.

Ray retries a task whose worker process or node died (``max_retries``, system failures only); a cell that fails
on its own returns a ``failed`` record and is not retried. A task lost after its retries is recorded as
``failed`` naming Ray's error. Killing the driver loses only the cells in flight (they wrote nothing into the
output folder); rerunning the command resumes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.bench.cell import base_record, launch_cell
from zoo.bench.grid import Cell
from zoo.bench.locks import LOCK_HEARTBEAT_S, CellLock
from zoo.bench.records import CellRecord, prune_checkpoints, read_json, read_record, write_record
from zoo.errors import OptionError
from zoo.fileio import atomic_write_bytes

__all__ = ["RayExecutor", "DEFAULT_MAX_RETRIES", "MAX_IN_FLIGHT", "INSTALL_HINT"]

log = logging.getLogger(__name__)
DEFAULT_MAX_RETRIES = 2  # retries of a task whose worker or node died (not of a cell that failed by itself)
MAX_IN_FLIGHT = 256  # cells submitted at once; Ray queues those its cluster has no resources for yet
INSTALL_HINT = "pip install 'segzoo[ray]'"
# environment the driver forwards to a cell: its thread count and zoo's own switches, never PATH or a venv,
# which belong to the node
_FORWARDED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_SENT_BACK = ("record.json", "per_image.csv", "samples.npz", "cell.log")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise OptionError(f"--executor ray needs Ray, which is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


# ----------------------------------------------------------------------------------------------------------------
# The worker side: one cell in a temporary folder of whichever node Ray chose


def _unpack(root: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        if root.resolve() not in path.resolve().parents:
            raise ValueError(f"refusing to write {name!r} outside {root}")
        atomic_write_bytes(path, data)


def _pack(directory: Path) -> dict[str, bytes]:
    """The files a recorded cell leaves that the driver keeps: everything but ``cell.json``, which it wrote."""
    files = {name: (directory / name).read_bytes() for name in _SENT_BACK if (directory / name).is_file()}
    run = directory / "run"
    if run.is_dir():
        for path in sorted(run.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                files[path.relative_to(directory).as_posix()] = path.read_bytes()
    return files


def _run_cell_task(spec: dict[str, Any], run_files: dict[str, bytes], *, resume: bool, timeout: float | None,
                   profile: str | None, env: dict[str, str], keep_checkpoints: str) -> dict[str, Any]:
    """Run one cell in its own subprocess on this node and return its files (the body of the Ray task).

    Nothing here knows the driver's output folder: the cell runs in a fresh temporary folder (``TMPDIR``),
    which is deleted once its files are read.
    """
    root = Path(tempfile.mkdtemp(prefix="zoo-cell-"))
    try:
        cell = Cell.from_json(spec)
        directory = root / cell.cell_id
        directory.mkdir()
        (directory / "cell.json").write_text(json.dumps({**spec, "profile": profile}))
        _unpack(directory, run_files)
        lock = CellLock(root / "unused.lock")  # never acquired: the driver holds the cell's real lock
        record = launch_cell(cell, directory, resume=resume, timeout=timeout, lock=lock, profile=profile,
                             env={**os.environ, **env})
        # pruned here, before shipping: --drop-weights sends no weights over the network at all
        prune_checkpoints(directory, keep_checkpoints, status=record.status)
        return {"directory": str(directory), "files": _pack(directory), "status": record.status}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# The driver side: submit, wait while keeping the lock alive, write what comes back


def _write_back(directory: Path, worker_dir: str, files: Mapping[str, bytes]) -> None:
    """Write a cell's returned files into its folder: JSON files with the worker's folder replaced by this one
    (a record's ``checkpoints`` must name files ``zoo eval`` can open here), the log appended to the earlier
    attempts' (as a local resume appends)."""
    theirs, ours = json.dumps(worker_dir)[1:-1], json.dumps(str(directory))[1:-1]
    for name, data in files.items():
        path = directory / name
        if name.endswith(".json"):
            data = data.decode("utf-8").replace(theirs, ours).encode("utf-8")
        elif name == "cell.log" and path.is_file():
            data = path.read_bytes() + data
        if directory.resolve() not in path.resolve().parents:
            raise ValueError(f"a Ray task returned {name!r}, outside the cell's folder")
        atomic_write_bytes(path, data)


def _run_files(directory: Path) -> dict[str, bytes]:
    """What a resumed cell needs of its earlier run: the whole ``run/`` folder (state, log, config)."""
    run = directory / "run"
    if not run.is_dir():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _lost_record(cell: Cell, profile: str | None, error: BaseException, retries: int) -> CellRecord:
    """The ``failed`` record of a task Ray could not bring back (its worker or node died every time)."""
    record = base_record(cell, profile=profile)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    record.update(status="failed", error=f"the Ray task running this cell was lost after {retries} retries "
                                         f"({type(error).__name__}: {first})")
    return record


class RayExecutor:
    """Run cells as Ray tasks (``zoo bench --executor ray``); a :class:`zoo.bench.runner.CellExecutor`.

    Args:
        address: the cluster to join: ``None`` starts a local Ray instance (unless this process already
            called ``ray.init``, whose cluster is used as it is), ``"auto"`` the cluster this node belongs to,
            ``"ray://HOST:10001"`` a remote one through Ray Client.
        max_retries: how often Ray reruns a cell whose worker process or node died.
        threads: CPU threads per cell, Ray's ``num_cpus`` of each task (default: ``--threads``, else the
            cores of the cluster's largest node: one cell per node at a time, as the local executor gives its
            one cell every core).
        init_options: more keyword arguments for ``ray.init`` (a ``runtime_env``, ``num_cpus`` of a local
            instance).

    Raises:
        OptionError: Ray is not installed.
    """

    def __init__(self, *, address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 threads: int | None = None, init_options: Mapping[str, Any] | None = None) -> None:
        self.ray = _import_ray()
        if max_retries < 0:
            raise OptionError(f"max_retries={max_retries} must be >= 0")
        self.address, self.max_retries, self.threads = address, max_retries, threads
        self.init_options = dict(init_options or {})
        self._started = False
        self._task: Any = None
        self._gpu = False

    def _start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
            if self.address is None and "_system_config" not in options:
                # Ray runs workers at nice 15 (the driver stays responsive); here the task *is* the work, and at
                # nice 15 a cell loses to every other process of a shared machine (on a loaded 2-core host its
                # timed inference ran 2-70x slower than the local executor's)
                options["_system_config"] = {"worker_niceness": 0}
            ray.init(address=self.address, **options)
            self._started = True
        elif self.address is not None:
            log.warning("Ray is already initialised in this process; using its cluster, not %s", self.address)
        self._task = ray.remote(_run_cell_task)
        log.info("Ray cluster: %s", ray.cluster_resources())

    def slots(self, devices: int, plan_device: str | None, *, environ: Mapping[str, str] | None,
              cells: int) -> list[dict[str, str]]:
        """One slot per cell in flight (Ray, not the slots, limits what runs at once); starts Ray."""
        if devices != 1:
            raise OptionError(f"--devices {devices} divides this machine; with --executor ray, Ray places "
                              f"cells on the cluster's resources: drop --devices")
        self._start()
        resources = self.ray.cluster_resources()
        device = str(plan_device or "auto")
        if device.startswith("cuda") and ":" in device:
            raise OptionError(f"--executor ray gives each cell one GPU, which the cell sees as cuda:0; pass "
                              f"--device cuda (not {device!r})")
        self._gpu = device.startswith("cuda") or (device == "auto" and resources.get("GPU", 0) > 0)
        given = (os.environ if environ is None else environ).get("OMP_NUM_THREADS")
        if self.threads is None:
            self.threads = int(given) if given else self._node_cores()
        return [{} for _ in range(max(1, min(cells, MAX_IN_FLIGHT)))]

    def _node_cores(self) -> int:
        cores = [int(n.get("Resources", {}).get("CPU", 0)) for n in self.ray.nodes() if n.get("Alive")]
        return max([c for c in cores if c > 0], default=1)

    def _options(self, cell: Cell) -> dict[str, Any]:
        # only Ray's system failures are retried: a cell that failed returns its record, it never raises
        options: dict[str, Any] = {"max_retries": self.max_retries, "retry_exceptions": False,
                                   "name": f"zoo-cell:{cell.cell_id}", "num_cpus": self.threads}
        if self._gpu:
            options["num_gpus"] = 1
        return options

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        threads = str(self.threads)
        forwarded = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        for key, value in (os.environ if env is None else env).items():
            if key in _FORWARDED or key.startswith("ZOO_"):
                forwarded[key] = value
        return forwarded

    def launch(self, cell: Cell, directory: Path, *, resume: bool, timeout: float | None, lock: CellLock,
               profile: str | None = None, env: Mapping[str, str] | None = None,
               keep_checkpoints: str = "best") -> CellRecord:
        """Run ``cell`` as a Ray task and write its files into ``directory``; returns its record.

        Same contract as :func:`zoo.bench.cell.launch_cell`: whatever happens to the cell or to the task, the
        folder ends with a record.
        """
        spec = read_json(directory / "cell.json") or cell.to_json()
        spec.pop("profile", None)
        ref = self._task.options(**self._options(cell)).remote(
            spec, _run_files(directory) if resume else {}, resume=resume, timeout=timeout, profile=profile,
            env=self._env(env), keep_checkpoints=keep_checkpoints)
        (directory / "record.json").unlink(missing_ok=True)
        try:
            result = self._wait(ref, lock)
        except self.ray.exceptions.RayError as exc:
            record = _lost_record(cell, profile, exc, self.max_retries)
            write_record(directory, record)
            return record
        _write_back(directory, result["directory"], result["files"])
        record = read_record(directory)
        if record is None:  # pragma: no cover - launch_cell always leaves one
            record = _lost_record(cell, profile, RuntimeError("the task returned no record.json"), 0)
            write_record(directory, record)
        return record

    def _wait(self, ref: Any, lock: CellLock) -> dict[str, Any]:
        """The task's result, refreshing the cell's lock meanwhile; an interrupt cancels the task."""
        try:
            while True:
                done, _ = self.ray.wait([ref], timeout=LOCK_HEARTBEAT_S)
                if done:
                    return self.ray.get(ref)
                lock.touch()
        except KeyboardInterrupt:
            self.ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        """Shut down the local Ray instance this executor started, or leave the cluster it joined (which keeps
        running); a Ray this process had initialised before is left as it is."""
        if self._started:
            self.ray.shutdown()
            self._started = False
