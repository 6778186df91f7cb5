"""Sliding-window inference: ``zoo.inference.sliding_window_logits`` against MONAI's ``sliding_window_inference``.

Same model (``unet`` width 8, eval, ``inference_mode``, fp32), same input (two DRIVE-sized 584x565 images),
same windows (128 px, overlap 0.5, gaussian blending, 8 windows per forward pass); the two alternate and the
median of 15 calls each is compared. Target: ours >= 1.0x MONAI's speed. A second row makes the same comparison
with an identity "model", so that only the windowing and blending are timed (the network dominates the first
row, which therefore sits near 1.0). Skipped without MONAI.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from torch import nn

from zoo import api
from zoo.inference import sliding_window_logits

monai_inferers = pytest.importorskip("monai.inferers", reason="the monai extra is not installed")

SIZE, TILE, OVERLAP, BATCH, ROUNDS = (584, 565), 128, 0.5, 8, 15


def _timer(fn: Callable[[], torch.Tensor]) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            fn()
        return time.perf_counter() - started

    once()  # warm-up: oneDNN primitives, first-touch memory
    return once


def _compare(model: nn.Module, interleaved) -> tuple[float, dict[str, float]]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, *SIZE)
    with torch.inference_mode():
        ours = sliding_window_logits(model, x, tile=TILE, overlap=OVERLAP, batch_size=BATCH, pad_multiple=1,
                                     blend="gaussian")
        theirs = monai_inferers.sliding_window_inference(x, TILE, BATCH, model, overlap=OVERLAP, mode="gaussian")
    assert (ours - theirs).abs().max().item() <= 1e-5
    seconds = interleaved({
        "ours": _timer(lambda: sliding_window_logits(model, x, tile=TILE, overlap=OVERLAP, batch_size=BATCH,
                                                     pad_multiple=1, blend="gaussian")),
        "monai": _timer(lambda: monai_inferers.sliding_window_inference(x, TILE, BATCH, model, overlap=OVERLAP,
                                                                        mode="gaussian")),
    }, ROUNDS)
    return seconds["monai"] / seconds["ours"], seconds


def test_sliding_window_vs_monai(report, interleaved):
    unet = api.build_model("unet", in_channels=3, num_classes=2, width=8).eval()
    ratio, seconds = _compare(unet, interleaved)
    bare_ratio, bare = _compare(nn.Identity(), interleaved)
    setup = f"2 x {SIZE[0]}x{SIZE[1]}, {TILE} px windows, overlap {OVERLAP}, gaussian, batch {BATCH}"
    report("inference/sliding-vs-monai", f"`sliding_window_logits` vs MONAI `sliding_window_inference` speed, "
           f"`unet` w8 ({setup})", ratio, target=">= 1.0",
           note=f"{seconds['ours'] * 1e3:.0f} vs {seconds['monai'] * 1e3:.0f} ms per call, median of {ROUNDS} "
                f"alternating calls; outputs equal within 1e-5; the network takes all but a few ms of both")
    report("inference/sliding-overhead-vs-monai", f"the same with an identity model: windowing and blending "
           f"only ({setup})", bare_ratio, target=">= 1.0",
           note=f"{bare['ours'] * 1e3:.1f} vs {bare['monai'] * 1e3:.1f} ms per call, median of {ROUNDS} "
                f"alternating calls")
    assert ratio >= 0.9 and bare_ratio >= 1.0
