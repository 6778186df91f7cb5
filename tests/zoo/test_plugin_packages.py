"""The installed plugin packages end to end: the example package and the smp/MONAI adapters, through the CLI.

CI installs them as the README says (``pip install -e '.[dev,smp,monai]' -e examples/zoo-plugin-example``);
elsewhere these tests skip, naming what is missing.
"""

from __future__ import annotations

import csv
from importlib import metadata

import pytest

from zoo import losses
from zoo.cli import main


def _require(distribution: str, hint: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed ({hint})")


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_zoo_lists_the_example_model_and_its_distribution(capsys):
    version = _require("zoo-plugin-example", "pip install -e examples/zoo-plugin-example")
    assert main(["models", "segnet"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["segnet", "example"]
    assert main(["plugins"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("example "))
    assert row.split()[:4] == ["example", "zoo-plugin-example", version, "ok"]


@pytest.mark.slow
def test_bench_runs_the_example_model_next_to_unet(tmp_path):
    _require("zoo-plugin-example", "pip install -e examples/zoo-plugin-example")
    out = tmp_path / "bench"
    assert main(["bench", "--models", "segnet,unet", "--datasets", "stripes", "--profile", "quick",
                 "--out", str(out)]) == 0
    rows = _rows(out / "runs.csv")
    assert {(r["model"], r["status"], r["plugin_distribution"]) for r in rows} == {
        ("segnet", "ok", "zoo-plugin-example"), ("unet", "ok", "segzoo")}
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows)


@pytest.mark.slow
def test_bench_parameter_counts_match_the_libraries_own(tmp_path):
    _require("segmentation-models-pytorch", "pip install 'segzoo[smp]'")
    _require("monai", "pip install 'segzoo[monai]'")
    import segmentation_models_pytorch as smp
    from monai.networks.nets import BasicUNet

    out = tmp_path / "bench"
    assert main(["bench", "--models", "unet,smp-unet-resnet34,monai-basicunet", "--datasets", "shapes",
                 "--profile", "quick", "--out", str(out)]) == 0
    counts = {r["model"]: int(r["n_parameters"]) for r in _rows(out / "runs.csv") if r["status"] == "ok"}
    classes = losses.model_out_channels(losses.default_loss(2), 2)  # what the bench builds for shapes
    expected = {
        "smp-unet-resnet34": smp.Unet("resnet34", encoder_weights=None, in_channels=3, classes=classes),
        "monai-basicunet": BasicUNet(spatial_dims=2, in_channels=3, out_channels=classes),
    }
    for name, reference in expected.items():
        assert counts[name] == sum(p.numel() for p in reference.parameters()), name
    assert set(counts) == {"unet", "smp-unet-resnet34", "monai-basicunet"}
