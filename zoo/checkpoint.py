"""Checkpoints: weights in safetensors, training state in a small weights-only ``.pt``.

A checkpoint named ``STEM`` is two files:

- ``STEM.safetensors``: the model's ``state_dict`` plus a JSON ``zoo`` metadata entry (model name and options,
  in/out channels, dataset, plugin distribution and version, the training recipe, step). It alone is enough to
  evaluate or predict, and loading it can never run code.
- ``STEM.pt``: optimizer, scheduler, grad-scaler and RNG state, epoch, step and history, written with
  ``torch.save`` and read with ``torch.load(weights_only=True)``. A file whose pickle would call anything else is
  refused with a ``CheckpointError`` naming the offending global; ``unsafe=True`` (``--unsafe-load``) is the only
  way around that, for files you trust.

Each file is written to a temporary name in the same folder and ``os.replace``d, so a crash never leaves a
truncated checkpoint; both carry the step, so a weights file and a state file from different steps are detected.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from zoo.errors import CheckpointError
from zoo.fileio import atomic_write

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "load_training_state", "resolve_checkpoint",
           "checkpoint_paths", "FORMAT_VERSION"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A loaded weights file: the ``state_dict`` and its metadata."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


def checkpoint_paths(stem: str | Path) -> tuple[Path, Path]:
    """``(STEM.safetensors, STEM.pt)``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".pt")


def save_checkpoint(stem: str | Path, model: torch.nn.Module, meta: Mapping[str, Any],
                    state: Mapping[str, Any] | None = None) -> Path:
    """Write ``STEM.safetensors`` (and ``STEM.pt`` when ``state`` is given) atomically.

    Args:
        stem: path without suffix, e.g. ``runs/x/last``.
        model: the (uncompiled) module whose ``state_dict`` to save.
        meta: JSON-serialisable description (model, options, channels, dataset, plugin, recipe, step).
        state: training state for resuming; tensors, numbers, strings, lists, tuples and dicts only.

    Returns:
        The weights path.
    """
    weights, state_path = checkpoint_paths(stem)
    meta = json.loads(json.dumps(meta, default=str))  # plain types only, so the weights-only loader accepts it
    weights.parent.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous, unshared tensors (channels_last weights are neither contiguous)
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
    header = {"zoo": json.dumps({"format": FORMAT_VERSION, **meta})}
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    if state is not None:
        atomic_write(state_path, lambda tmp: torch.save({"format": FORMAT_VERSION, "meta": meta, **state}, tmp))
    return weights


def resolve_checkpoint(path: str | Path, *, prefer: str = "best") -> Path:
    """Turn a run folder, a stem or either file of a checkpoint into its ``.safetensors`` path."""
    path = Path(path)
    if path.is_dir():
        for name in (prefer, "best", "last"):
            candidate = path / f"{name}.safetensors"
            if candidate.exists():
                return candidate
        raise CheckpointError(f"no checkpoint (best.safetensors or last.safetensors) in folder {str(path)!r}")
    if path.suffix == ".pt":
        path = path.with_suffix(".safetensors")
    elif path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a weights file (a run folder picks ``best``) and its metadata. Never runs code.

    Raises:
        CheckpointError: missing, corrupt, or not written by zoo.
    """
    path = resolve_checkpoint(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state_dict = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {exc}") from None
    if "zoo" not in header:
        raise CheckpointError(f"checkpoint {str(path)!r} has no zoo metadata (model name, options); "
                              f"it was not written by zoo")
    try:
        meta = json.loads(header["zoo"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} has damaged zoo metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has damaged zoo metadata (not a JSON object)")
    return Checkpoint(path, state_dict, meta)


def _offending_global(message: str) -> str:
    """The global a weights-only unpickler refused, from torch's message (e.g. ``posix.system``)."""
    match = re.search(r"GLOBAL\s+([\w.]+)", message) or re.search(r"global\s+'?([\w.]+)'?", message)
    return match.group(1) if match else "unknown"


def load_training_state(path: str | Path, *, unsafe: bool = False) -> dict[str, Any]:
    """Load a ``STEM.pt`` training-state file with ``torch.load(weights_only=True)``.

    Args:
        path: the ``.pt`` file, its stem or its ``.safetensors`` sibling.
        unsafe: allow arbitrary pickles (can run code; only for files you trust).

    Raises:
        CheckpointError: missing, or its pickle references a global outside torch's weights-only allowlist
            (the message names it).
    """
    path = Path(path)
    if path.suffix != ".pt":
        path = path.with_suffix(".pt") if path.suffix == ".safetensors" else path.with_name(path.name + ".pt")
    if not path.exists():
        raise CheckpointError(f"training state {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe)
    except pickle.UnpicklingError as exc:
        name = _offending_global(str(exc))
        raise CheckpointError(
            f"refusing to load {str(path)!r}: its pickle references {name!r}, which could run code when "
            f"loaded; if you trust this file, pass --unsafe-load (unsafe=True)"
        ) from None
    except (RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot read training state {str(path)!r}: {exc}") from None
