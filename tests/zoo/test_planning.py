"""Planning a registered dataset for several models: ROI switched on, one patch for all, budgets matched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from torch import nn

from zoo.budget import training_tflops
from zoo.costs import DEFAULT_STRIDE, count_gmacs, model_stride
from zoo.layers import PadToMultiple
from zoo.planning import _lcm, plan_dataset, roi_option
from zoo.registry import build_model, default_registry

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHAPES = {"image_size": 64, "train_items": 24, "val_items": 4, "test_items": 4}


def test_model_stride_reads_what_the_model_states():
    assert model_stride(build_model("unet", in_channels=3, num_classes=2, width=4)) == 16
    assert model_stride(build_model("unet", in_channels=3, num_classes=2, width=4, depth=3)) == 4
    assert model_stride(PadToMultiple(nn.Conv2d(3, 2, 1), 48)) == 48
    assert model_stride(nn.Conv2d(3, 2, 1)) == DEFAULT_STRIDE
    assert _lcm([16, 32, 48]) == 96


def test_one_patch_for_every_model_and_the_budget_matched_per_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    models = [("unet", {"width": 4}), ("unetpp", {"width": 4}), ("unet", {"width": 4, "depth": 3})]
    dp = plan_dataset("shapes", models=models, budget="0.05 tflops", dataset_options=SHAPES, device="cpu")
    assert dp.plan.model_stride == 16 and dp.plan.patch_size == (64, 64) and dp.set_options == {}
    steps = {}
    for name, options in models[:2]:
        gmacs = count_gmacs(build_model(name, in_channels=3, num_classes=2, **options), 3, 64)
        resolved = dp.resolve(dp.gmacs(name, options))
        assert resolved.gmacs_per_image == pytest.approx(gmacs)
        # equal compute: never above the budget, and within one step of it
        assert resolved.tflops <= 0.05 < resolved.tflops + training_tflops(gmacs, dp.plan.batch_size)
        steps[name] = resolved.steps
    assert steps["unetpp"] < steps["unet"]  # the heavier model gets fewer steps
    assert dp.gmacs("unet", {"width": 4, "depth": 3}) < dp.gmacs("unet", {"width": 4})  # priced per options


def test_min_steps_keeps_the_batch_for_a_small_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    models = [("unet", {"width": 4})]
    low = plan_dataset("shapes", models=models, budget="0.05 tflops", dataset_options=SHAPES, device="cpu")
    kept = plan_dataset("shapes", models=models, budget="0.05 tflops", dataset_options=SHAPES, device="cpu",
                        min_steps=10)
    assert low.plan.batch_size < kept.plan.batch_size


def test_roi_option_is_found_by_name():
    reg = default_registry()
    assert roi_option(reg.datasets.get("drive").builder) == "fov"
    assert roi_option(reg.datasets.get("folder").builder) == "roi"
    assert roi_option(reg.datasets.get("shapes").builder) is None


@pytest.mark.skipif(not (SHARED / "drive").is_dir(), reason="needs ../shared/data/drive (the shared data folder)")
def test_drive_is_planned_inside_its_field_of_view(monkeypatch):
    monkeypatch.setenv("ZOO_DATA", str(SHARED))
    dp = plan_dataset("drive", models=[("unet", {"width": 4})], budget="135 tflops", device="cpu")
    assert dp.set_options == {"fov": True} and dp.plan.evaluation.roi and dp.plan.resize == 1.0
    explicit = plan_dataset("drive", models=[("unet", {"width": 4})], budget="135 tflops", device="cpu",
                            dataset_options={"fov": False})
    assert explicit.set_options == {} and not explicit.plan.evaluation.roi
    assert os.environ["ZOO_DATA"] == str(SHARED)
