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


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def plugin_bench(tmp_path_factory) -> list[dict[str, str]]:
    """One quick bench of every installed plugin package's models next to unet, on the example's stripes data.

    One grid instead of one per test: each ``zoo bench`` pays for its own start-up and plots.
    """
    models = ["unet"]
    if _installed("zoo-plugin-example"):
        models.append("segnet")
    if _installed("segmentation-models-pytorch") and _installed("monai"):
        models += ["smp-unet-resnet34", "monai-basicunet"]
    if len(models) == 1:
        pytest.skip("no plugin package is installed (pip install -e '.[smp,monai]' -e examples/zoo-plugin-example)")
    out = tmp_path_factory.mktemp("plugin-bench")
    config = tmp_path_factory.mktemp("plugin-bench-config") / "bench.toml"  # not in --out: it must hold only bench files
    config.write_text("[dataset]\ntrain_items = 8\nval_items = 4\ntest_items = 4\n")
    assert main(["bench", "--models", ",".join(models), "--datasets", "stripes", "--profile", "quick",
                 "--config", str(config), "--out", str(out)]) == 0
    return _rows(out / "runs.csv")


@pytest.mark.slow
def test_bench_runs_the_example_model_next_to_unet(plugin_bench):
    _require("zoo-plugin-example", "pip install -e examples/zoo-plugin-example")
    rows = [r for r in plugin_bench if r["model"] in ("segnet", "unet")]
    assert {(r["model"], r["status"], r["plugin_distribution"]) for r in rows} == {
        ("segnet", "ok", "zoo-plugin-example"), ("unet", "ok", "segzoo")}
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows)


@pytest.mark.slow
def test_bench_parameter_counts_match_the_libraries_own(plugin_bench):
    _require("segmentation-models-pytorch", "pip install 'segzoo[smp]'")
    _require("monai", "pip install 'segzoo[monai]'")
    import segmentation_models_pytorch as smp
    from monai.networks.nets import BasicUNet

    counts = {r["model"]: int(r["n_parameters"]) for r in plugin_bench if r["status"] == "ok"}
    classes = losses.model_out_channels(losses.default_loss(2), 2)  # what the bench builds for stripes
    expected = {  # stripes images have one channel
        "smp-unet-resnet34": smp.Unet("resnet34", encoder_weights=None, in_channels=1, classes=classes),
        "monai-basicunet": BasicUNet(spatial_dims=2, in_channels=1, out_channels=classes),
    }
    for name, reference in expected.items():
        assert counts[name] == sum(p.numel() for p in reference.parameters()), name
    assert {"unet", "smp-unet-resnet34", "monai-basicunet"} <= set(counts)
