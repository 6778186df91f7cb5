"""Running one benchmark cell in its own process, and measuring what training alone does not.

The parent (:func:`launch_cell`) forks the cell from a warm server (``zoo.bench.forkserver``) or starts
``python -m zoo bench-cell CELL_DIR``, either way in a fresh session, waits for it with a timeout while
refreshing the cell's lock, and kills its whole process group on timeout. The child
(:func:`execute_cell`) trains through ``zoo.training.run``, then measures inference speed, peak memory and
GMACs, saves a few test predictions, and writes ``per_image.csv`` and finally ``record.json``. Whatever happens to
the child (an exception, a NaN divergence, an OOM, a hang, ``os._exit`` or ``SIGKILL``) the parent ends up with a
record: the child's own, or one it writes from the exit status and the tail of ``cell.log``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import zoo
from zoo.bench.grid import Cell
from zoo.bench.locks import LOCK_HEARTBEAT_S, CellLock
from zoo.bench.records import CellRecord, read_json, read_record, write_record
from zoo.fileio import atomic_write_bytes, atomic_write_text

__all__ = ["execute_cell", "launch_cell", "base_record", "measure_inference", "N_SAMPLES"]

log = logging.getLogger(__name__)
N_SAMPLES = 4  # test images kept per cell for the qualitative plot
WARMUP = 3
_PR_SET_PDEATHSIG = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {"zoo_version": zoo.__version__, "python_version": platform.python_version()}
    try:
        import torch

        out["torch_version"] = torch.__version__
        out["cuda_version"] = torch.version.cuda
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:  # the distribution's metadata: importing torchvision costs seconds in the harness process
        from importlib.metadata import version

        out["torchvision_version"] = version("torchvision")
    except Exception:  # pragma: no cover - not installed
        pass
    return out


def base_record(cell: Cell, *, profile: str | None = None) -> CellRecord:
    """The identity and provenance fields every record carries, whatever its status."""
    config = dict(cell.config)
    return CellRecord(
        cell_id=cell.cell_id, dataset=cell.dataset, model=cell.model, variant=cell.variant, seed=cell.seed,
        status="failed", axes=dict(cell.axes), batch_size=config.get("batch_size"),
        image_size=config.get("image_size"), epochs=config.get("epochs"), profile=profile,
        config_hash=cell.config_hash, config=config, host=socket.gethostname(), started_at=_now(), **_versions(),
        plan=None if cell.plan is None else dict(cell.plan),
    )


# ----------------------------------------------------------------------------------------------------------------
# The child: train, measure, record


def measure_inference(model: Any, precision: Any, *, in_channels: int, image_size: int | tuple[int, int],
                      batch_size: int, repeats: int, warmup: int = WARMUP) -> dict[str, float]:
    """Median forward time of ``model`` on random ``image_size`` images (a side or ``(h, w)``), after ``warmup``
    untimed passes.

    Returns images per second at ``batch_size`` and the latency of a single image in milliseconds. On CUDA the
    model's device (``precision.device``, not the current one) is synchronised inside the timed region, so the
    numbers include the kernels, not just their launch.
    """
    import functools

    import torch

    from zoo.memory import synchronize

    model.eval()
    sync = functools.partial(synchronize, precision.device)
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size

    def median_seconds(n: int) -> float:
        x = precision.tensor(torch.rand(n, in_channels, h, w))
        times = []
        with torch.inference_mode(), precision.autocast():
            for i in range(warmup + repeats):
                sync()
                started = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times.append(time.perf_counter() - started)
        times.sort()
        return times[len(times) // 2]

    batch_s = median_seconds(batch_size)
    single_s = median_seconds(1)
    return {"infer_images_per_s": batch_size / batch_s, "infer_latency_ms": single_s * 1000.0,
            "infer_batch_size": batch_size}


def _dataset_facts(dataset: Any) -> dict[str, Any]:
    from zoo.bench.grid import config_hash

    fingerprint = getattr(dataset, "fingerprint", None)
    if callable(fingerprint):
        value = fingerprint()
    else:  # a third-party dataset without one: hash the split assignment
        value = config_hash({s: list(dataset.split(s).ids) for s in ("train", "val", "test")})
    return {"dataset_fingerprint": value, "split_source": getattr(dataset, "split_source", None),
            "class_names": list(dataset.class_names)}


def _save_samples(path: Path, model: Any, precision: Any, split: Any, config: Any, meta: Any) -> None:
    """The first ``N_SAMPLES`` test images (scaled to uint8 for display), masks and predictions, predicted as
    the cell was scored (``zoo.training.parts.predict_settings``)."""
    import numpy as np
    import torch

    from zoo.data import make_loader
    from zoo.scoring import predict_scaled
    from zoo.inference import logits_to_classes
    from zoo.training.parts import predict_settings

    native = config.eval_image_size in ("native", "upsampled")
    size = None if native else (config.image_size if config.eval_image_size is None else int(config.eval_image_size))
    settings = predict_settings(meta, tiled=bool(config.tiled and config.eval_image_size == "native"))
    loader = make_loader(split, train=False, batch_size=1, image_size=size)
    arrays: dict[str, Any] = {"ids": np.array(list(split.ids)[:N_SAMPLES])}
    model.eval()
    with torch.inference_mode():
        for i, (image, mask) in enumerate(loader):
            if i >= N_SAMPLES:
                break
            x = precision.tensor(image)
            with precision.autocast():
                logits = predict_scaled(model, x, **settings) if native else predict_scaled(model, x)
            pred = logits_to_classes(logits)[0].cpu().numpy().astype(np.int16)
            img = image[0]
            lo, hi = float(img.min()), float(img.max())
            arrays[f"image_{i}"] = ((img - lo) / (hi - lo + 1e-8) * 255).round().byte().numpy()
            arrays[f"mask_{i}"] = mask[0].numpy().astype(np.int16)
            arrays[f"pred_{i}"] = pred
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _deployed_speed(checkpoint: str, directory: Path, *, size: tuple[int, int], batch_size: int | None,
                    repeats: int, reg: Any) -> dict[str, Any]:
    """The cell's model exported to ONNX and timed in ONNX Runtime as the eager columns are (``zoo.export``);
    a model that does not export, or a missing ``onnx`` extra, is one line in ``ort_error`` and the cell stays ok.
    The file is not kept (``zoo export`` makes it again from the kept weights)."""
    from zoo.errors import ZooError
    from zoo.export import deployed_speed

    out = directory / "model.onnx"
    try:
        speed = deployed_speed(checkpoint, out, image_size=size, batch_size=batch_size or 1, repeats=repeats,
                               registries=reg)
        return {"ort_images_per_s": speed["ort_images_per_s"], "ort_latency_ms": speed["ort_latency_ms"]}
    except (ZooError, ImportError) as exc:
        return {"ort_error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    finally:
        out.unlink(missing_ok=True)


def _train_size(config: Any) -> tuple[int, int]:
    """The ``(h, w)`` of the training inputs: a planned cell's patch, else the ``image_size`` square."""
    patch = getattr(config, "patch_size", None)
    if patch is None:
        return config.image_size, config.image_size
    return (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))


