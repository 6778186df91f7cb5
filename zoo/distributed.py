"""Data-parallel runs under ``torchrun``: the process group, rank helpers, samplers and collectives.

``zoo train`` (and a benchmark cell) run unchanged on one process; under ``torchrun --nproc-per-node N`` each
process trains a ``DistributedDataParallel`` replica on its share of every global batch. What this module
guarantees, and ``zoo.training`` relies on:

- :func:`session` starts the process group from torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): backend ``nccl`` on CUDA (one GPU per process,
  ``cuda:LOCAL_RANK``), ``gloo`` on the CPU. Without torchrun (or with one process) nothing is started and every
  helper here is a no-op, so single-process code pays nothing.
- ``--batch-size`` is the *global* batch: each of ``W`` processes takes ``batch_size / W`` images of the same
  global batch a single process would take (:class:`GlobalBatchSampler`), so a run's recipe, learning rate and
  result do not depend on how many processes ran it.
- Evaluation shards a split with torch's ``DistributedSampler`` (no shuffle); the padding it adds to even out the
  shards is dropped again by index when the predictions are gathered to rank 0, which scores every image once,
  in split order (see ``zoo.scoring.evaluate``).
- Only rank 0 writes (checkpoints, logs, records, plots): :func:`is_main`.
- Gradients are reduced after every rank has finished its backward passes, not during them
  (:func:`no_grad_sync`, :func:`all_reduce_gradients`), so that the ranks can first agree whether one ran out
  of memory and back off together (``zoo.engine``); batch-norm statistics follow rank 0's after each step
  (:func:`broadcast_buffers`), as DDP's own forward would sync them. The price is DDP's overlap of the gradient
  all-reduce with the backward pass.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from zoo.errors import OptionError

__all__ = ["launched", "session", "is_distributed", "rank", "world_size", "local_rank", "is_main", "barrier",
           "all_reduce_mean", "gather_to_main", "broadcast_from_main", "no_grad_sync", "all_reduce_gradients",
           "broadcast_buffers", "GlobalBatchSampler", "eval_sampler", "shard_of", "compact_mask"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def launched() -> bool:
    """True when torchrun (or SLURM-style env vars) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """True inside a started process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``), which picks its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return rank() == 0


def _device_for_rank(device: str) -> str:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA, else ``device`` unchanged."""
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        return device
    if not torch.cuda.is_available():
        raise OptionError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if ":" in device:
        raise OptionError(f"device {device!r} names one GPU, but under torchrun each process takes "
                          f"cuda:LOCAL_RANK; pass --device cuda and pick GPUs with CUDA_VISIBLE_DEVICES")
    index = local_rank()
    if index >= torch.cuda.device_count():
        raise OptionError(f"LOCAL_RANK {index} but only {torch.cuda.device_count()} GPU(s) are visible; "
                          f"use --nproc-per-node <= {torch.cuda.device_count()}")
    torch.cuda.set_device(index)
    return f"cuda:{index}"


@contextlib.contextmanager
def session(device: str = "auto", *, timeout_s: float = 1800.0) -> Iterator[str]:
    """Join torchrun's process group for the duration of a run; yields the device this rank should use.

    Idempotent: inside an already started group (or without torchrun) it starts nothing and tears nothing down.

    Args:
        device: the run's ``--device``; ``cuda``/``auto`` with GPUs becomes ``cuda:LOCAL_RANK`` (backend nccl),
            anything else keeps the CPU (backend gloo).
        timeout_s: how long a collective may wait for a slow or dead peer before failing.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield _device_for_rank(device) if launched() else device
        return
    if not dist.is_available():
        raise OptionError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    resolved = _device_for_rank(device)
    backend = "nccl" if resolved.startswith("cuda") else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s),
                            device_id=torch.device(resolved) if backend == "nccl" else None)
    log.info("process group: rank %d of %d, backend %s, device %s", dist.get_rank(), dist.get_world_size(),
             backend, resolved)
    try:
        yield resolved
        # collect the run's DDP wrapper (reference cycles) while the group lives: freed at interpreter exit, after
        # the group is gone, gloo can abort the process ("terminate called without an active exception"); then
        # leave together, so no rank tears the group down while a peer still uses it
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op on one)."""
    if is_distributed():
        dist.barrier()


def all_reduce_mean(value: Tensor) -> Tensor:
    """The mean of ``value`` over processes (a new tensor; ``value`` itself on one process)."""
    if not is_distributed():
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def _ddp(model: torch.nn.Module) -> Any:
    """The ``DistributedDataParallel`` wrapper of ``model`` (under ``torch.compile`` too), or ``None``."""
    from torch.nn.parallel import DistributedDataParallel

    inner = getattr(model, "_orig_mod", model)
    return inner if isinstance(inner, DistributedDataParallel) else None


