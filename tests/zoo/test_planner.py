"""The planner's rules, on hand-made fingerprints, a user folder of mixed-size images and the shared real data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_shared_data
from zoo.budget import Budget
from zoo.errors import OptionError, UnknownNameError
from zoo.fingerprint import ClassStats, Fingerprint, fingerprint_dataset
from zoo.planner import DeviceLimits, PlanHints, format_plan, plan_recipe

UNET_W16 = 4.62e-5  # GMACs per pixel of `unet` width 16 (12.1 GMACs at 512 x 512)


def _cls(index: int, name: str, share: float, *, extent: float, thickness: float, top: float = 0.5,
         left: float = 0.5) -> ClassStats:
    return ClassStats(index=index, name=name, pixel_share=share, image_share=1.0, objects=10,
                      median_area=extent ** 2 / 2, median_extent=extent, typical_area=extent ** 2 / 2,
                      typical_extent=extent, median_thickness=thickness, top_share=top, left_share=left)


def _fp(size: tuple[int, int] = (584, 565), *, largest: tuple[int, int] | None = None, thickness: float = 4.0,
        extent: float = 500.0, roi: bool = False, items: int = 20, top: float = 0.5) -> Fingerprint:
    h, w = size
    big = largest or size
    return Fingerprint(
        version=1, dataset="toy", identity="0" * 16, split="train", items=items, channels=3, num_classes=2,
        heights=(h, h, big[0]), widths=(w, w, big[1]), intensity_mean=(0.5,) * 3, intensity_std=(0.2,) * 3,
        percentiles=(0.5, 50.0, 99.5), intensity_percentiles=((0.0,) * 3, (0.5,) * 3, (1.0,) * 3),
        classes=(_cls(0, "background", 0.88, extent=max(size), thickness=40.0, top=1 - top),
                 _cls(1, "thing", 0.12, extent=extent, thickness=thickness, top=top)),
        ignore_index=255 if roi else None, ignore_share=0.3 if roi else 0.0, roi=roi, roi_share=0.7 if roi else 1.0)


def test_small_images_are_used_whole():
    plan = plan_recipe(_fp((64, 64), thickness=10, extent=25), gmacs=UNET_W16, budget=Budget("tflops", 5))
    assert plan.patch_size == (64, 64) and plan.whole_image and plan.resize == 1.0
    assert plan.sampling.mode == "whole" and plan.evaluation.mode == "whole"
    assert "whole images" in plan.reason("patch")


@pytest.mark.parametrize("stride", [8, 16, 32, 64])
@pytest.mark.parametrize(("size", "budget"), [((584, 565), "135 tflops"), ((1040, 1388), "20 tflops"),
                                              ((100, 700), "300 steps"), ((37, 45), "2 tflops")])
def test_patch_is_a_multiple_of_the_stride(stride, size, budget):
    plan = plan_recipe(_fp(size, extent=60, thickness=12), gmacs=UNET_W16, model_stride=stride,
                       budget=Budget.parse(budget))
    assert all(side % stride == 0 and side >= stride for side in plan.patch_size)
    assert plan.evaluation.window == plan.patch_size
    assert plan.batch_size >= 2


def test_thin_structures_are_never_resized_but_large_thick_ones_may_be():
    tight = DeviceLimits(step_gmacs=8.0, max_batch=16, tflops_per_second=0.1)
    thin = plan_recipe(_fp((2000, 2000), thickness=3.0, extent=1900), gmacs=UNET_W16, limits=tight)
    assert thin.resize == 1.0 and "thin" in thin.reason("resize")
    assert thin.patch_size[0] < 2000 and thin.evaluation.mode == "sliding"
    # pets-like: the object fills much of the image and is very thick; the image does not fit the device
    large = plan_recipe(_fp((500, 500), thickness=150.0, extent=400), gmacs=UNET_W16, limits=tight)
    assert large.resize < 0.8 and large.whole_image and large.evaluation.input_scale == large.resize
    small = plan_recipe(_fp((2000, 2000), thickness=30.0, extent=40), gmacs=UNET_W16, limits=tight)
    assert small.resize == 1.0 and "small relative" in small.reason("resize")


@pytest.mark.parametrize("tflops", [20.0, 135.0])
def test_compute_budget_is_respected_within_ten_percent_per_model(tflops):
    light = plan_recipe(_fp(), gmacs=UNET_W16, budget=Budget("tflops", tflops))
    heavy = plan_recipe(_fp(), gmacs=2.4 * UNET_W16, budget=Budget("tflops", tflops))
    for plan, per_pixel in ((light, UNET_W16), (heavy, 2.4 * UNET_W16)):
        h, w = plan.patch_size
        spent = plan.budget.steps * plan.batch_size * per_pixel * h * w * 6 / 1000
        assert 0.9 * tflops <= spent <= tflops
        assert plan.budget.kind == "tflops" and plan.budget.value == tflops
    heavy_images = heavy.budget.images * heavy.patch_size[0] * heavy.patch_size[1]
    light_images = light.budget.images * light.patch_size[0] * light.patch_size[1]
    assert heavy_images < light_images  # fewer pixels seen for the model with 2.4x the MACs


def test_a_callable_cost_is_used_as_given():
    plan = plan_recipe(_fp(), gmacs=lambda h, w: 1e-4 * h * w + 1.0, budget=Budget("steps", 100))
    h, w = plan.patch_size
    assert plan.budget.gmacs_per_image == pytest.approx(1e-4 * h * w + 1.0) and plan.budget.steps == 100


def test_fov_is_honoured_in_scoring():
    plan = plan_recipe(_fp(roi=True), gmacs=UNET_W16)
    assert plan.evaluation.roi and "inside the region of interest" in plan.reason("evaluation")
    assert plan.sampling.pad_label == 255
    assert not plan_recipe(_fp(), gmacs=UNET_W16).evaluation.roi


def test_orientation_from_the_layout_and_from_hints():
    free = plan_recipe(_fp(), gmacs=UNET_W16).augmentation
    assert free.hflip and free.vflip and free.rot90
    street = plan_recipe(_fp(top=0.95), gmacs=UNET_W16)
    assert street.augmentation.hflip and not street.augmentation.vflip and not street.augmentation.rot90
    assert "orientation" in street.reason("augmentation")
    hinted = plan_recipe(_fp(), gmacs=UNET_W16, hints={"orientation_matters": True}).augmentation
    assert hinted.hflip and not hinted.vflip and not hinted.rot90
    overruled = plan_recipe(_fp(top=0.95), gmacs=UNET_W16, hints=PlanHints(orientation_matters=False))
    assert overruled.augmentation.vflip
    with pytest.raises(OptionError, match="orientation_matters"):
        plan_recipe(_fp(), gmacs=UNET_W16, hints={"upright": True})


def test_rotations_make_the_patch_square_and_a_layout_keeps_it_rectangular():
    assert plan_recipe(_fp((360, 480)), gmacs=UNET_W16).patch_size == (480, 480)
    assert plan_recipe(_fp((360, 480), top=0.95), gmacs=UNET_W16).patch_size == (384, 480)


def test_crops_oversample_the_structure_classes_and_evaluation_slides():
    plan = plan_recipe(_fp((256, 320), largest=(1040, 1388), thickness=20, extent=50), gmacs=UNET_W16)
    assert plan.sampling.mode == "crop" and plan.sampling.foreground_classes == (1,)
    assert plan.sampling.foreground_share == pytest.approx(1 / 3)
    assert plan.evaluation.mode == "sliding" and plan.evaluation.blend == "gaussian"


def test_a_budget_too_small_for_the_structure_says_so_or_resizes():
    scene = _fp((360, 480), extent=480, thickness=9, top=0.95)  # large but not thick enough to shrink
    plan = plan_recipe(scene, gmacs=UNET_W16, budget=Budget("tflops", 0.5))
    assert plan.resize == 1.0 and "would thin thing" in plan.reason("resize")
    assert plan.patch_size == (160, 160) and "least the typical structure needs" in plan.reason("patch")
    thick = plan_recipe(_fp((360, 480), extent=480, thickness=150, top=0.95), gmacs=UNET_W16,
                        budget=Budget("tflops", 2))
    assert thick.resize < 0.8 and thick.whole_image and "whole image fits" in thick.reason("resize")


def _scene(*, pole_share: float = 0.01, road_thickness: float = 40.0) -> Fingerprint:
    """A street-scene-like set: large thick classes and a thin pole of ``pole_share``."""
    fp = _fp((360, 480), items=90, top=0.95)
    classes = (_cls(0, "building", 0.45, extent=300, thickness=80.0),
               _cls(1, "road", 0.45, extent=480, thickness=road_thickness, top=0.0),
               _cls(2, "car", 0.09 - pole_share, extent=150, thickness=60.0),
               _cls(3, "pole", pole_share, extent=100, thickness=3.0))
    return replace(fp, num_classes=4, classes=classes)


def test_a_starving_budget_shrinks_images_unless_a_major_structure_is_thin_or_small():
    small = plan_recipe(_scene(), gmacs=UNET_W16, budget=Budget("tflops", 30))
    assert 0.2 <= small.resize < 0.8 and "for the budget" in small.reason("resize")
    assert "pole (1.0%, 3 px)" in small.reason("resize") and "given up" in small.reason("resize")
    assert small.resize * 40.0 >= 8.0  # the thinnest major class keeps 8 px
    seen = small.budget.images * small.patch_size[0] * small.patch_size[1] / (90 * 360 * 480 * small.resize ** 2)
    assert 95 <= seen <= 200  # about 100 passes over the (shrunk) training set
    large = plan_recipe(_scene(), gmacs=UNET_W16, budget=Budget("tflops", 5000))
    assert large.resize == 1.0  # enough compute: native scale
    steps = plan_recipe(_scene(), gmacs=UNET_W16, budget=Budget("steps", 100))
    assert steps.resize == 1.0  # a steps budget is the user's choice, not starvation
    thin_major = plan_recipe(_scene(pole_share=0.05), gmacs=UNET_W16, budget=Budget("tflops", 8))
    assert thin_major.resize == 1.0 and "never resized" in thin_major.reason("resize")
    floor = plan_recipe(_scene(road_thickness=16.0), gmacs=UNET_W16, budget=Budget("tflops", 8))
    assert floor.resize == 0.5 and "stays >= 8 px thick (road)" in floor.reason("resize")  # however starved
    objects = replace(_scene(), classes=tuple(replace(c, typical_extent=40.0) for c in _scene().classes))
    assert plan_recipe(objects, gmacs=UNET_W16, budget=Budget("tflops", 8)).resize == 1.0  # small objects


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="cpu"):
        plan_recipe(_fp(), gmacs=UNET_W16, device="tpu")
    with pytest.raises(OptionError, match="gmacs"):
        plan_recipe(_fp(), gmacs=0.0)
    with pytest.raises(OptionError, match="model_stride"):
        plan_recipe(_fp(), gmacs=UNET_W16, model_stride=0)
    assert plan_recipe(_fp(), gmacs=UNET_W16, device="cuda:1").device == "cuda"


def test_format_and_dict():
    plan = plan_recipe(_fp(roi=True), gmacs=UNET_W16)
    text = format_plan(plan)
    lines = text.splitlines()
    assert lines[0].startswith("plan v2 for 'toy'") and len(lines) == 1 + len(plan.reasons)
    for (choice, reason), line in zip(plan.reasons, lines[1:]):
        assert line.split()[0] == choice and line.endswith(reason) and "\n" not in reason
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["reasons"]["patch"] == plan.reason("patch") and data["version"] == 2
    assert set(plan.columns()) >= {"plan_version", "patch_size", "eval_mode", "budget_kind", "budget_value",
                                   "steps"}


def _write_folder(root, sizes):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\ncell\n")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        mask = np.zeros((h, w), np.uint8)
        for _ in range(4):
            cy, cx = rng.integers(12, h - 12), rng.integers(12, w - 12)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = 1
        image = (rng.integers(0, 60, (h, w)) + 120 * mask).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"im{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i:02d}.png")


def test_a_user_folder_of_mixed_size_images_gets_a_sensible_plan(tmp_path):
    from zoo.registry import build_dataset

    sizes = [(90, 120), (200, 300), (128, 128), (500, 700), (64, 96), (300, 200), (160, 240), (96, 96),
             (480, 640), (120, 90)]
    _write_folder(tmp_path / "mine", sizes)
    ds = build_dataset("folder", root=str(tmp_path / "mine"))
    fp = fingerprint_dataset(ds, cache_dir=tmp_path / "cache")
    assert fp.heights[0] < fp.heights[2] and 17 <= fp.classes[1].median_thickness <= 21
    plan = plan_recipe(fp, gmacs=UNET_W16, budget=Budget("tflops", 10))
    assert all(s % 32 == 0 for s in plan.patch_size) and plan.resize == 1.0
    assert plan.augmentation.rot90 and plan.patch_size[0] == plan.patch_size[1]
    largest = (fp.heights[2], fp.widths[2])
    assert plan.whole_image == (largest[0] <= plan.patch_size[0] and largest[1] <= plan.patch_size[1])
    assert plan.evaluation.mode == ("whole" if plan.whole_image else "sliding")
    assert plan.loss == "dice+bce" and plan.sampling.pad_label == -1  # no void label: zoo.data.PAD_LABEL
    assert len(format_plan(plan).splitlines()) == 9


@pytest.mark.parametrize(("name", "folder", "options"), [
    ("drive", "drive", {"fov": True}), ("isbi2012", "isbi2012_em", {}), ("camvid", "camvid", {}),
    ("dsb2018", "dsb2018_nuclei", {}),
])
def test_plans_for_the_shared_datasets(name, folder, options):
    from zoo.registry import build_dataset

    root = require_shared_data(folder)
    fp = fingerprint_dataset(build_dataset(name, root=str(root), **options), max_items=6, cache=False)
    plan = plan_recipe(fp, gmacs=UNET_W16, budget=Budget("tflops", 135))
    assert plan.resize == 1.0 and all(s % 32 == 0 for s in plan.patch_size)
    assert 0.9 * 135 <= plan.budget.tflops <= 135
    assert plan.evaluation.roi == (name == "drive")
    assert plan.augmentation.vflip == (name != "camvid")


def test_replacing_a_class_keeps_the_fingerprint_valid():
    fp = _fp()
    bare = replace(fp, classes=(fp.classes[0], replace(fp.classes[1], median_thickness=None, typical_extent=None)))
    plan = plan_recipe(bare, gmacs=UNET_W16)
    assert plan.patch_size[0] % 32 == 0
