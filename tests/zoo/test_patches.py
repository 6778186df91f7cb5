"""Native-scale patches (``zoo.data.patches``), augmentation step lists, and scoring at native resolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo import data, losses
from zoo.data.patches import PAD_LABEL, FlipRotate, PatchSampler, PatchSpec, augment_steps
from zoo.engine import evaluate, predict_scaled
from zoo.errors import OptionError, UnknownNameError
from zoo.precision import Precision
from zoo.training import TrainConfig
from zoo.training.config import parse_size


def _coded(h: int, w: int, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 image whose channels are (row, column, 0) and a mask of (row + column) % classes."""
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    image = torch.stack([rows, cols, torch.zeros_like(rows)]).to(torch.uint8)
    return image, ((rows + cols) % classes).to(torch.uint8)


def test_a_crop_is_a_native_slice_of_image_and_mask():
    torch.manual_seed(0)
    image, mask = _coded(60, 50)
    sampler = PatchSampler(PatchSpec((24, 32), "crop"))
    for _ in range(20):
        out_image, out_mask = sampler(image, mask)
        assert out_image.shape == (3, 24, 32) and out_image.dtype == torch.uint8
        assert out_mask.shape == (24, 32) and out_mask.dtype == torch.int64
        top, left = int(out_image[0, 0, 0]), int(out_image[1, 0, 0])
        assert torch.equal(out_image, image[:, top:top + 24, left:left + 32])  # copied, not resampled
        assert torch.equal(out_mask, mask[top:top + 24, left:left + 32].long())


@pytest.mark.parametrize(("ignore_index", "pad"), [(None, PAD_LABEL), (255, 255)])
def test_small_images_are_padded_with_the_pad_label_and_mirrored_pixels(ignore_index, pad):
    torch.manual_seed(0)
    image, mask = _coded(10, 7)
    spec = PatchSpec((16, 16), "whole", pad_label=data.patches.pad_label_for(ignore_index))
    out_image, out_mask = PatchSampler(spec)(image, mask)
    assert out_image.shape == (3, 16, 16) and out_mask.shape == (16, 16)
    top, left = (16 - 10) // 2, (16 - 7) // 2  # whole images are centred
    assert torch.equal(out_mask[top:top + 10, left:left + 7], mask.long())
    assert torch.equal(out_image[:, top:top + 10, left:left + 7], image)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[top:top + 10, left:left + 7] = True
    assert (out_mask[~inside] == pad).all()
    assert set(out_image[0][~inside].tolist()) <= set(range(10))  # mirrored rows, not zeros from nowhere


def test_whole_sampling_centre_crops_larger_images():
    image, mask = _coded(40, 30)
    out_image, out_mask = PatchSampler(PatchSpec((32, 16), "whole"))(image, mask)
    assert torch.equal(out_image, image[:, 4:36, 7:23]) and torch.equal(out_mask, mask[4:36, 7:23].long())


def test_the_training_loss_ignores_padding():
    image, mask = _coded(10, 7, classes=2)
    _, padded = PatchSampler(PatchSpec((16, 16), "whole"))(image, mask)
    logits = torch.randn(1, 2, 16, 16)
    loss = losses.build_loss("ce", num_classes=2, ignore_index=PAD_LABEL)
    inner = logits[..., 3:13, 4:11]
    assert float(loss(logits, padded[None])) == pytest.approx(float(nn.functional.cross_entropy(inner,
                                                                                               mask[None].long())))


def test_foreground_share_is_honoured():
    torch.manual_seed(0)
    image = torch.zeros(3, 200, 200, dtype=torch.uint8)
    mask = torch.zeros(200, 200, dtype=torch.uint8)
    mask[98:102, 98:102] = 2  # 16 of 40,000 pixels
    n, share = 400, 0.5
    sampler = PatchSampler(PatchSpec((32, 32), "crop", foreground_share=share))
    centred = sum(int(sampler(image, mask)[1][16, 16] == 2) for _ in range(n))
    assert abs(centred / n - share) < 0.08  # binomial sd 0.025; random crops almost never centre on it
    only_one = PatchSampler(PatchSpec((32, 32), "crop", foreground_share=1.0, foreground_classes=(1,)))
    assert all(sampler_mask[16, 16] != 2 for _, sampler_mask in (only_one(image, mask) for _ in range(20)))


def test_scale_jitter_never_interpolates_masks():
    torch.manual_seed(0)
    image, mask = _coded(64, 64, classes=3)
    mask = torch.tensor([0, 3, 7], dtype=torch.uint8)[mask.long()]
    sampler = PatchSampler(PatchSpec((32, 32), "crop", scale_jitter=(0.7, 1.4), input_scale=0.9))
    for _ in range(10):
        out_image, out_mask = sampler(image, mask)
        assert out_image.shape == (3, 32, 32) and out_image.dtype == torch.uint8
        assert set(out_mask.unique().tolist()) <= {0, 3, 7, PAD_LABEL}


