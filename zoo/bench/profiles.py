"""Budget profiles: named recipes that ``zoo bench --profile`` applies identically to every cell of a grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Profile", "PROFILES", "DEFAULT_SEEDS"]

DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Profile:
    """A named training budget applied identically to every cell.

    Attributes:
        name: what ``--profile`` takes.
        description: one line for ``--help`` and the results README.
        train: ``TrainConfig`` fields (epochs, image_size, batch_size, lr, ...).
        model: model options applied to every model whose builder takes them (e.g. ``width``).
        dataset: dataset name -> options for that dataset (e.g. how many ``shapes`` images to generate).
        seeds: default seeds.
        infer_repeats: timed repeats of the inference benchmark (median reported).
        planned: whether ``zoo bench`` plans each dataset's recipe (``--plan auto``) unless told ``--plan none``.
        budget: the training budget of a planned cell (``"135 tflops"``; see ``zoo.budget``).
        dataset_budgets: dataset name -> its budget, where it differs from ``budget``.
        min_steps: the fewest steps the planner lets a compute budget buy (``None``: the planner's own).
        dataset_model: dataset name -> model options for every model on that dataset (where its builder takes
            them), under explicit ones.
    """

    name: str
    description: str
    train: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    dataset: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    infer_repeats: int = 10
    planned: bool = False
    budget: str | None = None
    dataset_budgets: Mapping[str, str] = field(default_factory=dict)
    min_steps: int | None = None
    dataset_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# The CPU recipe: deterministic "auto" (deterministic kernels on the CPU; non-deterministic on a GPU, where some
# ops of common models have none: zoo.seeding.resolve_deterministic), precision "auto" (the bf16 + channels_last
# fast path where the CPU has native bf16, else fp32), the task's default loss, light augmentation. The default
# profile plans each dataset (zoo.bench.planned) at 135 TFLOPs per cell: the compute with which unet reached test
# Dice 0.77 on DRIVE at native scale (issue 17). On shapes it spends 0.2 TFLOPs per cell, under the old default's
# 0.28: at 0.25 the planned `zoo bench --models unet,unet-attn` took 1.05x the old command's wall time (native-size
# scoring and planning cost a little more per cell), so the budget pays for it. It keeps three seeds: five (the fewest
# that can give a recipe verdict, zoo.bench.verdicts) took 1.45x the old default's time on shapes, where each
# cell's process start, imports and scoring cost more than its training (issue 21); the leaderboard says how many
# seeds a verdict needs.
# Width 16 elsewhere: on a CPU a width-8 U-Net at DRIVE's 592 px is bound by memory traffic, not arithmetic; a
# training step took as long as at width 16 (10-12 s for 2 images under load, 4.3-4.9 vs 15-17 GFLOP/s), so at
# equal compute width 8 took 3.5x the time. min_steps=60 keeps the small shapes budget at batch 8 (the planner
# would go down to batch 2 for 250 steps, which is slower on a CPU for the same images). AdamW at 3e-3 with a cosine decay: with 60 steps it reached test Dice 0.78
# where Adam at a constant 1e-3 reached about 0.7 with several times the spread (benchmarks/README.md).
_CPU_TRAIN = {"device": "auto", "precision": "auto", "deterministic": "auto", "num_workers": 0}
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("quick", "smoke test: 1 epoch, width 4, 32 px, a handful of images (tests, CI)",
                train={**_CPU_TRAIN, "epochs": 1, "image_size": 32, "batch_size": 4},
                model={"width": 4}, dataset={"shapes": {"image_size": 32, "train_items": 8, "val_items": 4,
                                                        "test_items": 4}},
                seeds=(0,), infer_repeats=3),
        Profile("default", "planned recipes (native-scale patches, native-resolution scoring) at 135 TFLOPs of "
                "training per cell, the same for every model; width 16 (8 on shapes, at 0.2 TFLOPs: the time of "
                "the old resize default); AdamW 3e-3, cosine schedule; three seeds (five give recipe verdicts)",
                train={**_CPU_TRAIN, "epochs": 6, "image_size": 64, "batch_size": 16, "optimizer": "adamw",
                       "lr": 3e-3, "schedule": "cosine"},
                model={"width": 16}, dataset={"shapes": {"image_size": 64}},
                planned=True, budget="135 tflops", dataset_budgets={"shapes": "0.2 tflops"}, min_steps=60,
                dataset_model={"shapes": {"width": 8}}),
        Profile("paper", "the blog/paper recipe for a GPU: width 64, 256 px, 50 epochs, bf16 when available",
                train={"device": "auto", "precision": "auto", "deterministic": False, "num_workers": 4,
                       "epochs": 50, "image_size": 256, "batch_size": 8},
                model={"width": 64}, dataset={"shapes": {"image_size": 256}}, seeds=(0, 1, 2, 3, 4)),
    )
}
