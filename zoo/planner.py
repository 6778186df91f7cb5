"""Recipes planned from the data: a dataset's fingerprint (plus a model's cost and a budget) -> a training plan.

nnU-Net's lesson is that the recipe must be derived from the dataset. :func:`plan_recipe` applies the rules
below to a :class:`~zoo.fingerprint.Fingerprint`; nothing depends on a dataset's name, so a user's own folder
gets a plan from the same rules. Every choice comes with a one-line reason (:func:`format_plan`).

- **Structure.** Structure classes are all classes but a dominant one (>= 50% of the labelled pixels, the
  background). A class with >= 0.5% of the pixels and a median thickness <= 8 px is *thin*. The typical
  structure needs ``min(2 x typical extent, 16 x thickness)`` px of patch: the object with as much context
  again, or, for long thin structures, a window of 16 widths around them.
- **Patch** (native scale, sides multiples of the model's stride; square when 90-degree rotations are planned).
  Start from the median image padded up to the stride (the whole image) and shrink by one stride at a time
  until ``2 x`` the patch's GMACs fit the device's per-step limit and, for compute or time budgets, the budget
  buys at least 250 steps at batch 2; never below what the typical structure needs (then the conflict is
  stated). The whole image is used when every image fits the patch.
- **Resize** only when the images exceed the patch (or the whole image is needed but does not fit), no class
  is thin, every structure is large relative to the image (typical extent >= 25% of its shorter side); by the
  largest factor (in steps of 0.05) at which the whole image fits, keeping the thinnest structure >= 16 px
  thick, and only if that factor is below 0.8. Thin structures are never resized.
- **Resize for a small budget.** A compute or time budget that would show the training set (its pixels) fewer
  than 100 times at native scale starves the model: then images are shrunk by the largest factor (steps of 0.05,
  below 0.8) at which it shows them 100 times, provided every *major* structure class (>= 2% of the pixels) is
  thick (> 8 px; thin major structures are never resized), large relative to the image (as above), and stays
  >= 8 px thick. Minor classes that would fall under 2 px are named as given up at this budget. (Measured: on a
  street-scene set whose only thin class is a 1%-share pole, a native-scale recipe that saw the set 7 times scored
  a mean Dice of 0.28 against 0.43 for one that saw 19-times-smaller copies 126 times at the same compute.)
- **Batch**: as many patches as the per-step limit holds (2 to the device's maximum, at most the number of
  items), then fewer while a compute or time budget would buy under 250 steps.
- **Sampling**: whole images when they all fit the patch (padded with the void label), else random crops at
  native scale, a third of them centred on a pixel of a structure class (nnU-Net's foreground oversampling).
- **Augmentation**: horizontal and vertical flips and 90-degree rotations unless orientation matters, which a
  hint says or the layout shows (a class with >= 1% of the pixels having >= 75% of them in one half of the
  images): then no vertical flips or rotations (and no horizontal flips for a left/right layout). Mild scale
  jitter 0.9-1.1 throughout.
- **Loss**: Dice + cross-entropy as nnU-Net (``dice+bce`` for two classes, ``dice+ce`` otherwise).
- **Evaluation** at native resolution: whole images when they fit the patch, else sliding windows of the
  patch size, overlap 0.5, gaussian blending (:func:`zoo.inference.sliding_window_logits`); void pixels are
  never scored and, with a region of interest, only pixels inside it are.
- **Budget**: see :mod:`zoo.budget`; a compute budget turns into steps per model, so heavier models get fewer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from zoo.budget import Budget, resolve_budget
from zoo.data.patches import PAD_LABEL
from zoo.errors import OptionError, check_choice
from zoo.fingerprint import ClassStats, Fingerprint
from zoo.plan import PLAN_VERSION, Augmentation, Evaluation, Plan, Sampling, Size, format_plan

__all__ = ["DEFAULT_BUDGET", "DEVICE_LIMITS", "DeviceLimits", "Plan", "PlanHints", "format_plan", "plan_recipe"]

DEFAULT_BUDGET = Budget("tflops", 100.0)
MIN_BATCH, MIN_STEPS = 2, 250
THIN_PX, THIN_SHARE = 8.0, 0.005
CONTEXT, THIN_CONTEXT = 2.0, 16.0
LARGE_EXTENT, RESIZE_MIN_THICKNESS, RESIZE_BELOW = 0.25, 16.0, 0.8
MIN_PASSES, MAJOR_SHARE, BUDGET_MIN_THICKNESS, VANISH_PX = 100.0, 0.02, 8.0, 2.0
LAYOUT_SHARE, LAYOUT_HALF = 0.01, 0.75
FOREGROUND_SHARE = 1 / 3
EVAL_OVERLAP = 0.5
VOID_FALLBACK = PAD_LABEL  # the pad label for datasets without a void label (-1: never a class index)

CostFn = Callable[[int, int], float]


@dataclass(frozen=True)
class DeviceLimits:
    """What one training step may cost on a device (rough; pass measured values where known).

    Attributes:
        step_gmacs: forward GMACs of one step's batch (a proxy for activation memory and step time).
        max_batch: the largest batch worth using.
        tflops_per_second: sustained training throughput, to turn a minutes budget into compute.
    """

    step_gmacs: float
    max_batch: int
    tflops_per_second: float


#: cpu: 4 x 512 px through a 12-GMAC U-Net (48 GMACs) ran at 0.34 TFLOP/s (bf16) or 0.075 (AVX2) on 2 cores.
DEVICE_LIMITS = {"cpu": DeviceLimits(64.0, 16, 0.1), "cuda": DeviceLimits(2048.0, 64, 20.0),
                 "mps": DeviceLimits(256.0, 32, 2.0)}


@dataclass(frozen=True)
class PlanHints:
    """What a dataset may say about itself that the masks cannot show.

    Attributes:
        orientation_matters: ``True``: up and down differ (no vertical flips or rotations); ``False``: they do
            not; ``None``: judged from the class layout in the fingerprint.
    """

    orientation_matters: bool | None = None

    @classmethod
    def coerce(cls, hints: PlanHints | Mapping[str, Any] | None) -> PlanHints:
        """``hints`` as a :class:`PlanHints` (a mapping may use the field names only)."""
        if hints is None or isinstance(hints, PlanHints):
            return hints or cls()
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(hints) - set(known))
        if unknown:
            raise OptionError(f"unknown plan hints {unknown}; known: {', '.join(known)}")
        return cls(**hints)


# ----------------------------------------------------------------------------------------------------------------
# Rules


def _ceil_to(value: float, multiple: int) -> int:
    return max(multiple, multiple * math.ceil(value / multiple - 1e-9))


def _structure_classes(fp: Fingerprint) -> tuple[ClassStats, ...]:
    """All classes but a dominant background (>= 50% of the labelled pixels), in index order."""
    dominant = max(fp.classes, key=lambda c: c.pixel_share)
    return tuple(c for c in fp.classes if not (c is dominant and c.pixel_share >= 0.5) and c.pixel_share > 0)


def _thin(classes: tuple[ClassStats, ...]) -> list[ClassStats]:
    return [c for c in classes if c.pixel_share >= THIN_SHARE and c.median_thickness is not None
            and c.median_thickness <= THIN_PX]


def _need(classes: tuple[ClassStats, ...]) -> tuple[float, str]:
    """Patch side the typical structure needs, and which class sets it."""
    best, why = 0.0, "no structure measured"
    for c in classes:
        if c.pixel_share < THIN_SHARE or c.typical_extent is None or c.median_thickness is None:
            continue
        need = min(CONTEXT * c.typical_extent, THIN_CONTEXT * c.median_thickness)
        if need > best:
            best = need
            why = (f"{c.name}: {c.typical_extent:.0f} px across, {CONTEXT:g}x for context"
                   if need == CONTEXT * c.typical_extent else
                   f"{c.name}: {c.median_thickness:g} px thick, {THIN_CONTEXT:g} widths of context")
    return best, why


def _orientation(fp: Fingerprint, hints: PlanHints) -> tuple[bool, bool, str]:
    """(vertical layout, horizontal layout, why)."""
    if hints.orientation_matters is not None:
        state = "matters" if hints.orientation_matters else "does not matter"
        return hints.orientation_matters, False, f"the dataset says orientation {state}"
    vertical = [c for c in fp.classes if c.pixel_share >= LAYOUT_SHARE and c.top_share is not None
                and max(c.top_share, 1 - c.top_share) >= LAYOUT_HALF]
    horizontal = [c for c in fp.classes if c.pixel_share >= LAYOUT_SHARE and c.left_share is not None
                  and max(c.left_share, 1 - c.left_share) >= LAYOUT_HALF]
    if not vertical and not horizontal:
        return False, False, "no class keeps to one half of the images: orientation-free"
    parts = [f"{c.name} {100 * max(c.top_share or 0, 1 - (c.top_share or 0)):.0f}% in one vertical half"
             for c in vertical[:2]]
    parts += [f"{c.name} {100 * max(c.left_share or 0, 1 - (c.left_share or 0)):.0f}% in one horizontal half"
              for c in horizontal[:2]]
    return bool(vertical), bool(horizontal), "the layout has an orientation (" + ", ".join(parts) + ")"


def _augmentation(fp: Fingerprint, hints: PlanHints) -> tuple[Augmentation, str]:
    vertical, horizontal, why = _orientation(fp, hints)
    aug = Augmentation(hflip=not horizontal, vflip=not vertical, rot90=not (vertical or horizontal),
                       scale_jitter=(0.9, 1.1))
    kinds = [n for n, on in (("horizontal flips", aug.hflip), ("vertical flips", aug.vflip),
                             ("90-degree rotations", aug.rot90)) if on]
    return aug, f"{', '.join(kinds) or 'no flips'} and mild scale jitter 0.9-1.1: {why}"


@dataclass(frozen=True)
class _Context:
    """What the patch and batch rules need, gathered once."""

    fp: Fingerprint
    stride: int
    cost: CostFn
    budget: Budget
    limits: DeviceLimits
    square: bool
    min_steps: int = MIN_STEPS

    def steps(self, size: Size, batch: int) -> int:
        return resolve_budget(self.budget, gmacs_per_image=self.cost(*size), batch_size=batch,
                              train_items=self.fp.items, tflops_per_second=self.limits.tflops_per_second).steps

    def fits(self, size: Size) -> bool:
        if MIN_BATCH * self.cost(*size) > self.limits.step_gmacs:
            return False
        return self.budget.kind in ("steps", "epochs") or self.steps(size, MIN_BATCH) >= self.min_steps


def _patch(ctx: _Context, image: Size, need: float) -> tuple[Size, bool]:
    """The largest stride-multiple patch up to ``image`` that fits, not below ``need``; and whether it fits."""
    h, w = _ceil_to(image[0], ctx.stride), _ceil_to(image[1], ctx.stride)
    if ctx.square:
        h = w = max(h, w)
    floor_h, floor_w = min(h, _ceil_to(need, ctx.stride)), min(w, _ceil_to(need, ctx.stride))
    while not ctx.fits((h, w)):
        can_h, can_w = h - ctx.stride >= floor_h, w - ctx.stride >= floor_w
        if ctx.square and can_h and can_w:
            h = w = h - ctx.stride
        elif not ctx.square and can_h and (h >= w or not can_w):
            h -= ctx.stride
        elif not ctx.square and can_w:
            w -= ctx.stride
        else:
            return (h, w), False
    return (h, w), True


def _batch(ctx: _Context, patch: Size) -> tuple[int, str]:
    cost = ctx.cost(*patch)
    batch = max(MIN_BATCH, min(ctx.limits.max_batch, int(ctx.limits.step_gmacs // cost), ctx.fp.items))
    why = (f"as many patches as {ctx.limits.step_gmacs:g} GMACs per step hold at {cost:.3g} GMACs each "
           f"(2 to {ctx.limits.max_batch}, at most the {ctx.fp.items} items)")
    if ctx.budget.kind in ("tflops", "minutes"):
        first = batch
        while batch > MIN_BATCH and ctx.steps(patch, batch) < ctx.min_steps:
            batch -= 1
        if batch < first:
            why += f", lowered from {first} so the budget buys {ctx.min_steps} steps" + (
                "" if ctx.steps(patch, batch) >= ctx.min_steps else " (as near as it can)")
    return batch, why


def _scaled(fp: Fingerprint, scale: float) -> tuple[Size, Size]:
    """(median, max) image size after scaling."""
    return ((round(fp.heights[1] * scale), round(fp.widths[1] * scale)),
            (round(fp.heights[2] * scale), round(fp.widths[2] * scale)))


def _whole_fits(ctx: _Context, scale: float) -> bool:
    h, w = _scaled(ctx.fp, scale)[0]
    h, w = _ceil_to(h, ctx.stride), _ceil_to(w, ctx.stride)
    return ctx.fits((max(h, w), max(h, w)) if ctx.square else (h, w))


def _resize(ctx: _Context, patch: Size, fits: bool, structure: tuple[ClassStats, ...]) -> tuple[float, str]:
    """The scale factor for images (1.0: native) and why."""
    median, largest = _scaled(ctx.fp, 1.0)
    if fits and largest[0] <= patch[0] and largest[1] <= patch[1]:
        return 1.0, "native scale: every image fits the patch"
    thin = _thin(structure)
    if thin:
        return 1.0, (f"native scale: thin structures ({thin[0].name}, {thin[0].median_thickness:g} px) would "
                     f"vanish if shrunk; never resized")
    measured = [c for c in structure if c.typical_extent is not None and c.median_thickness is not None]
    if not measured:
        return 1.0, "native scale: no structure measured"
    smallest = min(measured, key=lambda c: c.typical_extent or 0.0)
    thinnest = min(measured, key=lambda c: c.median_thickness or 0.0)
    if (smallest.typical_extent or 0) < LARGE_EXTENT * min(median):
        return 1.0, (f"native scale: structures are small relative to the image ({smallest.name} "
                     f"{smallest.typical_extent:.0f} px in {min(median)} px)")
    lowest = min(1.0, RESIZE_MIN_THICKNESS / (thinnest.median_thickness or RESIZE_MIN_THICKNESS))
    if lowest >= RESIZE_BELOW:
        return 1.0, (f"native scale: shrinking by {RESIZE_BELOW:g} or more would leave {thinnest.name} under "
                     f"{RESIZE_MIN_THICKNESS:g} px thick")
    scale = 1.0
    while scale - 0.05 >= lowest - 1e-9 and not _whole_fits(ctx, scale):
        scale = round(scale - 0.05, 2)
    if scale >= RESIZE_BELOW:
        return 1.0, f"native scale: fitting the whole image would shrink it only to x{scale:.2f}"
    return scale, (f"x{scale:.2f}: structures are large ({smallest.name} {smallest.typical_extent:.0f} px in "
                   f"{min(median)} px) and thick ({thinnest.name} stays {scale * (thinnest.median_thickness or 0):.0f}"
                   f" px), so the whole image fits the device and budget")


def _passes(ctx: _Context, scale: float, need: float) -> float:
    """How many times a compute or time budget shows the training set's pixels at ``scale``."""
    median, _ = _scaled(ctx.fp, scale)
    patch, _ = _patch(ctx, median, need * scale)
    batch, _ = _batch(ctx, patch)
    area = median[0] * median[1]
    return ctx.steps(patch, batch) * batch * min(patch[0] * patch[1], area) / (ctx.fp.items * area)


