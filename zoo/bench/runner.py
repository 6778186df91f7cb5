"""Running a benchmark grid: every cell of a plan (or of one shard) in its own process, resumably.

:func:`run_benchmark` skips cells already recorded, resumes an interrupted one from its checkpoint, runs up to
``devices`` cells at a time, keeps ``runs.csv`` current after every cell, and renders the tables and plots once
at the end (``zoo.bench.report``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import queue
import shutil
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zoo.bench.cell import launch_cell
from zoo.bench.grid import BenchPlan, Cell, expand_grid, select_shard
from zoo.bench.locks import CellLock
from zoo.bench.records import (KEEP_CHECKPOINTS, CellRecord, cell_dir, prune_checkpoints, read_json, read_record,
                               read_records, write_json)
from zoo.bench.tables import BenchmarkRow, write_runs_csv
from zoo.errors import OptionError, check_choice
from zoo.fileio import output_dir

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["BenchSummary", "run_benchmark", "device_slots", "gpu_slots", "DEFAULT_RESULTS_DIR", "ProgressCallback",
           "CellExecutor", "LocalExecutor", "EXECUTORS", "make_executor"]

log = logging.getLogger(__name__)
DEFAULT_RESULTS_DIR = Path("results")
_RETRY_FRESH = ("failed", "diverged", "oom")  # rerun from scratch; a timeout resumes from its checkpoint
ProgressCallback = Callable[[int, int, Cell, "CellRecord | None"], None]


@dataclass
class BenchSummary:
    """What :func:`run_benchmark` did: the records of this shard's cells and the cells it could not run."""

    out: Path
    rows: list[BenchmarkRow] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # locked by another live process

    @property
    def ok(self) -> bool:
        """True when every cell of the shard has an ``ok`` record."""
        return not self.busy and all(row.status == "ok" for row in self.rows)


def _check_recipes(cells: Sequence[Cell], out: Path, force: bool) -> None:
    """Refuse to mix recipes, or runtimes (CPU vs GPU, bf16 vs fp16), in one output directory (the comparison
    would no longer be fair).

    A cell folder written before cells recorded their runtime is accepted when its recipe hashes the same and
    this host resolves to the CPU: no earlier zoo ran a benchmark cell on a GPU.
    """
    if force:
        return
    for cell in cells:
        saved = read_json(cell_dir(out, cell.cell_id) / "cell.json")
        if saved is None or saved.get("config_hash") == cell.config_hash:
            continue
        before = saved.get("runtime")
        if before is None and cell.runtime is not None and cell.runtime.get("device") == "cpu" and (
                saved.get("config_hash") == dataclasses.replace(cell, runtime=None).config_hash):
            continue
        now = cell.runtime or {}
        why = (f"it ran on {before.get('device')}/{before.get('precision')}, this host resolves "
               f"{now.get('device')}/{now.get('precision')}" if before and before != now else
               f"config hash {saved.get('config_hash')} vs {cell.config_hash}")
        raise OptionError(
            f"{out} already holds cell {cell.cell_id!r} with a different recipe ({why}); use another --out, or "
            f"--force to redo it"
        )


def _clear_outputs(directory: Path, *, keep_run: bool) -> None:
    for name in ("record.json", "per_image.csv", "samples.npz"):
        (directory / name).unlink(missing_ok=True)
    if not keep_run:
        shutil.rmtree(directory / "run", ignore_errors=True)


