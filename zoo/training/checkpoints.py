"""A run's checkpoints: ``last`` (weights + training state, written after every epoch) and ``best`` (weights).

Built on ``zoo.checkpoint`` (the file format). Resuming from ``last`` restores the weights, optimizer, schedule,
grad scaler, RNG and the loop's counters, so a resumed deterministic CPU run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.checkpoint import checkpoint_paths, load_checkpoint, load_training_state, save_checkpoint
from zoo.engine import FitState, LoopState
from zoo.errors import CheckpointError
from zoo.precision import Precision
from zoo.seeding import rng_state, set_rng_state
from zoo.training.config import RESUMABLE_CHANGES, TrainConfig

__all__ = ["RunCheckpoints", "check_resumable"]

log = logging.getLogger(__name__)


@dataclass
class RunCheckpoints:
    """The checkpoints of the run in ``out``, and resuming from them.

    Attributes:
        out: the run folder; the checkpoints are ``out/last`` and ``out/best``.
        meta: the model's metadata (``zoo.training.parts.model_meta``), saved with the weights.
        model: the plain module (not a DDP or compiled wrapper), so the weights load anywhere.
        optimizer, scheduler, precision: the training state that ``last`` saves and :meth:`resume` restores.
    """

    out: Path
    meta: dict[str, Any]
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision

    @property
    def last(self) -> Path:
        """The stem of the latest checkpoint (weights + training state)."""
        return self.out / "last"

    @property
    def best(self) -> Path:
        """The stem of the best checkpoint on val (weights only)."""
        return self.out / "best"

    def save(self, state: FitState, *, best: bool) -> None:
        """Write ``last`` with the training state, and ``best`` too when the epoch gave a new best."""
        self._save(self.last, state, with_state=True)
        if best:
            self._save(self.best, state, with_state=False)

    def _save(self, stem: Path, state: FitState, *, with_state: bool) -> None:
        """One checkpoint: the weights with the step in their metadata, and optionally the training state."""
        step_meta = {**self.meta, "epoch": state.epoch, "step": state.loop.step}
        training = None
        if with_state:
            training = {"step": state.loop.step, "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "scaler": self.precision.scaler.state_dict(),
                        "skipped_steps": self.precision.skipped_steps, "rng": rng_state(),
                        "fit": _fit_state_dict(state)}
        save_checkpoint(stem, self.model, step_meta, training)

    def resume(self, config: TrainConfig, *, unsafe: bool = False) -> FitState | None:
        """Restore everything from ``last``; ``None`` when there is nothing to resume.

        Args:
            config: the recipe now; it must match the checkpoint's except :data:`RESUMABLE_CHANGES`.
            unsafe: allow a training-state pickle outside torch's weights-only allowlist (trusted files only).

        Returns:
            The loop's state to continue from, or ``None`` (start afresh).

        Raises:
            CheckpointError: the recipe changed, or the weights and the training state are from different steps.
        """
        if not checkpoint_paths(self.last)[1].exists():
            log.info("nothing to resume in %s; starting afresh", self.out)
            return None
        saved = load_training_state(self.last, unsafe=unsafe)
        check_resumable(saved["meta"]["config"], config)
        weights = load_checkpoint(checkpoint_paths(self.last)[0])
        if weights.meta.get("step") != saved["step"]:
            raise CheckpointError(f"{self.last}: weights are from step {weights.meta.get('step')} but the training "
                                  f"state is from step {saved['step']}; the run was interrupted while saving")
        self.model.load_state_dict(weights.state_dict)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.precision.scaler.load_state_dict(saved["scaler"])
        self.precision.skipped_steps = saved["skipped_steps"]
        set_rng_state(saved["rng"])
        state = _fit_state_from(saved["fit"])
        log.info("resuming %s at epoch %d, step %d", self.out, state.epoch, state.loop.step)
        return state

    def files(self) -> dict[str, str]:
        """The weights files that exist, by name (``last``, ``best``)."""
        found = {}
        for name, stem in (("last", self.last), ("best", self.best)):
            if checkpoint_paths(stem)[0].exists():
                found[name] = str(checkpoint_paths(stem)[0])
        return found


def check_resumable(saved_config: Mapping[str, Any], config: TrainConfig) -> None:
    """Raise ``CheckpointError`` naming every field that differs, unless it is in :data:`RESUMABLE_CHANGES`."""
    now = config.to_dict()
    differ = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved_config.get(k)]
    if differ:
        detail = ", ".join(f"{k}: {saved_config.get(k)!r} -> {now[k]!r}" for k in differ)
        raise CheckpointError(f"cannot resume: the recipe differs from the checkpoint's ({detail}); "
                              f"only {', '.join(RESUMABLE_CHANGES)} may change")


def _fit_state_dict(state: FitState) -> dict[str, Any]:
    """The loop's state as the ``fit`` entry of the training state (the history as JSON text)."""
    return {"epoch": state.epoch, "loop": asdict(state.loop), "best_score": state.best_score,
            "best_epoch": state.best_epoch, "history": json.dumps(state.history), "train_seconds": state.train_seconds}


def _fit_state_from(saved: Mapping[str, Any]) -> FitState:
    """The inverse of :func:`_fit_state_dict`."""
    return FitState(epoch=saved["epoch"], loop=LoopState(**saved["loop"]), best_score=saved["best_score"],
                    best_epoch=saved["best_epoch"], history=json.loads(saved["history"]),
                    train_seconds=saved["train_seconds"])
