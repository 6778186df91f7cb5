"""Property-based tests of the files zoo reads: images in every mode Pillow reads, masks, folder datasets with
their ``split.csv`` and ``classes.txt``, and checkpoints.

The property, for every generated file: zoo reads it into the documented tensors, or raises a ``ZooError`` whose
message is one line naming the file; never a raw Pillow, numpy, safetensors or JSON error. Images are tiny (at
most 48 pixels a side, or one row of 300), so the suite stays quick.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from zoo import api
from zoo.errors import ZooError

from tests.properties.conftest import counted
from tests.zoo.bad_files import write_bomb_png

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")
FORMATS = ("PNG", "TIFF", "BMP", "GIF", "JPEG", "WEBP")
SUFFIX = {"PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "JPEG": ".jpg", "WEBP": ".webp"}
SIZES = st.one_of(st.sampled_from([(1, 1), (1, 17), (17, 1), (300, 1), (1, 300), (3, 2)]),
                  st.tuples(st.integers(1, 48), st.integers(1, 48)))


def _one_line_naming(exc: ZooError, path: Path) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, repr(message)
    assert str(path) in message or path.name in message, message


def _pixels(mode: str, size: tuple[int, int], seed: int, special: str) -> np.ndarray:
    """Pixel values for ``mode`` (float images may hold NaN, infinities or values outside [0, 255])."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "F":
        array = rng.uniform(-2, 2, (h, w)).astype(np.float32) * {"none": 1, "big": 1e6, "unit": 0.4}.get(special, 1)
        if special == "nan":
            array.flat[0] = np.nan
        elif special == "inf":
            array.flat[-1] = np.inf
        elif special == "unit":
            array = np.abs(array)
        return array
    if mode in ("I", "I;16"):
        high = 65535 if mode == "I;16" else 2**31 - 1
        return rng.integers(0 if special != "negative" or mode == "I;16" else -1000, high, (h, w),
                            dtype=np.int64).astype(np.uint16 if mode == "I;16" else np.int32)
    channels = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    array = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return array[..., 0] if channels == 1 else array


def _image(mode: str, array: np.ndarray):
    from PIL import Image

    if mode == "1":
        return Image.fromarray(array > 127).convert("1")
    if mode == "P":
        img = Image.fromarray(array, "L").convert("P")
        img.putpalette(list(np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)))
        return img
    if mode in ("LA", "CMYK", "RGBA", "RGB"):
        return Image.frombytes(mode, (array.shape[1], array.shape[0]), np.ascontiguousarray(array).tobytes())
    if mode == "I;16":
        return Image.fromarray(array).convert("I;16") if array.dtype != np.uint16 else Image.fromarray(array, "I;16")
    return Image.fromarray(array, {"I": "I", "F": "F", "L": "L"}[mode])


@st.composite
def image_files(draw: st.DrawFn, directory: Path) -> tuple[Path, tuple[int, int], str]:
    """An image file in some mode and format, maybe damaged: (path, size, damage)."""
    mode, fmt, size = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS)), draw(SIZES)
    special = draw(st.sampled_from(["none", "nan", "inf", "big", "unit", "negative"]))
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "garbage", "empty", "bomb"]))
    path = directory / f"img{draw(st.integers(0, 10**9))}{SUFFIX[fmt]}"
    if damage == "bomb":
        return write_bomb_png(path.with_suffix(".png"), *draw(st.sampled_from([(20000, 20000), (12000, 9000)]))), \
            size, damage
    buffer = io.BytesIO()
    try:
        _image(mode, _pixels(mode, size, draw(st.integers(0, 2**32 - 1)), special)).save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):  # a mode this format cannot store
        assume(False)
    data = buffer.getvalue()
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    elif damage == "garbage":
        data = draw(st.binary(max_size=64))
    elif damage == "empty":
        data = b""
    path.write_bytes(data)
    return path, size, damage


