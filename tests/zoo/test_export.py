"""``zoo export``: every registered model to ONNX and ``.pt2`` within the parity tolerance, the metadata a consumer
reads, one-line failures, and exported files in ``zoo predict`` / ``zoo eval`` giving the checkpoint's results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import zoo
from zoo import api
from zoo.checkpoint import save_checkpoint
from zoo.cli import main
from zoo.deploy import load_deployed
from zoo.errors import ExportError
from zoo.export import FORMATS, PARITY_ATOL, deployed_speed, export_checkpoint
from zoo.interfaces import ModelSpec
from zoo.testing.common import small_options
from zoo.testing.models import SMALL_MODEL_OPTIONS

REGISTRY = api.load_registry()
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx extra is not installed")
# the adapters' models have no width option; these are their smallest sensible settings
TINY = {"monai-basicunet": {"features": (4, 4, 8, 8, 16, 4)},
        "monai-attentionunet": {"channels": (4, 8, 16), "strides": (2, 2)},
        "monai-unet-res": {"channels": (4, 8, 16), "strides": (2, 2)}}


def _meta(name: str, options: dict, *, out_channels: int, image_size: int, **recipe) -> dict:
    config = {"model": name, "dataset": "shapes", "image_size": image_size, "tiled": False, **recipe}
    return {"model": name, "model_options": options, "in_channels": 3, "out_channels": out_channels,
            "num_classes": max(out_channels, 2), "class_names": ["background", "shape"], "ignore_index": None,
            "dataset": "shapes", "dataset_options": {}, "image_size": image_size,
            "eval_image_size": recipe.get("eval_image_size"), "config": config,
            "plugin": {"name": "unet", "distribution": "segzoo", "version": zoo.__version__}}


def make_checkpoint(path: Path, name: str, *, registries=REGISTRY, out_channels: int = 2, image_size: int = 48,
                    **recipe) -> Path:
    """A checkpoint of a tiny ``name`` whose batch-norm statistics come from a few images, as after training.

    Untrained statistics (mean 0, variance 1) let a ResNet-34's logits grow to about 25; trained ones keep them
    near 1, where the parity tolerance is meant to apply.
    """
    spec = registries.models.get(name)
    options = TINY.get(name, small_options(spec.builder, SMALL_MODEL_OPTIONS))
    torch.manual_seed(0)
    model = api.build_model(name, in_channels=3, num_classes=out_channels, registries=registries, **options)
    with torch.no_grad():
        for _ in range(3):
            model(zoo.data.normalize_image(torch.rand(4, 3, 64, 64)))
    stem = path / name
    save_checkpoint(stem, model.eval(), _meta(name, options, out_channels=out_channels, image_size=image_size,
                                              **recipe))
    return stem.with_suffix(".safetensors")


# ------------------------------------------------------------------------------------------------------------
# Every model, both formats


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", REGISTRY.models.names())
def test_every_registered_model_exports_and_matches_its_checkpoint(tmp_path, name, fmt):
    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip("the onnx extra is not installed")
    result = export_checkpoint(make_checkpoint(tmp_path, name), format=fmt, dynamic_size=True,
                               registries=REGISTRY)
    assert result.passed, [(c.shape, c.max_abs_diff, c.masks_equal) for c in result.cases]
    assert len({c.shape[2:] for c in result.cases}) >= 2 and len({c.shape[0] for c in result.cases}) >= 2
    assert result.max_abs_diff <= PARITY_ATOL and result.path.is_file()


# ------------------------------------------------------------------------------------------------------------
# What the file says


@needs_onnx
def test_onnx_metadata_describes_the_model_and_its_pipeline(tmp_path):
    from zoo.deploy import onnx_session

    ckpt = make_checkpoint(tmp_path, "unet", out_channels=1, image_size=40)
    result = export_checkpoint(ckpt, format="onnx", registries=REGISTRY)
    assert result.input_size == (64, 64) and result.stride == 32 and result.opset >= 18
    props = {k: json.loads(v) for k, v in onnx_session(result.path).get_modelmeta().custom_metadata_map.items()}
    assert props["class_names"] == ["background", "shape"] and props["in_channels"] == 3
    assert props["stride"] == 32 and props["zoo_version"] == zoo.__version__ and props["model"] == "unet"
    assert props["model_version"] == zoo.__version__ and props["recipe"]["image_size"] == 40
    assert props["normalization"]["kind"] == "per_image_standardize" and props["normalization"]["eps"] == 1e-6
    pipeline = props["pipeline"]
    assert pipeline["resize"]["size"] == [40, 40] and pipeline["pad"]["multiple"] == 32
    assert pipeline["inference"] == {"mode": "whole_image"}
    assert pipeline["postprocess"] == {"kind": "threshold", "logit_threshold": 0.0, "classes": [0, 1]}
    assert props["zoo"]["export"]["input_size"] == [64, 64]


def test_pt2_metadata_and_a_static_file_refusing_other_sizes_in_one_line(tmp_path):
    ckpt = make_checkpoint(tmp_path, "unet", eval_image_size="native", tiled=True)
    result = export_checkpoint(ckpt, format="pt2", out=tmp_path / "m.pt2", registries=REGISTRY)
    assert result.input_size == (64, 64) and result.passed  # tiles are training-size windows
    model, meta = load_deployed(result.path)
    assert meta["pipeline"]["inference"]["mode"] == "sliding_window" and meta["pipeline"]["resize"] is None
    assert meta["export"]["format"] == "pt2" and meta["model"] == "unet"
    with pytest.raises(ExportError, match=r"takes 64x64 inputs .* got 64x96; export with --dynamic-size"):
        model(torch.zeros(1, 3, 50, 90))


@pytest.mark.parametrize(("recipe", "size"), [
    ({}, (64, 64)),                                                  # resized to the 48 px training square
    ({"eval_image_size": "upsampled"}, (64, 64)),                   # the same, logits upsampled back
    ({"eval_image_size": 96}, None),                                 # predict resizes to 48, eval to 96
    ({"eval_image_size": "native"}, None),                           # whole images of any size
    ({"eval_image_size": "native", "tiled": True, "eval_blend": "tent", "eval_window": [40, 72]}, (64, 96)),
    ({"eval_image_size": "native", "tiled": True, "eval_blend": "gaussian"}, None),  # a small image runs whole
    ({"eval_image_size": None, "patch_size": [32, 32]}, None),       # patch recipes predict at native size
])
def test_the_file_is_fixed_size_only_where_the_pipeline_feeds_one_size(recipe, size):
    from zoo.export import _static_size

    meta = _meta("unet", {}, out_channels=2, image_size=48, **recipe)
    assert _static_size(meta, 32) == size


def test_the_pipeline_follows_the_recipes_window_overlap_blend_and_scale():
    from zoo.deploy import pipeline_spec

    meta = _meta("unet", {}, out_channels=3, image_size=48, eval_image_size="native", tiled=True,
                 eval_window=[40, 72], eval_overlap=0.25, eval_blend="gaussian", input_scale=0.5)
    spec = pipeline_spec(meta, stride=32)
    assert spec["inference"]["mode"] == "sliding_window" and spec["inference"]["tile"] == [40, 72]
    assert spec["inference"]["overlap"] == 0.25 and spec["inference"]["blend"] == "gaussian"
    assert spec["resize"]["factor"] == 0.5 and spec["postprocess"] == {"kind": "argmax", "axis": 1}
    assert pipeline_spec(_meta("unet", {}, out_channels=2, image_size=48), stride=32)["resize"]["size"] == [48, 48]


# ------------------------------------------------------------------------------------------------------------
# Failures in one line


class _Branchy(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:  # a branch on tensor values: torch.export cannot capture it
            return self.conv(x)
        return -self.conv(x)


class _Eig(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + torch.linalg.eigvals(y[..., :2, :2]).real.mean()  # no ONNX translation


def branchy(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model with a data-dependent branch (fake)."""
    return _Branchy(in_channels, num_classes)