def _budget_resize(ctx: _Context, need: float, structure: tuple[ClassStats, ...]) -> tuple[float, str] | None:
    """A smaller scale when the budget starves native-scale training (None: the rule does not apply)."""
    if ctx.budget.kind not in ("tflops", "minutes") or not ctx.fp.items:
        return None
    native = _passes(ctx, 1.0, need)
    major = [c for c in structure if c.pixel_share >= MAJOR_SHARE and c.median_thickness and c.typical_extent]
    if native >= MIN_PASSES or not major:
        return None
    starved = f"the budget shows the training set {native:.1f} times (< {MIN_PASSES:g})"
    thin = [c for c in major if (c.median_thickness or 0) <= THIN_PX]
    if thin:
        return 1.0, (f"native scale: thin structures ({thin[0].name}, {thin[0].median_thickness:g} px) would "
                     f"vanish if shrunk; never resized, although {starved}")
    median = min(_scaled(ctx.fp, 1.0)[0])
    smallest = min(major, key=lambda c: c.typical_extent or 0.0)
    if (smallest.typical_extent or 0) < LARGE_EXTENT * median:
        return 1.0, (f"native scale: structures are small relative to the image ({smallest.name} "
                     f"{smallest.typical_extent:.0f} px in {median} px), although {starved}")
    thinnest = min(major, key=lambda c: c.median_thickness or 0.0)
    floor = BUDGET_MIN_THICKNESS / (thinnest.median_thickness or BUDGET_MIN_THICKNESS)
    scale = 1.0
    while scale - 0.05 >= floor - 1e-9 and _passes(ctx, scale, need) < MIN_PASSES:
        scale = round(scale - 0.05, 2)
    if scale >= RESIZE_BELOW:
        return 1.0, f"native scale: {starved}, but shrinking below x{RESIZE_BELOW:g} would thin {thinnest.name}"
    lost = [f"{c.name} ({c.pixel_share:.1%}, {c.median_thickness:g} px)" for c in structure
            if c.median_thickness is not None and c.median_thickness * scale < VANISH_PX]
    given_up = f"; given up at this budget (under {VANISH_PX:g} px): {', '.join(lost)}" if lost else ""
    return scale, (f"x{scale:.2f} for the budget: at native scale {starved}, at x{scale:.2f} "
                   f"{_passes(ctx, scale, need):.0f} times; every class with >= {MAJOR_SHARE:.0%} of the pixels "
                   f"stays >= {scale * (thinnest.median_thickness or 0):.0f} px thick ({thinnest.name}){given_up}")


