"""Seeds, random-number-generator state and deterministic kernels for reproducible runs.

``seed_everything`` seeds Python, NumPy and torch (all devices) and, with ``deterministic=True``, makes torch use
deterministic algorithms (DataLoader workers are seeded by ``zoo.data.make_loader``). ``rng_state`` /
``set_rng_state`` capture and restore all three generators in a form that ``torch.load(weights_only=True)``
accepts (tensors, ints and tuples only), so a resumed run continues the same random streams.

Deterministic kernels: every op the built-in models use has one on the CPU, but on CUDA some have none (the
backward of bilinear ``F.interpolate`` and of reflection padding, ``NLLLoss`` behind cross-entropy), and torch
raises when it meets them. :func:`resolve_deterministic` is the policy (``"auto"``: deterministic on the CPU
only, so GPU recipes are non-deterministic unless asked), and :func:`first_nondeterministic_op` /
:func:`check_deterministic_step` find such an op up front, by name, instead of in the middle of a run.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "rng_state", "set_rng_state", "resolve_deterministic", "first_nondeterministic_op",
           "check_deterministic_step"]

_NO_KERNEL = re.compile(r"^\s*(\S+) does not have a deterministic implementation")


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; with ``deterministic``, also require deterministic torch kernels.

    Args:
        seed: the seed (recorded with the run).
        deterministic: call ``torch.use_deterministic_algorithms(True)``; on CUDA this also needs
            ``CUBLAS_WORKSPACE_CONFIG``, which is set here if the user has not set it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(deterministic)


def rng_state() -> dict[str, Any]:
    """The state of the Python, NumPy, torch CPU and CUDA generators (weights-only-loadable)."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": (version, torch.tensor(words, dtype=torch.int64), gauss),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(int(w) for w in words.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_deterministic(deterministic: bool | str, device: str | torch.device) -> bool:
    """The determinism policy: ``True``/``False`` as given; ``"auto"`` means deterministic on the CPU only.

    GPU recipes are non-deterministic by default: on CUDA, deterministic kernels are slower and some ops used by
    common models have none (see the module docstring).
    """
    if isinstance(deterministic, bool):
        return deterministic
    if deterministic != "auto":
        from zoo.errors import OptionError

        raise OptionError(f"deterministic={deterministic!r} is not one of (True, False, 'auto')")
    return torch.device(device).type == "cpu"


def first_nondeterministic_op(step: Callable[[], object]) -> str | None:
    """Run ``step`` with deterministic algorithms required; the op torch names if it has no deterministic
    kernel there, else ``None`` (the step's other errors propagate). The global setting is restored."""
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        step()
    except RuntimeError as exc:
        found = _NO_KERNEL.match(str(exc))
        if found is None:
            raise
        return found.group(1)
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)
    return None


def check_deterministic_step(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor,
                             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                             autocast: Callable[[], Any] | None = None, what: str = "this model") -> None:
    """Fail up front when a training step of ``model`` needs an op without a deterministic kernel.

    Runs one forward (with the loss) and backward on ``images``/``masks`` on their device and then puts
    everything back: the weights' gradients, the buffers (batch-norm statistics) and the random generators, so
    the run that follows is the run that would have happened without the check.

    Raises:
        OptionError: naming the op and the way out.
    """
    from zoo.errors import OptionError

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    grads = {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}
    devices = [images.device] if images.device.type == "cuda" else []

    def step() -> None:
        with torch.random.fork_rng(devices=devices):
            with autocast() if autocast is not None else torch.autocast(images.device.type, enabled=False):
                loss = loss_fn(model(images), masks)
            loss.backward()

    try:
        op = first_nondeterministic_op(step)
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        for name, p in model.named_parameters():
            p.grad = grads[name]
    if op is not None:
        raise OptionError(f"deterministic training on {images.device.type}: {what} needs {op}, which has no "
                          f"deterministic kernel there; drop --deterministic (GPU recipes are non-deterministic "
                          f"by default) or train on the CPU")
