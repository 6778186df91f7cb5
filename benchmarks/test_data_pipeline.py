"""Data pipeline throughput versus what a width-32 U-Net train step consumes (target: pipeline >= 5x).

Run with ``python -m pytest benchmarks/test_data_pipeline.py`` (not in the default test paths). Each pipeline
test reports images/s and its ratio to the train step in ``extra_info`` and on stdout (``-s``), and asserts the
cached pipeline reaches 5x. The data: 64 PNGs of 128x128 RGB written from ``shapes`` into a folder layout, read
through the ``folder`` loader with the ``light`` preset at 128 px, batch 8, ``num_workers=0`` (best on 2 cores).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from zoo import api, data

SIZE, BATCH, ITEMS = 128, 8, 64


def _textbook_unet(width: int = 32) -> nn.Module:
    """Fallback when the models plugin is absent: a plain 4-level U-Net."""

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = [width * 2**k for k in range(5)]
            self.downs = nn.ModuleList([block(3, w[0])] + [block(w[k], w[k + 1]) for k in range(4)])
            self.ups = nn.ModuleList([nn.ConvTranspose2d(w[k + 1], w[k], 2, stride=2) for k in range(4)])
            self.decs = nn.ModuleList([block(2 * w[k], w[k]) for k in range(4)])
            self.head = nn.Conv2d(w[0], 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for k, down in enumerate(self.downs):
                x = down(x if k == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            x = skips.pop()
            for k in reversed(range(4)):
                x = self.decs[k](torch.cat([self.ups[k](x), skips.pop()], 1))
            return self.head(x)

    return UNet()


def _model() -> nn.Module:
    try:
        return api.build_model("unet", in_channels=3, num_classes=2, width=32)
    except Exception:  # the models plugin is not installed
        return _textbook_unet(32)


@pytest.fixture(scope="module")
def train_images_per_s() -> float:
    """Images/s of a width-32 U-Net fp32 train step at 128 px, batch 8 (median of 5 steps after 2 warm-ups)."""
    torch.manual_seed(0)
    model = _model().train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(BATCH, 3, SIZE, SIZE), torch.randint(0, 2, (BATCH, SIZE, SIZE))
    times = []
    for step in range(7):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    rate = BATCH / float(np.median(times))
    print(f"\nunet width-32 train step: {rate:.1f} images/s ({SIZE}px, batch {BATCH})")
    return rate


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from zoo_datasets.shapes import render_item

    root = tmp_path_factory.mktemp("pipeline")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(ITEMS):
        image, mask = render_item(seed=0, split="train", index=i, image_size=SIZE, channels=3, num_classes=2,
                                  max_shapes=4, contrast=0.45, noise=0.6)
        Image.fromarray(image.transpose(1, 2, 0)).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i:03d}.png")
    (root / "classes.txt").write_text("background\nshape\n")
    (root / "split.csv").write_text("".join(f"{i:03d},train\n" for i in range(ITEMS)))
    return root


def _epoch(loader: torch.utils.data.DataLoader) -> int:
    n = 0
    for images, _ in loader:
        n += images.shape[0]
    return n


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "uncached"])
def test_pipeline_vs_train_step(benchmark, folder_root: Path, train_images_per_s: float, cache: bool) -> None:
    from zoo_datasets.folder import folder

    split = folder(root=str(folder_root), cache_mb=1024 if cache else 0).split("train")
    loader = data.make_loader(split, train=True, batch_size=BATCH, image_size=SIZE, augment="light")
    if cache:
        _epoch(loader)  # the first epoch decodes and fills the cache; later epochs are what we measure
        assert split.cached_items == ITEMS
    torch.manual_seed(0)
    images = benchmark.pedantic(_epoch, args=(loader,), rounds=3, iterations=1)
    rate = images / benchmark.stats.stats.median
    ratio = rate / train_images_per_s
    benchmark.extra_info.update(images_per_s=round(rate, 1), train_images_per_s=round(train_images_per_s, 1),
                                ratio=round(ratio, 1))
    print(f"\npipeline ({'cached' if cache else 'uncached'}): {rate:.0f} images/s = {ratio:.1f}x the train step")
    if cache:
        assert ratio >= 5, f"cached pipeline gives {rate:.0f} images/s, only {ratio:.1f}x the train step"
