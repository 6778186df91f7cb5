"""The device and mixed-precision seam: one small object the engine calls instead of branching on devices.

Shaped like Lightning's ``MixedPrecision``: ``autocast()``, ``backward(loss)``, ``step(optimizer)``.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from torch import Tensor, nn

from zoo.errors import OptionError, check_choice

__all__ = ["Precision", "resolve_device", "device_name", "DEVICES", "PRECISIONS"]

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
PrecisionName = Literal["fp32", "bf16", "fp16", "auto"]


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else must be available."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = check_choice("device", device.split(":")[0], DEVICES[1:])
    if kind == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"device {device!r} requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(device)


class Precision:
    """Device placement, autocast and (for fp16 on CUDA) gradient scaling.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``) or ``"mps"``.
        precision: ``"fp32"``; ``"bf16"`` autocast (CUDA, CPU or MPS); ``"fp16"`` autocast with a ``GradScaler``
            (CUDA only); ``"auto"``: bf16 on CUDA when supported, else fp16 on CUDA, fp32 elsewhere.
        channels_last: move models and images to the channels-last memory format.
    """

    def __init__(self, device: str = "auto", precision: PrecisionName | str = "fp32", *,
                 channels_last: bool = False) -> None:
        self.device = resolve_device(device)
        check_choice("precision", precision, PRECISIONS)
        cuda = self.device.type == "cuda"
        if precision == "auto":
            precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
        if precision == "fp16" and not cuda:
            raise OptionError(f"precision 'fp16' needs CUDA (device is {self.device.type}); use bf16 or fp32")
        self.name = precision
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.channels_last = channels_last
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
        self.skipped_steps = 0  # optimizer steps the scaler skipped because of inf/NaN gradients

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The forward-pass context: autocast to bf16/fp16, or nothing in fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def module(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (and memory format)."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return model.to(self.device, memory_format=fmt)

    def tensor(self, x: Tensor) -> Tensor:
        """Move a batch to the device; 4-D images get the model's memory format."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def backward(self, loss: Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, *, grad_clip: float | None = None) -> None:
        """Unscale, clip the global gradient norm to ``grad_clip``, step and update the scaler."""
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, grad_clip)
        if not self.scaler.is_enabled():
            optimizer.step()
            return
        scale = self.scaler.get_scale()  # sync point, fp16 only
        self.scaler.step(optimizer)
        self.scaler.update()
        if self.scaler.get_scale() < scale:  # the scaler backs off exactly when it skipped the step
            self.skipped_steps += 1

    def describe(self) -> dict[str, object]:
        """What to record with a result."""
        return {"device": str(self.device), "precision": self.name, "channels_last": self.channels_last}


def device_name(device: torch.device) -> str:
    """A human-readable name for the hardware behind ``device`` (GPU model or CPU model)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
