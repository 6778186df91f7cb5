"""Deployment runtime: ONNX Runtime (CPU execution provider) against eager PyTorch, ``unet`` width 32.

The checkpoint is exported with ``zoo export`` (dynamo exporter, fixed 128x128, dynamic batch) and run through
``zoo.deploy.DeployedModel``, exactly what ``zoo predict --model`` runs. Latency at batch 1 and throughput at
batch 8, fp32 on both sides, as many ONNX Runtime intra-op threads as torch threads; the two alternate and the
median of 15 calls each is compared. A second row compares ONNX Runtime with the eager CPU fast path (bf16 +
channels_last), which is what ``zoo predict`` uses by default on a CPU with native bf16. Informational rows:
they say which runtime to deploy on this machine, not whether zoo is fast. Skipped without the onnx extra.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import pytest
import torch

from zoo import api
from zoo.checkpoint import save_checkpoint
from zoo.deploy import load_deployed
from zoo.export import export_checkpoint
from zoo.precision import Precision

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

SIZE, WIDTH, BATCH, ROUNDS = 128, 32, 8, 15


def _timer(model: torch.nn.Module, x: torch.Tensor, prec: Precision) -> Callable[[], float]:
    x = prec.tensor(x)

    def once() -> float:
        started = time.perf_counter()
        with torch.inference_mode(), prec.autocast():
            model(x)
        return time.perf_counter() - started

    once(), once()  # warm-up: oneDNN primitives / ORT's first-run allocations
    return once


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = api.build_model("unet", in_channels=3, num_classes=2, width=WIDTH).eval()
    meta = {"model": "unet", "model_options": {"width": WIDTH}, "in_channels": 3, "out_channels": 2,
            "num_classes": 2, "class_names": ["background", "object"], "image_size": SIZE, "eval_image_size": None,
            "config": {"image_size": SIZE}, "plugin": {"version": None}}
    folder = tmp_path_factory.mktemp("export")
    save_checkpoint(folder / "unet", model, meta)
    result = export_checkpoint(folder / "unet", format="onnx")
    assert result.passed
    return model, load_deployed(result.path)[0], result.max_abs_diff


@pytest.mark.parametrize("batch", [1, BATCH], ids=["latency", "throughput"])
def test_onnxruntime_vs_eager(batch, exported, report, interleaved):
    eager, deployed, diff = exported
    fp32, fast = Precision("cpu", "fp32"), Precision("cpu", "auto")
    x = torch.randn(batch, 3, SIZE, SIZE)
    seconds = interleaved({"ort": _timer(deployed, x, fp32), "fp32": _timer(eager, x, fp32),
                           "fast": _timer(fast.module(copy.deepcopy(eager)), x, fast)}, ROUNDS)
    ratio = seconds["fp32"] / seconds["ort"]
    kind = "latency at batch 1" if batch == 1 else f"throughput at batch {batch}"
    report(f"inference/onnxruntime-vs-eager-{'b1' if batch == 1 else 'batch'}",
           f"ONNX Runtime (CPU EP) vs eager fp32 PyTorch, `unet` w{WIDTH}, {SIZE} px, {kind}", ratio,
           note=f"{seconds['ort'] * 1e3:.1f} vs {seconds['fp32'] * 1e3:.1f} ms per call; eager {fast.name} + "
                f"channels_last {seconds['fast'] * 1e3:.1f} ms (ORT runs at {seconds['fast'] / seconds['ort']:.2f}x "
                f"its speed); "
                f"median of {ROUNDS} alternating calls; `zoo export` parity {diff:.1e}")
    assert ratio > 0
