"""The device and mixed-precision seam: one small object the engine calls instead of branching on devices.

Shaped like Lightning's ``MixedPrecision``: ``autocast()``, ``backward(loss)``, ``step(optimizer)``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from zoo.errors import OptionError, check_choice

__all__ = ["Precision", "resolve_device", "resolve_precision", "cpu_has_native_bf16", "cuda_has_native_bf16",
           "runtime_identity", "nvidia_driver", "device_name", "compile_for_inference", "DEVICES", "PRECISIONS"]

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "auto")
PrecisionName = Literal["fp32", "tf32", "bf16", "fp16", "auto"]
_NVIDIA_VERSION = Path("/proc/driver/nvidia/version")


def nvidia_driver() -> str | None:
    """The version of the NVIDIA kernel driver when this host has one loaded (``"unknown"`` when only the
    device files show it), else ``None``."""
    try:
        text = _NVIDIA_VERSION.read_text()
    except OSError:
        return "unknown" if any(Path("/dev").glob("nvidia[0-9]*")) else None
    found = re.search(r"Kernel Module(?: for \S+)?\s+(\d[\w.-]*)", text)
    return found.group(1) if found else "unknown"


@functools.lru_cache(maxsize=1)
def _warn_cpu_fallback() -> None:
    """Say so, once per process, when ``"auto"`` falls back to the CPU on a host with an NVIDIA driver."""
    driver = nvidia_driver()
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None)
    if driver is None or (hidden is not None and hidden.strip() in ("", "-1")):  # no GPU, or hidden on purpose
        return
    build = f"torch {torch.__version__} " + (f"(CUDA {torch.version.cuda})" if torch.version.cuda
                                               else "(a CPU-only build)")
    try:  # the reason torch gives when it tries
        torch.cuda.init()
        reason = "torch sees no usable GPU"
    except Exception as exc:  # noqa: BLE001 - any failure is the reason to report
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    log.warning("device 'auto' resolved to the CPU on a host with NVIDIA driver %s: %s cannot use it (%s); "
                "install a torch build for this driver, or pass --device cpu to silence this", driver, build, reason)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else must be available.

    When ``"auto"`` ends on the CPU although the host has an NVIDIA driver (a torch build that cannot use it),
    a warning names the torch build, the driver and torch's reason, once per process.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        _warn_cpu_fallback()
        return torch.device("cpu")
    kind = check_choice("device", device.split(":")[0], DEVICES[1:])
    if kind == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"device {device!r} requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(device)


#: measured on a 2-core AVX2 EPYC (no AVX-512 BF16/AMX), unet w32 train step, 128 px, batch 8 (issue 21)
EMULATED_BF16_NOTE = "emulated (no avx512_bf16/amx_bf16): bf16 autocast + channels_last ran at 0.08x fp32 speed"
_warned_bf16 = False


def _warn_emulated_bf16() -> None:
    """One warning line per process for ``--precision bf16`` on a CPU that only emulates bf16."""
    global _warned_bf16
    if _warned_bf16:
        return
    _warned_bf16 = True
    log.warning("--precision bf16 on %s, which has no native bf16 (no avx512_bf16 or amx_bf16 in its CPU flags): "
                "bf16 autocast + channels_last ran at 0.08x the speed of fp32 (12x slower) on a 2-core AVX2 CPU; "
                "--precision auto picks fp32 here", device_name(torch.device("cpu")))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX tiles), as torch's own probes say.

    Without it, bf16 autocast is emulated and slower than fp32, so ``"auto"`` keeps fp32 there.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for probe in probes:
        check = getattr(torch.cpu, probe, None)  # private probes: absent in some torch versions
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - a probe that cannot run says "no"
            pass
    try:  # older torch: the capability dict of the CPU
        return bool(torch.backends.cpu.get_cpu_capability() == "AVX512" and
                    torch._C._cpu._get_cpu_capability().get("avx512_bf16", False))  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return False


def cuda_has_native_bf16(device: torch.device | str | int | None = None) -> bool:
    """Whether the GPU behind ``device`` has bf16 tensor cores: compute capability 8.0 (Ampere) or newer.

    ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only emulated (V100, T4), which is slower
    than fp16 there, so the capability decides.
    """
    return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def resolve_precision(precision: str, device: torch.device) -> str:
    """What ``"auto"`` means on ``device``: the fastest mode that keeps accuracy.

    CUDA: bf16 on compute capability >= 8.0 (:func:`cuda_has_native_bf16`, asked of ``device`` itself), else
    fp16 (with a gradient scaler). CPU: bf16 where the CPU has native bf16 (:func:`cpu_has_native_bf16`), else
    fp32. Apple MPS: fp32. Other names are returned as given.
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if cuda_has_native_bf16(device) else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def runtime_identity(device: str = "auto", precision: str = "auto") -> dict[str, str]:
    """What a recipe's ``device`` and ``precision`` resolve to on this host: ``{"device": kind, "precision":
    name}`` (``"cuda"``, not ``"cuda:1"``: which GPU does not change the recipe). A benchmark hashes it with the
    recipe, so a GPU run never continues or mixes with a CPU folder (``zoo.bench.grid.Cell.runtime``)."""
    resolved = resolve_device(device)
    return {"device": resolved.type, "precision": resolve_precision(precision, resolved)}