@given(data=st.data(), channels=st.sampled_from([1, 3]), limit=st.sampled_from([None, "400", "100000"]))
@counted("image files (modes, sizes, damage)")
def test_any_image_file_reads_or_fails_in_one_line_naming_it(data, channels, limit, tmp_path_factory,
                                                             monkeypatch):
    from zoo.data import adapt_channels, read_image

    path, (w, h), damage = data.draw(image_files(tmp_path_factory.mktemp("img")))
    if limit is None:
        monkeypatch.delenv("ZOO_MAX_IMAGE_PIXELS", raising=False)
    else:
        monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", limit)
    try:
        image = read_image(path)
    except ZooError as exc:
        _one_line_naming(exc, path)
        if damage == "bomb" or (limit is not None and w * h > int(limit) and damage == "none"):
            assert "ZOO_MAX_IMAGE_PIXELS=" in str(exc)
        return
    assert damage != "bomb"
    assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] in (1, 2, 3, 4)
    if damage == "none":
        assert tuple(image.shape[1:]) == (h, w)
    try:
        adapted = adapt_channels(image, channels, path)
    except ZooError as exc:
        _one_line_naming(exc, path)
    else:
        assert adapted.shape[0] == channels


# ---------------------------------------------------------------------------------------------------------------
# Folder datasets: images with masks (palette, RGB, 16-bit, out-of-range values, other sizes), classes.txt and
# split.csv with missing, duplicate, unknown and malformed rows

CLASS_LINES = st.one_of(st.sampled_from(["background", "vessel", "void", "unlabelled", "sky 128 128 128",
                                         "road 128 64 128", "cat 300 0 0", "x ² ³ ¹", "# comment", ""]),
                        st.text(max_size=12))
SPLIT_ROWS = st.one_of(st.sampled_from(["id,split", "a,train", "b,val", "c,test", "a,test", "zz,train", "a,holdout",
                                        "b", "c,val,extra", ",train", "# note", ""]),
                       st.builds("{},{}".format, st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=6)),
                       st.text(max_size=12))


