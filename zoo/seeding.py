"""Seeds and random-number-generator state for reproducible runs.

``seed_everything`` seeds Python, NumPy and torch (all devices) and, with ``deterministic=True``, makes torch use
deterministic algorithms (DataLoader workers are seeded by ``zoo.data.make_loader``). ``rng_state`` / ``set_rng_state`` capture and restore all three generators in a form
that ``torch.load(weights_only=True)`` accepts (tensors, ints and tuples only), so a resumed run continues the
same random streams.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "rng_state", "set_rng_state"]


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
