"""Model cost: our ``unet`` against a textbook U-Net, and every registered model's train/inference speed.

The textbook U-Net below is the plain form (two 3x3 conv+BN+ReLU per level, max-pool, transposed-conv
upsampling, concatenated skips) at the same widths; the configurable skeleton of ``zoo_unet`` (injected blocks,
padding to a multiple of 16, cropping back) must cost nothing on top of it. Both run one train step at a time on
the same batch (3x128x128, batch 8) in the default precision (``auto``: the CPU fast path where available).
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import Tensor, nn

from zoo import api
from zoo.precision import Precision

SIZE, BATCH = 128, 8


class TextbookUNet(nn.Module):
    """Ronneberger et al.'s U-Net with BN, as written in tutorials: no options, no padding, no crop."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        w = [width * 2**k for k in range(5)]
        self.enc1, self.enc2, self.enc3, self.enc4 = block(in_channels, w[0]), block(w[0], w[1]), block(w[1], w[2]), \
            block(w[2], w[3])
        self.bottleneck = block(w[3], w[4])
        self.pool = nn.MaxPool2d(2)
        self.up4, self.dec4 = nn.ConvTranspose2d(w[4], w[3], 2, stride=2), block(2 * w[3], w[3])
        self.up3, self.dec3 = nn.ConvTranspose2d(w[3], w[2], 2, stride=2), block(2 * w[2], w[2])
        self.up2, self.dec2 = nn.ConvTranspose2d(w[2], w[1], 2, stride=2), block(2 * w[1], w[1])
        self.up1, self.dec1 = nn.ConvTranspose2d(w[1], w[0], 2, stride=2), block(2 * w[0], w[0])
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        b = self.bottleneck(self.pool(e4))
        d4 = self.dec4(torch.cat([e4, self.up4(b)], 1))
        d3 = self.dec3(torch.cat([e3, self.up3(d4)], 1))
        d2 = self.dec2(torch.cat([e2, self.up2(d3)], 1))
        d1 = self.dec1(torch.cat([e1, self.up1(d2)], 1))
        return self.head(d1)


class Stepper:
    """One model's train step on a fixed batch, in a given precision."""

    def __init__(self, model: nn.Module, prec: Precision, batch: int = BATCH, size: int = SIZE) -> None:
        torch.manual_seed(0)
        self.prec = prec
        self.model = prec.module(model).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = prec.tensor(torch.randn(batch, 3, size, size))
        self.y = torch.randint(0, 2, (batch, size, size))

    def step(self) -> float:
        started = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        with self.prec.autocast():
            loss = nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - started

    def images_per_s(self, steps: int = 1) -> float:
        return self.x.shape[0] / min(self.step() for _ in range(steps))


def test_unet_matches_a_textbook_unet(report, interleaved):
    prec = Precision("cpu", "auto")
    ours = Stepper(api.build_model("unet", in_channels=3, num_classes=2, width=32), prec)
    plain = Stepper(TextbookUNet(width=32), prec)
    assert api.count_parameters(ours.model) == api.count_parameters(plain.model)  # the same network
    for s in (ours, plain):
        s.step(), s.step()  # warm-up
    rates = interleaved({"ours": ours.images_per_s, "plain": plain.images_per_s}, 7)
    ratio = rates["ours"] / rates["plain"]
    report("unet/vs-textbook", f"`unet` train step vs a textbook U-Net, width 32, {SIZE} px, batch {BATCH}, "
           f"{prec.name}{' + channels_last' if prec.channels_last else ''}", ratio, target=">= 0.95",
           note=f"{rates['ours']:.1f} vs {rates['plain']:.1f} img/s, median of 7 alternating steps")
    assert ratio >= 0.85


def _takes_width(name: str) -> bool:
    from zoo.options import option_defaults

    return "width" in option_defaults(api.default_registry().models.get(name).builder)


def _buildable(name: str) -> nn.Module | None:
    options = {"width": 16} if _takes_width(name) else {}
    try:
        return api.build_model(name, in_channels=3, num_classes=2, **options)
    except Exception:  # an adapter whose library is not installed (smp, monai)
        return None


MODEL_NAMES = api.default_registry().models.names()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_cost(name: str, report):
    model = _buildable(name)
    if model is None:
        pytest.skip(f"{name}: its library is not installed")
    prec = Precision("cpu", "auto")
    gmacs = api.count_gmacs(model, 3, SIZE)
    params = api.count_parameters(model)
    stepper = Stepper(model, prec)
    stepper.step()
    train = stepper.images_per_s(steps=3)
    model = stepper.model.eval()
    with torch.inference_mode(), prec.autocast():
        model(stepper.x)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            model(stepper.x)
            times.append(time.perf_counter() - started)
    infer = BATCH / min(times)
    width = " w16" if _takes_width(name) else ""
    report(f"models/{name}", f"`{name}`{width}: train img/s ({SIZE} px, batch {BATCH}, {prec.name})", train,
           unit="img/s", note=f"inference {infer:.1f} img/s; {gmacs:.2f} GMACs/image; {params / 1e6:.2f} M params")
