"""End-to-end benchmark runs with real cell processes: failure isolation, kill and resume, shards.

Models come from a fake plugin installed as a real distribution (a ``.dist-info`` on ``PYTHONPATH``), so the
cell subprocesses discover it through entry points exactly as they would a third-party package. Each cell costs
a few seconds (a fresh ``import torch``), so the grids are as small as the claims allow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from zoo import api
from zoo.bench.grid import make_plan
from zoo.bench.records import read_json
from zoo.bench.report import write_leaderboard
from zoo.bench.runner import run_benchmark
from zoo.cli import main

FAKE_MODELS = '''
import os, signal, time
import torch
from torch import nn
import zoo
from zoo.interfaces import ModelSpec


class Tiny(nn.Module):
    def __init__(self, in_channels, num_classes, width, mode, delay):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, num_classes, 1))
        self.mode, self.delay = mode, delay

    def forward(self, x):
        if self.training and self.delay:
            time.sleep(self.delay)
        if self.mode == "fail":
            raise RuntimeError("boom from fail-net")
        if self.mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.mode == "exit":
            os._exit(3)
        if self.mode == "hang":
            time.sleep(3600)
        out = self.body(x)
        return out * float("nan") if self.mode == "nan" else out


def tiny_ok(*, in_channels: int, num_classes: int, width: int = 4, delay: float = 0.0):
    """A two-layer net that trains."""
    return Tiny(in_channels, num_classes, width, "ok", delay)


def fail_net(*, in_channels: int, num_classes: int, width: int = 4):
    """Raises in forward."""
    return Tiny(in_channels, num_classes, width, "fail", 0.0)


def nan_net(*, in_channels: int, num_classes: int, width: int = 4):
    """Outputs NaN: the loss diverges."""
    return Tiny(in_channels, num_classes, width, "nan", 0.0)


def sigkill_net(*, in_channels: int, num_classes: int, width: int = 4):
    """SIGKILLs its own process."""
    return Tiny(in_channels, num_classes, width, "sigkill", 0.0)


def exit_net(*, in_channels: int, num_classes: int, width: int = 4):
    """Calls os._exit(3)."""
    return Tiny(in_channels, num_classes, width, "exit", 0.0)


def hang_net(*, in_channels: int, num_classes: int, width: int = 4):
    """Never returns from forward."""
    return Tiny(in_channels, num_classes, width, "hang", 0.0)


@zoo.hookimpl
def zoo_register_models():
    return [ModelSpec("tiny-ok", tiny_ok), ModelSpec("fail-net", fail_net), ModelSpec("nan-net", nan_net),
            ModelSpec("sigkill-net", sigkill_net), ModelSpec("exit-net", exit_net),
            ModelSpec("hang-net", hang_net)]
'''

# 12 train images in batches of 4: 3 steps per epoch, enough for the engine to call 3 NaN losses a divergence
CONFIG = {"train": {"metrics": ["dice"], "epochs": 2},
          "dataset": {"image_size": 32, "train_items": 12, "val_items": 4, "test_items": 6}}


@pytest.fixture
def fake_env(make_dist) -> dict[str, str]:
    site = make_dist("zoo-fakes", "0.3.1", "fakes", "zoo_bench_fakes", FAKE_MODELS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", ""), str(Path.cwd())]).strip(os.pathsep)
    for var in ("ZOO_DISABLE_PLUGINS", "ZOO_DISABLE_PLUGIN_AUTOLOAD", "ZOO_STRICT_PLUGINS"):
        env.pop(var, None)
    return env


def _plan(models: str, *, seeds: str = "0", timeout: float | None = None, model_options: dict | None = None):
    config = {**CONFIG, "model": dict(model_options or {})}
    return make_plan(models=models, seeds=seeds, profile="quick", config=config, cell_timeout=timeout,
                     registries=api.load_registry())


def _metric_table(out: Path) -> pd.DataFrame:
    runs = pd.read_csv(out / "runs.csv")
    columns = ["cell_id", "status", "dice", "dice_pooled", "epochs_done", "steps_done", "best_epoch"]
    return runs[columns].sort_values("cell_id").reset_index(drop=True)


@pytest.mark.slow
def test_every_failure_leaves_a_record_and_the_grid_goes_on(tmp_path, fake_env):
    # the timeout must exceed an ordinary cell's run time (a few seconds, more on a loaded machine); two cells at
    # a time, so the others run while hang-net waits out its timeout
    plan = _plan("hang-net,fail-net,nan-net,sigkill-net,tiny-ok", timeout=20)
    out = tmp_path / "bench"
    summary = run_benchmark(plan, out, env=fake_env, devices=2, keep_checkpoints="none")
    assert not summary.ok
    runs = pd.read_csv(out / "runs.csv").set_index("model")
    status = runs["status"].to_dict()
    assert status == {"fail-net": "failed", "nan-net": "diverged", "sigkill-net": "failed", "hang-net": "timeout",
                      "tiny-ok": "ok"}
    assert "boom from fail-net" in runs.loc["fail-net", "error"]
    assert "diverged" in runs.loc["nan-net", "error"]
    assert "SIGKILL" in runs.loc["sigkill-net", "error"]
    assert "--cell-timeout" in runs.loc["hang-net", "error"]
    ok = runs.loc["tiny-ok"]
    assert 0 <= ok["dice"] <= 1 and ok["epochs_done"] == 2 and ok["plugin_distribution"] == "zoo-fakes"
    assert ok["plugin_version"] == "0.3.1" and ok["infer_images_per_s"] > 0 and ok["peak_memory_mb"] > 0
    for name in ("leaderboard.csv", "per_image.csv", "comparison.csv", "leaderboard_overall.csv"):
        pd.read_csv(out / name)
    assert (out / "leaderboard.md").read_text().count("| tiny-ok |") >= 1
    # with --drop-weights every recorded cell, whatever its status, keeps neither weights nor state
    assert not list(out.glob("cells/*/run/*.pt")) and not list(out.glob("cells/*/run/*.safetensors"))
    assert (out / "cells" / "shapes__tiny-ok__s0" / "run" / "log.jsonl").exists()

    # a rerun skips everything already recorded (failures included) unless asked to retry them
    again = run_benchmark(plan, out, env=fake_env, render=False)
    assert again.ran == [] and len(again.skipped) == 5


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted two-cell run (two seeds of the real U-Net at width 4)."""
    out = tmp_path_factory.mktemp("reference")
    plan = make_plan(models="unet", seeds="0,1", profile="quick", config=CONFIG, registries=api.load_registry())
    summary = run_benchmark(plan, out, render=False)
    assert summary.ok
    write_leaderboard([out], out, plots=False)
    return out