def eig_net(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model using an operator ONNX lacks (fake)."""
    return _Eig(in_channels, num_classes)


class _Unexportable:
    @zoo.hookimpl
    def zoo_register_models(self):
        return [ModelSpec("branchy", branchy), ModelSpec("eig-net", eig_net)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_data_dependent_branch_fails_in_one_line_naming_the_code(tmp_path, fmt):
    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip("the onnx extra is not installed")
    reg = api.load_registry(plugins=[_Unexportable()], autoload=False)
    with pytest.raises(ExportError) as caught:
        export_checkpoint(make_checkpoint(tmp_path, "branchy", registries=reg), format=fmt, registries=reg)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"model 'branchy' cannot be exported to {fmt}: ")
    assert "depends on tensor values" in message and "test_export.py" in message and "x.mean() > 0" in message


@needs_onnx
def test_an_operator_without_onnx_translation_is_named(tmp_path):
    reg = api.load_registry(plugins=[_Unexportable()], autoload=False)
    ckpt = make_checkpoint(tmp_path, "eig-net", registries=reg)
    with pytest.raises(ExportError, match=r"^model 'eig-net' cannot be exported to onnx: operator "
                                          r"aten\.linalg_eig has no ONNX translation$"):
        export_checkpoint(ckpt, format="onnx", registries=reg)
    assert export_checkpoint(ckpt, format="pt2", registries=reg).passed  # torch.export itself takes it


@needs_onnx
def test_an_opset_the_exporter_cannot_write_is_refused_not_replaced(tmp_path):
    with pytest.raises(ExportError, match=r"could not write opset 11 for model 'unet' \(it wrote (\d+)\); ask for "
                                          r"--opset \1 or later"):
        export_checkpoint(make_checkpoint(tmp_path, "unet"), format="onnx", opset=11, registries=REGISTRY)
    assert not (tmp_path / "unet.onnx").exists()


def test_without_the_onnx_extra_the_command_prints_the_install_line(tmp_path, monkeypatch, capsys):
    ckpt = make_checkpoint(tmp_path, "unet")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("zoo: error: ONNX export needs onnxscript, which is not installed; install the onnx extra: "
                   "pip install 'segzoo[onnx]'")


# ------------------------------------------------------------------------------------------------------------
# The exported file in zoo predict and zoo eval


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny unet trained a few steps on shapes (fp32, so the checkpoint path and ONNX Runtime compare exactly)."""
    from zoo.training import TrainConfig

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(model="unet", dataset="shapes", model_options={"width": 4, "depth": 3},
                         dataset_options={"image_size": 48, "train_items": 12, "val_items": 4, "test_items": 6},
                         max_steps=3, batch_size=4, image_size=48, precision="fp32", augment="none")
    assert api.train(config, out, quiet=True).status == "ok"
    return out


def _images(folder: Path) -> list[Path]:
    from PIL import Image

    data = api.build_dataset("shapes", image_size=48, train_items=1, val_items=1, test_items=3)
    paths = []
    for i, (image, _) in enumerate(data.split("test")):
        pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pixels = np.pad(pixels, ((0, 7 * i), (0, 19 * i), (0, 0)), mode="edge")  # three sizes
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        paths.append(folder / f"img{i}.png")
    return paths


@needs_onnx
def test_predict_with_the_onnx_file_writes_the_checkpoints_masks(trained, tmp_path, capsys):
    from PIL import Image

    onnx_file = tmp_path / "unet.onnx"
    assert main(["export", "--checkpoint", str(trained), "--format", "onnx", "--out", str(onnx_file),
                 "--dynamic-size"]) == 0
    printed = capsys.readouterr().out
    assert "parity passed: largest difference" in printed and "max |logit diff|" in printed
    images = _images(tmp_path)
    for mode in ("", "--native", "--tiled"):
        masks = {}
        for source in (["--checkpoint", str(trained)], ["--model", str(onnx_file)]):
            out = tmp_path / f"{source[0]}{mode}"
            argv = ["predict", *map(str, images), *source, "--out", str(out), "--precision", "fp32"]
            assert main(argv + ([mode] if mode else [])) == 0
            masks[source[0]] = [np.array(Image.open(out / f"{p.stem}_mask.png")) for p in images]
        assert all(np.array_equal(a, b) for a, b in zip(masks["--checkpoint"], masks["--model"])), mode


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_eval_of_the_exported_file_reproduces_the_checkpoints_test_scores(trained, tmp_path, fmt, capsys):
    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip("the onnx extra is not installed")
    exported = export_checkpoint(trained, format=fmt, out=tmp_path / f"unet.{fmt}").path
    reference = api.evaluate(trained, precision="fp32")
    deployed = api.evaluate(exported, precision="fp32")
    assert deployed.n_images == reference.n_images == 6
    for column, value in reference.mean.items():
        assert deployed.mean[column] == pytest.approx(value, abs=1e-4, nan_ok=True), column
    assert main(["eval", "--model", str(exported), "--out", str(tmp_path / "eval"), "--precision", "fp32"]) == 0
    assert "unet" in capsys.readouterr().out


@needs_onnx
def test_deployed_speed_times_the_onnx_file_like_the_eager_columns(trained, tmp_path):
    speed = deployed_speed(trained, tmp_path / "speed.onnx", image_size=48, batch_size=2, repeats=1)
    assert set(speed) == {"ort_images_per_s", "ort_latency_ms", "ort_batch_size"}
    assert speed["ort_images_per_s"] > 0 and speed["ort_latency_ms"] > 0 and speed["ort_batch_size"] == 2
