"""Planned bench grids: one plan per dataset, equal training compute per model, overrides recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from zoo import api
from zoo.bench.grid import Cell, make_plan
from zoo.bench.records import CellRecord, read_records
from zoo.bench.tables import BenchmarkRow
from zoo.budget import training_tflops
from zoo.cli import main
from zoo.errors import OptionError, UnknownNameError

SMALL = {"dataset": {"image_size": 32, "train_items": 12, "val_items": 4, "test_items": 4}}


@pytest.fixture(scope="module")
def reg():
    return api.load_registry()


@pytest.fixture(autouse=True)
def _fingerprint_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _plan(reg, **kwargs):
    kwargs.setdefault("config", SMALL)
    return make_plan(models=kwargs.pop("models", "unet,unetpp"), profile=kwargs.pop("profile", "quick"),
                     seeds=kwargs.pop("seeds", "0"), registries=reg, **kwargs)


def test_a_planned_grid_gives_every_model_the_same_training_compute(reg):
    plan = _plan(reg, plan="auto", budget="0.02 tflops")
    assert plan.planned and plan.budgets == {"shapes": "0.02 TFLOPs"}
    unet, unetpp = plan.cells
    for cell in plan.cells:
        budget = cell.plan["budget"]
        assert cell.config["patch_size"] == (32, 32) and cell.config["sampling"] == "whole"
        assert cell.config["max_steps"] == budget["steps"] and cell.config["eval_image_size"] == "native"
        # the budget is spent within one step, never exceeded
        step = training_tflops(budget["gmacs_per_image"], budget["batch_size"])
        assert budget["tflops"] <= 0.02 < budget["tflops"] + step
        assert cell.plan["overrides"] == []
    assert unet.config["batch_size"] == unetpp.config["batch_size"]  # one plan for both
    # about 20 validations however small an epoch is (12 items: a step or two per epoch)
    epochs = unet.config["max_steps"] / max(1, 12 // unet.config["batch_size"])
    assert 15 <= epochs / unet.config["val_every"] <= 25
    assert unetpp.plan["budget"]["gmacs_per_image"] > 2 * unet.plan["budget"]["gmacs_per_image"]
    assert unetpp.config["max_steps"] < unet.config["max_steps"] / 2


def test_explicit_settings_beat_the_plan_and_are_recorded_as_overrides(reg):
    config = {**SMALL, "train": {"batch_size": 3, "lr": 0.01}}
    plan = _plan(reg, plan="auto", budget="0.02 tflops", config=config, recipe={"train": {"augment": "hflip"}})
    cell = plan.cells[0]
    assert cell.config["batch_size"] == 3 and cell.config["augment"] == "hflip" and cell.config["lr"] == 0.01
    assert cell.plan["overrides"] == ["augment", "batch_size", "lr"]
    assert cell.plan["budget"]["batch_size"] == 3  # the budget is resolved at the batch actually used
    fixed = _plan(reg, plan="auto", budget="0.02 tflops", recipe={"train": {"max_steps": 7}}).cells[0]
    assert fixed.config["max_steps"] == 7 and fixed.plan["budget"] is None and "max_steps" in fixed.plan["overrides"]


def test_unplanned_grids_keep_the_resize_recipe(reg):
    plan = _plan(reg)
    assert not plan.planned and plan.dataset_plans == {}
    assert all(c.plan is None and "patch_size" not in c.config for c in plan.cells)
    assert not _plan(reg, profile="default", plan="none").planned


def test_the_unplanned_recipe_can_be_matched_on_compute_too(reg):
    plan = _plan(reg, plan="none", budget="0.01 tflops")
    assert not plan.planned and plan.budgets == {"shapes": "0.01 TFLOPs"}
    unet, unetpp = plan.cells
    for cell in plan.cells:
        budget = cell.plan["budget"]
        assert "patch_size" not in cell.config and cell.config["max_steps"] == budget["steps"]
        assert budget["batch_size"] == cell.config["batch_size"] and cell.plan["version"] is None
        assert budget["tflops"] <= 0.01 < budget["tflops"] + training_tflops(budget["gmacs_per_image"],
                                                                             budget["batch_size"])
    assert unetpp.config["max_steps"] < unet.config["max_steps"]
    values = BenchmarkRow.from_record(CellRecord(cell_id="x", dataset="shapes", model="unet", variant="unet",
                                                 seed=0, config=dict(unet.config), plan=unet.to_json()["plan"])).values
    assert (values["sampling"], values["budget_kind"], values["plan_version"]) == ("resize", "tflops", None)


def test_budgets_come_from_flag_config_or_profile_and_bad_ones_name_the_value(reg):
    per_dataset = {**SMALL, "plan": "auto", "budget": {"shapes": "40 steps"}}
    assert _plan(reg, config=per_dataset).cells[0].config["max_steps"] == 40
    assert _plan(reg, config=per_dataset, budget="30 steps").cells[0].config["max_steps"] == 30
    with pytest.raises(OptionError, match="needs a budget"):
        _plan(reg, plan="auto")  # the quick profile has none
    with pytest.raises(OptionError, match="furlongs"):
        _plan(reg, plan="auto", budget="3 furlongs")
    with pytest.raises(UnknownNameError, match="auto"):
        _plan(reg, plan="sometimes")


def test_a_cell_and_its_record_carry_the_plan_into_runs_csv(reg):
    cell = _plan(reg, plan="auto", budget="0.02 tflops").cells[0]
    assert Cell.from_json(cell.to_json()).plan == cell.to_json()["plan"]
    record = CellRecord(cell_id=cell.cell_id, dataset="shapes", model="unet", variant="unet", seed=0, status="ok",
                        config=dict(cell.config), plan=cell.to_json()["plan"], train_tflops=0.0199)
    values = BenchmarkRow.from_record(record).values
    assert values["patch_size"] == "32x32" and values["sampling"] == "whole" and values["eval_mode"] == "whole"
    assert (values["budget_kind"], values["budget_value"], values["train_tflops"]) == ("tflops", 0.02, 0.02)
    assert values["plan_version"] == 2 and values["plan_overrides"] == "" and values["input_scale"] == 1.0
    shrunk = CellRecord(cell_id="y", dataset="camvid", model="unet", variant="unet", seed=0, status="ok",
                        config={**cell.config, "input_scale": 0.25}, plan=cell.to_json()["plan"])
    assert BenchmarkRow.from_record(shrunk).values["input_scale"] == 0.25
    unplanned = BenchmarkRow.from_record(CellRecord(cell_id="x", dataset="shapes", model="unet", variant="unet",
                                                    seed=0, config={"epochs": 3, "image_size": 32})).values
    assert (unplanned["sampling"], unplanned["eval_mode"], unplanned["budget_kind"]) == ("resize", "resized",
                                                                                       "epochs")
    assert unplanned["input_scale"] is None  # the resize recipe: image_size says the size


def test_dry_run_prints_the_plan_with_its_reasons(capsys, tmp_path):
    code = main(["bench", "--models", "unet", "--profile", "quick", "--plan", "auto", "--budget", "20 steps",
                 "--dataset-opt", "image_size=32", "--dataset-opt", "train_items=8", "--dry-run",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "plan v2 for 'shapes'" in out and "native scale" in out
    assert "shapes__unet__s0" in out and "20 steps x" in out


@pytest.mark.slow
def test_deploy_speed_times_the_exported_model_in_onnx_runtime(reg, tmp_path):
    pytest.importorskip("onnxruntime", reason="needs the onnx extra (pip install 'segzoo[onnx]')")
    from zoo.bench.runner import run_benchmark
    from zoo.bench.tables import runs_frame

    small = {"image_size": 64, "train_items": 8, "val_items": 2, "test_items": 2}
    config = {"dataset": small, "deploy_speed": True, "train": {"metrics": ["dice"]}}
    plan = _plan(reg, models="unet", plan="auto", budget="4 steps", config=config)
    assert plan.cells[0].deploy_speed and plan.cells[0].config_hash != _plan(
        reg, models="unet", plan="auto", budget="4 steps", config={**config, "deploy_speed": False}).cells[0].config_hash
    assert run_benchmark(plan, tmp_path / "out", render=False).ok
    timed = runs_frame(read_records([tmp_path / "out"])).iloc[0]
    assert timed["ort_latency_ms"] > 0 and timed["ort_images_per_s"] > 0 and pd.isna(timed["ort_error"])
    assert not (tmp_path / "out" / "cells" / plan.cells[0].cell_id / "model.onnx").exists()  # not kept


def test_a_model_that_does_not_deploy_is_a_note_not_a_failed_cell(tmp_path, monkeypatch):
    import zoo.export
    from zoo.bench.cell import _deployed_speed
    from zoo.errors import ZooError

    def refuse(*args, **kwargs):
        (tmp_path / "model.onnx").write_bytes(b"half")
        raise ZooError("operator aten.linalg_eig has no ONNX translation\n(details)")

    monkeypatch.setattr(zoo.export, "deployed_speed", refuse)
    out = _deployed_speed("best.safetensors", tmp_path, size=(64, 64), batch_size=2, repeats=1, reg=None)
    assert out == {"ort_error": "ZooError: operator aten.linalg_eig has no ONNX translation"}
    assert not (tmp_path / "model.onnx").exists()


def test_min_steps_in_the_config_trades_batch_for_steps_and_bad_values_are_one_line(reg):
    """At a small budget more, smaller steps: the planner lowers the batch (to 2 at least) to buy min_steps."""
    default = _plan(reg, models="unet", plan="auto", budget="0.02 tflops", profile="default",
                    config={**SMALL, "min_steps": 60})
    more = _plan(reg, models="unet", plan="auto", budget="0.02 tflops", profile="default",
                 config={**SMALL, "min_steps": 400})
    (a,), (b,) = default.cells, more.cells
    assert b.config["max_steps"] > a.config["max_steps"] and b.config["batch_size"] < a.config["batch_size"]
    assert b.config["max_steps"] >= 400 or b.config["batch_size"] == 2
    assert more.describe()["min_steps"] == 400
    with pytest.raises(OptionError, match=r"min_steps=0 must be a whole number of steps >= 1"):
        _plan(reg, models="unet", plan="auto", budget="0.02 tflops", config={**SMALL, "min_steps": 0})


def test_a_planned_dataset_s_recipe_is_one_line_with_each_model_s_steps():
    from zoo.bench.plan_text import recipe_line

    drive = {"version": 2, "patch_size": [448, 448], "whole_image": False, "batch_size": 2, "resize": 1.0,
             "sampling": {"mode": "crop", "foreground_share": 1 / 3},
             "augmentation": {"hflip": True, "vflip": False, "rot90": True, "scale_jitter": [0.9, 1.1]},
             "loss": "dice+bce", "budget": {"kind": "tflops", "value": 30.0},
             "evaluation": {"mode": "sliding", "window": [448, 448], "overlap": 0.5, "roi": True, "input_scale": 1.0}}
    camvid = {**drive, "patch_size": [96, 128], "whole_image": True, "batch_size": 16, "resize": 0.25,
              "sampling": {"mode": "whole"}, "loss": "dice+ce",
              "evaluation": {"mode": "whole", "input_scale": 0.25, "roi": False}}
    runs = pd.DataFrame({"dataset": ["drive"] * 4 + ["camvid"], "variant": ["unet", "unet", "unetpp", "unetpp", "unet"],
                         "status": ["ok", "ok", "ok", "failed", "ok"], "steps_done": [269, 271, 109, 3, 547],
                         "gmacs": [9.3, 9.3, 22.9, 22.9, 0.57]})
    plan = {"plan_mode": "auto", "plans": {"drive": drive, "camvid": camvid}}
    assert recipe_line(plan, runs, "drive") == (
        "**Recipe** (plan v2 of `zoo plan`; reasons in `plan.json`): 448x448 crops at native scale (33% centred on a "
        "foreground pixel), batch 2; horizontal flips, 90-degree rotations, scale jitter 0.9-1.1; Dice + binary "
        "cross-entropy; 30 TFLOPs of training per cell (optimizer steps by variant: unet 270, unetpp 109); scored on "
        "sliding 448x448 windows (overlap 0.5, gaussian blending), inside the region of interest.")
    line = recipe_line(plan, runs, "camvid")
    assert "whole 96x128 images at x0.25 scale, batch 16" in line and "(optimizer steps by variant: unet 547)" in line
    assert line.endswith("scored on whole images at x0.25, logits resized back to the original pixels.")
    # an unplanned dataset or folder: no line
    assert recipe_line(plan, runs, "shapes") is None and recipe_line(None, runs, "drive") is None
    # a grid run with --plan none keeps the plans (for its budgets) but trained on the profile's recipe
    assert recipe_line({**plan, "plan_mode": "none"}, runs, "drive") is None
