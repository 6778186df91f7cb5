"""``zoo plan``, ``zoo datasets fingerprint`` and ``zoo train --plan auto`` through ``main([...])`` on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo import api
from zoo.cli import main
from zoo.plan import Plan
from zoo.planner import plan_recipe
from zoo.training import TrainConfig

from tests.conftest import require_shared_data

SHAPES = ["--dataset-opt", "image_size=32", "--dataset-opt", "train_items=8", "--dataset-opt", "val_items=4",
          "--dataset-opt", "test_items=4"]
CHOICES = ("patch", "resize", "batch", "sampling", "augmentation", "loss", "evaluation", "budget")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Fingerprints are cached under the test's own folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _choices(text: str) -> dict[str, str]:
    lines = [line.split(None, 1) for line in text.splitlines() if line.startswith("  ")]
    return {parts[0]: parts[1] for parts in lines if parts[0] in CHOICES}


def test_plan_shapes_prints_each_choice_with_its_reason(capsys):
    assert main(["plan", "shapes", "--width", "4", "--budget", "20 steps", "--device", "cpu", *SHAPES]) == 0
    out = capsys.readouterr().out
    choices = _choices(out)
    assert list(choices) == list(CHOICES)
    assert "whole image" in choices["patch"] and "native scale" in choices["resize"]
    assert "20 steps" in choices["budget"] and "zoo train --model unet --width 4" in out


def test_plan_json_holds_the_plan_and_the_recipe_it_sets(capsys):
    assert main(["plan", "shapes", "--width", "4", "--json", *SHAPES]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["plan"]["reasons"]) == set(CHOICES)
    config = TrainConfig.from_dict({"model": "unet", "dataset": "shapes", **data["train"]})
    assert config.patch_size == tuple(data["plan"]["patch_size"]) and config.eval_image_size == "native"


def _mixed_folder(root, sizes=((40, 52), (64, 48), (30, 30), (72, 60), (48, 48), (56, 40), (44, 70), (36, 64))):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\nthing\n")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[h // 4:h // 2, w // 4: w // 2 + 5] = 1
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")
    return root


def test_plan_for_a_user_folder_of_mixed_size_images(tmp_path, capsys):
    root = _mixed_folder(tmp_path / "mine")
    assert main(["plan", "folder", "--root", str(root), "--width", "4", "--budget", "1 tflops"]) == 0
    out = capsys.readouterr().out
    assert list(_choices(out)) == list(CHOICES) and "plan v2 for 'folder'" in out
    assert main(["plan", "folder", "--root", str(root), "--width", "4", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    stride = plan["model_stride"]
    assert all(side % stride == 0 for side in plan["patch_size"]) and plan["resize"] == 1.0


def test_datasets_fingerprint(capsys):
    assert main(["datasets", "fingerprint", "shapes", "--image-size", "32", "--train-items", "8"]) == 0
    out = capsys.readouterr().out
    assert "8 train items" in out and "32/32/32" in out and "thickness px" in out
    assert main(["datasets", "fingerprint", "shapes", "--image-size", "32", "--train-items", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 8


def test_train_plan_auto_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "run"
    args = ["train", "--model", "unet", "--width", "4", "--dataset", "shapes", *SHAPES, "--plan", "auto",
            "--budget", "6 steps", "--batch-size", "4", "--metrics", "dice", "--device", "cpu", "--quiet",
            "--out", str(out_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "planned recipe: patch 32x32 (whole)" in out and "overrides of the plan: batch_size" in out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["patch_size"] == [32, 32] and config["eval_image_size"] == "native"
    assert config["batch_size"] == 4 and config["max_steps"] == 6 and config["optimizer"] == "adamw"
    assert config["plan"]["overrides"] == ["batch_size"] and config["plan"]["budget"]["steps"] == 6
    result = json.loads((out_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["steps_done"] == 6 and "dice" in result["test_mean"]

    Image.fromarray(np.full((45, 70, 3), 128, dtype=np.uint8)).save(tmp_path / "big.png")
    for mode in ([], ["--tiled"]):  # a patch-trained recipe predicts at native resolution
        pred = tmp_path / ("pred" + "".join(mode))
        assert main(["predict", str(tmp_path / "big.png"), "--checkpoint", str(out_dir), "--out", str(pred),
                     "--device", "cpu", *mode]) == 0
        assert np.array(Image.open(pred / "big_mask.png")).shape == (45, 70)


@pytest.mark.parametrize(("extra", "message"), [
    (["--plan", "auto", "--augment", "hflip+spin"], "augment='hflip+spin' is not a preset"),
    (["--plan", "auto", "--budget", "5 bananas"], "budget '5 bananas' is not an amount and a kind"),
    (["--budget", "5 steps"], "--budget needs --plan auto"),
    (["--plan", "auto", "--sampling", "tiles"], "unknown sampling 'tiles'"),
    (["--patch-size", "0x4"], "patch_size='0x4' must have sides >= 1"),
])
def test_bad_values_give_one_clear_line(extra, message, capsys):
    args = ["train", "--model", "unet", "--width", "4", "--dataset", "shapes", *SHAPES, "--device", "cpu", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_plan_layer_maps_a_plan_onto_train_settings():
    from tests.zoo.test_planner import UNET_W16, _fp

    plan: Plan = plan_recipe(_fp(roi=True), gmacs=UNET_W16)
    layer = api.plan_layer(plan, roi_option="fov")
    assert layer["dataset_options"] == {"fov": True} and "dataset_options" not in api.plan_layer(plan)
    assert layer["max_steps"] == plan.budget.steps and layer["input_scale"] == plan.resize
    assert layer["tiled"] == (plan.evaluation.mode == "sliding") and layer["eval_window"] == plan.evaluation.window
    config = TrainConfig.from_dict({"model": "m", "dataset": "d", **layer})
    assert config.patch_size == plan.patch_size and config.eval_blend == plan.evaluation.blend


def test_plan_drive_switches_on_the_field_of_view(capsys):
    data_dir = require_shared_data("drive").parent
    assert main(["plan", "drive", "--data-dir", str(data_dir), "--width", "16", "--budget", "135 tflops",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    choices = _choices(out)
    assert "ROI" in choices["evaluation"] and "fov=True" in out and "native" in choices["resize"]
