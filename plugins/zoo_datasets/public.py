"""Named public datasets, read from a local ``root`` in the layout their publishers distribute.

Nothing is downloaded. Each loader also accepts the generic folder layout (``images/``, ``masks/``,
``split.csv``, ``classes.txt``) of a converted copy, and ``root`` defaults to ``$ZOO_DATA/<name>`` where a
converted copy usually lives (so ``ZOO_DATA=../shared/data zoo datasets check drive`` reads the shared copy).

- ``isbi2012``: ISBI 2012 EM stacks ``train-volume.tif`` + ``train-labels.tif`` (multi-page TIFF), or per-slice
  folders ``image/`` + ``label/`` (optionally under ``train/``). Labels 0/255 -> 0 membrane, 1 cell interior.
  Split: contiguous z-blocks 70/15/15 (neighbouring sections are near-duplicates, so no shuffling).
- ``drive``: DRIVE ``training|test/{images,1st_manual,mask}``; published split (21-40 train, 01-20 test) with
  the last 3 training images (38-40) as val. ``fov=True`` sets pixels outside the field of view to ignore.
- ``camvid``: SegNet layout ``train|val|test/*.png`` + ``train|val|testannot/*.png``; class 11 (void) is ignore.
- ``dsb2018``: Kaggle DSB 2018 ``stage1_train/<id>/images/<id>.png`` + ``masks/*.png`` (instances merged).
- ``voc2012`` and ``oxford-pets``: through torchvision's dataset classes (``download=False``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from zoo.data import DEFAULT_CACHE_MB, BaseDataset, Problem, seeded_split
from zoo.errors import DatasetError, check_choice
from zoo.interfaces import SPLITS

from zoo_datasets.folder import (
    DEFAULT_IGNORE, Item, MaskMapping, assemble, folder_dataset, is_folder_layout,
)

__all__ = ["isbi2012", "drive", "camvid", "dsb2018", "voc2012", "oxford_pets", "NAMED_FOLDERS"]

#: The ``$ZOO_DATA`` folder each named loader defaults to (the data dir registers no other dataset under it).
NAMED_FOLDERS = {"isbi2012": "isbi2012", "drive": "drive", "camvid": "camvid", "dsb2018": "dsb2018",
                 "voc2012": "voc2012", "oxford-pets": "oxford-pets"}

CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
                  "pedestrian", "bicyclist")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


def _root(root: str | None, name: str) -> Path:
    if root is not None:
        path = Path(root)
    elif os.environ.get("ZOO_DATA"):
        path = Path(os.environ["ZOO_DATA"]) / NAMED_FOLDERS[name]
    else:
        raise DatasetError(f"dataset {name!r} needs --root DIR (or ZOO_DATA=DIR with the data in DIR/"
                           f"{NAMED_FOLDERS[name]}/)")
    if not path.is_dir():
        raise DatasetError(f"dataset {name!r}: root {str(path)!r} does not exist or is not a folder")
    return path


def _blocks(ids: list[str]) -> dict[str, list[str]]:
    """Contiguous 70/15/15 blocks in sorted order (for stacks whose neighbours are near-duplicates)."""
    ids = sorted(ids)
    n = len(ids)
    n_val = max(1, round(n * 0.15)) if n >= 3 else 0
    n_test = max(1, round(n * 0.15)) if n >= 3 else 0
    n_train = n - n_val - n_test
    return {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}


def isbi2012(*, root: str | None = None, cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """ISBI 2012 EM membranes: TIFF stacks or per-slice folders (0 membrane, 1 cell interior).

    Args:
        root: folder with ``train-volume.tif`` and ``train-labels.tif``, or ``image/`` and ``label/`` slice
            folders (optionally under ``train/``), or the generic folder layout. Default ``$ZOO_DATA/isbi2012``.
        cache_mb: memory budget for decoded items.
    """
    path = _root(root, "isbi2012")
    if is_folder_layout(path):
        return folder_dataset("isbi2012", path, cache_mb=cache_mb)
    classes = ("membrane", "cell_interior")
    binary = MaskMapping(mode="binary")
    volume, labels = path / "train-volume.tif", path / "train-labels.tif"
    problems: list[Problem] = []
    if volume.is_file() or labels.is_file():
        from PIL import Image

        for f in (volume, labels):
            if not f.is_file():
                raise DatasetError(f"dataset 'isbi2012': {str(f)!r} does not exist (stacks come in pairs)")
        try:
            with Image.open(volume) as v, Image.open(labels) as lab:
                pages, label_pages = getattr(v, "n_frames", 1), getattr(lab, "n_frames", 1)
        except (OSError, Image.DecompressionBombError) as exc:  # each page's size is checked when it is read
            raise DatasetError(f"cannot read TIFF stack in {str(path)!r}: {exc}") from None
        if pages != label_pages:
            problems.append(Problem("missing-mask", f"{str(volume)!r} has {pages} slices but {str(labels)!r} has "
                                                    f"{label_pages}"))
        n = min(pages, label_pages)
        width = len(str(n - 1))
        by_id = {f"{k:0{width}d}": Item(f"{k:0{width}d}", volume, labels, image_page=k, mask_page=k)
                 for k in range(n)}
        source = "stacks"
    else:
        base = path / "train" if (path / "train" / "image").is_dir() else path
        image_dir, label_dir = base / "image", base / "label"
        if not image_dir.is_dir():
            raise DatasetError(f"dataset 'isbi2012': {str(path)!r} has neither train-volume.tif/train-labels.tif "
                               f"nor image/ and label/ slice folders")
        images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in (".png", ".tif", ".tiff")}
        masks = {p.stem: p for p in sorted(label_dir.iterdir())} if label_dir.is_dir() else {}
        for stem in sorted(set(images) - set(masks)):
            problems.append(Problem("missing-mask", f"slice {str(images[stem])!r} has no label in {str(label_dir)!r}"))
        for stem in sorted(set(masks) - set(images)):
            problems.append(Problem("missing-image", f"label {str(masks[stem])!r} has no slice in {str(image_dir)!r}"))
        # Slices are named 0.png, 1.png, ... 29.png: sort numerically so the split blocks follow z.
        stems = sorted(set(images) & set(masks), key=lambda s: (int(s) if s.isdigit() else 10**9, s))
        width = len(str(len(stems) - 1))
        by_id = {(f"{int(s):0{width}d}" if s.isdigit() else s): Item(s, images[s], masks[s]) for s in stems}
        source = "slices"
    assignment = _blocks(list(by_id))
    items = {s: [Item(i, **{k: v for k, v in vars(by_id[i]).items() if k != "id"}) for i in ids]
             for s, ids in assignment.items()}
    return assemble("isbi2012", items, class_names=classes, ignore_index=None, in_channels=1, mapping=binary,
                    cache_mb=cache_mb, split_source="blocks:70/15/15 contiguous in z",
                    params={"root": str(path.resolve()), "layout": source}, root=path, problems=problems)


def _find(folder: Path, number: str, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        for candidate in folder.glob(pattern.format(n=number)):
            return candidate
    return None


def drive(*, root: str | None = None, fov: bool = False, val_ids: tuple[str, ...] = ("38", "39", "40"),
          cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """DRIVE retinal vessels (0 background, 1 vessel); published split; fov=True scores inside the field of view.

    Args:
        root: the DRIVE folder with ``training/`` and ``test/`` (or ``testing/``), or the generic folder layout
            with a ``fov/`` folder. Default ``$ZOO_DATA/drive``.
        fov: set pixels outside the field-of-view mask to ``ignore_index`` (255), as DRIVE results are reported.
        val_ids: training images held out for validation (publisher layout only; DRIVE has no val split).
        cache_mb: memory budget for decoded items.
    """
    path = _root(root, "drive")
    if isinstance(val_ids, (str, int)):
        val_ids = (str(val_ids),)
    val_ids = tuple(str(v).zfill(2) for v in val_ids)
    if is_folder_layout(path):
        return folder_dataset("drive", path, roi=fov, cache_mb=cache_mb)
    problems: list[Problem] = []
    items: dict[str, list[Item]] = {s: [] for s in SPLITS}
    found_any = False
    for folder_name, kind in (("training", "training"), ("test", "test"), ("testing", "test")):
        base = path / folder_name
        if not (base / "images").is_dir():
            continue
        found_any = True
        for image in sorted((base / "images").glob("*.tif")):
            number = image.stem.split("_")[0]
            manual = _find(base / "1st_manual", number, ("{n}_manual1.gif", "{n}_manual1.*"))
            fov_mask = _find(base / "mask", number, ("{n}_*mask.gif", "{n}_*mask.*"))
            if manual is None:
                problems.append(Problem("missing-mask", f"image {str(image)!r} has no {number}_manual1.gif in "
                                                        f"{str(base / '1st_manual')!r}"))
                continue
            if fov and fov_mask is None:
                problems.append(Problem("missing-roi", f"image {str(image)!r} has no field-of-view mask in "
                                                       f"{str(base / 'mask')!r}"))
                continue
            split = "test" if kind == "test" else ("val" if number in val_ids else "train")
            items[split].append(Item(number, image, manual, roi=fov_mask if fov else None))
    if not found_any:
        raise DatasetError(f"dataset 'drive': {str(path)!r} has neither training/images nor test/images (nor "
                           f"the images/ + masks/ folder layout)")
    return assemble("drive", items, class_names=("background", "vessel"), ignore_index=DEFAULT_IGNORE if fov else None,
                    in_channels=3, mapping=MaskMapping(mode="binary"), cache_mb=cache_mb,
                    split_source=f"published (val = training {', '.join(val_ids)})",
                    params={"root": str(path.resolve()), "fov": fov, "val_ids": val_ids}, root=path,
                    problems=problems)


def camvid(*, root: str | None = None, cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """CamVid road scenes, SegNet's 11 classes at 480x360; published split; void (11) is ignored.

    Args:
        root: the SegNet ``CamVid`` folder (``train/``, ``trainannot/``, ``val/``, ...), or the generic folder
            layout. Default ``$ZOO_DATA/camvid``.
        cache_mb: memory budget for decoded items.
    """
    path = _root(root, "camvid")
    if is_folder_layout(path):
        return folder_dataset("camvid", path, cache_mb=cache_mb)
    problems: list[Problem] = []
    items: dict[str, list[Item]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        image_dir, annot_dir = path / split, path / f"{split}annot"
        if not image_dir.is_dir():
            problems.append(Problem("empty-split", f"{str(image_dir)!r} does not exist"))
            continue
        for image in sorted(image_dir.glob("*.png")):
            annot = annot_dir / image.name
            if not annot.is_file():
                problems.append(Problem("missing-mask", f"image {str(image)!r} has no annotation {str(annot)!r}"))
                continue
            items[split].append(Item(image.stem, image, annot))
        if annot_dir.is_dir():
            for annot in sorted(annot_dir.glob("*.png")):
                if not (image_dir / annot.name).is_file():
                    problems.append(Problem("missing-image", f"annotation {str(annot)!r} has no image"))
    return assemble("camvid", items, class_names=CAMVID_CLASSES, ignore_index=11, in_channels=3,
                    cache_mb=cache_mb, split_source="published (SegNet train/val/test)",
                    params={"root": str(path.resolve())}, root=path, problems=problems)


def dsb2018(*, root: str | None = None, split_seed: int = 0, cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """Kaggle Data Science Bowl 2018 nuclei (stage1_train), instance masks merged (0 background, 1 nucleus).

    Args:
        root: the folder holding ``stage1_train/`` (or ``stage1_train`` itself), or the generic folder layout.
            Default ``$ZOO_DATA/dsb2018``.
        split_seed: seed of the 70/15/15 split (the stage 1 training set has no published split).
        cache_mb: memory budget for decoded items.
    """
    path = _root(root, "dsb2018")
    if is_folder_layout(path):
        return folder_dataset("dsb2018", path, split_seed=split_seed, cache_mb=cache_mb)
    base = path / "stage1_train" if (path / "stage1_train").is_dir() else path
    problems: list[Problem] = []
    by_id: dict[str, Item] = {}
    for sample in sorted(p for p in base.iterdir() if p.is_dir()):
        image = sample / "images" / f"{sample.name}.png"
        masks = tuple(sorted((sample / "masks").glob("*.png"))) if (sample / "masks").is_dir() else ()
        if not image.is_file():
            problems.append(Problem("missing-image", f"{str(image)!r} does not exist"))
            continue
        if not masks:
            problems.append(Problem("missing-mask", f"{str(sample / 'masks')!r} holds no instance masks"))
            continue
        by_id[sample.name] = Item(sample.name, image, masks=masks)
    if not by_id and not problems:
        raise DatasetError(f"dataset 'dsb2018': {str(base)!r} holds no <id>/images/<id>.png folders")
    assignment = seeded_split(list(by_id), seed=split_seed)
    items = {s: [by_id[i] for i in ids] for s, ids in assignment.items()}
    return assemble("dsb2018", items, class_names=("background", "nucleus"), ignore_index=None, in_channels=3,
                    cache_mb=cache_mb, split_source=f"seed:{split_seed} (70/15/15 of sorted ids)",
                    params={"root": str(path.resolve()), "split_seed": split_seed}, root=path, problems=problems)


def _hold_out_val(items: list[Item], val_fraction: float, split_seed: int) -> dict[str, list[Item]]:
    """Split a published training list into train and a seeded ``val_fraction`` held out as val."""
    ordered = sorted(items, key=lambda it: it.id)
    held = set(random.Random(split_seed).sample([it.id for it in ordered], round(len(ordered) * val_fraction)))
    return {"train": [it for it in ordered if it.id not in held], "val": [it for it in ordered if it.id in held]}


def _torchvision_error(name: str, path: Path, exc: Exception) -> DatasetError:
    return DatasetError(f"dataset {name!r}: torchvision could not find it under {str(path)!r} ({exc}); nothing is "
                        f"downloaded, so put the publisher's files there first")


def voc2012(*, root: str | None = None, val_fraction: float = 0.1, split_seed: int = 0,
            cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """PASCAL VOC 2012 segmentation (21 classes, 255 border ignored) via torchvision, download=False.

    VOC's test labels are not public, so the published ``val`` list is the test split here and val is a seeded
    ``val_fraction`` of ``train`` (the test split is never used for model selection).

    Args:
        root: the folder holding ``VOCdevkit/VOC2012``. Default ``$ZOO_DATA/voc2012``.
        val_fraction: share of the published train list held out as val.
        split_seed: seed of that hold-out.
        cache_mb: memory budget for decoded items.
    """
    from torchvision.datasets import VOCSegmentation

    path = _root(root, "voc2012")
    lists = {}
    for image_set in ("train", "val"):
        try:
            ds = VOCSegmentation(str(path), year="2012", image_set=image_set, download=False)
        except (RuntimeError, FileNotFoundError, OSError) as exc:
            raise _torchvision_error("voc2012", path, exc) from None
        lists[image_set] = [Item(Path(img).stem, Path(img), Path(mask)) for img, mask in zip(ds.images, ds.masks)]
    items = {**_hold_out_val(lists["train"], val_fraction, split_seed), "test": lists["val"]}
    return assemble("voc2012", items, class_names=VOC_CLASSES, ignore_index=255, in_channels=3, cache_mb=cache_mb,
                    split_source=f"published train/val (val -> test); val = seed:{split_seed} {val_fraction:g} of train",
                    params={"root": str(path.resolve()), "val_fraction": val_fraction, "split_seed": split_seed},
                    root=path)


PET_BORDER = ("ignore", "pet", "background")


def oxford_pets(*, root: str | None = None, border: str = "ignore", val_fraction: float = 0.1, split_seed: int = 0,
                cache_mb: float = DEFAULT_CACHE_MB) -> BaseDataset:
    """Oxford-IIIT Pet trimaps via torchvision, download=False (0 background, 1 pet; border ignored by default).

    Trimap values are 1 pet, 2 background, 3 border. The published ``test`` list is the test split; val is a
    seeded ``val_fraction`` of ``trainval``.

    Args:
        root: the folder holding ``oxford-iiit-pet/``. Default ``$ZOO_DATA/oxford-pets``.
        border: what the trimap border becomes: ``ignore`` (255), ``pet`` or ``background``.
        val_fraction: share of trainval held out as val.
        split_seed: seed of that hold-out.
        cache_mb: memory budget for decoded items.
    """
    from torchvision.datasets import OxfordIIITPet

    check_choice("border", border, PET_BORDER)
    path = _root(root, "oxford-pets")
    lists = {}
    for split in ("trainval", "test"):
        try:
            ds = OxfordIIITPet(str(path), split=split, target_types="segmentation", download=False)
        except (RuntimeError, FileNotFoundError, OSError) as exc:
            raise _torchvision_error("oxford-pets", path, exc) from None
        # torchvision keeps the file lists private; they are the documented layout images/<id>.jpg, trimaps/<id>.png
        lists[split] = [Item(Path(img).stem, Path(img), Path(seg)) for img, seg in zip(ds._images, ds._segs)]
    items = {**_hold_out_val(lists["trainval"], val_fraction, split_seed), "test": lists["test"]}
    extra = {"ignore": (), "pet": ((3, 1),), "background": ((3, 0),)}[border]
    mapping = MaskMapping(values=(2, 1), extra=extra, void=(3,) if border == "ignore" else ())
    return assemble("oxford-pets", items, class_names=("background", "pet"),
                    ignore_index=DEFAULT_IGNORE if border == "ignore" else None, in_channels=3,
                    mapping=mapping, cache_mb=cache_mb,
                    split_source=f"published trainval/test; val = seed:{split_seed} {val_fraction:g} of trainval",
                    params={"root": str(path.resolve()), "border": border, "val_fraction": val_fraction,
                            "split_seed": split_seed}, root=path)

