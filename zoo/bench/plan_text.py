"""A planned dataset's recipe in one line, for the leaderboard pages: what the planner chose (``plan.json``) and
the steps each model got at the dataset's budget (``runs.csv``).

Under a compute budget the models of a dataset share the patch, the sampling, the augmentation, the loss and the
scoring, but not the steps: a model with more GMACs per image trains fewer of them. The line says both, so a reader
of a leaderboard sees the recipe beside the scores without opening ``plan.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["recipe_line"]

_AUGMENT = (("hflip", "horizontal flips"), ("vflip", "vertical flips"), ("rot90", "90-degree rotations"))
_LOSSES = {"dice+bce": "Dice + binary cross-entropy", "dice+ce": "Dice + cross-entropy", "ce": "cross-entropy",
           "bce": "binary cross-entropy", "dice": "Dice"}


def _training(plan: Mapping[str, Any]) -> str:
    h, w = plan["patch_size"]
    scale = float(plan.get("resize") or 1.0)
    what = f"whole {h}x{w} images" if plan.get("whole_image") else f"{h}x{w} crops"
    what += " at native scale" if scale == 1.0 else f" at x{scale:g} scale"
    sampling = plan.get("sampling") or {}
    share = sampling.get("foreground_share")
    if sampling.get("mode") == "crop" and share:
        what += f" ({share:.0%} centred on a foreground pixel)"
    return what


def _augmentation(plan: Mapping[str, Any]) -> str:
    aug = plan.get("augmentation") or {}
    names = [name for key, name in _AUGMENT if aug.get(key)]
    jitter = aug.get("scale_jitter")
    if jitter:
        names.append(f"scale jitter {jitter[0]:g}-{jitter[1]:g}")
    return ", ".join(names) or "no augmentation"


def _scoring(plan: Mapping[str, Any]) -> str:
    ev = plan.get("evaluation") or {}
    if ev.get("mode") == "sliding":
        h, w = ev["window"]
        how = f"sliding {h}x{w} windows (overlap {ev.get('overlap', 0.5):g}, {ev.get('blend', 'gaussian')} blending)"
    else:
        how = "whole images"
    scale = float(ev.get("input_scale") or 1.0)
    if scale != 1.0:
        how += f" at x{scale:g}, logits resized back to the original pixels"
    return how + (", inside the region of interest" if ev.get("roi") else "")


def _steps(runs: pd.DataFrame, dataset: str) -> str:
    """``unet 269, unetpp 110`` (median over a variant's ok seeds), most steps (the fewest GMACs) first."""
    need = {"dataset", "variant", "steps_done"}
    if not need <= set(runs.columns):
        return ""
    ok = runs[(runs["dataset"] == dataset) & (runs.get("status", "ok") == "ok")].dropna(subset=["steps_done"])
    if ok.empty:
        return ""
    by = ok.groupby("variant").agg(steps=("steps_done", "median")).sort_values("steps", ascending=False)
    return ", ".join(f"{variant} {int(row.steps)}" for variant, row in by.iterrows())


def recipe_line(plan: Mapping[str, Any] | None, runs: pd.DataFrame, dataset: str) -> str | None:
    """``**Recipe** (plan v2 of `zoo plan`): ...`` for a dataset trained on a plan, or ``None`` (no plan).

    Args:
        plan: the folder's ``plan.json`` (its ``plans`` hold one plan per dataset; used when ``plan_mode`` is auto).
        runs: the folder's ``runs.csv`` (steps per variant).
        dataset: the dataset.
    """
    if not plan or plan.get("plan_mode") != "auto":  # plan none keeps the plans for the budgets; cells ignore them
        return None
    p = (plan.get("plans") or {}).get(dataset)
    if not isinstance(p, Mapping) or "patch_size" not in p:
        return None
    budget = p.get("budget") or {}
    spent = (f"{budget['value']:g} {'TFLOPs' if budget.get('kind') == 'tflops' else budget.get('kind')} of training "
             f"per cell" if budget.get("value") is not None else "")
    steps = _steps(runs, dataset)
    parts = [f"{_training(p)}, batch {p.get('batch_size')}", _augmentation(p),
             _LOSSES.get(str(p.get("loss")), str(p.get("loss"))),
             spent + (f" (optimizer steps by variant: {steps})" if steps else ""), f"scored on {_scoring(p)}"]
    return (f"**Recipe** (plan v{p.get('version', 1)} of `zoo plan`; reasons in `plan.json`): "
            + "; ".join(part for part in parts if part) + ".")