def test_augment_step_lists():
    assert augment_steps("hflip+vflip+rot90") == ("hflip", "vflip", "rot90") and augment_steps("light") is None
    with pytest.raises(OptionError, match=r"'hflip\+spin'.*hflip, vflip, rot90"):
        augment_steps("hflip+spin")
    with pytest.raises(UnknownNameError, match="'medium'.*light.*hflip"):
        augment_steps("medium")
    torch.manual_seed(0)
    image, mask = _coded(8, 8)
    seen = set()
    for _ in range(60):
        out_image, out_mask = FlipRotate(("hflip", "vflip", "rot90"))(image, mask)
        assert torch.equal(((out_image[0].long() + out_image[1].long()) % 5).to(torch.uint8), out_mask)
        seen.add(tuple(out_mask.flatten().tolist()))
    assert len(seen) == 4  # (row + col) % 5 has 4 distinct images under the 8 dihedral maps
    wide_image, wide_mask = _coded(4, 6)
    for _ in range(10):  # a quarter turn would reshape a non-square patch: only 0 or 180 degrees
        assert FlipRotate(("rot90",))(wide_image, wide_mask)[0].shape == (3, 4, 6)


def test_the_loader_cuts_patches_through_the_decode_cache():
    loads = []

    def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        loads.append(i)
        return _coded(20 + 5 * i, 30)

    split = data.CachedSplit(["a", "b", "c", "d"], load, cache=data.DecodeCache(10))
    spec = PatchSpec((16, 16), "crop", foreground_share=0.5)
    for _ in range(2):
        images, masks = next(iter(data.make_loader(split, train=True, batch_size=4, augment="hflip+rot90",
                                                   patch=spec)))
        assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32 and masks.shape == (4, 16, 16)
    assert sorted(loads) == [0, 1, 2, 3]  # decoded once


def test_train_config_patch_settings():
    config = TrainConfig(model="m", dataset="d", patch_size="48x32", foreground_classes="1,2",
                         scale_jitter="0.9,1.1", augment="vflip")
    assert config.patch_size == (48, 32) and config.eval_tile == (48, 32)
    assert config.foreground_classes == (1, 2) and config.scale_jitter == (0.9, 1.1)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert parse_size("w", [3, 4]) == (3, 4) and parse_size("w", 5) == (5, 5)
    for bad, match in ((dict(sampling="tiles"), "sampling 'tiles'.*crop, whole"),
                       (dict(eval_blend="mean"), "eval_blend 'mean'.*gaussian"),
                       (dict(patch_size="big"), "patch_size='big' is not a size"),
                       (dict(foreground_share=1.5), r"foreground_share=1.5 must be in \[0, 1\]"),
                       (dict(scale_jitter=(1.2, 0.8)), "scale_jitter.*low <= high"),
                       (dict(input_scale=0), "input_scale=0"), (dict(eval_overlap=1.0), "eval_overlap=1.0")):
        with pytest.raises((OptionError, UnknownNameError), match=match) as info:
            TrainConfig(model="m", dataset="d", **bad)
        assert "\n" not in str(info.value)


class _Blocky(nn.Module):
    """Logits from the first channel (translation-equivariant, so windows agree with the whole image)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-x[:, :1], x[:, :1]], dim=1)


class _PixelAccuracy:
    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.reset()

    def reset(self) -> None:
        self.right = self.total = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        self.shapes.append(tuple(target.shape))
        self.right += int((pred == target).sum())
        self.total += target.numel()
        return {"acc": (pred == target).float().flatten(1).mean(1)}

    def compute(self) -> dict[str, torch.Tensor]:
        return {"acc": torch.tensor(self.right / self.total)}


def _native_batch() -> list[tuple[torch.Tensor, torch.Tensor]]:
    mask = torch.zeros(1, 40, 48, dtype=torch.long)
    mask[:, 8:32, 16:40] = 1
    return [(mask[:, None].float() * 2 - 1, mask)]


def test_input_scale_predicts_small_and_scores_at_native_size():
    images, masks = _native_batch()[0]
    logits = predict_scaled(_Blocky(), images, input_scale=0.5)
    assert logits.shape == (1, 2, 40, 48)
    metric = _PixelAccuracy()
    result = evaluate(_Blocky(), _native_batch(), {"acc": metric}, precision=Precision("cpu", "fp32"),
                      input_scale=0.5)
    assert metric.shapes == [(1, 40, 48)] and result.pooled["acc"] > 0.95


def test_sliding_windows_equal_whole_images_when_the_image_fits_one_window():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    loader = [(torch.randn(1, 1, 40, 48), torch.randint(0, 2, (1, 40, 48)))]
    scores = [evaluate(model, loader, {"acc": _PixelAccuracy()}, precision=Precision("cpu", "fp32"), **kw).rows
              for kw in ({}, {"tile": (64, 64), "blend": "gaussian"}, {"tile": (48, 64), "blend": "constant"})]
    assert scores[0] == scores[1] == scores[2]


def test_a_fixed_input_size_predicts_at_the_training_size_and_scores_at_native_size():
    images, _ = _native_batch()[0]
    seen: list[tuple[int, ...]] = []

    class Spy(_Blocky):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return super().forward(x)

    logits = predict_scaled(Spy(), images, input_scale=(32, 32))
    assert seen == [(32, 32)] and logits.shape == (1, 2, 40, 48)
    metric = _PixelAccuracy()
    result = evaluate(_Blocky(), _native_batch(), {"acc": metric}, precision=Precision("cpu", "fp32"),
                      input_scale=(32, 32))
    assert metric.shapes == [(1, 40, 48)] and result.pooled["acc"] > 0.9