def no_grad_sync(model: torch.nn.Module) -> contextlib.AbstractContextManager[Any]:
    """A context in which a DDP model's forward and backward run no collective (DDP's ``no_sync``; else nothing).

    It also switches off DDP's broadcast of buffers at the start of a forward, for good: a rank whose forward
    fails skips DDP's bookkeeping after it, and its next forward would broadcast alone. The caller syncs
    buffers itself (:func:`broadcast_buffers`).
    """
    ddp = _ddp(model)
    if ddp is None:
        return contextlib.nullcontext()
    ddp.broadcast_buffers = False
    return ddp.no_sync()


def _in_buckets(tensors: list[Tensor], collective: Any, bucket_mb: float = 25.0) -> None:
    """Run ``collective`` on flat copies of ``tensors`` (one dtype and at most ``bucket_mb`` MiB each) and copy
    the results back: a few large collectives instead of one per tensor."""
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for group in by_dtype.values():
        start = 0
        while start < len(group):
            end, size = start, 0
            while end < len(group) and (end == start or size + group[end].nbytes <= bucket_mb * 2**20):
                size += group[end].nbytes
                end += 1
            bucket = group[start:end]
            flat = _flatten_dense_tensors(bucket)
            collective(flat)
            for tensor, synced in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                tensor.copy_(synced)
            start = end


def all_reduce_gradients(model: torch.nn.Module) -> None:
    """Average the gradients of ``model``'s parameters over the processes (no-op on one). A parameter without a
    gradient counts as zero, so every rank reduces the same list."""
    if not is_distributed():
        return
    grads = []
    for param in model.parameters():
        if param.requires_grad:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            grads.append(param.grad)
    world = dist.get_world_size()

    def mean(flat: Tensor) -> None:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world

    _in_buckets(grads, mean)


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm statistics); no-op on one process."""
    if not is_distributed():
        return
    _in_buckets(list(model.buffers()), lambda flat: dist.broadcast(flat, src=0))


def gather_to_main(obj: T) -> list[T] | None:
    """Every process's ``obj`` (picklable), in rank order, on rank 0; ``None`` on the others."""
    if not is_distributed():
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: T) -> T:
    """Rank 0's ``obj`` on every process (what the others pass is ignored)."""
    if not is_distributed():
        return obj
    box: list[Any] = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def compact_mask(mask: Tensor) -> Tensor:
    """A CPU class-index mask in the smallest dtype that holds it (uint8 for most), to gather cheaply."""
    mask = mask.detach().cpu()
    if mask.numel() and 0 <= int(mask.min()) and int(mask.max()) <= 255:
        return mask.to(torch.uint8)
    return mask


class GlobalBatchSampler(Sampler[int]):
    """This rank's slice of each global batch, in the order a single process would see them.

    The global order is the one ``zoo.data.make_loader(train=True, batch_size=B, seed=seed)`` produces on one
    process (taken from an index-only DataLoader with the same shuffle generator, so it follows torch's own
    sampling exactly); rank ``r`` of ``W`` takes items ``[r*B/W, (r+1)*B/W)`` of every global batch. With the
    same seed, a W-process run therefore trains on the same images per step as a 1-process run. Only full
    global batches are used (a partial last batch would give the ranks unequal shares).

    Args:
        n: items in the split (at least ``batch_size``).
        batch_size: the global batch; divisible by ``world``.
        seed: the epoch's shuffle seed.
        rank, world: this process and the number of processes.
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, rank: int, world: int) -> None:
        if batch_size % world:
            raise OptionError(f"batch size {batch_size} is the global batch and must be divisible by the "
                              f"{world} processes; use a multiple of {world}")
        if n < batch_size:
            raise OptionError(f"the train split has {n} items, fewer than the global batch {batch_size}; use "
                              f"--batch-size <= {n - n % world or world}")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.per_rank = batch_size // world

    def __iter__(self) -> Iterator[int]:
        order = DataLoader(range(self.n), batch_size=self.batch_size, shuffle=True, drop_last=True,
                           generator=torch.Generator().manual_seed(self.seed), collate_fn=list)
        start = self.rank * self.per_rank
        for batch in order:
            yield from batch[start:start + self.per_rank]

    def __len__(self) -> int:
        return (self.n // self.batch_size) * self.per_rank


def eval_sampler(split: Any) -> DistributedSampler | None:
    """A no-shuffle shard of ``split`` for this rank (``None`` on one process); see :func:`shard_of`."""
    if not is_distributed():
        return None
    return DistributedSampler(split, num_replicas=world_size(), rank=rank(), shuffle=False, drop_last=False)


def shard_of(loader: Any) -> tuple[list[int], list[bool]] | None:
    """The split indices a loader's ``DistributedSampler`` gives this rank, and which are not padding.

    ``DistributedSampler`` repeats the first items so that every rank gets ``ceil(n / W)``; the item at padded
    position ``p = rank + W * i`` is padding exactly when ``p >= n``. ``None`` for a loader without such a sampler
    (or on one process).
    """
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, DistributedSampler) or not is_distributed():
        return None
    indices = list(iter(sampler))
    n = len(sampler.dataset)  # type: ignore[arg-type]
    real = [sampler.rank + sampler.num_replicas * i < n for i in range(len(indices))]
    return indices, real
