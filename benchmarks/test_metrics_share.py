"""How much of an evaluation pass goes to the metrics, ``hd95`` and the other surface metrics included.

The model is the default profile's (``unet`` width 8, 64 px) after two epochs on ``shapes``, so its masks have
realistic, imperfect boundaries (the surface metrics' cost grows with boundary pixels). The pass scores the
40 test images with every registered metric, as ``zoo train``/``zoo bench`` do on test; each metric's
``update``/``compute``/``reset`` is timed inside the pass. Target: metrics <= 5% of the pass.

Metrics from other installed plugins (the example plugin's ``fbeta``) are scored too, as ``zoo`` would.
"""

from __future__ import annotations

import time
from typing import Any

from zoo import api, training
from zoo.checkpoint import load_checkpoint
from zoo.data import make_loader
from zoo.engine import evaluate
from zoo.precision import Precision


class Timed:
    """A metric whose calls are timed; everything else passes through."""

    def __init__(self, metric: Any) -> None:
        self.metric, self.seconds = metric, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)

    def _timed(self, name: str, *args: Any) -> Any:
        started = time.perf_counter()
        out = getattr(self.metric, name)(*args)
        self.seconds += time.perf_counter() - started
        return out

    def update(self, pred: Any, target: Any) -> Any:
        return self._timed("update", pred, target)

    def compute(self) -> Any:
        return self._timed("compute")

    def reset(self) -> None:
        self._timed("reset")


def _shares(tmp_path, *, size: int, width: int, batch: int, items: dict[str, int], epochs: int
            ) -> tuple[float, dict[str, float], tuple[float, float], float, int]:
    """Train ``unet`` at ``size`` px, then time three eval passes of the test split with every metric: the
    median share, each metric's share, ms per image (metrics, rest of the pass), test Dice, metric count."""
    config = training.TrainConfig(model="unet", dataset="shapes", model_options={"width": width},
                                  dataset_options={"image_size": size, **items}, epochs=epochs, batch_size=batch,
                                  image_size=size, metrics=("dice",), device="cpu", seed=0)
    result = training.run(config, tmp_path / f"run{size}", quiet=True)
    assert result.status == "ok", result.error
    ckpt = load_checkpoint(result.checkpoints["best"])
    dataset = api.build_dataset("shapes", image_size=size, **items)
    model = api.build_model("unet", in_channels=3, num_classes=ckpt.meta["out_channels"], width=width)
    model.load_state_dict(ckpt.state_dict)
    prec = Precision("cpu", "auto")
    model = prec.module(model)
    split = dataset.split("test")
    loader = make_loader(split, train=False, batch_size=batch, image_size=size)
    names = api.default_registry().metrics.names()
    shares, seconds, per_image, dice = [], {}, (0.0, 0.0), float("nan")
    for _ in range(3):
        metrics = {n: Timed(api.build_metric(n, num_classes=2, ignore_index=None,
                                             class_names=list(dataset.class_names))) for n in names}
        started = time.perf_counter()
        scored = evaluate(model, loader, metrics, precision=prec, ids=list(split.ids))
        total = time.perf_counter() - started
        metric_seconds = sum(m.seconds for m in metrics.values())
        shares.append(metric_seconds / total)
        seconds = {n: m.seconds / total for n, m in metrics.items()}
        per_image = (1e3 * metric_seconds / len(split), 1e3 * (total - metric_seconds) / len(split))
        dice = scored.pooled.get("dice", float("nan"))
    return sorted(shares)[1], seconds, per_image, dice, len(names)


def _note(seconds: dict[str, float], per_image: tuple[float, float], dice: float) -> str:
    top = ", ".join(f"{n} {v:.1%}" for n, v in sorted(seconds.items(), key=lambda kv: -kv[1])[:3])
    surface = sum(seconds.get(n, 0.0) for n in ("hd95", "assd", "nsd"))
    return (f"median of 3 passes; largest: {top}; hd95+assd+nsd {surface:.1%}; metrics {per_image[0]:.2f} vs rest "
            f"of the pass {per_image[1]:.2f} ms/image; test Dice {dice:.2f}")


def test_metric_share_of_an_eval_pass(tmp_path, report):
    share, seconds, per_image, dice, n = _shares(tmp_path, size=64, width=8, batch=16, items={}, epochs=2)
    # The metrics share one computation per batch: the first surface metric called (assd) computes the boundary
    # distances for all three, the first overlap metric (accuracy) the confusion counts for all five.
    report("metrics/share-of-eval", f"metric time / eval pass, all {n} metrics incl. hd95 "
           f"(40 test images, 64 px, unet w8 after 2 epochs)", 100 * share, unit="%", target="<= 5",
           note=_note(seconds, per_image, dice))
    # a regression guard (about 0.2 on the 2-core EPYC, 0.4+ before the metrics shared their work); the 5% target
    # is missed at this size (see README "Missed targets")
    assert share <= 0.35


def test_metric_share_at_a_planned_native_size(tmp_path, report):
    """The planned recipes' scale: width 16, whole 512 px images scored one at a time (ISBI 2012's native size;
    planned cells score at native resolution with batch 1)."""
    items = {"train_items": 16, "val_items": 4, "test_items": 12}
    share, seconds, per_image, dice, n = _shares(tmp_path, size=512, width=16, batch=1, items=items, epochs=1)
    report("metrics/share-of-eval-native", f"metric time / eval pass, all {n} metrics incl. hd95 (12 test "
           "images, 512 px whole, batch 1, unet w16 after 1 epoch of 16 images): a planned native-resolution "
           "recipe's size", 100 * share, unit="%", target="<= 5", note=_note(seconds, per_image, dice))