@st.composite
def folder_datasets(draw: st.DrawFn, root: Path) -> dict:
    """Write a tiny folder dataset; return the options to build it with."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    if draw(st.integers(0, 9)):
        (root / "masks").mkdir()
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for item in ids:
        w, h = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
        image_mode = draw(st.sampled_from(["L", "RGB", "RGBA", "I;16"]))
        array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = (Image.fromarray(array[..., 0].astype(np.uint16) * 257) if image_mode == "I;16"
               else Image.fromarray(array).convert(image_mode))
        img.save(root / "images" / f"{item}.png")
        if not (root / "masks").is_dir() or not draw(st.integers(0, 7)):
            continue  # an image without a mask
        mw, mh = (w, h) if draw(st.integers(0, 4)) else (w + 1, h)
        values = draw(st.sampled_from([(0, 1), (0, 1, 2), (0, 255), (0, 7), (0, 1, 300)]))
        mask = rng.choice(np.array(values), (mh, mw))
        kind = draw(st.sampled_from(["L", "P", "RGB", "I;16", "1"]))
        if kind == "RGB":
            img = Image.fromarray(np.stack([mask.clip(0, 255)] * 3, -1).astype(np.uint8))
            if draw(st.booleans()):
                img = Image.fromarray(rng.integers(0, 256, (mh, mw, 3), dtype=np.uint8))
        elif kind == "I;16":
            img = Image.fromarray(mask.astype(np.uint16))
        elif kind == "1":
            img = Image.fromarray(mask > 0)
        else:
            img = Image.fromarray(mask.clip(0, 255).astype(np.uint8), "L")
            if kind == "P":
                img = img.convert("P")
        img.save(root / "masks" / f"{item}.png")
    if draw(st.booleans()):
        (root / "classes.txt").write_text("\n".join(draw(st.lists(CLASS_LINES, max_size=4))))
    if draw(st.booleans()):
        text = "\n".join(draw(st.lists(SPLIT_ROWS, max_size=6)))
        (root / "split.csv").write_bytes(text.encode() if draw(st.integers(0, 5)) else b"\xff\xfe" + text.encode())
    options = {"root": str(root)}
    options["mask_map"] = draw(st.sampled_from(["index", "index", "binary", "rgb"]))
    if draw(st.booleans()):
        options["num_classes"] = draw(st.integers(1, 4))
    if draw(st.integers(0, 3)) == 0:
        options["mask_values"] = draw(st.sampled_from([(0, 255), (0, 1), (0,)]))
    return options


def _check_item(image: torch.Tensor, mask: torch.Tensor, dataset) -> None:
    assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == dataset.in_channels
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert mask.dtype == torch.int64 and mask.shape == image.shape[1:]
    valid = (mask >= 0) & (mask < dataset.num_classes)
    if dataset.ignore_index is not None:
        valid |= mask == dataset.ignore_index
    assert bool(valid.all()), torch.unique(mask)


@given(data=st.data())
@counted("folder datasets (masks, classes.txt, split.csv)")
def test_a_folder_dataset_loads_or_fails_in_one_line(data, tmp_path_factory):
    from zoo.data import check_dataset, collect_problems

    root = tmp_path_factory.mktemp("ds")
    options = data.draw(folder_datasets(root / "cells"))
    try:
        dataset = api.build_dataset("folder", **options)
    except ZooError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        # the options are well-formed: a refusal names the files or the option that disagrees with them, never
        # a raw error from inside the builder
        assert "cannot be built with" not in message, message
        assert str(root) in message or any(f"{k}=" in message for k in options), message
        return
    for split in ("train", "val", "test"):
        try:
            part = dataset.split(split)
        except ZooError as exc:  # an empty split
            assert "\n" not in str(exc), str(exc)
            continue
        for i in range(len(part)):
            try:
                image, mask = part[i]
            except ZooError as exc:
                assert "\n" not in str(exc) and str(root) in str(exc), str(exc)
            else:
                _check_item(image, mask, dataset)
    with collect_problems() as problems:  # what `zoo datasets check` does: every problem, no exception
        report = check_dataset(api.build_dataset("folder", **options), problems=problems)
    assert all("\n" not in p.message for p in report.problems)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: wrong shapes, missing keys, wrong model names and options, broken metadata, damaged bytes

@pytest.fixture(scope="module")
def fakes():
    from tests.zoo import fake_plugin

    return api.load_registry(plugins=[fake_plugin], autoload=False)


META = {"model": "tiny-net", "model_options": {"width": 2}, "in_channels": 3, "out_channels": 2, "num_classes": 2,
        "image_size": 16}


@st.composite
def checkpoint_damage(draw: st.DrawFn) -> tuple[str, object]:
    return draw(st.sampled_from([
        ("none", None), ("drop-key", None), ("reshape", None), ("extra-key", None), ("dtype", None),
        ("model", st.one_of(st.sampled_from(["unet", "tiny-net-wide", "Tiny", ""]), st.text(max_size=8))),
        ("options", st.dictionaries(st.sampled_from(["width", "kernel", "depth"]),
                                    st.one_of(st.integers(-2, 6), st.text(max_size=3), st.floats(), st.none()),
                                    max_size=2)),
        ("channels", st.one_of(st.integers(-1, 5), st.text(max_size=3), st.none(), st.floats())),
        ("drop-meta", st.sampled_from(sorted(META))), ("meta-not-json", None), ("no-meta", None),
        ("truncate", st.integers(0, 400)), ("garbage", st.binary(max_size=64)),
    ]).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1] if pair[1] is not None else st.none())))


def _write_checkpoint(path: Path, damage: str, value: object) -> None:
    from safetensors.torch import save_file

    from tests.zoo import fake_plugin

    model = fake_plugin.tiny_net(in_channels=3, num_classes=2, width=2)
    tensors = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    meta: dict = json.loads(json.dumps(META))
    first = next(iter(tensors))
    if damage == "drop-key":
        tensors.pop(first)
    elif damage == "reshape":
        tensors[first] = torch.zeros(7, 1, 1, 1)
    elif damage == "extra-key":
        tensors["extra.weight"] = torch.zeros(1)
    elif damage == "dtype":
        tensors[first] = tensors[first].to(torch.int32)
    elif damage == "model":
        meta["model"] = value
    elif damage == "options":
        meta["model_options"] = value
    elif damage == "channels":
        meta["in_channels"] = value
    elif damage == "drop-meta":
        meta.pop(value)
    header = {"zoo": json.dumps({"format": 1, **meta})}
    if damage == "meta-not-json":
        header = {"zoo": "{not json"}
    elif damage == "no-meta":
        header = {}
    save_file(tensors, str(path), metadata=header)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: int(value)])
    elif damage == "garbage":
        path.write_bytes(value)


@given(damage=checkpoint_damage())
@counted("checkpoints (shapes, keys, names, metadata)")
def test_a_damaged_checkpoint_loads_or_fails_in_one_line(damage, fakes, tmp_path_factory):
    from zoo.training.parts import model_from_checkpoint

    kind, value = damage
    path = tmp_path_factory.mktemp("ckpt") / "best.safetensors"
    _write_checkpoint(path, kind, value)
    try:
        model, meta = model_from_checkpoint(path, fakes)
    except ZooError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        return
    assert kind in ("none", "dtype", "options", "channels", "drop-meta", "model"), kind  # the rest must fail
    assert isinstance(model, torch.nn.Module) and meta["model"] in fakes.models