def _weights_and_state(run: Path) -> set[str]:
    return {p.name for p in run.iterdir() if p.suffix in (".safetensors", ".pt")}


@pytest.mark.slow
def test_a_recorded_cell_keeps_its_best_weights_which_zoo_eval_scores(tmp_path, reference):
    cell = reference / "cells" / "shapes__unet__s0"
    assert _weights_and_state(cell / "run") == {"best.safetensors"}
    record = read_json(cell / "record.json")
    assert set(record["checkpoints"]) == {"best"}
    assert main(["eval", "--checkpoint", str(cell / "run"), "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "test_summary.json").read_text())
    # the kept weights are the cell's selected model: they score what the cell recorded
    assert summary["n_images"] == len(pd.read_csv(cell / "per_image.csv", dtype={"image_id": str})["image_id"].unique())
    assert summary["per_image_mean"]["dice"] == pytest.approx(record["metrics"]["dice"], abs=1e-4)


@pytest.mark.slow
def test_shards_merged_equal_the_full_grid(tmp_path, reference):
    plan = make_plan(models="unet", seeds="0,1", profile="quick", config=CONFIG, registries=api.load_registry())
    # shard 1/2 runs here (keeping its whole checkpoint, which changes its folder, never its record); shard 2/2
    # is the unsplit run's second cell (which cells a shard selects is test_bench.py's business)
    summary = run_benchmark(plan, tmp_path / "shard1", shard=(1, 2), render=False, keep_checkpoints="all")
    assert summary.ok and [row.cell_id for row in summary.rows] == ["shapes__unet__s0"]
    assert _weights_and_state(tmp_path / "shard1" / "cells" / "shapes__unet__s0" / "run") == {
        "best.safetensors", "last.safetensors", "last.pt"}
    shutil.copytree(reference / "cells" / "shapes__unet__s1", tmp_path / "shard2" / "cells" / "shapes__unet__s1")
    write_leaderboard([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "merged", plots=False)
    pd.testing.assert_frame_equal(_metric_table(tmp_path / "merged"), _metric_table(reference))
    merged = pd.read_csv(tmp_path / "merged" / "leaderboard.csv")
    full = pd.read_csv(reference / "leaderboard.csv")
    pd.testing.assert_series_equal(merged["dice_mean"], full["dice_mean"])


@pytest.mark.slow
def test_killed_bench_resumes_to_the_same_records(tmp_path, reference):
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "zoo", "bench", "--models", "unet", "--seeds", "0,1", "--profile", "quick",
               "--config", str(_write_config(tmp_path)), "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = out / "cells" / "shapes__unet__s1"
    deadline = time.monotonic() + 120
    # kill the harness once the second cell has checkpointed its first epoch, i.e. in the middle of that cell
    while not (second / "run" / "last.pt").exists():
        assert proc.poll() is None, "bench finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # the cell process dies with its parent; give a would-be orphan time to write a record
    assert read_json(out / "cells" / "shapes__unet__s0" / "record.json")["status"] == "ok"
    assert not (second / "record.json").exists()

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in (second / "cell.log").read_text()
    assert _weights_and_state(second / "run") == {"best.safetensors"}  # pruned once recorded
    pd.testing.assert_frame_equal(_metric_table(out), _metric_table(reference), rtol=1e-6)


def _write_config(folder: Path) -> Path:
    path = folder / "bench.toml"
    path.write_text('[train]\nmetrics = ["dice"]\nepochs = 2\n\n'
                    '[dataset]\nimage_size = 32\ntrain_items = 12\nval_items = 4\ntest_items = 6\n')
    return path


def test_inference_is_timed_and_synchronised_on_the_configured_gpu(monkeypatch):
    """``--device cuda:1``: the timed region synchronises cuda:1 (not the current device, cuda:0)."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    import torch

    from zoo.bench.cell import measure_inference

    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    precision = SimpleNamespace(device=torch.device("cuda:1"), tensor=lambda x: x, autocast=nullcontext)
    out = measure_inference(torch.nn.Conv2d(3, 2, 1), precision, in_channels=3, image_size=(8, 12), batch_size=2,
                            repeats=2, warmup=1)
    assert out["infer_batch_size"] == 2 and out["infer_images_per_s"] > 0
    assert len(synced) == 2 * 2 * 3 and {torch.device(d) for d in synced} == {torch.device("cuda:1")}


def test_cudnn_and_cublas_allocation_failures_are_recorded_as_oom():
    import torch

    from zoo.bench.cell import _classify

    assert _classify(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")) == "oom"
    assert _classify(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")) == "oom"
    assert _classify(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")) == "oom"
    assert _classify(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED")) == "failed"


DICT_MODEL = '''
import torch
from torch import nn
import zoo
from zoo.interfaces import ModelSpec


class DictNet(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.head = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x):
        return {"out": self.head(x)}


def tv_style(*, in_channels: int, num_classes: int):
    """Returns torchvision's {"out": logits}."""
    return DictNet(in_channels, num_classes)


@zoo.hookimpl
def zoo_register_models():
    return [ModelSpec("tv-style", tv_style)]
'''


@pytest.mark.slow
def test_a_model_returning_a_dict_fails_its_cell_with_the_contract_message(tmp_path, make_dist, capsys):
    site = make_dist("zoo-tv-style", "0.2", "tvstyle", "zoo_tv_style", DICT_MODEL)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", ""), str(Path.cwd())]).strip(os.pathsep)
    summary = run_benchmark(_plan("tv-style"), tmp_path / "bench", env=env, render=False)
    assert not summary.ok
    runs = pd.read_csv(tmp_path / "bench" / "runs.csv").set_index("model")
    assert runs.loc["tv-style", "status"] == "failed"
    assert runs.loc["tv-style", "error"] == (
        "ModelContractError: model 'tv-style' from plugin 'tvstyle' (zoo-tv-style 0.2): forward returned a dict "
        "with keys ['out']; the model contract expects one floating-point Tensor of raw logits "
        "(N, num_classes, H, W) = (4, num_classes, 32, 32) (torchvision's segmentation models do): wrap the model "
        "and return out['out'] from forward")

    api.reset_default_registry()  # zoo train says the same, in one line
    assert main(["train", "--model", "tv-style", "--dataset", "shapes", "--epochs", "1", "--image-size", "32",
                 "--batch-size", "4", "--train-items", "4", "--val-items", "2", "--test-items", "2", "--device",
                 "cpu", "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("zoo: error:")]
    assert err == ["zoo: error: " + runs.loc["tv-style", "error"].removeprefix("ModelContractError: ")]


def test_a_table_that_fails_to_render_is_one_error_line_and_the_records_stay(tmp_path, fake_env, monkeypatch,
                                                                               caplog):
    from zoo.bench import report

    def broken(*args, **kwargs):
        raise AssertionError("a rendering bug")

    monkeypatch.setattr(report, "write_leaderboard", broken)
    out = tmp_path / "bench"
    summary = run_benchmark(_plan("tiny-ok"), out, env=fake_env, keep_checkpoints="none")
    assert summary.ok and pd.read_csv(out / "runs.csv")["status"].tolist() == ["ok"]
    assert "were not written (AssertionError: a rendering bug)" in caplog.text and "zoo leaderboard" in caplog.text


@pytest.mark.slow
def test_two_identical_benches_on_one_folder_share_the_grid_as_a_queue(tmp_path):
    """Each process leaves a cell the other holds and takes the next: every cell runs exactly once, both work."""
    import re

    out = tmp_path / "bench"
    command = [sys.executable, "-m", "zoo", "bench", "--models", "unet,unet-attn", "--seeds", "0,1", "--profile",
               "quick", "--threads", "1", "--config", str(_write_config(tmp_path)), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / "cells" / "shapes__unet__s0.lock"
    deadline = time.monotonic() + 120
    while not lock.exists():  # start the second once the first holds its first cell
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode in (0, 1), stderr[-2000:]
    ran = [int(re.search(r"(\d+) run now", text).group(1)) for text in (stdout, second.stdout)]
    assert sum(ran) == 4 and min(ran) >= 1, (stdout, second.stdout)  # both processes trained cells
    assert "held by another process" in stdout + second.stdout
    for cell in sorted((out / "cells").glob("shapes__*")):
        if cell.is_dir():
            assert read_json(cell / "record.json")["status"] == "ok"
            assert (cell / "cell.log").read_text().count("=== ") == 1, f"{cell.name} ran more than once"