def gpu_slots(devices: int, visible: str | None, count: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` of each of ``devices`` slots: one of this process's own GPUs each.

    Args:
        devices: slots wanted.
        visible: this process's ``CUDA_VISIBLE_DEVICES`` (``None``: unset, every GPU is visible). Its entries
            (indices, ``GPU-<uuid>`` or ``MIG-<uuid>``) are passed on as written, so a job given GPUs ``2,3``
            (as SLURM does) runs its slots on 2 and 3, never on 0 and 1, which belong to other jobs.
        count: the GPUs torch sees (already through the mask; CUDA ignores the entries after an invalid one).

    Raises:
        OptionError: fewer GPUs than ``devices``.
    """
    ids = [str(i) for i in range(count)] if visible is None else [t.strip() for t in visible.split(",")][:count]
    if len(ids) < devices:
        seen = "" if visible is None else f" (CUDA_VISIBLE_DEVICES={visible!r})"
        raise OptionError(f"--devices {devices} runs one cell per GPU, but only {len(ids)} CUDA GPU(s) are "
                          f"visible{seen}; use --devices {max(1, len(ids))}, or --device cpu to split the CPU")
    return ids[:devices]


def device_slots(devices: int, plan_device: str | None, *,
                 environ: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The environment of each of ``devices`` concurrent cell slots.

    On the CPU (a plan pinned to ``cpu``/``mps``, or ``auto`` on a host without CUDA GPUs) the slots share the
    cores, each with ``cores // devices`` threads. With CUDA (``cuda``, or ``auto`` on a host with GPUs) slot
    ``i`` sees only the ``i``-th of this process's GPUs (:func:`gpu_slots`); fewer GPUs than ``devices`` is an
    error, never a silent fallback, and so is a plan pinned to one GPU (``cuda:1``): each slot's GPU is
    ``cuda`` (``cuda:0``) inside its cell. ``environ`` is the cells' environment (default this process's),
    whose ``CUDA_VISIBLE_DEVICES`` the slots divide.
    """
    if devices < 1:
        raise OptionError(f"--devices {devices} must be >= 1")
    if devices == 1:
        return [{}]
    device = str(plan_device or "auto")
    if not device.startswith(("cpu", "mps")):
        import torch

        count = torch.cuda.device_count()
        if device.startswith("cuda") and ":" in device:
            raise OptionError(f"--devices {devices} gives each cell its own GPU, which the cell sees as cuda:0; "
                              f"pass --device cuda (not {device!r}) and choose GPUs with CUDA_VISIBLE_DEVICES")
        if count or device.startswith("cuda"):
            ids = gpu_slots(devices, (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES"), count)
            return [{"CUDA_VISIBLE_DEVICES": i} for i in ids]
    threads = str(max(1, (os.cpu_count() or 1) // devices))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(devices)]


class CellExecutor(Protocol):
    """Where a grid's cells run. The runner keeps the folder, locks, resume and tables; an executor only runs
    cells: ``launch`` has :func:`zoo.bench.cell.launch_cell`'s contract (the cell's folder ends with its
    record, whatever happens) and ``slots`` gives the environment of each cell it runs at once."""

    def slots(self, devices: int, plan_device: str | None, *, environ: Mapping[str, str] | None,
              cells: int) -> list[dict[str, str]]: ...

    def launch(self, cell: Cell, directory: Path, *, resume: bool, timeout: float | None, lock: CellLock,
               profile: str | None = None, env: Mapping[str, str] | None = None,
               keep_checkpoints: str = "best") -> CellRecord: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Cells as child processes of this process (``--executor local``, the default): ``devices`` at a time.

    Each cell is forked from a warm server (``zoo.bench.forkserver``: torch, plugins and registry imported once
    per slot, not once per cell) where the platform allows, else started as ``python -m zoo bench-cell``;
    ``fork=False`` (or ``ZOO_BENCH_FORK=0``) always starts a fresh interpreter. Records do not depend on it.
    ``warm=True`` starts one server for this process's environment now, so that its imports (about 2.5 s on a
    2-core CPU) overlap the harness's planning instead of delaying the first cell.
    """

    def __init__(self, *, fork: bool | None = None, warm: bool = False) -> None:
        from zoo.bench.forkserver import fork_available

        self.fork = fork_available() if fork is None else fork
        self._idle: list[Any] = []  # servers not running a cell now
        self._guard = threading.Lock()
        if warm and self.fork:
            server = self._server(None)
            if server is not None:
                self._idle.append(server)

    def slots(self, devices: int, plan_device: str | None, *, environ: Mapping[str, str] | None,
              cells: int) -> list[dict[str, str]]:
        return device_slots(devices, plan_device, environ=environ)

    def _server(self, env: Mapping[str, str] | None) -> Any:
        """An idle server for ``env``'s cells, started if none is (``None``: start a fresh interpreter)."""
        from zoo.bench.forkserver import CellServer

        if not self.fork:
            return None
        with self._guard:
            for server in self._idle:
                if server.serves(env):
                    self._idle.remove(server)
                    return server
        try:
            return CellServer(env)
        except OSError as exc:  # e.g. no memory for another process: the cell starts the usual way
            log.warning("could not start the cell fork server (%s); starting cells as new processes", exc)
            return None

    def launch(self, cell: Cell, directory: Path, *, resume: bool, timeout: float | None, lock: CellLock,
               profile: str | None = None, env: Mapping[str, str] | None = None,
               keep_checkpoints: str = "best") -> CellRecord:
        server = self._server(env)
        try:
            return launch_cell(cell, directory, resume=resume, timeout=timeout, lock=lock, profile=profile,
                               env=env, server=server)
        finally:
            if server is not None:
                with self._guard:
                    self._idle.append(server)

    def close(self) -> None:
        with self._guard:
            servers, self._idle = self._idle, []
        for server in servers:
            server.close()


EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", *, address: str | None = None, threads: int | None = None,
                  warm: bool = False) -> CellExecutor:
    """The executor ``zoo bench --executor NAME [--ray-address ADDR]`` asks for (``warm``: see
    :class:`LocalExecutor`).

    Raises:
        UnknownNameError: an unknown name. OptionError: an address without ``ray``, or Ray not installed.
    """
    check_choice("executor", name, EXECUTORS)
    if name == "local":
        if address is not None:
            raise OptionError(f"--ray-address {address} needs --executor ray")
        return LocalExecutor(warm=warm)
    from zoo.bench.ray_executor import RayExecutor

    return RayExecutor(address=address, threads=threads)


@dataclass
class _GridRun:
    """The state one :func:`run_benchmark` call shares between its worker threads."""

    plan: BenchPlan
    out: Path
    total: int
    rerun_failed: bool
    force: bool
    keep_checkpoints: str
    env: Mapping[str, str] | None
    on_cell: ProgressCallback | None
    slots: queue.Queue[dict[str, str]]
    summary: BenchSummary
    known: dict[str, CellRecord]  # every record in ``out``: read once, updated after each cell, -> runs.csv
    executor: CellExecutor
    results: dict[int, BenchmarkRow] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def finished(self, record: CellRecord | None) -> bool:
        return record is not None and not self.force and (record.status == "ok" or not self.rerun_failed)

    def skip(self, index: int, record: CellRecord) -> None:
        with self.guard:
            self.summary.skipped.append(record.cell_id)
            self.results[index] = BenchmarkRow.from_record(record)

    def run_one(self, index: int, cell: Cell) -> None:
        directory = cell_dir(self.out, cell.cell_id)
        record = read_record(directory)
        if self.finished(record):
            return self.skip(index, record)  # type: ignore[arg-type]
        lock = CellLock(self.out / "cells" / f"{cell.cell_id}.lock")
        if not lock.acquire():
            log.warning("cell %s is being run by another process (%s); leaving it", cell.cell_id, lock.holder())
            with self.guard:
                self.summary.busy.append(cell.cell_id)
            return None
        slot = self.slots.get()
        try:
            record = read_record(directory)  # another process may have finished it meanwhile
            if self.finished(record):
                return self.skip(index, record)  # type: ignore[arg-type]
            record = self._launch(index, cell, directory, record, lock, slot)
        finally:
            self.slots.put(slot)
            lock.release()
        self._done(index, cell, record)
        return None

    def _launch(self, index: int, cell: Cell, directory: Path, previous: CellRecord | None, lock: CellLock,
                slot: dict[str, str]) -> CellRecord:
        if self.env is not None and "OMP_NUM_THREADS" in self.env:  # an explicit --threads wins over the split
            slot = {k: v for k, v in slot.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        fresh = self.force or (previous is not None and previous.status in _RETRY_FRESH)
        _clear_outputs(directory, keep_run=not fresh)
        resume = (directory / "run").is_dir()
        write_json(directory / "cell.json", {**cell.to_json(), "profile": self.plan.profile})
        if self.on_cell is not None:
            with self.guard:
                self.on_cell(index, self.total, cell, None)
        env = {**(self.env if self.env is not None else os.environ), **slot} if slot or self.env is not None else None
        record = self.executor.launch(cell, directory, resume=resume, timeout=self.plan.cell_timeout, lock=lock,
                                      profile=self.plan.profile, env=env, keep_checkpoints=self.keep_checkpoints)
        # only now, with the record safely written: before it, the state is what resumes an interrupted cell
        prune_checkpoints(directory, self.keep_checkpoints, status=record.status)
        return record

    def _done(self, index: int, cell: Cell, record: CellRecord) -> None:
        with self.guard:
            self.summary.ran.append(cell.cell_id)
            self.results[index] = BenchmarkRow.from_record(record)
            if self.on_cell is not None:
                self.on_cell(index, self.total, cell, record)
            record.directory = cell_dir(self.out, cell.cell_id)
            self.known[cell.cell_id] = record
            write_runs_csv([self.known[k] for k in sorted(self.known)], self.out / "runs.csv")


def _invocations(out: Path, command: Sequence[str] | None, shard: tuple[int, int] | None) -> list[dict[str, Any]]:
    """``plan.json``'s earlier invocations plus this one (the page's header shows them)."""
    earlier = (read_json(out / "plan.json") or {}).get("invocations") or []
    return [*earlier, {"command": list(command) if command else None, "host": socket.gethostname(),
                       "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "shard": f"{shard[0]}/{shard[1]}" if shard else None}]


def _check_settings(cells: Sequence[Cell]) -> None:
    """Every cell's recipe is a valid ``TrainConfig``: a bad flag (``--lr -1``) fails the command in one line
    before anything is written, not each cell in its own process."""
    from zoo.training import TrainConfig

    for cell in cells:
        TrainConfig.from_dict(cell.config)


def run_benchmark(plan: BenchPlan, out: str | Path, *, shard: tuple[int, int] | None = None,
                  rerun_failed: bool = False, force: bool = False, registries: Registries | None = None,
                  env: Mapping[str, str] | None = None, render: bool = True, devices: int = 1,
                  keep_checkpoints: str = "best", on_cell: ProgressCallback | None = None,
                  command: Sequence[str] | None = None, executor: CellExecutor | None = None) -> BenchSummary:
    """Run every cell of ``plan`` (or of one shard) that has no record yet, each in its own process.

    Args:
        plan: what to run; its cells are the ones :func:`~zoo.bench.grid.make_plan` expanded (expanded here only
            for a plan built by hand).
        out: the output directory (created).
        shard: ``(I, N)``: run only every N-th cell starting at the I-th (1-based).
        rerun_failed: also rerun cells recorded as failed, diverged, oom or timeout.
        force: rerun every cell from scratch (and accept a changed recipe).
        env: environment for the cell processes (default: this process's).
        render: regenerate all tables and plots at the end (``runs.csv`` is rewritten after every cell).
        devices: run this many cells at a time, one per local GPU or, on the CPU, each on its share of the
            cores (:func:`device_slots`). Records do not depend on it: it only changes the wall time.
        keep_checkpoints: what each cell run now keeps of its checkpoints once it is recorded: ``"best"``
            (default) the selected weights only (``run/best.safetensors``, for ``zoo eval``/``zoo predict``),
            ``"all"`` also the resumable training state (``run/last.*``), ``"none"`` no weights at all. A cell
            recorded as ``timeout`` keeps its state either way, so ``rerun_failed`` continues it
            (:func:`zoo.bench.records.prune_checkpoints`). Cells skipped as already recorded are not touched.
        on_cell: progress callback ``(index, total, cell, record or None)``, called before (None) and after.
        command: the command line that asked for this run (``zoo bench`` passes its own); each run into ``out``
            adds it, with host, time and shard, to ``plan.json``'s ``invocations``.
        executor: where the cells run (default :class:`LocalExecutor`; :func:`make_executor`); closed at the
            end. Records do not depend on it.

    Returns:
        A :class:`BenchSummary`; ``summary.ok`` is the exit status of ``zoo bench``.
    """
    check_choice("checkpoint policy", keep_checkpoints, KEEP_CHECKPOINTS)
    cells = select_shard(plan.cells or expand_grid(plan, registries=registries), shard)
    _check_settings(cells)
    out = output_dir(out, owned=("plan.json", "cells", "runs.csv"))
    _check_recipes(cells, out, force)
    write_json(out / "plan.json", {**plan.describe(), "invocations": _invocations(out, command, shard)})
    executor = executor or LocalExecutor()
    try:
        slots: queue.Queue[dict[str, str]] = queue.Queue()
        for slot in executor.slots(devices, plan.train.get("device"), environ=env, cells=len(cells)):
            slots.put(slot)
        grid = _GridRun(plan=plan, out=out, total=len(cells), rerun_failed=rerun_failed, force=force,
                        keep_checkpoints=keep_checkpoints, env=env, on_cell=on_cell, slots=slots,
                        summary=BenchSummary(out=out), known={r.cell_id: r for r in read_records([out])},
                        executor=executor)
        if slots.qsize() == 1:
            for index, cell in enumerate(cells, 1):
                grid.run_one(index, cell)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=slots.qsize()) as pool:
                for future in [pool.submit(grid.run_one, index, cell) for index, cell in enumerate(cells, 1)]:
                    future.result()
    finally:
        executor.close()
    grid.summary.rows = [grid.results[i] for i in sorted(grid.results)]
    if render:
        _render(out, baseline=plan.models[0] if plan.models else None)
    return grid.summary


def _render(out: Path, *, baseline: str | None) -> None:
    """The tables and plots of ``out``; a failure here is one error line, never the command's end: every record
    is already on disk, and ``zoo leaderboard OUT`` renders them again."""
    from zoo.bench import report

    try:
        report.write_leaderboard([out], out, baseline=baseline)
    except Exception as exc:  # the records are the results; a table bug must not hide them
        log.error("the tables of %s were not written (%s: %s); the cell records are complete: fix and run "
                  "`zoo leaderboard %s`", out, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", out)
