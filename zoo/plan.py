"""What a training plan holds: the :class:`Plan` that :func:`zoo.planner.plan_recipe` derives, and its text form.

Every choice carries a one-line reason; :func:`format_plan` prints each choice with its value and reason, and
:meth:`Plan.columns` gives the flat fields a benchmark row records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from zoo.budget import ResolvedBudget

__all__ = ["PLAN_VERSION", "Augmentation", "Evaluation", "Plan", "Sampling", "Size", "format_plan"]

PLAN_VERSION = 2

Size = tuple[int, int]


@dataclass(frozen=True)
class Sampling:
    """How training patches are drawn: ``whole`` images (padded) or random native-scale ``crop``s."""

    mode: Literal["whole", "crop"]
    foreground_share: float
    foreground_classes: tuple[int, ...]
    pad_label: int


@dataclass(frozen=True)
class Augmentation:
    """Random flips, 90-degree rotations and scale jitter applied to training patches."""

    hflip: bool
    vflip: bool
    rot90: bool
    scale_jitter: tuple[float, float]


@dataclass(frozen=True)
class Evaluation:
    """How val/test images are predicted and scored (always at native resolution)."""

    mode: Literal["whole", "sliding"]
    window: Size
    overlap: float
    blend: Literal["gaussian", "constant"]
    roi: bool
    input_scale: float


@dataclass(frozen=True)
class Plan:
    """A training recipe derived from a fingerprint, with a one-line reason per choice.

    Attributes:
        version: :data:`PLAN_VERSION`.
        dataset: the dataset's name.
        fingerprint: the fingerprint's identity hash.
        device: the device kind planned for.
        model_stride: the model's required multiple for H and W.
        patch_size: training patch ``(H, W)`` at the training scale.
        whole_image: every (resized) image fits the patch.
        batch_size: patches per step.
        resize: scale applied to images before training and prediction (1.0: native).
        sampling, augmentation, loss, evaluation: see their types.
        budget: the budget resolved into steps.
        reasons: ``(choice, reason)`` pairs for patch, resize, batch, sampling, augmentation, loss, evaluation
            and budget.
    """

    version: int
    dataset: str
    fingerprint: str
    device: str
    model_stride: int
    patch_size: Size
    whole_image: bool
    batch_size: int
    resize: float
    sampling: Sampling
    augmentation: Augmentation
    loss: str
    evaluation: Evaluation
    budget: ResolvedBudget
    reasons: tuple[tuple[str, str], ...]

    def reason(self, choice: str) -> str:
        """The reason given for ``choice`` (``patch``, ``batch``, ...)."""
        return dict(self.reasons)[choice]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``reasons`` becomes a mapping."""
        out = asdict(self)
        out["reasons"] = dict(self.reasons)
        return out

    def columns(self) -> dict[str, Any]:
        """The flat fields a benchmark row records."""
        h, w = self.patch_size
        return {"plan_version": self.version, "patch_size": f"{h}x{w}", "batch_size": self.batch_size,
                "resize": self.resize, "sampling": self.sampling.mode, "eval_mode": self.evaluation.mode,
                "budget_kind": self.budget.kind, "budget_value": self.budget.value, "steps": self.budget.steps,
                "train_tflops": round(self.budget.tflops, 3)}


def _values(plan: Plan) -> dict[str, str]:
    h, w = plan.patch_size
    aug = plan.augmentation
    flips = "+".join(n for n, on in (("hflip", aug.hflip), ("vflip", aug.vflip), ("rot90", aug.rot90)) if on)
    ev = plan.evaluation
    return {
        "patch": f"{h}x{w}" + (" (whole image)" if plan.whole_image else ""),
        "resize": "none (native)" if plan.resize == 1.0 else f"x{plan.resize:g}",
        "batch": str(plan.batch_size),
        "sampling": plan.sampling.mode + (f", {plan.sampling.foreground_share:.0%} foreground"
                                          if plan.sampling.mode == "crop" else ""),
        "augmentation": flips or "none",
        "loss": plan.loss,
        "evaluation": ev.mode + (f" {ev.window[0]}x{ev.window[1]}/{ev.overlap:g} {ev.blend}"
                                 if ev.mode == "sliding" else "") + (", ROI" if ev.roi else ""),
        "budget": f"{plan.budget.steps} steps",
    }


def format_plan(plan: Plan) -> str:
    """The plan as text: a header, then one line per choice with its value and the reason."""
    values = _values(plan)
    width = max(len(v) for v in values.values())
    header = (f"plan v{plan.version} for {plan.dataset!r} (device {plan.device}, model stride {plan.model_stride}, "
              f"{plan.budget.gmacs_per_image:.3g} GMACs per patch)")
    lines = [header]
    for choice, reason in plan.reasons:
        lines.append(f"  {choice:<12} {values[choice]:<{width}}  {reason}")
    return "\n".join(lines)