def _patch_reason(ctx: _Context, patch: Size, whole: bool, fits: bool, image: Size, need_why: str) -> str:
    cost = ctx.cost(*patch)
    limits = (f"{MIN_BATCH} x {cost:.3g} GMACs within {ctx.limits.step_gmacs:g} per step"
              + ("" if ctx.budget.kind in ("steps", "epochs")
                 else f", {ctx.steps(patch, MIN_BATCH)} steps at batch {MIN_BATCH} from the budget"))
    what = "whole images" if whole else f"{patch[0]}x{patch[1]} native-scale crops"
    if not fits:
        return (f"{what}, the least the typical structure needs ({need_why}), although the device or budget "
                f"would want smaller ({limits})")
    shape = " (square for 90-degree rotations)" if ctx.square and image[0] != image[1] else ""
    padded = _ceil_to(image[0], ctx.stride), _ceil_to(image[1], ctx.stride)
    if whole or patch == (max(padded), max(padded)) or patch == padded:
        tail = "" if whole else "; larger images are cropped"
        return (f"{what}: the median {image[0]}x{image[1]} image padded to stride {ctx.stride}{shape} fits "
                f"({limits}){tail}")
    return (f"{what}{shape}: the largest stride-{ctx.stride} patch that fits ({limits}); it holds the typical "
            f"structure ({need_why})")


