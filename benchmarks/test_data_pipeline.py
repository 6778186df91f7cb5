"""Data pipeline throughput versus what a width-32 U-Net train step consumes (target: pipeline >= 5x).

The train step runs in the default precision (``auto``: the CPU fast path where available), since a faster step
needs a faster pipeline. Each pipeline variant reports images/s and its ratio to the train step. The data: 64
PNGs of 128x128 RGB written from ``shapes`` into a folder layout, read through the ``folder`` loader with the
``light`` preset at 128 px, batch 8, ``num_workers=0`` (best on 2 cores).
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
from zoo.precision import Precision

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
    """Images/s of a width-32 U-Net train step at 128 px, batch 8, default precision (best of 5 after 2 warm-ups).

    The best step, not the median: the ratio must hold when training runs at full speed.
    """
    torch.manual_seed(0)
    prec = Precision("cpu", "auto")
    model = prec.module(_model()).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = prec.tensor(torch.randn(BATCH, 3, SIZE, SIZE)), torch.randint(0, 2, (BATCH, SIZE, SIZE))
    times = []
    for step in range(7):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    rate = BATCH / float(np.min(times))
    print(f"\nunet width-32 train step ({prec.name}): {rate:.1f} images/s ({SIZE}px, batch {BATCH})")
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
def test_pipeline_vs_train_step(benchmark, report, folder_root: Path, train_images_per_s: float,
                                cache: bool) -> None:
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
    kind = "cached" if cache else "uncached"
    report(f"pipeline/{kind}", f"{kind} `folder` loader (PNG, light augmentation, 128 px) img/s vs the w32 train "
           f"step's consumption", ratio, target=">= 5" if cache else "",
           note=f"{rate:.0f} vs {train_images_per_s:.1f} img/s" + ("" if cache else "; PNG decode every epoch"))
    if cache:
        assert ratio >= 3, f"cached pipeline gives {rate:.0f} images/s, only {ratio:.1f}x the train step"
