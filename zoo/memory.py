"""Device memory: recognising out-of-memory failures, backing off together under DDP, and peak-memory readings.

- :func:`is_out_of_memory` is true for ``torch.OutOfMemoryError`` and for the allocation failures cuDNN and
  cuBLAS report as a plain ``RuntimeError`` (``CUDNN_STATUS_ALLOC_FAILED``, ``CUBLAS_STATUS_ALLOC_FAILED``).
- :func:`agree_out_of_memory` turns one rank's failure into every rank's decision (an all-reduce of a flag), so
  that under ``torchrun`` all ranks split their batch together and their collectives keep matching; a rank that
  backs off alone runs extra backward passes and the job hangs until the collective timeout.
- :func:`reset_peak_memory` / :func:`peak_memory_mb` / :func:`synchronize` act on the device they are given,
  not on the current CUDA device, so ``--device cuda:1`` is measured on ``cuda:1``.
"""

from __future__ import annotations

import gc
import resource
import sys

import torch
import torch.distributed as dist

__all__ = ["OOM_MARKERS", "is_out_of_memory", "free_memory", "agree_out_of_memory", "reset_peak_memory",
           "peak_memory_mb", "synchronize"]

#: text of the RuntimeErrors that are allocation failures in disguise (cuDNN, cuBLAS, older torch's CUDA OOM)
OOM_MARKERS = ("CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED", "CUDA out of memory",
               "CUDA error: out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means the device ran out of memory (see :data:`OOM_MARKERS`)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in OOM_MARKERS)


def free_memory() -> None:
    """Drop unreachable tensors and return cached CUDA blocks, after an out-of-memory failure."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def agree_out_of_memory(failed: bool, device: torch.device) -> bool:
    """Whether any rank ran out of memory (this rank's ``failed`` on one process).

    Every rank must call it at the same point of every step (it is a collective: a max-reduce of one flag on
    ``device``, which must be the process group's device: CUDA under nccl, the CPU under gloo).
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return failed
    flag = torch.tensor([1 if failed else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())  # sync point, once per micro-batch


def reset_peak_memory(device: torch.device | str) -> None:
    """Start a new peak-memory reading on ``device`` (CUDA only; the process's RSS peak cannot be reset)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device | str) -> tuple[float, str]:
    """The peak memory in MiB and its kind: ``cuda_max_allocated`` (tensors on that GPU since the last reset)
    or ``process_max_rss`` (the process's resident set, for the CPU and MPS). The two kinds are not comparable."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return (rss / 2**20 if sys.platform == "darwin" else rss / 2**10), "process_max_rss"


def synchronize(device: torch.device | str) -> None:
    """Wait for the kernels queued on ``device`` (CUDA only; a no-op elsewhere)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