def _sampling(fp: Fingerprint, whole: bool, structure: tuple[ClassStats, ...]) -> tuple[Sampling, str]:
    pad = fp.ignore_index if fp.ignore_index is not None else VOID_FALLBACK
    padding = (f"the void label {pad}" if fp.ignore_index is not None else
               f"label {pad}, which the training loss ignores (the dataset has no void label)")
    if whole:
        return Sampling("whole", 0.0, (), pad), f"whole images; those smaller than the patch are padded with {padding}"
    classes = tuple(c.index for c in structure)
    names = ", ".join(c.name for c in structure[:4]) + (" ..." if len(structure) > 4 else "")
    why = (f"random native-scale crops, {FOREGROUND_SHARE:.0%} centred on a {names} pixel (nnU-Net oversamples "
           f"foreground); images smaller than the patch are padded with {padding}")
    return Sampling("crop", FOREGROUND_SHARE, classes, pad), why


def _evaluation(fp: Fingerprint, patch: Size, scale: float) -> tuple[Evaluation, str]:
    _, largest = _scaled(fp, scale)
    sliding = largest[0] > patch[0] or largest[1] > patch[1]
    ev = Evaluation("sliding" if sliding else "whole", patch, EVAL_OVERLAP, "gaussian", fp.roi, scale)
    how = (f"sliding {patch[0]}x{patch[1]} windows, overlap {EVAL_OVERLAP:g}, gaussian blending, where an image "
           f"exceeds the patch" if sliding else "whole images (they fit the patch)")
    where = (f"; scored inside the region of interest ({fp.roi_share:.0%} of pixels)" if fp.roi
             else "; void pixels not scored" if fp.ignore_index is not None and fp.ignore_share > 0 else "")
    rescale = f"; inputs scaled x{scale:g}, logits resized back" if scale != 1.0 else ""
    return ev, f"native resolution: {how}{rescale}{where}"


