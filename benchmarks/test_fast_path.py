"""The CPU fast path (bf16 autocast + channels_last, ``precision="auto"``) against fp32 eager.

A width-32 ``unet`` train step and forward pass at 128 px, batch 8, alternating the two modes on one batch.
Target: >= 1.8x for training. Skipped where the CPU has no native bf16 (``auto`` then means fp32).
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from zoo import api
from zoo.precision import Precision, cpu_has_native_bf16

SIZE, BATCH, WIDTH = 128, 8, 32

pytestmark = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16/AMX)")


def _runner(prec: Precision, train: bool):
    torch.manual_seed(0)
    model = prec.module(api.build_model("unet", in_channels=3, num_classes=2, width=WIDTH)).train(train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = prec.tensor(torch.randn(BATCH, 3, SIZE, SIZE)), torch.randint(0, 2, (BATCH, SIZE, SIZE))

    def once() -> float:
        started = time.perf_counter()
        if train:
            opt.zero_grad(set_to_none=True)
            with prec.autocast():
                loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode(), prec.autocast():
                model(x)
        return BATCH / (time.perf_counter() - started)

    once(), once()  # warm-up: oneDNN primitive creation, first-touch memory
    return once


@pytest.mark.parametrize("train", [True, False], ids=["train", "inference"])
def test_fast_path_vs_fp32_eager(train: bool, report, interleaved):
    fast = Precision("cpu", "auto")
    assert fast.name == "bf16" and fast.channels_last
    rates = interleaved({"fp32": _runner(Precision("cpu", "fp32"), train), "fast": _runner(fast, train)}, 7)
    ratio = rates["fast"] / rates["fp32"]
    kind = "train" if train else "inference"
    report(f"fast-path/{kind}", f"bf16 + channels_last vs fp32 eager, `unet` w{WIDTH} {kind}, {SIZE} px, "
           f"batch {BATCH}", ratio, target=">= 1.8" if train else "",
           note=f"{rates['fast']:.1f} vs {rates['fp32']:.1f} img/s, median of 7 alternating steps")
    assert ratio >= 1.3
