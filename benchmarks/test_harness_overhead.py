"""Does the harness slow training? ``zoo.training.run`` against a bare PyTorch loop on the same model and data.

Both train the default profile's model (``unet`` width 8) on the same ``shapes`` loader (64 px, batch 16) with
the same loss, optimizer and precision (the ``auto`` default: bf16 autocast + channels_last on a CPU with native
bf16) in this process. The harness's time is ``RunResult.train_seconds``: its training epochs without
validation, test scoring or checkpoints, which the bare loop does not do either. Runs alternate so that
background load hits both alike; the medians of the per-run throughputs are compared.
"""

from __future__ import annotations

import time

import torch

from zoo import api, losses, training
from zoo.data import make_loader
from zoo.precision import Precision

EPOCHS, BATCH, SIZE, WIDTH, ITEMS, ROUNDS = 3, 16, 64, 8, 96, 5
DATASET_OPTIONS = {"image_size": SIZE, "train_items": ITEMS, "val_items": 8, "test_items": 4}


def _harness(tmp_path, seed: int) -> float:
    config = training.TrainConfig(model="unet", dataset="shapes", model_options={"width": WIDTH},
                                  dataset_options=DATASET_OPTIONS, epochs=EPOCHS, batch_size=BATCH, image_size=SIZE,
                                  metrics=("dice",), device="cpu", seed=seed)
    result = training.run(config, tmp_path / f"run{seed}-{time.monotonic_ns()}", quiet=True)
    assert result.status == "ok", result.error
    return result.steps_done / result.train_seconds


def _bare(seed: int) -> float:
    """The textbook loop: zero_grad, autocast forward, loss, backward, step; nothing else."""
    torch.manual_seed(seed)
    dataset = api.build_dataset("shapes", **DATASET_OPTIONS)
    loss_name = losses.default_loss(dataset.num_classes)
    model = api.build_model("unet", in_channels=dataset.in_channels,
                            num_classes=losses.model_out_channels(loss_name, dataset.num_classes), width=WIDTH)
    prec = Precision("cpu", "auto")  # only to learn what "auto" means here; the loop below is plain torch
    fmt = torch.channels_last if prec.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    loss_fn = losses.build_loss(loss_name, num_classes=dataset.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, seconds = 0, 0.0
    split = dataset.split("train")
    for epoch in range(EPOCHS):
        loader = make_loader(split, train=True, batch_size=BATCH, image_size=SIZE, seed=seed * 1_000_003 + epoch)
        started = time.perf_counter()
        for images, masks in loader:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec.dtype is not None):
                loss = loss_fn(model(images.contiguous(memory_format=fmt)), masks)
            loss.backward()
            optimizer.step()
            steps += 1
        seconds += time.perf_counter() - started
    return steps / seconds


def test_harness_training_throughput_matches_a_bare_loop(tmp_path, report, interleaved):
    _bare(99)  # warm-up: first-touch allocations, oneDNN kernels
    rates = interleaved({"harness": lambda: _harness(tmp_path, 0), "bare": lambda: _bare(0)}, ROUNDS)
    ratio = rates["harness"] / rates["bare"]
    report("harness/train-throughput", "`zoo.training.run` train steps/s vs a bare PyTorch loop (unet w8, 64 px, "
           "batch 16, default precision)", ratio, target=">= 0.95",
           note=f"harness {rates['harness']:.1f} vs bare {rates['bare']:.1f} steps/s, median of {ROUNDS} "
                f"alternating runs of {EPOCHS} epochs")
    assert ratio >= 0.85  # a loose guard: single runs on a shared 2-core machine vary by several percent