def _loss(fp: Fingerprint) -> tuple[str, str]:
    smallest = min(fp.classes, key=lambda c: c.pixel_share)
    loss = "dice+bce" if fp.num_classes == 2 else "dice+ce"
    return loss, (f"Dice + cross-entropy (nnU-Net's default): Dice weighs classes evenly (the rarest, "
                  f"{smallest.name}, has {smallest.pixel_share:.1%} of the pixels)")


# ----------------------------------------------------------------------------------------------------------------
# The planner


def _cost_fn(gmacs: float | CostFn) -> CostFn:
    if callable(gmacs):
        return gmacs
    if not gmacs > 0:
        raise OptionError(f"gmacs={gmacs!r} must be positive GMACs per pixel or a function (h, w) -> GMACs")
    per_pixel = float(gmacs)
    return lambda h, w: per_pixel * h * w


def plan_recipe(fingerprint: Fingerprint, *, gmacs: float | CostFn, model_stride: int = 32,
                budget: Budget = DEFAULT_BUDGET, device: str = "cpu",
                hints: PlanHints | Mapping[str, Any] | None = None, limits: DeviceLimits | None = None,
                min_steps: int = MIN_STEPS) -> Plan:
    """Derive a training recipe from a dataset fingerprint (the rules are in the module docstring).

    Args:
        fingerprint: the train split's :class:`~zoo.fingerprint.Fingerprint`.
        gmacs: the model's cost: GMACs per pixel (e.g. ``count_gmacs(model, c, 256) / 256**2`` from
            :mod:`zoo.costs`), or a function ``(h, w) -> GMACs`` of one forward pass on one ``h x w`` image.
        model_stride: the multiple H and W must have for the model (32 for a depth-5 U-Net).
        budget: the training budget.
        device: ``cpu``, ``cuda`` (``cuda:N``) or ``mps``: picks the :data:`DEVICE_LIMITS`.
        hints: facts the dataset states (``orientation_matters``).
        limits: overrides the device's limits (e.g. a measured throughput).
        min_steps: the fewest optimizer steps a compute or time budget should buy; patches and batches shrink
            towards it (a small budget, as for a smoke-test profile, may ask for fewer).

    Returns:
        The :class:`Plan`.

    Raises:
        OptionError: a bad stride, cost, hint or budget; UnknownNameError: an unknown device.
    """
    kind = check_choice("device", device.split(":")[0], DEVICE_LIMITS)
    if model_stride < 1:
        raise OptionError(f"model_stride={model_stride!r} must be a positive int")
    hint = PlanHints.coerce(hints)
    augmentation, aug_why = _augmentation(fingerprint, hint)
    if min_steps < 1:
        raise OptionError(f"min_steps={min_steps!r} must be a positive int")
    ctx = _Context(fingerprint, model_stride, _cost_fn(gmacs), budget, limits or DEVICE_LIMITS[kind],
                   square=augmentation.rot90, min_steps=min_steps)
    structure = _structure_classes(fingerprint)
    need, need_why = _need(structure)
    median, _ = _scaled(fingerprint, 1.0)
    patch, fits = _patch(ctx, median, need)
    scale, resize_why = _resize(ctx, patch, fits, structure)
    if scale == 1.0:
        scale, resize_why = _budget_resize(ctx, need, structure) or (scale, resize_why)
    if scale != 1.0:
        median, _ = _scaled(fingerprint, scale)
        patch, fits = _patch(ctx, median, need * scale)
    largest = _scaled(fingerprint, scale)[1]
    whole = largest[0] <= patch[0] and largest[1] <= patch[1]
    batch, batch_why = _batch(ctx, patch)
    resolved = resolve_budget(budget, gmacs_per_image=ctx.cost(*patch), batch_size=batch,
                              train_items=fingerprint.items, tflops_per_second=ctx.limits.tflops_per_second)
    sampling, sampling_why = _sampling(fingerprint, whole, structure)
    evaluation, eval_why = _evaluation(fingerprint, patch, scale)
    loss, loss_why = _loss(fingerprint)
    budget_why = (f"{budget}: {resolved.steps} steps x batch {batch} x {resolved.gmacs_per_image:.3g} GMACs x 6 = "
                  f"{resolved.tflops:.3g} TFLOPs")
    reasons = (("patch", _patch_reason(ctx, patch, whole, fits, median, need_why)), ("resize", resize_why),
               ("batch", batch_why), ("sampling", sampling_why), ("augmentation", aug_why), ("loss", loss_why),
               ("evaluation", eval_why), ("budget", budget_why))
    return Plan(version=PLAN_VERSION, dataset=fingerprint.dataset, fingerprint=fingerprint.identity, device=kind,
                model_stride=model_stride, patch_size=patch, whole_image=whole, batch_size=batch, resize=scale,
                sampling=sampling, augmentation=augmentation, loss=loss, evaluation=evaluation, budget=resolved,
                reasons=reasons)