def _set_tf32(on: bool) -> None:
    """TF32 tensor-core math for fp32 convolutions and matmuls (cuDNN's default is on), through torch's newer
    per-backend flags where they exist (mixing them with the legacy ``allow_tf32`` flags is an error)."""
    value = "tf32" if on else "ieee"
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = value
        torch.backends.cuda.matmul.fp32_precision = value
    else:  # pragma: no cover - torch < 2.9
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = on


class Precision:
    """Device placement, autocast and (for fp16 on CUDA) gradient scaling.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``, which also becomes this process's current
            CUDA device, so every CUDA call without a device argument acts on it) or ``"mps"``.
        precision: ``"fp32"`` (true fp32: on CUDA, TF32 tensor-core math is switched off for convolutions and
            matmuls, although cuDNN's default is on); ``"tf32"`` (fp32 with TF32 convolutions and matmuls, CUDA
            only; the same as fp32 before compute capability 8.0); ``"bf16"`` autocast (CUDA, CPU or MPS);
            ``"fp16"`` autocast with a ``GradScaler`` (CUDA only); ``"auto"`` (see :func:`resolve_precision`):
            bf16 on CUDA with compute capability >= 8.0, else fp16 on CUDA; bf16 on a CPU with native bf16 (the
            *CPU fast path*); fp32 elsewhere.
        channels_last: move models and images to the channels-last memory format. ``None`` (default): on
            wherever autocast is on (bf16/fp16), where it is faster (about 1.2x on top of bf16 on an AVX-512
            BF16 CPU; tensor-core convolutions on CUDA), off in fp32.

    On CUDA, ``torch.backends.cudnn.benchmark`` is switched on unless deterministic algorithms are enforced
    (``torch.use_deterministic_algorithms``), so set determinism before building this object.
    """

    def __init__(self, device: str = "auto", precision: PrecisionName | str = "fp32", *,
                 channels_last: bool | None = None) -> None:
        self.device = resolve_device(device)
        self.requested = check_choice("precision", precision, PRECISIONS)
        cuda = self.device.type == "cuda"
        precision = resolve_precision(precision, self.device)
        if precision in ("fp16", "tf32") and not cuda:
            raise OptionError(f"precision {precision!r} needs CUDA (device is {self.device.type}); use bf16 or fp32")
        self.name = precision
        self.dtype = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.channels_last = self.dtype is not None if channels_last is None else bool(channels_last)
        if cuda:
            if self.device.index is not None:  # calls that take no device (and third-party code) use this one
                torch.cuda.set_device(self.device)
            # autotuned conv algorithms are faster but not reproducible; keep them out of deterministic runs
            torch.backends.cudnn.benchmark = not torch.are_deterministic_algorithms_enabled()
            _set_tf32(precision == "tf32")
            if precision == "bf16" and not cuda_has_native_bf16(self.device):
                log.warning("bf16 on %s (compute capability %d.%d) is emulated and slower than fp16; "
                            "--precision auto picks fp16 there", torch.cuda.get_device_name(self.device),
                            *torch.cuda.get_device_capability(self.device))
        self.bf16_emulated = precision == "bf16" and self.device.type == "cpu" and not cpu_has_native_bf16()
        if self.bf16_emulated:
            _warn_emulated_bf16()
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
        out: dict[str, object] = {"device": str(self.device), "precision": self.name,
                                  "channels_last": self.channels_last, "precision_requested": self.requested}
        if self.bf16_emulated:  # only then, so records of every other run stay as they were
            out["cpu_bf16"] = EMULATED_BF16_NOTE
        return out


class _GraphOutputs(nn.Module):
    """Runs a model compiled with CUDA graphs and hands out outputs the caller owns.

    A CUDA-graph replay writes its outputs into the same static buffers every time, so a logits tensor kept
    from one call would be overwritten by the next (``.float()`` on fp32 logits copies nothing); cloning here
    costs one copy of the logits.
    """

    def __init__(self, compiled: nn.Module) -> None:
        super().__init__()
        self.compiled = compiled

    def forward(self, x: Tensor) -> Tensor:
        torch.compiler.cudagraph_mark_step_begin()  # a new inference step: earlier outputs are not needed
        return self.compiled(x).clone()


def compile_for_inference(model: nn.Module, precision: Precision, *, cuda_graphs: bool = True) -> nn.Module:
    """``torch.compile`` a model for repeated inference at fixed shapes.

    On CUDA with ``cuda_graphs`` the ``"reduce-overhead"`` mode records CUDA graphs, which removes the kernel
    launch overhead of small batches (inputs must keep their shape; each new shape records a new graph); each
    call's output is then a copy out of the graph's buffers, safe to keep across calls. On the CPU, and without
    ``cuda_graphs``, the default mode fuses element-wise kernels. Compilation takes tens of seconds, so it pays
    back only over many calls.
    """
    graphs = cuda_graphs and precision.device.type == "cuda"
    compiled = torch.compile(model.eval(), mode="reduce-overhead" if graphs else "default")
    return _GraphOutputs(compiled).eval() if graphs else compiled  # type: ignore[return-value, arg-type]


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