def _write_per_image(path: Path, rows: list[tuple[str, str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("image_id", "metric", "value"))
    writer.writerows((image_id, metric, repr(float(value))) for image_id, metric, value in rows)
    atomic_write_text(path, buffer.getvalue())


def _record_result(record: CellRecord, result: Any, config: Any, reg: Any) -> None:
    """What the training run says: status, progress, device and precision, test metrics, checkpoints."""
    import torch

    from zoo.allocator import detect_allocator
    from zoo.memory import peak_memory_mb

    flags = dict(result.precision)
    record.update(
        status=result.status, error=result.error, epochs_done=result.epochs_done, steps_done=result.steps_done,
        train_seconds=result.train_seconds, best_epoch=result.best_epoch, n_parameters=result.n_parameters,
        batch_size=result.batch_size_used or config.batch_size, world_size=result.world_size,
        device=result.device, device_name=result.device_name, precision_mode=flags.get("precision"),
        channels_last=flags.get("channels_last"), compile=flags.get("compile"), history=result.history,
        nonfinite_losses=result.nonfinite_losses,
    )
    peak, kind = peak_memory_mb(result.device or "cpu")
    record.update(peak_memory_mb=peak, memory_kind=kind, threads=torch.get_num_threads(),
                  allocator=detect_allocator())
    metrics: dict[str, float] = {}
    for column, value in result.test_mean.items():
        metrics[column] = value
        metrics[f"{column}_pooled"] = result.test_pooled.get(column, float("nan"))
    record.metrics = metrics
    record.nan_counts = dict(result.test_nan_count)
    record.higher_is_better = {base: reg.metrics.get(base).higher_is_better
                               for base in {c.split("/")[0] for c in result.test_mean} if base in reg.metrics}
    record.checkpoints = dict(result.checkpoints)


def _measure_costs(cell: Cell, directory: Path, record: CellRecord, config: Any, reg: Any, dataset: Any,
                   best: str) -> None:
    """The selected model's GMACs at the training size, the training compute spent, inference speed (and the
    deployed file's, when asked), and the sample predictions."""
    from zoo import costs, registry
    from zoo.budget import training_tflops
    from zoo.checkpoint import load_checkpoint
    from zoo.precision import Precision, compile_for_inference

    ckpt = load_checkpoint(best)
    meta = ckpt.meta
    model = registry.build_model(config.model, in_channels=meta["in_channels"], num_classes=meta["out_channels"],
                                 registries=reg, **config.model_options)
    model.load_state_dict(ckpt.state_dict)
    precision = Precision(config.device, config.precision, channels_last=config.channels_last)
    model = precision.module(model)
    size = _train_size(config)
    record.gmacs = costs.count_gmacs(model, meta["in_channels"], size)
    # training compute as trained: forward + backward (x 3) of every image of every step, 2 FLOPs per MAC
    record.train_tflops = training_tflops(record.gmacs, (record.steps_done or 0) * (record.batch_size or 0))
    # timed as trained: a compiled recipe is timed compiled (compilation falls in the warm-up passes)
    timed = compile_for_inference(model, precision) if config.compile else model
    record.update(**measure_inference(timed, precision, in_channels=meta["in_channels"], image_size=size,
                                      batch_size=record.batch_size, repeats=cell.infer_repeats))
    if cell.deploy_speed:
        record.update(**_deployed_speed(best, directory, size=size, batch_size=record.batch_size,
                                        repeats=cell.infer_repeats, reg=reg))
    _save_samples(directory / "samples.npz", model, precision, dataset.split("test"), config, meta)


def _train_and_measure(cell: Cell, directory: Path, resume: bool, record: CellRecord) -> None:
    from zoo import losses, registry, training
    from zoo.memory import reset_peak_memory
    from zoo.precision import resolve_device

    reg = registry.default_registry()
    provider = reg.models.provider(cell.model)
    record.update(plugin=provider.name, plugin_distribution=provider.distribution,
                  plugin_version=provider.version)
    config = training.TrainConfig.from_dict(cell.config)
    record.config = config.to_dict()
    reset_peak_memory(resolve_device(config.device))  # the device the cell trains on, not the current one
    result = training.run(config, directory / "run", resume=resume, quiet=True, registries=reg)
    _record_result(record, result, config, reg)
    dataset = registry.build_dataset(config.dataset, registries=reg, **config.dataset_options)
    record.update(**_dataset_facts(dataset))
    record.loss = config.loss or losses.default_loss(int(dataset.num_classes))
    if result.per_image:
        _write_per_image(directory / "per_image.csv", result.per_image)
    if result.status == "ok" and "best" in result.checkpoints:
        _measure_costs(cell, directory, record, config, reg, dataset, result.checkpoints["best"])


def _classify(exc: BaseException) -> str:
    from zoo.memory import is_out_of_memory

    if isinstance(exc, MemoryError) or is_out_of_memory(exc):
        return "oom"
    return "failed"


def execute_cell(directory: str | Path, *, resume: bool = False, profile: str | None = None) -> int:
    """Run the cell described by ``DIRECTORY/cell.json`` in this process and write its record.

    Returns:
        0 when the record says ``ok``, else 1. The record is written in every case that Python survives.
    """
    directory = Path(directory)
    spec = read_json(directory / "cell.json")
    if spec is None:
        raise FileNotFoundError(f"{directory / 'cell.json'} is missing or unreadable")
    cell = Cell.from_json(spec)
    record = base_record(cell, profile=spec.get("profile", profile))
    started = time.perf_counter()
    try:
        _train_and_measure(cell, directory, resume, record)
    except Exception as exc:  # the record is the report: the grid must go on
        record.update(status=_classify(exc), error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    record.update(finished_at=_now(), wall_seconds=time.perf_counter() - started)
    write_record(directory, record)
    log.info("cell %s: %s", cell.cell_id, record.status)
    return 0 if record.status == "ok" else 1


# ----------------------------------------------------------------------------------------------------------------
# The parent: start, watch, kill, and record what the child could not


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the cell if the harness dies, so no orphan keeps training after ``kill -9``."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _kill_group(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _start(command: list[str], log_file: Any, env: Mapping[str, str] | None, server: Any) -> Any:
    """The cell's process: forked by the warm ``server`` (``zoo.bench.forkserver``), or a fresh interpreter."""
    from zoo.bench.forkserver import ServerGone

    if server is not None:  # the same cell and flags as the command line, run in a fork of a warm process
        try:
            return server.start(command[4], resume="--resume" in command, profile=None, env=env, log=log_file.name)
        except ServerGone as exc:  # it could not import or build what cells need: the cell says why itself
            log.warning("%s; starting the cell as a new process", exc)
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(env) if env is not None else None, preexec_fn=_die_with_parent)


def launch_cell(cell: Cell, directory: Path, *, resume: bool, timeout: float | None, lock: CellLock,
                profile: str | None = None, env: Mapping[str, str] | None = None, server: Any = None) -> CellRecord:
    """Run ``cell`` in a child process and return its record (written to ``DIRECTORY/record.json``).

    Args:
        directory: the cell's folder, holding ``cell.json``.
        resume: continue the training run from its last checkpoint.
        timeout: seconds before the child is killed and the cell recorded as ``timeout``.
        lock: refreshed while the child runs (its modification time is the heartbeat).
        env: the child's environment (default: this process's).
        server: a :class:`zoo.bench.forkserver.CellServer` to fork the child from (default: start
            ``python -m zoo bench-cell``). Either way the child is its own process in its own session.

    Raises:
        KeyboardInterrupt: after killing the child, when the user interrupts.
    """
    record_path = directory / "record.json"
    record_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "zoo", "bench-cell", str(directory)] + (["--resume"] if resume else [])
    log_path = directory / "cell.log"
    started_wall = time.perf_counter()
    started_at = _now()
    with log_path.open("ab") as log_file:
        how = "forked from the warm server: " if server is not None else ""
        log_file.write(f"\n=== {started_at} {how}{' '.join(command)}\n".encode())
        log_file.flush()
        proc = _start(command, log_file, env, server)
        try:
            timed_out = _watch(proc, lock, timeout, started_wall)
        except BaseException:
            _kill_group(proc)
            raise
    record = read_record(directory)
    if record is not None and record.config_hash == cell.config_hash and not timed_out:
        return record
    record = base_record(cell, profile=profile)
    record.started_at = started_at
    status, error = _exit_error(proc, timeout, timed_out, _log_tail(log_path))
    record.update(status=status, error=error)
    record.update(finished_at=_now(), wall_seconds=time.perf_counter() - started_wall)
    write_record(directory, record)
    return record


def _watch(proc: Any, lock: CellLock, timeout: float | None, started_wall: float) -> bool:
    """Wait for the cell, refreshing its lock every heartbeat, and kill its process group once ``timeout``
    seconds have passed since ``started_wall``; returns whether it timed out."""
    while True:
        left = None if timeout is None else timeout - (time.perf_counter() - started_wall)
        if left is not None and left <= 0:
            _kill_group(proc)
            return True
        try:
            proc.wait(timeout=LOCK_HEARTBEAT_S if left is None else min(LOCK_HEARTBEAT_S, left))
            return False
        except subprocess.TimeoutExpired:
            lock.touch()


def _exit_error(proc: Any, timeout: float | None, timed_out: bool, tail: str) -> tuple[str, str]:
    """The status and error of a cell that left no record of its own: a timeout, a signal or an exit status
    (with the last lines of its log)."""
    if timed_out:
        return "timeout", f"cell did not finish within --cell-timeout {timeout:g} s and was killed"
    code = proc.returncode
    if code < 0:
        name = signal.Signals(-code).name
        why = f"cell process was killed by {name}"
        if -code == signal.SIGKILL:
            why += " (the kernel's out-of-memory killer sends SIGKILL too)"
    else:
        why = f"cell process exited with status {code} without writing a record"
    return "failed", why + (f"; last output: {tail}" if tail else "")
