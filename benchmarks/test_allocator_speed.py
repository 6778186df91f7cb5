"""glibc malloc against tcmalloc for a train step, each in a fresh process (an allocator is chosen at start).

A ``unet`` width-32 train step at 128 px, batch 8, in the default precision, timed in a subprocess started with
and without ``LD_PRELOAD`` of tcmalloc (Debian ``libtcmalloc-minimal4``); the two alternate. Informational: it
shows what the one-time hint of ``zoo.allocator`` promises. Skipped where tcmalloc is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from zoo.allocator import find_library, preload_env

STEP = r"""
import time, torch, statistics
from torch import nn
from zoo import api
from zoo.allocator import detect_allocator
from zoo.precision import Precision
torch.manual_seed(0)
prec = Precision("cpu", "auto")
model = prec.module(api.build_model("unet", in_channels=3, num_classes=2, width=32)).train()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x, y = prec.tensor(torch.randn(8, 3, 128, 128)), torch.randint(0, 2, (8, 128, 128))
times = []
for i in range(7):
    started = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with prec.autocast():
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if i >= 2:
        times.append(time.perf_counter() - started)
print(detect_allocator(), 8 / statistics.median(times))
"""


def _rate(env: dict[str, str]) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", STEP], env=env, capture_output=True, text=True, check=True)
    name, rate = out.stdout.split()
    return name, float(rate)


@pytest.mark.skipif(find_library("tcmalloc") is None, reason="tcmalloc is not installed")
def test_tcmalloc_vs_glibc(report, interleaved):
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if "ZOO_BENCH_THREADS" in os.environ:
        plain["OMP_NUM_THREADS"] = os.environ["ZOO_BENCH_THREADS"]
    fast = preload_env("tcmalloc", plain)
    assert _rate(fast)[0] == "tcmalloc" and _rate(plain)[0] == "glibc"
    rates = interleaved({"glibc": lambda: _rate(plain)[1], "tcmalloc": lambda: _rate(fast)[1]}, 3)
    report("allocator/tcmalloc-vs-glibc", "train step img/s with tcmalloc preloaded vs glibc malloc (`unet` w32, "
           "128 px, batch 8, default precision)", rates["tcmalloc"] / rates["glibc"],
           note=f"{rates['tcmalloc']:.1f} vs {rates['glibc']:.1f} img/s, median of 3 alternating processes")
