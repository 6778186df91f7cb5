"""zoo.memory: out-of-memory recognition and per-device peak memory (torch.cuda's answers faked on the CPU)."""

from __future__ import annotations

import pytest
import torch

from zoo import memory


def test_out_of_memory_includes_cudnn_and_cublas_allocation_failures() -> None:
    assert memory.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert memory.is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert memory.is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not memory.is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"))
    assert not memory.is_out_of_memory(ValueError("CUDA out of memory"))  # only torch's RuntimeErrors


def test_peak_memory_is_reset_and_read_on_the_given_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: asked.append(("reset", device)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated",
                        lambda device=None: asked.append(("read", device)) or 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: asked.append(("sync", device)))
    memory.reset_peak_memory("cuda:1")
    assert memory.peak_memory_mb(torch.device("cuda:1")) == (3.0, "cuda_max_allocated")
    memory.synchronize("cuda:1")
    assert asked == [("reset", torch.device("cuda:1")), ("read", torch.device("cuda:1")),
                     ("sync", torch.device("cuda:1"))]
    peak, kind = memory.peak_memory_mb("cpu")
    assert kind == "process_max_rss" and peak > 50  # torch alone is hundreds of MiB
    memory.reset_peak_memory("cpu")
    memory.synchronize("cpu")
    assert len(asked) == 3


def test_agreement_on_one_process_is_the_local_flag() -> None:
    assert memory.agree_out_of_memory(True, torch.device("cpu")) is True
    assert memory.agree_out_of_memory(False, torch.device("cpu")) is False
